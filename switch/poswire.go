package switching

import (
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/switch/pos"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// posProtocol builds the protocol the POS acceptor serves
// (docs/pos-dialect.md), handing it the switch's parts through the small
// interfaces of pos.Options.
func (sw *Switch) posProtocol() (*pos.Protocol, error) {
	o := pos.Options{
		DB: sw.db, Journal: sw.journal, Terminals: sw.terminals, HSM: sw.hsm, Ledger: sw.ledger,
		Clock: sw.clock, Routes: posRoutes{sw}, Destinations: posDestinations{sw},
		AnswerTimeout: time.Duration(sw.cfg.POS.AnswerTimeout),
		SignOn:        sw.cfg.SignOn.limits(),
		Metrics: pos.Metrics{Messages: sw.metrics.Messages, Transactions: sw.metrics.Transactions,
			Duration: sw.metrics.Duration, Rejected: sw.metrics.Rejected, SignOnRejected: sw.metrics.SignOnRejected},
		Log: sw.log,
	}
	if sw.links != nil {
		o.Originals = sw.links
		o.LocalPreAuths = posLocalPreAuths{sw}
	}
	return pos.New(o)
}

// posRoutes is the routing table in force (a reload swaps it).
type posRoutes struct{ sw *Switch }

func (r posRoutes) Route(pan, txType, merchant string) (string, error) {
	return r.sw.routes.Load().Route(pan, txType, merchant)
}

// posDestinations is the destination registry in force (a reload swaps
// it), the bank-transfer load and the gateway links.
type posDestinations struct{ sw *Switch }

func (d posDestinations) Destination(name string) (txn.Destination, bool) {
	return d.sw.destination(name)
}

func (d posDestinations) Pinned(t *txn.Transaction) (txn.Destination, bool) {
	return d.sw.transferDestination(t)
}

// IsLink reports whether a destination name is a gateway link.
func (d posDestinations) IsLink(name string) bool { return d.sw.isLink(name) }

// posLocalPreAuths finds a local pre-auth by its terminal reference, as a
// completion finds its original at the ledger.
type posLocalPreAuths struct{ sw *Switch }

func (l posLocalPreAuths) LocalPreAuth(terminal string, batch, stan uint32, card string) (bool, error) {
	v, ok, err := ledger.PostingByReference(l.sw.db, ledger.DigitReferences(l.sw.journal),
		ledger.TxnRef{Terminal: terminal, Batch: batch, STAN: stan})
	if err != nil || !ok {
		return false, err
	}
	return v.Kind == ledger.KindPreAuth && v.PAN == card, nil
}
