package links

import (
	"testing"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// TestTransferLegMessage: the bank leg of a transfer load
// (docs/gateway-links.md): 0200 400000 with the bound bank card in 2, the
// bound account in 102 and the campus card in 103, no PIN; and its 0420
// names it in 90.
func TestTransferLegMessage(t *testing.T) {
	e := newEnv(t)
	req := &TransferRequest{
		Request: Request{Type: spec.TransferLoad, Amount: 1234, HasAmount: true, Terminal: tid, Merchant: "898310000000001",
			Batch: 3, STAN: 17, LocalDate: "0315", LocalTime: "101112", BusinessDate: "20260315", RRN: "074000000017"},
		BankCard: bankCard, Account: "ACC-0099887766", CampusCard: "6230151000000000020",
	}
	lr := &journal.LinkRequest{Link: "bank-a"}
	out, err := e.link.buildTransfer(req, lr)
	if err != nil {
		t.Fatal(err)
	}
	// What goes on the wire: the frame, MACed.
	frame, err := e.link.frame(out)
	if err != nil {
		t.Fatal(err)
	}
	if !e.link.verifyMAC(frame[2:]) {
		t.Fatal("the leg's MAC does not verify")
	}
	m, err := spec.DecodeGateway(frame[2:])
	if err != nil {
		t.Fatal(err)
	}
	if id, err := (requestID{}).GenerateRequestID(out.m); err != nil || id != "2/"+lr.STAN+"/"+tid {
		t.Fatalf("request id %q, %v", id, err)
	}
	want := map[int]string{0: "0200", 2: bankCard, 3: "400000", 4: "000000001234", 11: lr.STAN, 12: "101112", 13: "0315",
		32: "12345678", 33: "12345678", 37: "074000000017", 41: tid, 42: "898310000000001", 49: "156", 100: "87654321",
		102: "ACC-0099887766", 103: "6230151000000000020"}
	for id, v := range want {
		if got, _ := m.GetString(id); got != v {
			t.Errorf("field %d = %q, want %q", id, got, v)
		}
	}
	if got, _ := m.GetString(7); got != lr.Transmission {
		t.Errorf("field 7 = %q, want %q", got, lr.Transmission)
	}
	for _, id := range []int{52, 53, 90} {
		if f, _ := m.GetString(id); f != "" {
			t.Errorf("field %d present: %q", id, f)
		}
	}
	if len(lr.STAN) != 6 || lr.STAN == "000000" || lr.MTI != "0200" || lr.ProcCode != "400000" || lr.Transmission == "" {
		t.Fatalf("link numbering %+v", lr)
	}
	// No amount: 13, nothing numbered.
	none := *req
	none.HasAmount, none.Amount = false, 0
	if _, err := e.link.buildTransfer(&none, &journal.LinkRequest{}); err == nil {
		t.Fatal("a leg without an amount was built")
	}

	lr.Card, lr.Amount, lr.Terminal, lr.Merchant, lr.RRN = bankCard, 1234, tid, "898310000000001", "074000000017"
	lr.Acquirer, lr.Forwarding = "12345678", "12345678"
	raw, err := e.link.reversalPayload(lr, spec.ReversalOther)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := spec.DecodeGateway(raw)
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range map[int]string{0: "0420", 2: bankCard, 3: "400000", 4: "000000001234", 39: "06",
		90: "0200" + lr.STAN + lr.Transmission + "00012345678" + "00012345678"} {
		if got, _ := rev.GetString(id); got != v {
			t.Errorf("reversal field %d = %q, want %q", id, got, v)
		}
	}
}
