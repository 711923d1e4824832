package spec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomDecoded packs a random message and decodes it back, half the
// time with a nibble set that DecodePOS accepts and packing never writes
// (a pad, a length prefix's pad digit) or another digit; nil when
// nothing decodes.
func randomDecoded(r *rand.Rand) *POSMessage {
	packed, err := EncodePOS(randomPOSMessage(r))
	if err != nil {
		return nil
	}
	m, err := DecodePOS(withNibbleSet(r, packed))
	if err != nil {
		return nil
	}
	return m
}

// mutateResponse changes what a response started from req holds, the
// way an answer might and the ways one must not be taken for an echo:
// each echoed text or digit field kept, set to the same value in another
// string, to a part of itself, to another field's value of the request,
// to another value, or cleared; the amount and fields 60 and 61 the same
// way, part by part; answer fields added. Then req itself and its Raw
// change, which must not matter.
func mutateResponse(r *rand.Rand, resp, req *POSMessage) {
	strs := []*string{&resp.PAN, &resp.ProcessingCode, &resp.STAN, &resp.LocalTime, &resp.LocalDate,
		&resp.Expiry, &resp.ConditionCode, &resp.AcquirerID, &resp.RRN, &resp.AuthCode, &resp.TerminalID,
		&resp.MerchantID, &resp.Currency, &resp.Reserved60.Type, &resp.Reserved60.Batch,
		&resp.Reserved60.NetworkCode, &resp.Reserved60.Rest, &resp.Original.Batch, &resp.Original.STAN,
		&resp.Original.Date, &resp.Original.Rest}
	others := []string{req.PAN, req.ProcessingCode, req.STAN, req.LocalTime, req.LocalDate, req.Expiry,
		req.EntryMode, req.CardSequence, req.ConditionCode, req.AcquirerID, req.Track2, req.RRN,
		req.TerminalID, req.MerchantID, req.AdditionalData, req.Currency, req.SecurityControl,
		req.Reserved60.Batch, req.Reserved60.Rest, req.Original.STAN, req.Reserved63}
	for _, p := range strs {
		switch r.IntN(12) {
		case 0:
			*p = strings.Clone(*p)
		case 1:
			if len(*p) > 1 {
				*p = (*p)[:len(*p)-1]
			}
		case 2:
			if len(*p) > 1 {
				*p = (*p)[1:]
			}
		case 3:
			*p = others[r.IntN(len(others))]
		case 4:
			*p = fmt.Sprint(r.IntN(1000000))
		case 5:
			*p = ""
		}
	}
	switch r.IntN(6) {
	case 0:
		resp.Amount++
	case 1:
		resp.HasAmount = !resp.HasAmount
	}
	if r.IntN(2) == 0 {
		resp.SettlementDate = "0315"
	}
	if r.IntN(2) == 0 {
		resp.RRN = "031500000124"
	}
	if r.IntN(2) == 0 {
		resp.Balances = "0002156C000000050000"
	}
	if r.IntN(2) == 0 {
		resp.Reserved63 = "CUP"
	}
	if r.IntN(2) == 0 {
		resp.MAC = []byte("12345678")
	}
	if r.IntN(4) == 0 {
		req.PAN, req.STAN, req.Amount = "1", "000009", req.Amount+7
	}
	if r.IntN(4) == 0 {
		for i := range req.Raw {
			req.Raw[i] = byte(r.IntN(256))
		}
	}
}

// echoedFields counts the fields of resp that hold their request's
// value as decoded: those appendPOS copies.
func echoedFields(resp *POSMessage) int {
	w := resp.echo
	if w == nil {
		return 0
	}
	n := 0
	for id, v := range map[int]string{2: resp.PAN, 3: resp.ProcessingCode, 11: resp.STAN, 41: resp.TerminalID, 49: resp.Currency} {
		if _, ok := w.holds(id, v); ok {
			n++
		}
	}
	f := &resp.Reserved60
	if _, ok := w.holdsParts(60, &[4]string{f.Type, f.Batch, f.NetworkCode, f.Rest}); ok {
		n++
	}
	return n
}

// checkEcho fails t unless resp packs as the reference packer packs its
// values (which knows nothing of echoes): the same bytes or the same
// error.
func checkEcho(t *testing.T, resp *POSMessage) {
	t.Helper()
	got, gerr := appendPOS([]byte("prefix"), resp)
	want, werr := appendPOSRef([]byte("prefix"), resp)
	if !bytes.Equal(got, want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("response %+v packs to %X, %v; reference %X, %v", resp, got, gerr, want, werr)
	}
}

// TestEchoSameAsPacked answers random decoded requests, the golden ones
// among them, changes the answers (mutateResponse) and checks each packs
// to exactly what packing its values gives.
func TestEchoSameAsPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	echoed, answered := 0, 0
	for i := range 30000 {
		var req *POSMessage
		if g := i % 10; g < len(goldenPOS) && i < 1000 {
			var err error
			if req, err = DecodePOS(goldenMsg(t, goldenPOS[g].file)); err != nil {
				t.Fatal(err)
			}
		} else if req = randomDecoded(r); req == nil {
			continue
		}
		resp := NewPOSResponse(req, "00")
		if i%3 != 0 {
			mutateResponse(r, resp, req)
		}
		if echoedFields(resp) > 0 {
			echoed++
		}
		answered++
		checkEcho(t, resp)
	}
	if echoed < answered/4 || echoed == answered {
		t.Fatalf("%d of %d answers echoed a field: the test needs both kinds", echoed, answered)
	}
}

// TestEchoGoldenConsume: the golden consume's approval, its echoed fields
// copied, is the golden response's bytes.
func TestEchoGoldenConsume(t *testing.T) {
	req, err := DecodePOS(goldenMsg(t, "consume-0200.hex"))
	if err != nil {
		t.Fatal(err)
	}
	resp := NewPOSResponse(req, RCApproved)
	resp.LocalTime, resp.LocalDate, resp.SettlementDate = "143006", "0315", "0315"
	resp.RRN = "031500000124"
	resp.Balances = "0002156C0000000500000102156C000000018766"
	resp.MAC = []byte("98765432")
	if n := echoedFields(resp); n != 6 {
		t.Fatalf("%d fields echoed, want 6", n)
	}
	got, err := EncodePOS(resp)
	if want := goldenMsg(t, "consume-0210.hex"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("packed %X, %v; want %X", got, err, want)
	}
}

// FuzzEchoSameAsPacked: any message that decodes, answered and changed
// as seed says, packs as its values do.
func FuzzEchoSameAsPacked(f *testing.F) {
	for i, g := range goldenPOS {
		f.Add(goldenMsg(f, g.file), uint64(i))
	}
	f.Fuzz(func(t *testing.T, msg []byte, seed uint64) {
		req, err := DecodePOS(msg)
		if err != nil {
			return
		}
		resp := NewPOSResponse(req, "00")
		if seed != 0 {
			mutateResponse(rand.New(rand.NewPCG(seed, seed>>32)), resp, req)
		}
		checkEcho(t, resp)
	})
}

// TestAppendPOSWithMACSameAsEncode: packed after other bytes, a message
// and its MAC (over the message only) are EncodePOSWithMAC's; the bytes
// before are kept.
func TestAppendPOSWithMACSameAsEncode(t *testing.T) {
	mac := func(block []byte) ([]byte, error) {
		var x [8]byte
		for i, b := range block {
			x[i%8] ^= b
		}
		return x[:], nil
	}
	r := rand.New(rand.NewPCG(23, 24))
	packed := 0
	for range 5000 {
		m := randomPOSMessage(r)
		m.MAC = nil
		head := make([]byte, r.IntN(20))
		for i := range head {
			head[i] = byte(r.IntN(256))
		}
		want, werr := EncodePOSWithMAC(m, mac)
		wantMAC := m.MAC
		got, gerr := AppendPOSWithMAC(append([]byte(nil), head...), m, mac)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || gerr == nil && (!bytes.Equal(got, append(head, want...)) || !bytes.Equal(m.MAC, wantMAC)) {
			t.Fatalf("AppendPOSWithMAC(%X, %+v) = %X, %v; want the head and %X, %v", head, m, got, gerr, want, werr)
		}
		if gerr == nil {
			packed++
		}
	}
	if packed < 500 {
		t.Fatalf("%d packed", packed)
	}
}

// withNibbleSet returns a copy of packed, half the time with one nibble
// set somewhere such that the message still decodes with other bytes: a
// pad, which DecodePOS accepts (0-9, or F after a left-aligned field), or
// a digit (after 40 tries, whatever the last try left).
func withNibbleSet(r *rand.Rand, packed []byte) []byte {
	raw := append([]byte(nil), packed...)
	if r.IntN(2) != 0 || len(raw) <= minPOSMessage {
		return raw
	}
	for range 40 {
		copy(raw, packed)
		i := minPOSMessage + r.IntN(len(raw)-minPOSMessage)
		if r.IntN(2) == 0 {
			raw[i] |= byte(1+r.IntN(15)) << 4
		} else {
			raw[i] |= byte(1 + r.IntN(15))
		}
		if _, err := DecodePOS(raw); err == nil && !bytes.Equal(raw, packed) {
			break
		}
	}
	return raw
}

// TestEchoRepacksAPaddedField: a request's field whose pad nibble is not
// 0 (DecodePOS accepts it) is not canonical, so its answer packs the
// field again, pad 0, rather than copy the request's bytes: field 2 of 19
// digits with pad 5. Fails when a non-canonical field is echoed.
func TestEchoRepacksAPaddedField(t *testing.T) {
	m := &POSMessage{MTI: "0200", PAN: "6230151000000000020", ProcessingCode: "000000", STAN: "000001",
		TerminalID: "T0000001", MerchantID: "123456789012345"}
	packed, err := EncodePOS(m)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), packed...)
	// Field 2 follows the MTI and bitmap (10 bytes): a 1-byte LL prefix,
	// then 10 bytes of 19 digits, the last low nibble the pad.
	if raw[10] != 0x19 || raw[10+1+9]&0x0f != 0 {
		t.Fatalf("field 2 not where expected: %X", raw[10:21])
	}
	raw[10+1+9] |= 0x05
	req, err := DecodePOS(raw)
	if err != nil {
		t.Fatal(err)
	}
	if req.PAN != m.PAN {
		t.Fatalf("PAN decoded %q, want %q", req.PAN, m.PAN)
	}
	resp := NewPOSResponse(req, "00")
	got, err := appendPOS(nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := appendPOSRef(nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("answer to a request with a pad nibble set:\n got %X\nwant %X", got, want)
	}
}
