package ledger

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
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
	p.ver = recordV1
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
	c.purseVer = recordV1
	if err := decodePurse(c.encodePurse(), &card{PAN: c.PAN}); err == nil {
		t.Error("hold whose split does not add up accepted (purse version 1)")
	}
	// Version 2 leaves the subsidy part out (amount + fee − cash): a cash
	// part above the total leaves a negative subsidy.
	c.purseVer = 0
	c.Holds[0].Cash = c.Holds[0].Amount + c.Holds[0].Fee + 1
	if err := decodePurse(c.encodePurse(), &card{PAN: c.PAN}); err == nil {
		t.Error("hold whose cash part is above its total accepted")
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
	c1, p1, p2, c2, p3 := c, p, p, c, p
	c3 := c
	c3.Contribs = append(append([]contrib(nil), c.Contribs...), contrib{MerchantPayable(market), 5})
	c1.v1, p1.ver, p2.ver, c2.purseVer, p3.ver = true, recordV1, recordV2, recordV1, recordV3
	for _, seed := range [][]byte{c.encode(), c.encodePurse(), c1.encode(), c2.encodePurse(), c3.encodePurse(), p.encode(), p1.encode(), p2.encode(), p3.encode(), s.encode(), m.encode(), r.encode(), r2.encode(), v.encode(), {1}, {}} {
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

// TestCompactRecordBytes pins the version 2 posting legs and the version
// 1 purse record byte by byte (checked by hand against codec.go and
// records.go): both still read and re-encoded as stored.
func TestCompactRecordBytes(t *testing.T) {
	c := card{PAN: panStudent, Cash: 100, Subsidy: 3, PINTries: 1, DayDate: 20261204, DaySpent: 64,
		Contribs: []contrib{{MerchantPayable(canteen), 100}, {OpeningFunds, -50000}, {GatewayClearing("b"), 1}}, purseVer: recordV1}
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
		Legs: []leg{{CardSubsidy(panStudent), -10}, {MerchantPayable(canteen), 10}}, ver: recordV2}
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
	if d.account(panStudent, "", false); d.err == nil {
		t.Error("own purse spelled out accepted")
	}
}

// TestPackedRecordBytes pins a consume's version 3 posting and version 2
// purse record byte by byte (checked by hand against codec.go and
// records.go): digits packed two a byte, the date a day number, the
// balancing leg and contribution left out.
func TestPackedRecordBytes(t *testing.T) {
	p := posting{TxID: 7, Kind: KindConsume, Date: 20261204, Terminal: "10000001", Merchant: canteen, Batch: 1, STAN: 2,
		RRN: "338000000001", PAN: panStudent, Amount: 3000, AuthCode: "000006",
		Legs: []leg{{CardSubsidy(panStudent), -3000}, {MerchantPayable(canteen), 3000}}, DaySpend: 3000}
	want := "04" + "07" + "02" + // version, tx id, kind consume
		"0d" + // flags: day spend the total (1), last leg implied (4), auth code (8)
		"eb4c" + // 2026-12-04 is day 9 834 after 2000-01-01: 1 + 9 834 = 9 835 as a uvarint
		"11" + "10000001" + // terminal: 8 digits (8<<1|1), packed
		"1f" + "8983100000000010" + // merchant: 15 digits, the last low nibble 0
		"01" + "02" + // batch, STAN
		"19" + "338000000001" + // RRN: 12 digits
		"27" + "62301510000000000120" + // card: 19 digits
		"f02e" + // amount 3000 (zig-zag 6000)
		"0d" + "000006" + // auth code: 6 digits
		"02" + "22" + "03" // two legs: own subsidy (2) at minus the amount (mode 2 << 4), own merchant (its amount implied)
	if got := fmt.Sprintf("%x", p.encode()); got != want {
		t.Errorf("posting\n got %s\nwant %s", got, want)
	}
	if got, err := decodePosting(p.encode()); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("posting round trip: %+v, %v", got, err)
	}

	c := card{PAN: panStudent, Cash: 50000, Subsidy: 17000, DayDate: 20261204, DaySpent: 3000,
		Contribs: []contrib{{OpeningFunds, -50000}, {SubsidyFunding, -20000}, {MerchantPayable(canteen), 3000}}}
	want = "03" + "01" + // version, PIN tries 0 << 1 | last contribution implied
		"a08d06" + "d08902" + // cash 50000, subsidy 17000 (zig-zag varints)
		"eb4c" + "f02e" + // day date, day spent 3000
		"00" + "03" + // no holds, three contributions:
		"08" + "9f8d06" + // opening funds −50000
		"07" + "bfb802" + // subsidy funding −20000
		"04" + "1f" + "8983100000000010" // merchant/ + its id packed; 3000 implied (−(cash + subsidy) − the others)
	if got := fmt.Sprintf("%x", c.encodePurse()); got != want {
		t.Errorf("purse record\n got %s\nwant %s", got, want)
	}
	got := card{PAN: panStudent}
	if err := decodePurse(c.encodePurse(), &got); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("purse round trip: %+v, %v", got, err)
	}
	// A second merchant: its id shares 14 digits with the one before.
	c.Subsidy -= 500
	c.Contribs = append(c.Contribs, contrib{MerchantPayable(market), 500})
	want = "03" + "01" + "a08d06" + "e88102" + "eb4c" + "f02e" + "00" + "04" + // subsidy 16500
		"08" + "9f8d06" + "07" + "bfb802" + "04" + "1f" + "8983100000000010" + "f02e" + // the canteen's 3000 written now
		"84" + "0e" + "03" + "20" // the market: shared 14, then "2" (1 digit packed); 500 implied
	if got := fmt.Sprintf("%x", c.encodePurse()); got != want {
		t.Errorf("purse record with two merchants\n got %s\nwant %s", got, want)
	}
	got = card{PAN: panStudent}
	if err := decodePurse(c.encodePurse(), &got); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("purse round trip: %+v, %v", got, err)
	}
	for name, b := range map[string]string{
		"shared id spelled out":   "03" + "01" + "a08d06" + "e88102" + "eb4c" + "f02e" + "00" + "04" + "08" + "9f8d06" + "07" + "bfb802" + "04" + "1f" + "8983100000000010" + "f02e" + "04" + "1f" + "8983100000000020",
		"shared prefix not all":   "03" + "01" + "a08d06" + "e88102" + "eb4c" + "f02e" + "00" + "04" + "08" + "9f8d06" + "07" + "bfb802" + "04" + "1f" + "8983100000000010" + "f02e" + "84" + "0d" + "05" + "02",
		"shared prefix too short": "03" + "01" + "a08d06" + "e88102" + "eb4c" + "f02e" + "00" + "04" + "08" + "9f8d06" + "07" + "bfb802" + "04" + "1f" + "8983100000000010" + "f02e" + "84" + "03" + "19" + "310000000002",
		"shared with no merchant": "03" + "01" + "a08d06" + "e88102" + "eb4c" + "f02e" + "00" + "01" + "84" + "0e" + "03" + "20",
	} {
		raw, err := hex.DecodeString(b)
		if err != nil {
			t.Fatal(name, err)
		}
		if err := decodePurse(raw, &card{PAN: panStudent}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}

	// One encoding each: the longer forms of what a shorter one says are
	// refused.
	for name, b := range map[string]string{
		"digits spelled out": "03" + "07" + "02" + "0d" + "eb4c" + "10" + "3130303030303031",
		"odd digit padding":  "03" + "07" + "02" + "0d" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000011",
		"date as its number": "03" + "07" + "02" + "0d" + "d4d2d40b", // 2^22 + 20261204: a calendar date is a day number
		"balancing leg explicit": "03" + "07" + "02" + "09" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000010" + "01" + "02" +
			"19" + "338000000001" + "27" + "62301510000000000120" + "f02e" + "0d" + "000006" + "02" + "02" + "ef2e" + "03" + "f02e",
		"leg amount spelled out": "04" + "07" + "02" + "0d" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000010" + "01" + "02" +
			"19" + "338000000001" + "27" + "62301510000000000120" + "f02e" + "0d" + "000006" + "02" + "02" + "ef2e" + "03",
		"mode not the first": "04" + "07" + "02" + "0d" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000010" + "01" + "02" +
			"19" + "338000000001" + "27" + "62301510000000000120" + "f02e" + "0d" + "000006" + "02" + "42" + "03", // −(amount + fee) with no fee is −amount, mode 2
		"mode on the implied leg": "04" + "07" + "02" + "0d" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000010" + "01" + "02" +
			"19" + "338000000001" + "27" + "62301510000000000120" + "f02e" + "0d" + "000006" + "02" + "22" + "13",
		"mode 7": "04" + "07" + "02" + "0d" + "eb4c" + "11" + "10000001" + "1f" + "8983100000000010" + "01" + "02" +
			"19" + "338000000001" + "27" + "62301510000000000120" + "f02e" + "0d" + "000006" + "02" + "72" + "03",
	} {
		raw, err := hex.DecodeString(b)
		if err != nil {
			t.Fatal(name, err)
		}
		if _, err := decodePosting(raw); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestRecordRoundTripRandom: random postings and purse records, in every
// version, decode to exactly what was encoded and re-encode to the same
// bytes.
func TestRecordRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	amount := func() Fen {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return Fen(rng.Int64N(1<<56)) - 1<<55 // large, yet sums of a few stay in range
		}
		return Fen(rng.IntN(200000)) - 100000
	}
	str := func() string {
		return [...]string{"", "0", "12345", "898310000000001", "6230151000000000012", "X1", "merchant-b", "00"}[rng.IntN(8)]
	}
	date := func() BusinessDate {
		return [...]BusinessDate{0, 20000101, 20261204, 99991231, 19991231, 20261399, 1, 20261232}[rng.IntN(8)]
	}
	accts := []AccountID{CardCash(panStudent), CardSubsidy(panStudent), MerchantPayable(canteen), MerchantPayable("b"), FeeIncome, "x/y", CardCash("1"),
		MerchantPayable(market), MerchantPayable("8983"), MerchantPayable("89831000000000012"), MerchantPayable("8983A")}
	newHold := func() *hold {
		h := &hold{AuthCode: str(), TxID: rng.Uint64N(1 << 40), Merchant: str(), Amount: amount() & (1<<50 - 1), Fee: Fen(rng.IntN(100)), Expiry: date()}
		h.Cash = Fen(rng.Int64N(int64(h.Amount+h.Fee) + 1))
		h.Subsidy = h.Amount + h.Fee - h.Cash
		return h
	}
	var code *contribCode // the card entry's (appendPurseCode)
	for i := 0; i < 5000; i++ {
		p := posting{TxID: rng.Uint64N(1 << 40), Kind: Kind(1 + rng.IntN(int(kindCount)-1)), Date: date(), Terminal: str(), Merchant: str(),
			Batch: uint32(rng.IntN(maxSixDigits + 1)), STAN: uint32(rng.IntN(maxSixDigits + 1)), RRN: str(), PAN: panStudent, Amount: amount()}
		if rng.IntN(2) == 0 {
			p.PAN2, p.Fee, p.AuthCode, p.Link = str(), amount(), str(), rng.Uint64N(3)
		}
		var sum Fen
		for n := rng.IntN(5); n > 0; n-- {
			l := leg{accts[rng.IntN(len(accts))], amount()}
			if rng.IntN(2) == 0 { // an amount a mode names
				l.Amount = [...]Fen{p.Amount, -p.Amount, p.Amount + p.Fee, -(p.Amount + p.Fee), p.Fee, -p.Fee}[rng.IntN(6)]
			}
			sum += l.Amount
			p.Legs = append(p.Legs, l)
		}
		if len(p.Legs) > 0 && rng.IntN(2) == 0 {
			p.Legs[len(p.Legs)-1].Amount -= sum // balanced
		}
		p.DaySpend = [...]Fen{0, p.Amount + p.Fee, -(p.Amount + p.Fee), amount()}[rng.IntN(4)]
		if rng.IntN(3) == 0 {
			p.HoldAdd = newHold()
		}
		if rng.IntN(3) == 0 {
			p.HoldDrop = newHold()
		}
		p.ver = [...]uint8{0, 0, recordV1, recordV2, recordV3}[rng.IntN(5)]
		enc := p.encode()
		got, err := decodePosting(enc)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Fatalf("posting %d: %v\n got %+v\nwant %+v", i, err, got, p)
		}
		if again := got.encode(); !bytes.Equal(again, enc) {
			t.Fatalf("posting %d re-encodes differently", i)
		}
		// The ledger encodes into a scratch after the record's key.
		if app := p.appendTo([]byte("key")); !bytes.Equal(app, append([]byte("key"), enc...)) {
			t.Fatalf("posting %d appends differently", i)
		}
		// With the card's and merchant's digits known (or others': then
		// they must not be used), the same bytes.
		kd := knownDigits{pan: p.PAN, merchant: p.Merchant}
		if rng.IntN(3) == 0 {
			kd.pan = [...]string{str(), "1"}[rng.IntN(2)] // CardCash("1") is a leg's account
		}
		if rng.IntN(3) == 0 {
			kd.merchant = str()
		}
		kd.panEnc, kd.merchantEnc = digitsEncoding(kd.pan), digitsEncoding(kd.merchant)
		kd.cash, kd.subsidy, kd.payable = CardCash(kd.pan), CardSubsidy(kd.pan), MerchantPayable(kd.merchant)
		if app := p.appendKnown([]byte("key"), &kd); !bytes.Equal(app, append([]byte("key"), enc...)) {
			t.Fatalf("posting %d with known digits %+v: %x, want %x", i, kd, app[3:], enc)
		}

		c := card{PAN: panStudent, Cash: amount(), Subsidy: amount(), PINTries: uint8(rng.IntN(256)), DayDate: date(), DaySpent: amount()}
		for n := rng.IntN(3); n > 0; n-- {
			c.Holds = append(c.Holds, *newHold())
		}
		sum = c.Cash + c.Subsidy
		for n := rng.IntN(5); n > 0; n-- {
			k := contrib{accts[2+rng.IntN(len(accts)-2)], amount()}
			sum += k.Amount
			c.Contribs = append(c.Contribs, k)
		}
		if len(c.Contribs) > 0 && rng.IntN(2) == 0 {
			c.Contribs[len(c.Contribs)-1].Amount -= sum
		}
		c.purseVer = [...]uint8{0, 0, recordV1, recordV2}[rng.IntN(4)]
		enc = c.encodePurse()
		gc := card{PAN: panStudent}
		if err := decodePurse(enc, &gc); err != nil || !reflect.DeepEqual(gc, c) {
			t.Fatalf("purse %d: %v\n got %+v\nwant %+v", i, err, gc, c)
		}
		if again := gc.encodePurse(); !bytes.Equal(again, enc) {
			t.Fatalf("purse %d re-encodes differently", i)
		}
		if app := c.appendPurse([]byte("key")); !bytes.Equal(app, append([]byte("key"), enc...)) {
			t.Fatalf("purse %d appends differently", i)
		}
		// Through the code the card entry keeps: whatever it holds (none,
		// the previous card's, this card's), the same bytes, and after it
		// the code fits this card.
		if rng.IntN(4) == 0 {
			code = nil
		}
		if rng.IntN(4) == 0 && len(c.Contribs) > 0 {
			c2 := c
			c2.Contribs = append([]contrib(nil), c.Contribs...)
			c2.Contribs[rng.IntN(len(c2.Contribs))].Account = accts[2+rng.IntN(len(accts)-2)]
			if rng.IntN(2) == 0 {
				c2.PAN = "1" // CardCash("1") is its own purse
			}
			code = newContribCode(&c2) // perhaps another card's accounts
		}
		for range 2 {
			if app := c.appendPurseCode([]byte("key"), &code); !bytes.Equal(app, append([]byte("key"), enc...)) {
				t.Fatalf("purse %d through a contribution code: %x, want %x", i, app[3:], enc)
			}
			if c.purseVer == 0 && !code.fits(&c) {
				t.Fatalf("purse %d: the code does not fit the card it was used for", i)
			}
		}
	}
}

// TestAccountTagsFitBelowLegModes: a version 4 leg keeps its amount mode
// in the tag's high nibble, so every account tag must fit the low one.
func TestAccountTagsFitBelowLegModes(t *testing.T) {
	if top := acctSystem + len(wellKnown) - 1; top > legTagMask {
		t.Fatalf("account tag %d does not fit below the leg modes", top)
	}
}
