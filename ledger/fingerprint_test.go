package ledger

import "testing"

// TestFingerprintsStable pins the fingerprint of every request kind:
// idempotency records store it, so a change of encoding would turn every
// retry of a stored request into a "duplicate with different content".
// The values were computed by the encoding the records on disk use; the
// kind is not in the fingerprint but in the idempotency key.
func TestFingerprintsStable(t *testing.T) {
	c := Common{Key: "k", Date: day1, Terminal: "10000001", Merchant: canteen, Batch: 7, STAN: 42, RRN: "000000000042"}
	o := TxnRef{Terminal: "10000001", Batch: 7, STAN: 41}
	for _, tt := range []struct {
		req  Request
		want uint64
	}{
		{&BalanceInquiry{Common: c, PAN: panStudent}, 0x9f625bd5a09cb943},
		{&Consume{Common: c, PAN: panStudent, Amount: 1234}, 0x15a17edb25bfb7e2},
		{&Void{Common: c, PAN: panStudent, Amount: 1234, Original: o}, 0x16a1ee75c0875448},
		{&Refund{Common: c, PAN: panStudent, Amount: 1234, OriginalRRN: "000000000041", OriginalDate: day1}, 0x14a4b8ab9e09e2b3},
		{&CashLoad{Common: c, PAN: panStudent, Amount: 1234}, 0x15a17edb25bfb7e2},
		{&CashLoadVoid{Common: c, PAN: panStudent, Amount: 1234, Original: o}, 0x16a1ee75c0875448},
		{&PreAuth{Common: c, PAN: panStudent, Amount: 1234}, 0x15a17edb25bfb7e2},
		{&PreAuthCompletion{Common: c, PAN: panStudent, Amount: 1234, AuthCode: "000041", Original: o}, 0x1cf3fe4514df2c07},
		{&PreAuthCancel{Common: c, PAN: panStudent, Amount: 1234, AuthCode: "000041", Original: o}, 0x1cf3fe4514df2c07},
		{&CompletionVoid{Common: c, PAN: panStudent, Amount: 1234, AuthCode: "000041", Original: o}, 0x1cf3fe4514df2c07},
		{&Reversal{Common: c, PAN: panStudent, Original: o, OriginalKind: KindConsume}, 0xf46ec332bfcea8e7},
	} {
		var h fp
		h.e.b = h.buf[:0]
		tt.req.fingerprint(&h)
		if got := h.sum(); got != tt.want {
			t.Errorf("%s: fingerprint %#x, want %#x", tt.req.Kind(), got, tt.want)
		}
	}
}
