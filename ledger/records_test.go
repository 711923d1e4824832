package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func sampleCard() card {
	return card{
		PAN: panStudent, Holder: "Demo", HolderType: Student, State: Active, List: ListGrey,
		Cash: 50000, Subsidy: 20000, DailyLimit: 30000, PerTxnLimit: 20000, NoPINLimit: 5000,
		MaxBalance: 1_000_000, FeeBP: 0, PVV: []byte{1, 2, 3}, PINTries: 2, DayDate: day1, DaySpent: 100,
		Holds:    []hold{{AuthCode: "000042", TxID: 42, Merchant: canteen, Amount: 100, Fee: 5, Cash: 60, Subsidy: 45, Expiry: day1 + 30}},
		Contribs: []contrib{{MerchantPayable(canteen), 100}, {OpeningFunds, -50000}},
	}
}

func samplePosting() posting {
	h := hold{AuthCode: "000001", TxID: 1, Merchant: canteen, Amount: 10, Cash: 10, Expiry: day1}
	return posting{
		TxID: 7, Kind: KindPreAuthCompletion, Date: day1, Terminal: "10000001", Merchant: canteen, Batch: 1, STAN: 99,
		RRN: "000000000099", PAN: panStudent, Amount: 10, Fee: 0, AuthCode: "000007", Link: 1,
		Legs: []leg{{CardCash(panStudent), -10}, {MerchantPayable(canteen), 10}}, DaySpend: 10, HoldDrop: &h,
	}
}

// TestRecordRoundTrip checks every record encodes and decodes to itself.
func TestRecordRoundTrip(t *testing.T) {
	c := sampleCard()
	got, err := decodeCard(c.encode())
	if err == nil {
		err = decodePurse(c.encodePurse(), &got)
	}
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("card: %+v, %v", got, err)
	}
	c.v1 = true
	if got, err := decodeCard(c.encode()); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("card version 1: %+v, %v", got, err)
	}
	p := samplePosting()
	if got, err := decodePosting(p.encode()); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("posting: %+v, %v", got, err)
	}
	p.v1 = true
	if got, err := decodePosting(p.encode()); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("posting version 1: %+v, %v", got, err)
	}
	s := status{VoidedBy: 1, ReversedBy: 2, FinishedBy: 3, Refunded: 4, RefundedFee: 5, RefundedSubsidy: 6}
	if got, err := decodeStatus(s.encode()); err != nil || got != s {
		t.Errorf("status: %+v, %v", got, err)
	}
	m := merchant{ID: canteen, Name: "Canteen No.1", OnCampus: true, FeeRateBP: 60, SettlementDays: 1}
	if got, err := decodeMerchant(m.encode()); err != nil || got != m {
		t.Errorf("merchant: %+v, %v", got, err)
	}
	r := idemRecord{Fingerprint: 0xdeadbeef, Result: Result{Kind: KindConsume, Decline: DeclineInsufficientFunds, Balances: Balances{1, 2, 3, 0}, AuthCode: "123456", Alert: true}}
	if got, err := decodeIdem(r.encode()); err != nil || got != r {
		t.Errorf("idem: %+v, %v", got, err)
	}
	r.Date = day1
	if got, err := decodeIdem(r.encode()); err != nil || got != r {
		t.Errorf("dated idem: %+v, %v", got, err)
	}
	v := refValue{TxID: 9, Kind: KindVoid, Date: day1}
	if got, err := decodeRef(v.encode()); err != nil || got != v {
		t.Errorf("ref: %+v, %v", got, err)
	}
}

// TestDecodeRejects feeds damaged records: truncations, trailing bytes, an
// unknown version and an unbalanced hold must all be refused.
func TestDecodeRejects(t *testing.T) {
	c := sampleCard()
	enc := c.encode()
	for i := 0; i < len(enc); i++ {
		if _, err := decodeCard(enc[:i]); err == nil {
			t.Fatalf("card truncated to %d bytes decoded", i)
		}
	}
	if _, err := decodeCard(append(bytes.Clone(enc), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	bad := bytes.Clone(enc)
	bad[0] = 3
	if _, err := decodeCard(bad); err == nil {
		t.Error("version 3 accepted")
	}
	c.Holds[0].Cash++
	if err := decodePurse(c.encodePurse(), &card{PAN: c.PAN}); err == nil {
		t.Error("hold whose split does not add up accepted")
	}
	c.v1 = true
	if _, err := decodeCard(c.encode()); err == nil {
		t.Error("hold whose split does not add up accepted (version 1)")
	}
	p := samplePosting()
	penc := p.encode()
	for i := 0; i < len(penc); i++ {
		if _, err := decodePosting(penc[:i]); err == nil {
			t.Fatalf("posting truncated to %d bytes decoded", i)
		}
	}
	// Batch and STAN are six digits; a larger stored value is damage, not
	// something to clamp (the clamped posting would not re-encode).
	for _, tc := range []struct{ batch, stan uint32 }{{1_000_000, 1}, {1, 1_000_000}} {
		q := samplePosting()
		q.Batch, q.STAN = tc.batch, tc.stan
		if _, err := decodePosting(q.encode()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("posting with batch %d STAN %d: %v, want ErrCorrupt", tc.batch, tc.stan, err)
		}
	}
}

// FuzzDecodeRecords feeds arbitrary bytes to every record decoder: they
// must return an error or a value that re-encodes to the same bytes, and
// never panic or allocate beyond the bounds.
func FuzzDecodeRecords(f *testing.F) {
	c, p := sampleCard(), samplePosting()
	s := status{VoidedBy: 1}
	m := merchant{ID: canteen}
	r := idemRecord{Result: Result{Kind: KindConsume}}
	r2 := idemRecord{Date: day1, Result: Result{Kind: KindConsume, TxID: 7}}
	v := refValue{TxID: 1, Kind: KindConsume, Date: day1}
	c1, p1 := c, p
	c1.v1, p1.v1 = true, true
	for _, seed := range [][]byte{c.encode(), c.encodePurse(), c1.encode(), p.encode(), p1.encode(), s.encode(), m.encode(), r.encode(), r2.encode(), v.encode(), {1}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeCard(b); err == nil && !bytes.Equal(c.encode(), b) {
			t.Errorf("card does not re-encode")
		}
		var pc card
		pc.PAN = panStudent
		if err := decodePurse(b, &pc); err == nil && !bytes.Equal(pc.encodePurse(), b) {
			t.Errorf("purse record does not re-encode")
		}
		if p, err := decodePosting(b); err == nil && !bytes.Equal(p.encode(), b) {
			t.Errorf("posting does not re-encode")
		}
		if s, err := decodeStatus(b); err == nil && !bytes.Equal(s.encode(), b) {
			t.Errorf("status does not re-encode")
		}
		if m, err := decodeMerchant(b); err == nil && !bytes.Equal(m.encode(), b) {
			t.Errorf("merchant does not re-encode")
		}
		if r, err := decodeIdem(b); err == nil && !bytes.Equal(r.encode(), b) {
			t.Errorf("idempotency record does not re-encode")
		}
		if v, err := decodeRef(b); err == nil && !bytes.Equal(v.encode(), b) {
			t.Errorf("reference does not re-encode")
		}
	})
}

// TestCompactRecordBytes pins the version 2 posting legs and the purse
// record byte by byte (checked by hand against codec.go and records.go).
func TestCompactRecordBytes(t *testing.T) {
	c := card{PAN: panStudent, Cash: 100, Subsidy: 3, PINTries: 1, DayDate: 20261204, DaySpent: 64,
		Contribs: []contrib{{MerchantPayable(canteen), 100}, {OpeningFunds, -50000}, {GatewayClearing("b"), 1}}}
	want := "01" + // version
		"c801" + "06" + "01" + // cash 100, subsidy 3 (zig-zag varints), PIN tries 1
		"d4d2d409" + "8001" + // 20261204 as a uvarint, day spent 64
		"00" + "03" + // no holds, three contributions:
		"04" + "0f383938333130303030303030303031" + "c801" + // merchant/ + its id, 100
		"08" + "9f8d06" + // opening funds (tag 5 + 3), -50000 zig-zagged to 99999
		"00" + "1073797374656d2f676174657761792f62" + "02" // any other account spelled out, 1
	if got := fmt.Sprintf("%x", c.encodePurse()); got != want {
		t.Errorf("purse record\n got %s\nwant %s", got, want)
	}
	p := posting{TxID: 7, Kind: KindConsume, Date: 20261204, Merchant: canteen, PAN: panStudent, Amount: 10,
		Legs: []leg{{CardSubsidy(panStudent), -10}, {MerchantPayable(canteen), 10}}}
	enc := p.encode()
	// ... legs: count 2, own subsidy (tag 2) -10, own merchant (tag 3) 10,
	// then day spend 0 and no holds.
	if tail := fmt.Sprintf("%x", enc[len(enc)-8:]); tail != "02"+"0213"+"0314"+"00"+"0000" {
		t.Errorf("posting legs %s", tail)
	}
	// A shortest form is the only form: the own purse spelled out is refused.
	long := encoder{}
	long.byte1(acctOther)
	long.str(string(CardCash(panStudent)))
	d := decoder{b: long.b}
	if d.account(panStudent, ""); d.err == nil {
		t.Error("own purse spelled out accepted")
	}
}
