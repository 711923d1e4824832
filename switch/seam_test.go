package switching

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cardswitch/cardswitch/routing"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"go.uber.org/zap"
)

// probe is a destination that is not the ledger: it decides what the test
// tells it and writes one key of its own into the transaction's batch, so
// the test can see that its write and the pipeline's are one commit.
type probe struct {
	mu     sync.Mutex
	seen   []txn.Transaction
	decide func(t *txn.Transaction, rec txn.Record) (txn.Outcome, error)
}

func (p *probe) Name() string { return "probe" }

func (p *probe) Execute(_ context.Context, t *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
	p.mu.Lock()
	p.seen = append(p.seen, *t)
	p.mu.Unlock()
	return p.decide(t, rec)
}

func (p *probe) calls() []txn.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]txn.Transaction(nil), p.seen...)
}

// probeKey is where the probe records a transaction it approved.
func probeKey(rrn string) []byte { return []byte("d/test-probe/" + rrn) }

// probeCard is a card only the probe's route covers.
const probeCard = "9990001000000000017"

// probeSwitch starts the demo switch with the probe registered and routed
// for cards 999....
func probeSwitch(t *testing.T, p *probe) *Switch {
	t.Helper()
	return testSwitchWith(t, zap.NewNop(), []txn.Destination{p}, func(c *Config) {
		c.Routes = append(append([]routing.Rule(nil), c.Routes...), routing.Rule{
			Name: "probe-cards", BINs: []string{"999"}, Types: []string{"*"}, Merchants: []string{"*"}, Destination: "probe",
		})
	})
}

// TestDestinationSeam: a route naming another destination sends the
// transaction there, mapped into the internal transaction; the
// destination's write and the pipeline's journal and stored response are
// committed together; a retransmission is answered from the stored
// response without asking the destination again; a Rejection is answered
// with its code, MACed, and stores nothing, so a retransmission is
// decided afresh.
func TestDestinationSeam(t *testing.T) {
	p := &probe{}
	p.decide = func(tx *txn.Transaction, rec txn.Record) (txn.Outcome, error) {
		if tx.Amount == 404 {
			return txn.Outcome{}, txn.Reject(spec.RCNoAnswer, errors.New("link down"))
		}
		if err := rec.Batch().Set(probeKey(tx.RRN), []byte(tx.Card), nil); err != nil {
			return txn.Outcome{}, err
		}
		o := txn.Outcome{ResponseCode: spec.RCApproved, AuthCode: "123456",
			Balances: []txn.Balance{{Account: txn.CashPurse, Amount: 777}}}
		return o, rec.Commit(o)
	}
	sw := probeSwitch(t, p)
	term := signedOn(t, sw, termCanteen, canteen)

	req, err := term.Consume(probeCard, 1234, "")
	first := do(t, term, req, err)
	expectRC(t, "consume at the probe", first, spec.RCApproved)
	if first.MAC == nil || first.AuthCode != "123456" || first.RRN == "" {
		t.Fatalf("answer: MAC %x auth %q rrn %q", first.MAC, first.AuthCode, first.RRN)
	}
	bs, err := spec.ParseBalances(first.Balances)
	if err != nil || len(bs) != 1 || bs[0].Amount != 777 || bs[0].AccountType != spec.AccountCashPurse {
		t.Fatalf("field 54 %q: %+v %v", first.Balances, bs, err)
	}
	calls := p.calls()
	if len(calls) != 1 {
		t.Fatalf("probe called %d times, want 1", len(calls))
	}
	got := calls[0]
	if got.Type != spec.Consume || got.Card != probeCard || got.Amount != 1234 || !got.HasAmount ||
		got.Terminal != termCanteen || got.Merchant != canteen || got.RRN != first.RRN ||
		got.Source != "pos" || got.BusinessDate == 0 || got.Key == "" || got.PIN != nil {
		t.Fatalf("transaction as the destination saw it: %+v", got)
	}
	v, closer, err := sw.db.Get(probeKey(first.RRN))
	if err != nil {
		t.Fatalf("the destination's write is not in the store: %v", err)
	}
	if string(v) != probeCard {
		t.Fatalf("probe key holds %q", v)
	}
	_ = closer.Close()

	// A retransmission: the stored answer, byte for byte; the probe is
	// not asked again.
	again := *req
	again.MAC = nil
	second := do(t, term, &again, nil)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Fatalf("retransmission got another answer\nfirst  %X\nsecond %X", first.Raw, second.Raw)
	}
	if n := len(p.calls()); n != 1 {
		t.Fatalf("probe called %d times after a retransmission, want 1", n)
	}

	// A rejection: its code, with a MAC (Receive verified it), nothing
	// stored: the same request again asks the probe again.
	rej, err := term.Consume(probeCard, 404, "")
	expectRC(t, "rejected at the probe", do(t, term, rej, err), spec.RCNoAnswer)
	rej2 := *rej
	rej2.MAC = nil
	resp := do(t, term, &rej2, nil)
	expectRC(t, "rejection retransmitted", resp, spec.RCNoAnswer)
	if resp.MAC == nil {
		t.Fatal("rejection answered without a MAC")
	}
	if n := len(p.calls()); n != 3 {
		t.Fatalf("probe called %d times, want 3 (a rejection is not stored)", n)
	}

	// The campus cards still go to the ledger.
	creq, err := term.Consume(cardStaff, 100, "")
	expectRC(t, "campus consume", do(t, term, creq, err), spec.RCApproved)
	if n := len(p.calls()); n != 3 {
		t.Fatalf("a campus card reached the probe")
	}
}

// TestDestinationNotRecording: a destination that answers without
// recording is a broken destination: 96, nothing stored.
func TestDestinationNotRecording(t *testing.T) {
	p := &probe{decide: func(*txn.Transaction, txn.Record) (txn.Outcome, error) {
		return txn.Outcome{ResponseCode: spec.RCApproved}, nil
	}}
	sw := probeSwitch(t, p)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(probeCard, 1, "")
	expectRC(t, "unrecorded outcome", do(t, term, req, err), spec.RCSystemMalfunction)
}
