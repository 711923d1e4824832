package switching

import (
	"testing"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// TestRefundFindsItsPOSOriginalPastOtherRRNPostings: the ledger's RRN
// index names outside credits, recharge orders and transfer legs; one
// under the RRN and business date a POS refund names (put there directly:
// the switch's own RRNs never meet within a day) must not hide the POS
// consume the refund is for (it was 25).
func TestRefundFindsItsPOSOriginalPastOtherRRNPostings(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(cardStaff, 5000, "")
	bought := do(t, term, buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)

	b := sw.db.NewBatch()
	defer b.Close()
	res, err := sw.ledger.Execute(&ledger.OutsideCredit{
		Common: ledger.Common{Key: "10001|same-rrn-order", Date: sw.clock.Today(), RRN: bought.RRN},
		PAN:    cardVisitor, Amount: 100, Institution: "10001",
	}, b, func(ledger.Result) error { return b.Commit(pebble.Sync) })
	if err != nil || !res.Approved() {
		t.Fatalf("outside credit under the consume's RRN: %v %s", err, res.Decline)
	}

	expectRC(t, "refund", do(t, term, term.Refund(buy, bought, 2000), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000-5000+2000, 0)
	expectPurses(t, sw, cardVisitor, 10000+100, 0)
}
