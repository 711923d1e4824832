package record

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sameAsReference fails t unless AppendPair and the reference encoder
// (AppendPairRef, pairref_reference_test.go) give the same bytes, or the
// same error, for the pair; dst is a prefix both append to.
func sameAsReference(t testing.TB, dst []byte, req, resp *Entry) {
	t.Helper()
	got, gerr := AppendPair(bytes.Clone(dst), req, resp)
	want, werr := AppendPairRef(bytes.Clone(dst), req, resp)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("error %v, reference %v", gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from the reference\nreq  %x\nresp %x\ngot  %x\nwant %x", req.Raw, resp.Raw, got, want)
	}
}

// randomDigits returns n random ASCII digits.
func randomDigits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

// realisticPair makes a POS pair shaped like the switch's: a request of
// bitmap, card number, processing code, amount, STAN, time, terminal,
// merchant, currency, field 60 and a MAC, and its response repeating
// most of it with another MTI, bitmap, RRN, response code, balances and
// time, the fields sometimes ASCII and sometimes BCD.
func realisticPair(rng *rand.Rand) (*Entry, *Entry) {
	req, resp := consumePair()
	ascii := func(s string) []byte { return []byte(s) }
	bcd := func(s string) []byte {
		if len(s)%2 != 0 {
			s = "0" + s
		}
		b := make([]byte, len(s)/2)
		packBCD(b, s)
		return b
	}
	enc := bcd
	if rng.IntN(3) == 0 {
		enc = ascii
	}
	hexs := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789ABCDEF"[rng.IntN(16)]
		}
		return string(b)
	}
	pan := "62" + randomDigits(rng, 14+rng.IntN(4))
	amount := fmt.Sprintf("%012d", rng.Int64N(1e9))
	stan := fmt.Sprintf("%06d", rng.IntN(1e6))
	hhmmss := randomDigits(rng, 6)
	mmdd := fmt.Sprintf("%02d%02d", 1+rng.IntN(12), 1+rng.IntN(28))
	terminal := randomDigits(rng, 8)
	merchant := "8983" + randomDigits(rng, 11)
	rrn := randomDigits(rng, 12)
	field60 := "22" + fmt.Sprintf("%06d", rng.IntN(1e6)) + "000"
	var q, r []byte
	q = append(q, 0x02, 0x00)
	q = append(q, []byte{0x70, 0x38, 0x04, 0x80, 0x00, 0xc0, 0x80, 0x11}...)
	q = append(q, byte(len(pan)))
	q = append(q, enc(pan)...)
	q = append(q, enc("000000")...)
	q = append(q, enc(amount)...)
	q = append(q, enc(stan)...)
	if rng.IntN(2) == 0 {
		q = append(q, enc(hhmmss+mmdd)...)
	}
	q = append(q, ascii(terminal)...)
	q = append(q, ascii(merchant)...)
	q = append(q, ascii("156")...)
	q = append(q, 0x00, 0x11)
	q = append(q, enc(field60)...)
	if rng.IntN(4) > 0 {
		q = append(q, ascii(hexs(16))...)
	} else {
		q = append(q, []byte(hexs(8))...)
	}
	r = append(r, 0x02, 0x10)
	r = append(r, []byte{0x70, 0x3a, 0x00, 0x80, 0x0e, 0xc0, 0x84, 0x13}...)
	r = append(r, byte(len(pan)))
	r = append(r, enc(pan)...)
	r = append(r, enc("000000")...)
	r = append(r, enc(amount)...)
	r = append(r, enc(stan)...)
	r = append(r, enc(hhmmss+mmdd)...)
	r = append(r, ascii(rrn)...)
	code := []string{"00", "51", "55", "05", "A0"}[rng.IntN(5)]
	r = append(r, ascii(code)...)
	r = append(r, ascii(terminal)...)
	r = append(r, ascii(merchant)...)
	r = append(r, ascii("156")...)
	if rng.IntN(2) == 0 {
		bal := fmt.Sprintf("1002156C%012d", rng.Int64N(1e11))
		r = append(r, 0x00, byte(len(bal)))
		r = append(r, ascii(bal)...)
	}
	r = append(r, 0x00, 0x11)
	r = append(r, enc(field60)...)
	if rng.IntN(3) == 0 {
		r = append(r, ascii("CSC"+strings.Repeat("Canteen No.", 1+rng.IntN(3)))...)
	}
	r = append(r, ascii(hexs(16))...)
	// Occasional damage: a byte changed, one dropped, some added.
	for k := rng.IntN(3); k > 0 && len(r) > 0; k-- {
		switch p := rng.IntN(len(r)); rng.IntN(3) {
		case 0:
			r[p] = byte(rng.IntN(256))
		case 1:
			r = append(r[:p], r[p+1:]...)
		default:
			r = append(r[:p], append([]byte(randomDigits(rng, rng.IntN(12))), r[p:]...)...)
		}
	}
	req.Raw, resp.Raw = q, r
	req.Terminal, req.Merchant, req.STAN = terminal, merchant, stan
	req.Batch = field60[2:8]
	req.Time = req.Time.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour))))
	resp.Time = req.Time.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
	req.BusinessDate = req.Time.UTC().Format("20060102")
	resp.Terminal, resp.Merchant, resp.STAN, resp.Batch, resp.BusinessDate = req.Terminal, req.Merchant, req.STAN, req.Batch, req.BusinessDate
	resp.RRN, resp.ResponseCode = rrn, code
	if rng.IntN(5) == 0 {
		resp.RRN = string(q[2:14]) // not digits: a reference or a literal
	}
	if rng.IntN(6) == 0 {
		req.Peer, resp.Peer = "[::1]:8583", "[::1]:8583"
	}
	return req, resp
}

// TestAppendPairSameAsReference: the encoder gives exactly the bytes of
// the reference (the stored format may never change) for the test
// vectors, for thousands of POS-shaped pairs and for thousands of
// randomly edited ones.
func TestAppendPairSameAsReference(t *testing.T) {
	req, resp := samplePair()
	sameAsReference(t, nil, req, resp)
	req, resp = consumePair()
	sameAsReference(t, nil, req, resp)
	sameAsReference(t, []byte("prefix"), req, resp)
	var a, c Entry
	if err := DecodePair(samplePairV3(), &a, &c); err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, nil, &a, &c)
	// Every well-known value and its near misses in each field that
	// takes one: the same length with a byte changed, one byte shorter,
	// a NUL more.
	for _, w := range wellKnown {
		for _, s := range []string{w, w[:len(w)-1] + string(w[len(w)-1]+1), w[:len(w)-1], w + "\x00", "\x00" + w[1:]} {
			req, resp := consumePair()
			req.Listener, req.TxType, req.MTI, req.ResponseCode = s, s, s, s
			resp.Listener, resp.TxType, resp.MTI, resp.ResponseCode = s, s, s, s
			sameAsReference(t, nil, req, resp)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		req, resp := realisticPair(rng)
		sameAsReference(t, nil, req, resp)
	}
	// Randomly edited responses over a small alphabet: many matches,
	// runs of digits and hex of every length, odd ends.
	for range 5000 {
		req, resp := consumePair()
		req.Raw = make([]byte, rng.IntN(300))
		for j := range req.Raw {
			req.Raw[j] = "\x00\x90000079AFa"[rng.IntN(11)]
		}
		var out []byte
		for len(out) < 400 && rng.IntN(12) > 0 {
			switch k := rng.IntN(3); {
			case k == 0 && len(req.Raw) > 0:
				a := rng.IntN(len(req.Raw))
				out = append(out, req.Raw[a:a+rng.IntN(len(req.Raw)-a+1)]...)
			case k == 1 && len(out) > 0:
				a := rng.IntN(len(out))
				out = append(out, out[a:a+rng.IntN(len(out)-a+1)]...)
			default:
				for n := rng.IntN(20); n > 0; n-- {
					out = append(out, "0123456789ABCDEFa\x00\xff"[rng.IntN(19)])
				}
			}
		}
		resp.Raw = out
		if len(req.Raw) >= 12 {
			req.Terminal, resp.Terminal = string(req.Raw[4:12]), string(req.Raw[4:12])
			resp.RRN = string(req.Raw[len(req.Raw)-12:])
		}
		sameAsReference(t, nil, req, resp)
	}
}

// FuzzAppendPairSameAsReference: for any pair the encoder gives exactly
// the reference's bytes, or the same error.
func FuzzAppendPairSameAsReference(f *testing.F) {
	req, resp := consumePair()
	f.Add(req.Raw, resp.Raw, req.Peer, req.Terminal, req.STAN, resp.RRN, req.BusinessDate, "consume", int64(0))
	f.Add([]byte{}, []byte{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 5}, "[::1]:1", "1234", "000001", "0000", "20261399", "0200", int64(-1))
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		req, resp := realisticPair(rng)
		f.Add(req.Raw, resp.Raw, req.Peer, req.Terminal, req.STAN, resp.RRN, req.BusinessDate, "0210", int64(7))
	}
	f.Fuzz(func(t *testing.T, reqRaw, respRaw []byte, peer, terminal, stan, rrn, date, known string, dt int64) {
		req, resp := consumePair()
		req.Raw, resp.Raw = reqRaw, respRaw
		req.Peer, req.Terminal, req.STAN, req.BusinessDate = peer, terminal, stan, date
		resp.Peer, resp.Terminal, resp.STAN, resp.BusinessDate = peer, terminal, stan, date
		resp.RRN = rrn
		req.TxType, resp.TxType, req.MTI, resp.ResponseCode = known, known, known, known
		req.Time = req.Time.Add(time.Duration(dt))
		sameAsReference(t, nil, req, resp)
	})
}

// BenchmarkAppendPairRef: the reference encoder, for comparison.
func BenchmarkAppendPairRef(b *testing.B) {
	req, resp := consumePair()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		var err error
		if buf, err = AppendPairRef(buf[:0], req, resp); err != nil {
			b.Fatal(err)
		}
	}
}
