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

// TestCheckPairSameAsReference: the pair's checks accept exactly what
// the reference's (each entry's Size and the shared fields compared)
// accept, with the same error, for pairs broken at random: a field at,
// over or under its bound, a shared field differing between the two, a
// direction, a zero time, a business date with a byte off, a raw message
// over its bound.
func TestCheckPairSameAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	str := func(n int) string { return strings.Repeat("7", n) }
	for range 20000 {
		req, resp := consumePair()
		for k := rng.IntN(3); k >= 0; k-- {
			e := req
			if rng.IntN(2) == 0 {
				e = resp
			}
			// Mostly at or near the bound, now and then anything.
			n := func(max int) int {
				if rng.IntN(4) == 0 {
					return rng.IntN(2 * max)
				}
				return max + rng.IntN(3) - 1
			}
			switch rng.IntN(17) {
			case 0:
				e.Listener = str(n(MaxListenerLen))
			case 1:
				e.Peer = str(n(MaxPeerLen))
			case 2:
				e.Terminal = str(n(MaxTerminalLen))
			case 3:
				e.Merchant = str(n(MaxMerchantLen))
			case 4:
				e.MTI = str(n(MaxMTILen))
			case 5:
				e.STAN = str(n(MaxSTANLen))
			case 6:
				e.Batch = str(n(MaxBatchLen))
			case 7:
				e.RRN = str(n(MaxRRNLen))
			case 8:
				e.TxType = str(n(MaxTxTypeLen))
			case 9:
				e.ResponseCode = str(n(MaxRCLen))
			case 10:
				if d := []byte(e.BusinessDate); len(d) > 0 {
					d[rng.IntN(len(d))] = byte(rng.IntN(256))
					e.BusinessDate = string(d)
				}
			case 11:
				e.BusinessDate = e.BusinessDate[:rng.IntN(len(e.BusinessDate)+1)]
			case 12:
				e.Direction = Direction(rng.IntN(4))
			case 13:
				e.Time = time.Time{}
			case 14:
				e.Raw = make([]byte, MaxRawLen+rng.IntN(2))
			case 15:
				// The same value in another string.
				e.Terminal = strings.Clone(e.Terminal)
			default:
				e.Peer = e.Peer + "0"
			}
		}
		gerr, werr := checkPair(req, resp), checkPairRef(req, resp)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("error %v, reference %v\nreq  %+v\nresp %+v", gerr, werr, req, resp)
		}
	}
}

// validDateRef is ValidDate as it was, a byte at a time.
func validDateRef(s string) bool {
	if len(s) != DateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// TestDigits8: digits8 (and ValidDate, which is it) is the byte-at-a-time
// check, for every byte value at every position of a date.
func TestDigits8(t *testing.T) {
	for i := range DateLen {
		for c := range 256 {
			d := []byte("20261204")
			d[i] = byte(c)
			if got, want := digits8(string(d)), validDateRef(string(d)); got != want || ValidDate(string(d)) != want {
				t.Fatalf("%q: %v, ValidDate %v", d, got, want)
			}
		}
	}
	for _, s := range []string{"", "2026120", "202612040", "99999999", "00000000"} {
		if got, want := digits8(s), validDateRef(s); got != want || ValidDate(s) != want {
			t.Fatalf("%q: %v, ValidDate %v", s, got, want)
		}
	}
}

// TestParseIPv4PortSameAsReference: the peer parser accepts exactly
// the strings the reference's does, with the same address and port:
// random strings of digits, dots and colons, and addresses with a part
// changed.
func TestParseIPv4PortSameAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	check := func(s string) {
		a, p, ok := parseIPv4Port(s)
		ra, rp, rok := parseIPv4PortRef(s)
		if ok != rok || ok && (a != ra || p != rp) {
			t.Fatalf("%q: %v %d %v, reference %v %d %v", s, a, p, ok, ra, rp, rok)
		}
	}
	for _, s := range []string{"127.0.0.1:56020", "0.0.0.0:0", "255.255.255.255:65535", "256.0.0.1:1", "1.2.3.4:65536",
		"01.2.3.4:5", "1.2.3.4:05", "1.2.3.4:", "1.2.3:4", "1.2.3.4.5:6", "1.2.3.4:5x", "", ":", "[::1]:8583", "1.2.3.4:123456"} {
		check(s)
	}
	for range 200000 {
		var b []byte
		if rng.IntN(2) == 0 {
			b = fmt.Appendf(nil, "%d.%d.%d.%d:%d", rng.IntN(300), rng.IntN(300), rng.IntN(300), rng.IntN(300), rng.IntN(70000))
			for k := rng.IntN(3); k > 0; k-- {
				b[rng.IntN(len(b))] = "0123456789.:x"[rng.IntN(13)]
			}
		} else {
			for n := rng.IntN(24); n > 0; n-- {
				b = append(b, "0123456789.:"[rng.IntN(12)])
			}
		}
		check(string(b))
	}
}

// TestKnownCodeSameAsReference: knownCode finds a code for exactly the
// strings the reference's does, the same code: every well-known value,
// each with a byte changed, cut short or lengthened, and random strings
// of their bytes.
func TestKnownCodeSameAsReference(t *testing.T) {
	check := func(s string) {
		c, ok := knownCode(s)
		rc, rok := knownCodeRef(s)
		if c != rc || ok != rok {
			t.Fatalf("%q: %#x %v, reference %#x %v", s, c, ok, rc, rok)
		}
	}
	for _, w := range wellKnown {
		for i := range len(w) {
			for c := range 256 {
				b := []byte(w)
				b[i] = byte(c)
				check(string(b))
			}
			check(w[:i])
			check(w[i:])
		}
		check(w + "\x00")
		check(w + "0")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 100000 {
		b := make([]byte, rng.IntN(10))
		for i := range b {
			b[i] = "0123458_onsuemp\x00"[rng.IntN(16)]
		}
		check(string(b))
	}
}

// BenchmarkAppendPairVaried: the encoder over 256 POS-shaped pairs in
// turn (realisticPair), so that, unlike BenchmarkAppendPair's one pair,
// its branches cannot be learnt from the input.
func BenchmarkAppendPairVaried(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	var pairs [256][2]*Entry
	for i := range pairs {
		pairs[i][0], pairs[i][1] = realisticPair(rng)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := &pairs[i%len(pairs)]
		var err error
		if buf, err = AppendPair(buf[:0], p[0], p[1]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendPacked: appendPacked packs every run b[i:j] of every buffer
// of up to 40 hex characters as the reference's character by character
// packing does, whatever lies around the run.
func TestAppendPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for n := range 41 {
		b := make([]byte, n)
		for range 20 {
			for k := range b {
				b[k] = "0123456789ABCDEF"[rng.IntN(16)]
			}
			for i := 0; i <= n; i++ {
				for j := i; j <= n; j++ {
					var want []byte
					k := i
					for ; k+1 < j; k += 2 {
						want = append(want, unhexRef(b[k])<<4|unhexRef(b[k+1]))
					}
					if k < j {
						want = append(want, unhexRef(b[k])<<4)
					}
					if got := appendPacked([]byte("x"), b, i, j); !bytes.Equal(got[1:], want) || got[0] != 'x' {
						t.Fatalf("%q [%d:%d]: %x, want x%x", b, i, j, got, want)
					}
				}
			}
		}
	}
}

// TestAppendPairLargeSameAsReference: pairs whose messages together
// are 65 535 bytes or more (the delta's table then holds 32-bit
// positions, 16-bit ones below) encode as the reference does, on both
// sides of the boundary and up to the largest messages.
func TestAppendPairLargeSameAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	msg := func(n int, from []byte) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			if len(from) > 0 && rng.IntN(3) == 0 {
				a := rng.IntN(len(from))
				b = append(b, from[a:min(len(from), a+rng.IntN(64))]...)
				continue
			}
			b = append(b, "0123456789ABCDEF\x00\x90a"[rng.IntN(19)])
		}
		return b[:n]
	}
	for _, c := range []struct{ req, resp int }{
		{32767, 32767}, {32767, 32768}, {32768, 32768}, {100, 65435}, {65436, 100}, {MaxRawLen, MaxRawLen}, {40000, 30000},
	} {
		req, resp := consumePair()
		req.Raw = msg(c.req, nil)
		resp.Raw = msg(c.resp, req.Raw)
		// Fields found in the second half of the response, past 16 bits.
		if c.resp > 64 {
			resp.RRN = string(resp.Raw[len(resp.Raw)-12:])
		}
		sameAsReference(t, nil, req, resp)
	}
}
