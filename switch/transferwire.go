package switching

import (
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/pos"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/transfer"
	"github.com/cardswitch/cardswitch/switch/txn"
)

// TransferConfig bounds bank-transfer loads at kiosks per card
// (docs/recharge.md, "Bank-transfer loads"): one load, and a card's loads
// of one business day. Yuan in the file; 0 means no limit.
type TransferConfig struct {
	MaxLoad      ledger.Fen `yaml:"max_load"`
	MaxDailyLoad ledger.Fen `yaml:"max_daily_load"`
}

func (c TransferConfig) validate() error {
	if c.MaxLoad < 0 || c.MaxDailyLoad < 0 {
		return errors.New("transfer: max_load and max_daily_load must not be negative")
	}
	if c.MaxLoad > ledger.MaxAmount || c.MaxDailyLoad > ledger.MaxAmount {
		return fmt.Errorf("transfer: limits above %s", ledger.MaxAmount)
	}
	return nil
}

// openTransfer builds the bank-transfer load service (after the recharge
// service, which keeps the bindings).
func (sw *Switch) openTransfer() error {
	var err error
	sw.transfer, err = transfer.New(transfer.Options{DB: sw.db, Ledger: sw.ledger, HSM: sw.hsm, Links: sw.links,
		Bindings: sw.recharge.svc, Limits: transfer.Limits{MaxLoad: sw.cfg.Transfer.MaxLoad, MaxDailyLoad: sw.cfg.Transfer.MaxDailyLoad},
		Log: sw.log.Named("transfer"), Registerer: sw.metrics.Registry})
	return err
}

// transferDestination is the destination of a transfer load and of its
// reversal, whatever the routes say: the card's binding names the link.
// Anything else that names a transfer load as its original (a void, a
// refund, a reversal claiming another type) goes there too, never to the
// link that carried the bank leg: the link would undo the debit and
// leave the credit (the service answers it without moving money).
func (sw *Switch) transferDestination(t *txn.Transaction) (txn.Destination, bool) {
	if sw.transfer == nil {
		return nil, false
	}
	if t.Type == spec.TransferLoad || (t.Type == spec.Reversal && t.OriginalType == spec.TransferLoad) {
		return sw.transfer, true
	}
	if pos.FollowsOriginal(t.Type) && t.Original.Present && sw.links != nil {
		if _, found, err := sw.links.TransferLeg(t.Terminal, t.Original.Batch, t.Original.STAN); err == nil && found {
			return sw.transfer, true
		}
	}
	return nil, false
}
