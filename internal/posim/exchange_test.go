package posim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/hsm/terminal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

// fakeSwitch is an in-memory connection that answers every request as the
// switch would in shape: the response MTI, the echoed fields, response
// code 00, an RRN and authorisation code of its own, MACed under the
// terminal's MAK. It records a digest of every request frame.
type fakeSwitch struct {
	keys   *terminal.WorkingKeys
	in     []byte // answers not yet read
	n      int
	digest [32]byte
	frames int
	types  map[spec.TxType]int
}

func (f *fakeSwitch) Write(p []byte) (int, error) {
	f.digest = sha256.Sum256(append(f.digest[:], p...))
	f.frames++
	tpdu, h, msg, err := spec.SplitPOS(p[spec.LengthPrefixLen:])
	if err != nil {
		return 0, err
	}
	req, err := spec.DecodePOS(msg)
	if err != nil {
		return 0, err
	}
	f.n++
	tx, _ := req.TxType()
	f.types[tx]++
	resp := spec.NewPOSResponse(req, spec.RCApproved)
	resp.RRN = fmt.Sprintf("%012d", f.n)
	resp.AuthCode = fmt.Sprintf("%06d", f.n%1000000)
	packed, err := spec.EncodePOSWithMAC(resp, func(block []byte) ([]byte, error) {
		m, err := f.keys.MAC(block)
		return m[:], err
	})
	if err != nil {
		return 0, err
	}
	f.in = spec.AppendPOSFrame(f.in, tpdu.Reply(), h, packed)
	return len(p), nil
}

func (f *fakeSwitch) Read(p []byte) (int, error) {
	if len(f.in) == 0 {
		return 0, fmt.Errorf("fake switch: read with no answer pending")
	}
	n := copy(p, f.in)
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeSwitch) Close() error                       { return nil }
func (f *fakeSwitch) LocalAddr() net.Addr                { return nil }
func (f *fakeSwitch) RemoteAddr() net.Addr               { return nil }
func (f *fakeSwitch) SetDeadline(t time.Time) error      { return nil }
func (f *fakeSwitch) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakeSwitch) SetWriteDeadline(t time.Time) error { return nil }

// fakeSwitchSim is a signed-on simulated terminal talking to a fakeSwitch,
// on a fixed clock.
func fakeSwitchSim(tb testing.TB, mix Mix, cards []Card) (*sim, *fakeSwitch) {
	s := signedOnSim(tb, TerminalSpec{ID: "10000001", Merchant: "898310000000001", MayLoad: true, Cards: cards}, mix)
	s.term.Batch = "000001"
	// A clock moving on 0.3 s a request, across midnight in UTC+8:
	// requests in the same second and in the next one.
	now := time.Date(2026, 3, 14, 23, 59, 0, 0, time.FixedZone("CST", 8*3600))
	s.term.SetClock(func() time.Time { now = now.Add(300 * time.Millisecond); return now })
	f := &fakeSwitch{keys: s.term.Keys, types: make(map[spec.TxType]int)}
	s.term.Client = posclient.NewClient(f, posclient.Options{})
	return s, f
}

var testCards = []Card{{PAN: "6230151000000000020", PIN: "654321"}, {PAN: "6230151000000000038", PIN: "123456"},
	{PAN: "6222020000000000018", PIN: "123456", Bank: true}}

// TestRequestStreamGolden pins the bytes posim puts on the wire: for each
// mix, the digest of 3000 request frames of one seeded terminal against a
// switch that approves everything (voids, refunds, reversals, completions
// and cancels of remembered originals included). The digests were taken
// with the simulator as it was before its requests' originals were kept
// without pointers, its trace numbers and time stamps formatted without
// fmt, and its deadlines armed once per exchange.
func TestRequestStreamGolden(t *testing.T) {
	want := map[string]string{
		"consume": "6b953698cb53162dfade79db23b86d39e83b12f99993b1f908c6333895131303",
		"mixed":   "15cbb739101c9e99c9c267bf2ceeb324c10faf1c6733f63a31e1af9f39628174",
		"preauth": "906e8aa5610bf9b92ac7140f33e6aeb10b03d747d44c6c259d235905f53e2044",
	}
	for _, mix := range []Mix{MixConsume, MixMixed, MixPreAuth} {
		s, f := fakeSwitchSim(t, mix, testCards)
		ctx := context.Background()
		for i := 0; i < 3000; i++ {
			if err := s.transact(ctx, ctx); err != nil {
				t.Fatalf("%s transaction %d: %v", mix.Name, i, err)
			}
		}
		if got := hex.EncodeToString(f.digest[:]); got != want[mix.Name] {
			t.Errorf("mix %s: %d frames, digest %s, want %s", mix.Name, f.frames, got, want[mix.Name])
		}
		for _, tx := range map[string][]spec.TxType{"consume": {spec.Consume},
			"mixed":   {spec.ConsumeVoid, spec.Refund, spec.Reversal, spec.CashLoad, spec.BalanceInquiry},
			"preauth": {spec.PreAuth, spec.PreAuthCompletion, spec.PreAuthCancel}}[mix.Name] {
			if f.types[tx] == 0 {
				t.Errorf("mix %s sent no %s: %v", mix.Name, tx, f.types)
			}
		}
		if s.r.errors.Load() != 0 || s.r.approved.Load() == 0 {
			t.Errorf("mix %s: %d errors, %d approved", mix.Name, s.r.errors.Load(), s.r.approved.Load())
		}
	}
}

// BenchmarkTransactConsume is one closed-loop consume of a simulated
// terminal against the in-memory fakeSwitch: build, MAC, frame, the
// answer's decode and MAC check, the checks of exchange, remember. The
// fake's own work (decode, answer, MAC) is BenchmarkFakeSwitchAnswer, to
// subtract when counting instructions.
func BenchmarkTransactConsume(b *testing.B) {
	s, _ := fakeSwitchSim(b, MixConsume, testCards)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.transact(ctx, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFakeSwitchAnswer is the fakeSwitch answering one consume and
// the answer read back whole.
func BenchmarkFakeSwitchAnswer(b *testing.B) {
	s, f := fakeSwitchSim(b, MixConsume, testCards)
	req, err := s.term.Consume(testCards[0].PAN, 1500, "")
	if err != nil {
		b.Fatal(err)
	}
	req.TerminalID, req.MerchantID = s.term.ID, s.term.Merchant
	packed, err := spec.EncodePOSWithMAC(req, func(block []byte) ([]byte, error) {
		m, err := s.term.Keys.MAC(block)
		return m[:], err
	})
	if err != nil {
		b.Fatal(err)
	}
	frame := spec.AppendPOSFrame(nil, posclient.DefaultTPDU, posclient.DefaultHeader, packed)
	buf := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(frame); err != nil {
			b.Fatal(err)
		}
		for len(f.in) > 0 {
			_, _ = f.Read(buf)
		}
	}
}

// TestRecentSameAsSlice holds the ring of remembered transactions to the
// slice it replaced (append, drop the oldest when full, remove at i) over
// random operations.
func TestRecentSameAsSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ring recent[int]
	var ref []int
	for op := 0; op < 200000; op++ {
		switch r := rng.IntN(10); {
		case r < 6:
			if len(ref) >= recentLimit {
				copy(ref, ref[1:])
				ref = ref[:len(ref)-1]
			}
			ref = append(ref, op)
			ring.push(op)
		case r < 9 && len(ref) > 0:
			i := rng.IntN(len(ref))
			ref = append(ref[:i], ref[i+1:]...)
			ring.remove(i)
		case r == 9 && rng.IntN(100) == 0:
			ref = ref[:0]
			ring.reset()
		}
		if ring.len() != len(ref) {
			t.Fatalf("op %d: %d items, want %d", op, ring.len(), len(ref))
		}
		for i, v := range ref {
			if *ring.at(i) != v {
				t.Fatalf("op %d: item %d is %d, want %d", op, i, *ring.at(i), v)
			}
		}
	}
}

// TestRememberedRoundTrip: the fields a follow-up reads come back from a
// remembered original as they were in the request and its answer.
func TestRememberedRoundTrip(t *testing.T) {
	s, _ := fakeSwitchSim(t, MixConsume, testCards)
	for i, c := range testCards {
		for _, resp := range []*spec.POSMessage{{RRN: "123456789012", AuthCode: "A1B2C3"}, {}} {
			req := &spec.POSMessage{PAN: c.PAN, Amount: spec.Amount(100 + i), HasAmount: true, STAN: "000123",
				LocalDate: "0314", Reserved60: spec.Field60{Type: "22", Batch: "000042", NetworkCode: "000"}}
			o, ok := s.remembered(req, resp)
			if !ok {
				t.Fatalf("card %d not remembered", i)
			}
			r, a := s.messages(&o)
			if r.PAN != req.PAN || r.Amount != req.Amount || r.STAN != req.STAN || r.LocalDate != req.LocalDate ||
				r.Reserved60.Batch != req.Reserved60.Batch || a.RRN != resp.RRN || a.AuthCode != resp.AuthCode {
				t.Fatalf("card %d: %+v %+v back from %+v %+v", i, r, a, req, resp)
			}
		}
	}
	if _, ok := s.remembered(&spec.POSMessage{PAN: "6230159999999999999"}, &spec.POSMessage{}); ok {
		t.Error("a card not of the terminal was remembered")
	}
	if _, ok := s.remembered(&spec.POSMessage{PAN: testCards[0].PAN}, &spec.POSMessage{RRN: "1234567890123"}); ok {
		t.Error("an RRN of 13 characters was remembered")
	}
}

// TestAckLineSameAsSprintf holds the ack line to the Sprintf format it
// replaced, on random acks.
func TestAckLineSameAsSprintf(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	word := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte('!' + rng.IntN(94))
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		a := Ack{Terminal: word(), Batch: word(), STAN: word(), Type: word(), Card: word(),
			Amount: spec.Amount(rng.Int64() - rng.Int64()), RC: word()}
		if i%3 == 0 {
			a.Amount = spec.Amount(rng.IntN(1000))
		}
		want := fmt.Sprintf("%s %s %s %s %s %d %s", a.Terminal, a.Batch, a.STAN, a.Type, a.Card, a.Amount, a.RC)
		if got := a.String(); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
}
