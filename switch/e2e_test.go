package switching

import (
	"bytes"
	"context"
	"encoding/hex"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
	"go.uber.org/zap"
)

// Demo data of README.md#demo-data.
const (
	demoTMK      = "0123456789ABCDEFFEDCBA9876543210"
	canteen      = "898310000000001"
	partnerCafe  = "898320000000001"
	cardStudent  = "6230151000000000012"
	cardStaff    = "6230151000000000020"
	cardVisitor  = "6230151000000000038"
	cardLost     = "6230151000000000046"
	cardFrozen   = "6230151000000000053"
	cardEmpty    = "6230151000000000061"
	pinStudent   = "123456"
	pinStaff     = "654321"
	pinVisitor   = "111111"
	termCanteen  = "10000001"
	termCanteen2 = "10000002"
	termCafe     = "20000001"
	termKiosk    = "90000001"
)

// signedOn connects a terminal of the demo data and signs it on, as a
// real POS does: it decrypts its working keys with its own TMK.
func signedOn(t *testing.T, sw *Switch, id, merchant string) *posclient.Terminal {
	t.Helper()
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tmk, _ := hex.DecodeString(demoTMK)
	term := posclient.NewTerminal(c, id, merchant, tmk)
	resp, err := term.SignOn()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ResponseCode != spec.RCApproved || term.Batch == "" {
		t.Fatalf("sign-on: rc %s batch %q", resp.ResponseCode, term.Batch)
	}
	return term
}

// do sends a request (or fails the test on a build error) and returns the
// response, whose MAC the terminal has verified.
func do(t *testing.T, term *posclient.Terminal, req *spec.POSMessage, err error) *spec.POSMessage {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := term.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", req.MTI, err)
	}
	return resp
}

func expectRC(t *testing.T, what string, resp *spec.POSMessage, want string) {
	t.Helper()
	if resp.ResponseCode != want {
		t.Fatalf("%s: rc %s (%s), want %s (%s)", what, resp.ResponseCode,
			spec.RCDescription(resp.ResponseCode), want, spec.RCDescription(want))
	}
}

func purses(t *testing.T, sw *Switch, pan string) (cash, subsidy ledger.Fen) {
	t.Helper()
	v, ok := sw.ledger.Card(pan)
	if !ok {
		t.Fatalf("card %s missing", pan)
	}
	return v.Balances.Cash, v.Balances.Subsidy
}

func expectPurses(t *testing.T, sw *Switch, pan string, cash, subsidy ledger.Fen) {
	t.Helper()
	c, s := purses(t, sw, pan)
	if c != cash || s != subsidy {
		t.Fatalf("card %s: cash %s subsidy %s, want %s / %s", cardno.Mask(pan), c, s, cash, subsidy)
	}
}

func TestDemoBalanceInquiry(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Balance(cardStudent, pinStudent)
	resp := do(t, term, req, err)
	expectRC(t, "balance", resp, spec.RCApproved)
	bs, err := spec.ParseBalances(resp.Balances)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Amount != 50000 || bs[1].Amount != 20000 ||
		bs[0].AccountType != spec.AccountCashPurse || bs[1].AccountType != spec.AccountSubsidyPurse {
		t.Fatalf("field 54 %q → %+v, want cash 500.00 and subsidy 200.00", resp.Balances, bs)
	}
	if resp.RRN == "" || len(resp.SettlementDate) != 4 || resp.Reserved63 != "CSCCanteen No.1" {
		t.Fatalf("response fields: rrn %q 15 %q 63 %q", resp.RRN, resp.SettlementDate, resp.Reserved63)
	}
}

func TestDemoConsumeRules(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)

	// Subsidy first, at an on-campus merchant; no PIN needed up to 50.00.
	req, err := term.Consume(cardStudent, 3000, "")
	resp := do(t, term, req, err)
	expectRC(t, "consume 30.00 without PIN", resp, spec.RCApproved)
	if len(resp.AuthCode) != 6 || resp.RRN == "" {
		t.Fatalf("auth code %q rrn %q", resp.AuthCode, resp.RRN)
	}
	expectPurses(t, sw, cardStudent, 50000, 17000)

	// Above the no-PIN limit a PIN is required.
	req, err = term.Consume(cardStudent, 6000, "")
	expectRC(t, "consume 60.00 without PIN", do(t, term, req, err), spec.RCIncorrectPIN)
	req, err = term.Consume(cardStudent, 6000, pinStudent)
	expectRC(t, "consume 60.00 with PIN", do(t, term, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStudent, 50000, 11000)

	// Over the per-transaction limit of 200.00.
	req, err = term.Consume(cardStudent, 20001, pinStudent)
	expectRC(t, "consume over per-transaction limit", do(t, term, req, err), spec.RCExceedsAmountLimit)

	// Card states.
	req, err = term.Consume(cardLost, 100, "")
	expectRC(t, "lost card", do(t, term, req, err), spec.RCLostCard)
	req, err = term.Consume(cardFrozen, 100, "")
	expectRC(t, "frozen card", do(t, term, req, err), spec.RCFrozenCard)
	req, err = term.Consume(cardEmpty, 100, "")
	expectRC(t, "empty card", do(t, term, req, err), spec.RCInsufficientFunds)
	req, err = term.Consume("6230150999999999999", 100, "")
	expectRC(t, "unknown card", do(t, term, req, err), spec.RCInvalidCard)
	req, err = term.Consume("9999990000000000", 100, "")
	expectRC(t, "card outside every route", do(t, term, req, err), spec.RCInvalidCard)

	// The visitor pays a 5% service fee in the same transaction.
	req, err = term.Consume(cardVisitor, 2000, "")
	expectRC(t, "visitor consume", do(t, term, req, err), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000-2100, 0)

	// Off campus the subsidy purse is never touched.
	cafe := signedOn(t, sw, termCafe, partnerCafe)
	req, err = cafe.Consume(cardStudent, 1000, "")
	expectRC(t, "consume at Partner Cafe", do(t, cafe, req, err), spec.RCApproved)
	expectPurses(t, sw, cardStudent, 49000, 11000)
}

func TestDemoWrongPINLocks(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	// A PIN the switch cannot check (field 53 names no known PIN block
	// format) is the terminal's fault, not the cardholder's: 30, and no
	// try is counted — three wrong PINs still lock only at the third.
	for i := 0; i < 3; i++ {
		req, err := term.Consume(cardStaff, 100, pinStaff)
		if err != nil {
			t.Fatal(err)
		}
		req.SecurityControl = "9600000000000000"
		expectRC(t, "PIN with an unknown field 53", do(t, term, req, nil), spec.RCFormatError)
	}
	for i, want := range []string{spec.RCIncorrectPIN, spec.RCIncorrectPIN, spec.RCPINTriesExceeded} {
		req, err := term.Consume(cardStaff, 100, "000000")
		resp := do(t, term, req, err)
		if resp.ResponseCode != want {
			t.Fatalf("wrong PIN attempt %d: rc %s, want %s", i+1, resp.ResponseCode, want)
		}
	}
	// Locked now, even with the right PIN.
	req, err := term.Consume(cardStaff, 100, pinStaff)
	expectRC(t, "right PIN after lock", do(t, term, req, err), spec.RCPINTriesExceeded)
	expectPurses(t, sw, cardStaff, 100000, 0)
}

func TestDemoVoidRefundReversal(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)

	// Void gives back the full amount, the way it came.
	buy, err := term.Consume(cardStudent, 4000, "")
	bought := do(t, term, buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	expectPurses(t, sw, cardStudent, 50000, 16000)
	void, err := term.Void(buy, bought, "")
	expectRC(t, "void", do(t, term, void, err), spec.RCApproved)
	expectPurses(t, sw, cardStudent, 50000, 20000)
	void2, err := term.Void(buy, bought, "")
	if rc := do(t, term, void2, err).ResponseCode; rc == spec.RCApproved {
		t.Fatal("a second void of the same consume was approved")
	}

	// Refund: partial, never more than the original in total.
	buy, err = term.Consume(cardStaff, 5000, "")
	bought = do(t, term, buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	expectRC(t, "refund 20.00", do(t, term, term.Refund(buy, bought, 2000), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000-3000, 0)
	if rc := do(t, term, term.Refund(buy, bought, 3001), nil).ResponseCode; rc == spec.RCApproved {
		t.Fatal("refund beyond the original amount approved")
	}
	expectRC(t, "refund the rest", do(t, term, term.Refund(buy, bought, 3000), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000, 0)

	// Reversal of a known original undoes it exactly; repeated, same answer.
	buy, err = term.Consume(cardVisitor, 1000, "")
	expectRC(t, "visitor consume", do(t, term, buy, err), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000-1050, 0)
	rev := do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil)
	expectRC(t, "reversal", rev, spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000, 0)
	again := do(t, term, term.Reversal(buy, spec.ReversalTimeout), nil)
	expectRC(t, "repeated reversal", again, spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000, 0)

	// Reversal of an original the switch never saw: approved, no change.
	ghost, err := term.Consume(cardVisitor, 999, "")
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "reversal of unknown", do(t, term, term.Reversal(ghost, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardVisitor, 10000, 0)
}

func TestDemoPreAuthAndCashLoad(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	auth, err := term.PreAuth(cardStaff, 10000, pinStaff)
	authed := do(t, term, auth, err)
	expectRC(t, "pre-auth", authed, spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStaff); v.Balances.Available != 90000 {
		t.Fatalf("available after hold %s, want 900.00", v.Balances.Available)
	}
	comp, err := term.Completion(auth, authed, 8000, pinStaff)
	expectRC(t, "completion", do(t, term, comp, err), spec.RCApproved)
	v, _ := sw.ledger.Card(cardStaff)
	if v.Balances.Cash != 92000 || v.Balances.Available != 92000 {
		t.Fatalf("after completion: %+v, want cash and available 920.00", v.Balances)
	}

	// Only kiosks load cards.
	expectRC(t, "cash load at a POS", do(t, term, term.CashLoad(cardEmpty, 5000), nil), spec.RCNotPermittedTerminal)
	kiosk := signedOn(t, sw, termKiosk, canteen)
	load := kiosk.CashLoad(cardEmpty, 5000)
	loaded := do(t, kiosk, load, nil)
	expectRC(t, "cash load at the kiosk", loaded, spec.RCApproved)
	expectPurses(t, sw, cardEmpty, 5000, 0)
	expectRC(t, "cash load void", do(t, kiosk, kiosk.CashLoadVoid(load, loaded), nil), spec.RCApproved)
	expectPurses(t, sw, cardEmpty, 0, 0)
}

func TestDemoBatchSettlement(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen2, canteen)
	for _, amt := range []spec.Amount{1000, 2500} {
		req, err := term.Consume(cardStaff, amt, "")
		expectRC(t, "consume", do(t, term, req, err), spec.RCApproved)
	}
	for _, c := range []struct {
		totals spec.SettlementTotals
		flag   byte
	}{
		{spec.SettlementTotals{DebitCount: 2, DebitAmount: 3500}, spec.SettlementBalanced},
		{spec.SettlementTotals{DebitCount: 1, DebitAmount: 1000}, spec.SettlementUnbalanced},
	} {
		req, err := term.Settlement(c.totals)
		resp := do(t, term, req, err)
		expectRC(t, "settlement", resp, spec.RCApproved)
		st, err := spec.ParseSettlement(resp.AdditionalData)
		if err != nil {
			t.Fatal(err)
		}
		if st.Domestic.Flag != c.flag {
			t.Fatalf("settlement of %+v: flag %c, want %c", c.totals, st.Domestic.Flag, c.flag)
		}
	}
}

func TestSecurityGates(t *testing.T) {
	sw := testSwitch(t)
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tmk, _ := hex.DecodeString(demoTMK)

	// Unknown terminal: 97.
	ghost := posclient.NewTerminal(c, "55555555", canteen, tmk)
	resp, err := ghost.SignOn()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "unknown terminal sign-on", resp, spec.RCTerminalNotFound)

	// Wrong merchant: 03.
	wrong := posclient.NewTerminal(c, termCanteen, partnerCafe, tmk)
	resp, err = wrong.SignOn()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "wrong merchant", resp, spec.RCInvalidMerchant)

	// A financial message before sign-on: 77, processing requirement 3.
	term := signedOn(t, sw, termCanteen, canteen)
	stale := *term
	stale.Batch = "000999"
	req, err := stale.Consume(cardStaff, 100, "")
	resp = do(t, &stale, req, err)
	expectRC(t, "batch mismatch", resp, spec.RCBatchMismatch)
	if stale.Client.LastHeader.ProcessingRequirement() != spec.ProcessingSignOn {
		t.Fatalf("header %s: processing requirement must be 3", stale.Client.LastHeader)
	}

	// Bad MAC: A0, and no money moves.
	req, err = term.Consume(cardStaff, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	req.TerminalID, req.MerchantID = term.ID, term.Merchant
	if err := term.Client.Send(req, func([]byte) ([]byte, error) { return []byte("BADMAC!!"), nil }); err != nil {
		t.Fatal(err)
	}
	resp, err = term.Client.Receive()
	if err != nil {
		t.Fatal(err)
	}
	expectRC(t, "bad MAC", resp, spec.RCMACError)
	expectPurses(t, sw, cardStaff, 100000, 0)
}

func TestDuplicates(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Consume(cardStaff, 1234, "")
	if err != nil {
		t.Fatal(err)
	}
	first := do(t, term, req, nil)
	expectRC(t, "consume", first, spec.RCApproved)

	// The same bytes again: the stored response, byte for byte, and the
	// card is debited once.
	again := *req
	again.MAC = nil
	second := do(t, term, &again, nil)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Fatalf("duplicate got a different response\nfirst  %X\nsecond %X", first.Raw, second.Raw)
	}
	expectPurses(t, sw, cardStaff, 100000-1234, 0)

	// The journal holds both exchanges; only the second answer is marked
	// as a replay.
	entries, err := sw.journal.ByRRN(first.RRN, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var outs, replayed int
	for _, e := range entries {
		if e.Direction == journal.Out {
			outs++
			if e.Flags&journal.FlagReplayed != 0 {
				replayed++
			}
		}
	}
	if outs != 2 || replayed != 1 {
		t.Fatalf("journal under RRN %s: %d responses, %d marked replayed; want 2 and 1", first.RRN, outs, replayed)
	}

	// Same terminal, batch, STAN and date with other content: 94.
	other := again
	other.MAC = nil
	other.Amount = 999
	expectRC(t, "duplicate STAN, other content", do(t, term, &other, nil), spec.RCDuplicate)
	expectPurses(t, sw, cardStaff, 100000-1234, 0)

	// Another type of request under the same STAN is other content too,
	// whatever its MTI (docs/pos-dialect.md#rules): a pre-auth (0100) reusing it gets 94
	// and holds nothing.
	auth, err := term.PreAuth(cardStaff, 500, "")
	if err != nil {
		t.Fatal(err)
	}
	auth.STAN = req.STAN
	expectRC(t, "pre-auth reusing a consume's STAN", do(t, term, auth, nil), spec.RCDuplicate)
	expectPurses(t, sw, cardStaff, 100000-1234, 0)

	// A reversal carries its original's STAN by rule: it is no duplicate,
	// and it gives the money back.
	expectRC(t, "reversal of the consume", do(t, term, term.Reversal(req, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000, 0)
}

// restart stops a switch and starts another on the same data directory
// and LMK, with the same configuration.
func restart(t *testing.T, sw *Switch) *Switch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := *sw.cfg
	next, err := New(&cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Shutdown(context.Background()) })
	return next
}

func TestRestartKeepsEverything(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	buy, err := term.Consume(cardStudent, 2500, "")
	bought := do(t, term, buy, err)
	expectRC(t, "consume", bought, spec.RCApproved)
	batch := term.Batch
	term.Client.Close()

	sw = restart(t, sw)
	expectPurses(t, sw, cardStudent, 50000, 17500)

	// The terminal's batch and keys survive: it carries on without a new
	// sign-on, and its retransmission gets the stored answer.
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term.Client = c
	if term.Batch != batch {
		t.Fatal("batch changed")
	}
	again := *buy
	again.MAC = nil
	replayed := do(t, term, &again, nil)
	if !bytes.Equal(replayed.Raw, bought.Raw) {
		t.Fatal("retransmission after restart did not get the stored response")
	}
	expectPurses(t, sw, cardStudent, 50000, 17500)

	// The journal still holds the consume under its RRN.
	entries, err := sw.journal.ByRRN(bought.RRN, "", 10)
	if err != nil || len(entries) == 0 {
		t.Fatalf("journal by RRN %s after restart: %d entries, %v", bought.RRN, len(entries), err)
	}
	// And the void, after the restart, restores the card.
	void, err := term.Void(buy, bought, "")
	expectRC(t, "void after restart", do(t, term, void, err), spec.RCApproved)
	expectPurses(t, sw, cardStudent, 50000, 20000)
}

// TestConcurrentRetransmission sends the same consume on two connections
// of one terminal at once, many times: whatever the interleaving, the
// card is debited once per consume and both copies are approved with the
// same auth code.
func TestConcurrentRetransmission(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	pos, _, _ := sw.Addrs()
	c2, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	twin := *term
	twin.Client = c2
	const rounds = 50
	for i := 0; i < rounds; i++ {
		req, err := term.Consume(cardStaff, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		copyReq := *req
		done := make(chan *spec.POSMessage, 2)
		for _, pair := range []struct {
			tm *posclient.Terminal
			m  *spec.POSMessage
		}{{term, req}, {&twin, &copyReq}} {
			go func(tm *posclient.Terminal, m *spec.POSMessage) {
				resp, err := tm.Do(m)
				if err != nil {
					t.Error(err)
				}
				done <- resp
			}(pair.tm, pair.m)
		}
		a, b := <-done, <-done
		if a == nil || b == nil {
			t.FailNow()
		}
		if a.ResponseCode != spec.RCApproved || b.ResponseCode != spec.RCApproved || a.AuthCode != b.AuthCode {
			t.Fatalf("round %d: %s/%s auth %s/%s", i, a.ResponseCode, b.ResponseCode, a.AuthCode, b.AuthCode)
		}
	}
	expectPurses(t, sw, cardStaff, 100000-rounds*100, 0)
}

func TestPreAuthCancelCompletionVoidUploadSignOff(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)

	// Cancel releases the hold.
	auth, err := term.PreAuth(cardStaff, 5000, pinStaff)
	authed := do(t, term, auth, err)
	expectRC(t, "pre-auth", authed, spec.RCApproved)
	cancel, err := term.PreAuthCancel(auth, authed, pinStaff)
	expectRC(t, "pre-auth cancel", do(t, term, cancel, err), spec.RCApproved)
	if v, _ := sw.ledger.Card(cardStaff); v.Balances.Available != 100000 || v.Balances.Held != 0 {
		t.Fatalf("after cancel: %+v", v.Balances)
	}

	// A completion void gives the money back and restores the hold.
	auth, err = term.PreAuth(cardStaff, 5000, pinStaff)
	authed = do(t, term, auth, err)
	expectRC(t, "pre-auth", authed, spec.RCApproved)
	comp, err := term.Completion(auth, authed, 5000, pinStaff)
	completed := do(t, term, comp, err)
	expectRC(t, "completion", completed, spec.RCApproved)
	expectPurses(t, sw, cardStaff, 95000, 0)
	cv, err := term.CompletionVoid(comp, completed, pinStaff)
	expectRC(t, "completion void", do(t, term, cv, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000, 0)

	// Batch upload advices are acknowledged.
	expectRC(t, "batch upload", do(t, term, term.BatchUpload("0000000000001000", false), nil), spec.RCApproved)
	expectRC(t, "batch upload end", do(t, term, term.BatchUpload("0000000000001000", true), nil), spec.RCApproved)

	// After sign-off, financial messages get 77 until the next sign-on.
	if resp, err := term.SignOff(); err != nil || resp.ResponseCode != spec.RCApproved {
		t.Fatalf("sign-off: %v %v", resp, err)
	}
	req, err := term.Consume(cardStaff, 100, "")
	expectRC(t, "consume after sign-off", do(t, term, req, err), spec.RCBatchMismatch)
}

// TestDemoSeedMatchesContract checks every demo card of README.md#demo-data as the
// embedded configuration seeds it on first start.
func TestDemoSeedMatchesContract(t *testing.T) {
	sw := testSwitch(t)
	cases := []struct {
		pan                  string
		holder               ledger.HolderType
		cash, subsidy        ledger.Fen
		state                ledger.CardState
		daily, perTxn, feeBP ledger.Fen
	}{
		{cardStudent, ledger.Student, 50000, 20000, ledger.Active, 30000, 20000, 0},
		{cardStaff, ledger.Staff, 100000, 0, ledger.Active, 0, 0, 0},
		{cardVisitor, ledger.Visitor, 10000, 0, ledger.Active, 0, 0, 500},
		{cardLost, ledger.Student, 5000, 0, ledger.Lost, 0, 0, 0},
		{cardFrozen, ledger.Student, 5000, 0, ledger.Frozen, 0, 0, 0},
		{cardEmpty, ledger.Student, 0, 0, ledger.Active, 0, 0, 0},
	}
	for _, c := range cases {
		v, ok := sw.ledger.Card(c.pan)
		if !ok {
			t.Fatalf("demo card %s not seeded", c.pan)
		}
		if v.HolderType != c.holder || v.Balances.Cash != c.cash || v.Balances.Subsidy != c.subsidy ||
			v.State != c.state || v.DailyLimit != c.daily || v.PerTxnLimit != c.perTxn || ledger.Fen(v.FeeBP) != c.feeBP ||
			v.NoPINLimit != 5000 {
			t.Errorf("card %s: %+v", c.pan, v)
		}
	}
	for id, m := range map[string]struct {
		name     string
		onCampus bool
	}{"898310000000001": {"Canteen No.1", true}, "898310000000002": {"Campus Market", true}, "898320000000001": {"Partner Cafe", false}} {
		got, ok := sw.ledger.Merchant(id)
		if !ok || got.Name != m.name || got.OnCampus != m.onCampus {
			t.Errorf("merchant %s: %+v", id, got)
		}
	}
	for id, kiosk := range map[string]bool{"10000001": false, "10000002": false, "10000003": false, "20000001": false, "90000001": true} {
		term := sw.terminals.Get(id)
		if term == nil || term.MayLoad != kiosk || term.Permits(spec.CashLoad) != kiosk || !term.Permits(spec.Consume) {
			t.Errorf("terminal %s: %+v", id, term)
		}
	}
}

// TestReversalRetransmission: reversals have a trace watermark of their
// own (a reversal above every reversal of the batch is not looked up as a
// duplicate); a reversal retransmitted byte for byte still gets its stored
// answer, before and after a restart (the watermark reloaded from the
// stored records), and the money moves once; a reversal below the
// watermark, of an original it never reversed, is processed.
func TestReversalRetransmission(t *testing.T) {
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	a, err := term.Consume(cardStaff, 1000, "")
	expectRC(t, "consume A", do(t, term, a, err), spec.RCApproved)
	b, err := term.Consume(cardStaff, 2000, "")
	expectRC(t, "consume B", do(t, term, b, err), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000-3000, 0)

	revB := term.Reversal(b, spec.ReversalTimeout)
	first := do(t, term, revB, nil)
	expectRC(t, "reversal of B", first, spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000-1000, 0)
	again := *revB
	again.MAC = nil
	if second := do(t, term, &again, nil); !bytes.Equal(second.Raw, first.Raw) {
		t.Fatalf("retransmitted reversal got another answer\nfirst  %X\nsecond %X", first.Raw, second.Raw)
	}
	expectPurses(t, sw, cardStaff, 100000-1000, 0)
	term.Client.Close()

	sw = restart(t, sw)
	pos, _, _ := sw.Addrs()
	c, err := posclient.Dial(pos, posclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term.Client = c
	after := *revB
	after.MAC = nil
	if third := do(t, term, &after, nil); !bytes.Equal(third.Raw, first.Raw) {
		t.Fatalf("retransmitted reversal after a restart got another answer\nfirst %X\nthird %X", first.Raw, third.Raw)
	}
	expectPurses(t, sw, cardStaff, 100000-1000, 0)
	// A's STAN is below the reversals' watermark: looked up, not found,
	// processed.
	expectRC(t, "reversal of A after the restart", do(t, term, term.Reversal(a, spec.ReversalTimeout), nil), spec.RCApproved)
	expectPurses(t, sw, cardStaff, 100000, 0)
}
