package links

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/links/linktest"
)

var (
	testZMK = []byte{0x8C, 0xD5, 0xE6, 0x3E, 0xF2, 0xA7, 0x8F, 0x01, 0x31, 0xF1, 0xFB, 0x0D, 0x4F, 0x3D, 0x7F, 0x2A}
	testTPK = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
)

const (
	bankCard = "6217001234567890123"
	tid      = "10000001"
)

type env struct {
	t    *testing.T
	db   *pebble.DB
	fs   vfs.FS
	lmk  hsm.LMK
	h    *hsm.HSM
	mgr  *Manager
	link *Link
	peer *linktest.Peer
	reg  *prometheus.Registry
}

// testSendTimeout is the links' send timeout in these tests: generous,
// so that an answer the peer does send is never late on a loaded CI
// machine (the -race suite in parallel on 2 cores); the tests that need
// no answer make the peer drop it and pay the wait.
const testSendTimeout = 2 * time.Second

func fastSAF() SAFConfig {
	return SAFConfig{InitialDelay: 50 * time.Millisecond, Interval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond, MaxAttempts: 4}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, fs: vfs.NewMem()}
	e.peer = linktest.Start(t, "bank-a", testZMK)
	e.peer.AddCard(t, bankCard, 100000, "123456")
	lmk, err := hsm.NewRandomLMK()
	if err != nil {
		t.Fatal(err)
	}
	e.lmk = lmk
	e.open(fastSAF())
	if _, err := e.h.ImportZMK("bank-a", testZMK); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.LoadClearKey(hsm.TerminalKeyLabel(tid, hsm.TPK), hsm.TPK, testTPK); err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

func (e *env) open(saf SAFConfig) { e.openWith(saf, nil) }

func (e *env) openEcho(saf SAFConfig, echo time.Duration) {
	e.openWith(saf, func(c *Config) { c.EchoInterval = echo })
}

func (e *env) openWith(saf SAFConfig, mutate func(*Config)) {
	t := e.t
	db, err := pebble.Open("db", &pebble.Options{FS: e.fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hsm.Open(db, e.lmk, hsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	cfg := Config{Name: "bank-a", Addresses: []string{e.peer.Addr},
		AcquirerID: "12345678", ForwardingID: "12345678", InstitutionID: "87654321",
		SendTimeout: testSendTimeout, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 100 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	mgr, err := New(db, h, Options{Links: []Config{cfg}, SAF: saf, Logger: zap.NewNop(), Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	e.db, e.h, e.mgr = db, h, mgr
	e.link, _ = mgr.Link("bank-a")
}

func (e *env) start() {
	if err := e.mgr.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.stop)
	e.waitUp()
}

func (e *env) stop() {
	if e.mgr != nil {
		e.mgr.Close()
		e.db.Close()
		e.mgr = nil
	}
}

func (e *env) waitUp() {
	e.t.Helper()
	waitFor(e.t, "link up", func() bool { return e.link.State() == StateUp })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testRecorder commits the link's batch like the pipeline's record step.
type testRecorder struct {
	db  *pebble.DB
	b   *pebble.Batch
	res *Result
	// keys counts what the link put in the batch, at Commit.
	keys uint32
}

func (r *testRecorder) Batch() *pebble.Batch {
	if r.b == nil {
		r.b = r.db.NewBatch()
	}
	return r.b
}

func (r *testRecorder) Commit(res Result) error {
	r.res = &res
	r.keys = r.Batch().Count()
	defer r.Batch().Close()
	return r.Batch().Commit(pebble.Sync)
}

var stanSeq atomic.Uint32

func (e *env) consume(amount int64, pin string) (Result, error, *Request) {
	e.t.Helper()
	req := &Request{Type: spec.Consume, Card: bankCard, Amount: amount, HasAmount: true, Terminal: tid,
		Merchant: "898310000000001", Batch: 1, STAN: stanSeq.Add(1), RRN: "000000000001", BusinessDate: "20260315"}
	if pin != "" {
		tb, _ := blockcipher.New(blockcipher.TDES, testTPK)
		blk, err := pinblock.Encrypt(tb, pinblock.Format0, pin, bankCard, "")
		if err != nil {
			e.t.Fatal(err)
		}
		req.PINBlock, req.PINFormat = blk, hsm.PINFormat0
	}
	rec := &testRecorder{db: e.db}
	res, err := e.link.Forward(req, rec)
	if err == nil && (rec.res == nil || rec.res.ResponseCode != res.ResponseCode) {
		e.t.Fatalf("Forward returned %v without recording it", res)
	}
	return res, err, req
}

func TestForwardApproveDeclinePIN(t *testing.T) {
	e := newEnv(t)
	res, err, _ := e.consume(1234, "123456")
	if err != nil || res.ResponseCode != "00" || res.AuthCode == "" {
		t.Fatalf("consume = %+v, %v", res, err)
	}
	if e.peer.Balance(bankCard) != 100000-1234 || e.peer.PINChecked.Load() != 1 || e.peer.MACFailures.Load() != 0 {
		t.Fatalf("peer balance %d, PINs %d, MAC failures %d", e.peer.Balance(bankCard), e.peer.PINChecked.Load(), e.peer.MACFailures.Load())
	}
	// A wrong PIN: the bank declines 55 after translation.
	if res, _, _ := e.consume(100, "654321"); res.ResponseCode != "55" {
		t.Fatalf("wrong PIN = %+v", res)
	}
	e.peer.DeclineRC.Store("51")
	if res, _, _ := e.consume(100, ""); res.ResponseCode != "51" {
		t.Fatalf("decline = %+v", res)
	}
	// A code outside the switch's table becomes 05.
	e.peer.DeclineRC.Store("Z9")
	if res, _, _ := e.consume(100, ""); res.ResponseCode != "05" {
		t.Fatalf("unknown code = %+v", res)
	}
	e.peer.DeclineRC.Store("")
	// Every request record is final: nothing open.
	n := 0
	_ = e.mgr.recs.Open("bank-a", func(*journal.LinkRequest) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d requests left open", n)
	}
}

// The batch that answers the terminal changes the request's record and
// removes its open index — two keys: the local mapping and the RRN index
// the write-ahead record wrote are not written again, and still find it.
func TestAnswerBatchKeys(t *testing.T) {
	e := newEnv(t)
	req := &Request{Type: spec.Consume, Card: bankCard, Amount: 100, HasAmount: true, Terminal: tid,
		Merchant: "898310000000001", Batch: 1, STAN: stanSeq.Add(1), RRN: "000000000077", BusinessDate: "20260315"}
	rec := &testRecorder{db: e.db}
	if res, err := e.link.Forward(req, rec); err != nil || res.ResponseCode != "00" {
		t.Fatalf("consume = %+v, %v", res, err)
	}
	if rec.keys != 2 {
		t.Fatalf("the answer's batch holds %d link keys, want 2 (record, open index)", rec.keys)
	}
	byLocal, err := e.mgr.recs.ByLocal(tid, "000001", n6(req.STAN))
	if err != nil || byLocal.State != journal.LinkAnswered || byLocal.ResponseCode != "00" {
		t.Fatalf("ByLocal = %+v, %v", byLocal, err)
	}
	if byRRN, err := e.mgr.recs.ByRRN("000000000077"); err != nil || *byRRN != *byLocal {
		t.Fatalf("ByRRN = %+v, %v", byRRN, err)
	}
	// The request's frame, packed once by addMAC, is not kept once written.
	e.link.frames.Range(func(k, _ any) bool { t.Fatalf("frame of %p kept after the exchange", k); return false })
}

// The writer sends the frame exchange stored for a message as it is, and
// packs a message it has none for.
func TestWriterSendsStoredFrame(t *testing.T) {
	l := newLink(Config{Name: "bank-a", SendTimeout: time.Second}, nil, nil, zap.NewNop(), nil, time.Now)
	m := iso8583.NewMessage(spec.Gateway)
	for id, v := range map[int]string{0: spec.GWNetworkRequest, 7: "1204120000", 11: "000001", 70: spec.GWNetworkEcho} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	packed, err := spec.AppendGatewayFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{l: l}
	var out bytes.Buffer
	if err := w.WriteMessage(&out, m); err != nil || !bytes.Equal(out.Bytes(), packed) {
		t.Fatalf("without a stored frame: %x, %v; want %x", out.Bytes(), err, packed)
	}
	stored := []byte{0, 3, 'a', 'b', 'c'}
	l.frames.Store(m, stored)
	out.Reset()
	if err := w.WriteMessage(&out, m); err != nil || !bytes.Equal(out.Bytes(), stored) {
		t.Fatalf("with a stored frame: %x, %v; want %x", out.Bytes(), err, stored)
	}
}

func TestTimeoutReversesThroughSAF(t *testing.T) {
	t.Parallel() // waits out send timeouts
	e := newEnv(t)
	e.peer.Drop.Store(1)
	e.peer.DropReversals.Store(2) // the 0420 and the first 0421 go unanswered
	res, err, req := e.consume(500, "")
	if err != nil || res.ResponseCode != "98" {
		t.Fatalf("timeout = %+v, %v", res, err)
	}
	lr, err := e.mgr.recs.ByLocal(tid, "000001", n6(req.STAN))
	if err != nil || lr.State != journal.LinkReversalQueued {
		t.Fatalf("record = %+v, %v", lr, err)
	}
	waitFor(t, "reversal delivered", func() bool {
		q, _, _, _ := e.mgr.queue.Stats("bank-a", 10)
		return q == 0 && e.peer.Balance(bankCard) == 100000
	})
	mtis := e.peer.Requests()
	var rev []string
	for _, m := range mtis {
		if m[:2] == "04" {
			rev = append(rev, m)
		}
	}
	if len(rev) != 3 || rev[0] != "0420" || rev[1] != "0421" || rev[2] != "0421" {
		t.Fatalf("reversal MTIs = %v", rev)
	}
	for k, n := range e.peer.Reversals() {
		if n != 1 {
			t.Fatalf("original %s reversed %d times", k, n)
		}
	}
	if v := testutil.ToFloat64(e.mgr.m.Requests.WithLabelValues("bank-a", "timeout")); v != 1 {
		t.Fatalf("timeouts metric %v", v)
	}
	// The late 0210 was dropped by the peer, not sent; the late-answer
	// path is exercised by TestBadMACIsNoAnswer.
}

func TestBadMACIsNoAnswer(t *testing.T) {
	t.Parallel() // waits out send timeouts
	e := newEnv(t)
	e.peer.BadMAC.Store(true)
	res, _, _ := e.consume(700, "")
	if res.ResponseCode != "98" {
		t.Fatalf("bad MAC answer = %+v", res)
	}
	if testutil.ToFloat64(e.mgr.m.BadMAC.WithLabelValues("bank-a")) < 1 {
		t.Fatal("bad MAC not counted")
	}
	e.peer.BadMAC.Store(false)
	waitFor(t, "reversal of the bad-MAC answer", func() bool { return e.peer.Balance(bankCard) == 100000 })
}

func TestDeadLetterRetryDrop(t *testing.T) {
	t.Parallel() // waits out send timeouts
	e := newEnv(t)
	e.peer.Drop.Store(1)
	e.peer.ReversalRC.Store("12")
	res, _, first := e.consume(300, "")
	if res.ResponseCode != "98" {
		t.Fatalf("timeout = %+v", res)
	}
	waitFor(t, "dead letter", func() bool {
		d, _ := e.mgr.SAFList("bank-a", true, 10)
		return len(d) == 1
	})
	// Until the bank acknowledges its reversal the request stands
	// (preauth.go): dead-lettered it is still reversal-queued.
	state := func(req *Request) journal.LinkState {
		t.Helper()
		lr, err := e.mgr.recs.ByLocal(tid, n6(req.Batch), n6(req.STAN))
		if err != nil {
			t.Fatal(err)
		}
		return lr.State
	}
	if st := state(first); st != journal.LinkReversalQueued {
		t.Fatalf("dead-lettered reversal's request %s", st)
	}
	d, _ := e.mgr.SAFList("bank-a", true, 10)
	if d[0].Card == bankCard || d[0].Amount != "3.00" || d[0].Reason != "98" {
		t.Fatalf("dead letter = %+v", d[0])
	}
	e.peer.ReversalRC.Store("")
	if _, err := e.mgr.SAFRetry("bank-a", d[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retried reversal delivered", func() bool { return e.peer.Balance(bankCard) == 100000 })
	waitFor(t, "request marked reversed", func() bool { return state(first) == journal.LinkReversed })
	if err := e.mgr.SAFDrop("bank-a", d[0].ID); err == nil {
		t.Fatal("dropped a dead letter that was retried")
	}
	// Attempts exhausted: the peer never answers reversals.
	e.peer.Drop.Store(1)
	e.peer.DropReversals.Store(100)
	_, _, second := e.consume(200, "")
	waitFor(t, "dead letter after max attempts", func() bool {
		d, _ := e.mgr.SAFList("bank-a", true, 10)
		return len(d) == 1 && d[0].Attempts == 4
	})
	d, _ = e.mgr.SAFList("bank-a", true, 10)
	if err := e.mgr.SAFDrop("bank-a", d[0].ID); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.mgr.SAFList("bank-a", true, 10); len(d) != 0 {
		t.Fatalf("after drop: %v", d)
	}
	if st := state(second); st != journal.LinkReversalQueued {
		t.Fatalf("dropped reversal's request %s", st)
	}
}

func TestLinkDownAnswers91AndReconnects(t *testing.T) {
	e := newEnv(t)
	e.peer.RefuseSignOn.Store(true)
	e.peer.Disconnect()
	waitFor(t, "link down", func() bool { return e.link.State() != StateUp })
	_, err, _ := e.consume(100, "")
	var rj *Rejected
	if !errors.As(err, &rj) || rj.ResponseCode != "91" {
		t.Fatalf("down = %v", err)
	}
	e.peer.RefuseSignOn.Store(false)
	e.waitUp()
	if res, _, _ := e.consume(100, ""); res.ResponseCode != "00" {
		t.Fatalf("after reconnect = %+v", res)
	}
}

func TestRestartQueuesReversalOfOpenRequests(t *testing.T) {
	e := newEnv(t)
	// A request journaled and sent, then the process died: simulate with
	// an open record written the way Forward writes it.
	id, stan, _ := e.mgr.recs.NextID("bank-a")
	lr := &journal.LinkRequest{Link: "bank-a", ID: id, STAN: stan, Transmission: spec.FormatTransmissionTime(time.Now()),
		MTI: "0200", ProcCode: "000000", Amount: 900, Card: bankCard, Terminal: tid, Merchant: "898310000000001",
		Batch: "000001", LocalSTAN: "000777", RRN: "000000000777", Acquirer: "12345678", Forwarding: "12345678",
		State: journal.LinkSent, Created: time.Now()}
	b := e.db.NewBatch()
	if err := e.mgr.recs.Put(b, lr); err != nil {
		t.Fatal(err)
	}
	_ = b.Commit(pebble.Sync)
	b.Close()
	e.stop()
	e.open(fastSAF())
	e.start()
	got, err := e.mgr.recs.Get("bank-a", id)
	if err != nil || got.State != journal.LinkReversalQueued {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	// The bank never saw it: its reversal is answered 25 and done.
	waitFor(t, "queue drained", func() bool { q, _, _, _ := e.mgr.queue.Stats("bank-a", 10); return q == 0 })
	if len(e.peer.Reversals()) != 0 {
		t.Fatal("a reversal of an unknown original reversed something")
	}
}

func TestTerminalReversalOfForwarded(t *testing.T) {
	e := newEnv(t)
	res, _, req := e.consume(400, "")
	if res.ResponseCode != "00" {
		t.Fatal(res)
	}
	rev := &Request{Type: spec.Reversal, Card: bankCard, Amount: 400, HasAmount: true, Terminal: tid,
		Batch: 1, STAN: req.STAN, HasOriginal: true, OriginalBatch: 1, OriginalSTAN: req.STAN, ReversalReason: "98"}
	rec := &testRecorder{db: e.db}
	res, err := e.link.Forward(rev, rec)
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("reversal = %+v %v", res, err)
	}
	// The bank's balance moves before the sender acknowledges the 0430:
	// wait for both, or the first reversal is still counted below.
	waitFor(t, "bank reversed", func() bool {
		q, _, _, _ := e.mgr.queue.Stats("bank-a", 10)
		return e.peer.Balance(bankCard) == 100000 && q == 0
	})
	// A second reversal of the same: 00, nothing queued.
	rec = &testRecorder{db: e.db}
	if res, _ := e.link.Forward(rev, rec); res.ResponseCode != "00" {
		t.Fatal(res)
	}
	if q, _, _, _ := e.mgr.queue.Stats("bank-a", 10); q != 0 {
		t.Fatalf("second reversal queued %d", q)
	}
}

// TestEchoMissesTakeTheLinkDown: a connection idle for echo_interval
// sends 0800 301; three unanswered echoes close it; it reconnects and
// signs on again.
func TestEchoMissesTakeTheLinkDown(t *testing.T) {
	t.Parallel() // waits out send timeouts
	e := newEnv(t)
	e.stop()
	e.openEcho(fastSAF(), 100*time.Millisecond)
	e.start()
	signons := func() float64 { return testutil.ToFloat64(e.mgr.m.Reconnect.WithLabelValues("bank-a", "ok")) }
	before := signons()
	e.peer.DropEchoes.Store(true)
	waitFor(t, "link down after missed echoes", func() bool { return e.link.State() != StateUp })
	e.peer.DropEchoes.Store(false)
	e.waitUp()
	if signons() <= before {
		t.Fatalf("no new sign-on after the echoes were missed (%v -> %v)", before, signons())
	}
	if res, _, _ := e.consume(100, ""); res.ResponseCode != "00" {
		t.Fatalf("after reconnect: %+v", res)
	}
}

// quiet keeps Pebble's informational lines out of test output.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// TestKeyIntervalChangesKeys: every key_interval the link asks for new
// working keys; traffic goes on under them.
func TestKeyIntervalChangesKeys(t *testing.T) {
	e := newEnv(t)
	e.stop()
	e.openWith(fastSAF(), func(c *Config) { c.KeyInterval = time.Second })
	e.start()
	first := e.h.ZoneKeyCheck("bank-a", hsm.ZAK)
	if first == "" {
		t.Fatal("no ZAK after sign-on")
	}
	waitFor(t, "a new ZAK", func() bool { return e.h.ZoneKeyCheck("bank-a", hsm.ZAK) != first })
	if res, _, _ := e.consume(100, "123456"); res.ResponseCode != "00" {
		t.Fatalf("after the key change: %+v", res)
	}
	if e.peer.MACFailures.Load() != 0 {
		t.Fatalf("%d MAC failures at the bank", e.peer.MACFailures.Load())
	}
}

// TestSAFWaitsForTheLinkAndDrains: a reversal queued while the link is
// down is not attempted (no attempt counted) and is delivered once the
// link is back.
func TestSAFWaitsForTheLinkAndDrains(t *testing.T) {
	e := newEnv(t)
	res, _, req := e.consume(400, "")
	if res.ResponseCode != "00" {
		t.Fatal(res)
	}
	e.peer.RefuseSignOn.Store(true)
	e.peer.Disconnect()
	waitFor(t, "link down", func() bool { return e.link.State() != StateUp })
	rev := &Request{Type: spec.Reversal, Card: bankCard, Amount: 400, HasAmount: true, Terminal: tid,
		Batch: 1, STAN: req.STAN, HasOriginal: true, OriginalBatch: 1, OriginalSTAN: req.STAN}
	if res, err := e.link.Forward(rev, &testRecorder{db: e.db}); err != nil || res.ResponseCode != "00" {
		t.Fatalf("reversal while down = %+v %v", res, err)
	}
	time.Sleep(3 * fastSAF().InitialDelay)
	q, err := e.mgr.SAFList("bank-a", false, 10)
	if err != nil || len(q) != 1 || q[0].Attempts != 0 {
		t.Fatalf("queue while down = %+v %v", q, err)
	}
	e.peer.RefuseSignOn.Store(false)
	e.waitUp()
	waitFor(t, "queue drained after the outage", func() bool {
		q, _ := e.mgr.SAFList("bank-a", false, 10)
		return len(q) == 0 && e.peer.Balance(bankCard) == 100000
	})
}

// TestRemovedLinkWithWorkRefusesStart: a link taken out of the
// configuration while its journal holds a request with no final answer
// and a queued reversal: start refuses, naming the link and the counts;
// put back, it starts and drains them.
func TestRemovedLinkWithWorkRefusesStart(t *testing.T) {
	e := newEnv(t)
	id, stan, _ := e.mgr.recs.NextID("bank-a")
	lr := &journal.LinkRequest{Link: "bank-a", ID: id, STAN: stan, Transmission: spec.FormatTransmissionTime(time.Now()),
		MTI: "0200", ProcCode: "000000", Amount: 900, Card: bankCard, Terminal: tid, Merchant: "898310000000001",
		Batch: "000001", LocalSTAN: "000778", RRN: "000000000778", Acquirer: "12345678", Forwarding: "12345678",
		State: journal.LinkSent, Created: time.Now()}
	b := e.db.NewBatch()
	if err := e.mgr.recs.Put(b, lr); err != nil {
		t.Fatal(err)
	}
	_ = b.Commit(pebble.Sync)
	b.Close()
	e.stop()

	// Restarted without bank-a: the open request is not reversed, and
	// the start is refused.
	e.openWith(fastSAF(), func(c *Config) { c.Name = "bank-b" })
	err := e.mgr.Recover()
	if err == nil || !strings.Contains(err.Error(), "gateway bank-a is no longer configured") ||
		!strings.Contains(err.Error(), "1 requests sent with no final answer and 0 reversals queued") {
		t.Fatalf("start without bank-a: %v", err)
	}
	// A reversal queued for it (as the terminal's reversal or a timeout
	// leaves one) is counted too.
	b = e.db.NewBatch()
	if _, err := e.mgr.queue.Enqueue(b, "bank-a", []byte("0420")); err != nil {
		t.Fatal(err)
	}
	_ = b.Commit(pebble.Sync)
	b.Close()
	if err := e.mgr.Recover(); err == nil || !strings.Contains(err.Error(), "1 requests sent with no final answer and 1 reversals queued") {
		t.Fatalf("start without bank-a, reversal queued: %v", err)
	}
	e.mgr.Close()
	e.db.Close()
	e.mgr = nil

	// Put back: start queues the open request's reversal.
	e.open(fastSAF())
	if err := e.mgr.Recover(); err != nil {
		t.Fatal(err)
	}
	got, err := e.mgr.recs.Get("bank-a", id)
	if err != nil || got.State != journal.LinkReversalQueued {
		t.Fatalf("after restart with bank-a: %+v %v", got, err)
	}
	e.stop()
}

// TestAnswersAtTheTimeoutLeakNothing: answers landing around the send
// timeout (before, at, after) are each either delivered to the waiting
// request or counted as late — none is lost — and no goroutine is left
// behind (counted before and after, waiting with a bound for the
// simulator's own delayed writers to finish). The library's Send leaked a
// goroutine, and lost the answer, when an answer raced its timeout
// (Link.exchange).
func TestAnswersAtTheTimeoutLeakNothing(t *testing.T) {
	e := newEnv(t)
	c, err := e.link.pool.Get()
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 3 * time.Millisecond
	late := func() int { return int(testutil.ToFloat64(e.mgr.m.Late.WithLabelValues("bank-a"))) }
	// One exchange first, so that whatever starts once is running.
	if _, err := e.link.sendNet(c, spec.GWNetworkEcho, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	lateBefore := late()
	const n = 800
	answered := 0
	for i := range n {
		// 2.4 .. 3.6 ms: around the timeout, at the timer's resolution.
		e.peer.EchoDelay.Store(int64(timeout) - 600*int64(time.Microsecond) + int64(i%7)*200*int64(time.Microsecond))
		if _, err := e.link.sendNet(c, spec.GWNetworkEcho, timeout); err == nil {
			answered++
		}
	}
	waitFor(t, "every answer delivered or counted late", func() bool { return answered+late()-lateBefore == n })
	// Back to the count before, waiting with a bound for the peer's
	// delayed writers and the handlers of the last answers to finish.
	// Should something unrelated (storage) still run at the bound, the
	// goroutines that answers strand are named by where they stand: the
	// library's handleResponse, or the link's own matching.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 4<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		stranded := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "(*Connection).handleResponse") || strings.Contains(g, "(*Link).exchange") ||
				strings.Contains(g, "(*Link).deliver") || strings.Contains(g, "(*Link).inbound") {
				stranded++
			}
		}
		if stranded > 0 {
			t.Fatalf("%d goroutines before, %d after %d answers around the timeout, %d stranded by answers:\n%s",
				before, after, n, stranded, stacks)
		}
		t.Logf("%d goroutines before, %d after, none stranded by answers", before, after)
	}
	t.Logf("%d of %d answered in time, %d late", answered, n, late()-lateBefore)
}

// TestReversalOfAPreAuthFamilyMessage: the 0420 of a pre-auth family
// request (as a timeout, the terminal or the restart queue it) repeats
// its original's 3 and 25 = 06, names it in 90 with its MTI, and carries
// the reason; a consume's has no 25.
func TestReversalOfAPreAuthFamilyMessage(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		typ            spec.TxType
		mti, proc, c25 string
	}{
		{spec.PreAuth, "0100", "030000", "06"},
		{spec.PreAuthCancel, "0100", "200000", "06"},
		{spec.PreAuthCompletion, "0200", "000000", "06"},
		{spec.CompletionVoid, "0200", "200000", "06"},
		{spec.Consume, "0200", "000000", ""},
	} {
		lr := &journal.LinkRequest{Link: "bank-a", ID: 7, STAN: "000007", Transmission: "0315101112", MTI: tt.mti,
			ProcCode: tt.proc, Amount: 4000, Card: bankCard, Terminal: tid, Merchant: "898310000000001", RRN: "000000000007",
			Acquirer: "12345678", Forwarding: "12345678", TxType: tt.typ.String()}
		raw, err := e.link.reversalPayload(lr, "98")
		if err != nil {
			t.Fatal(err)
		}
		m, err := spec.DecodeGateway(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]string{0: "0420", 3: tt.proc, 4: "000000004000", 25: tt.c25, 39: "98",
			90: tt.mti + "000007" + "0315101112" + "00012345678" + "00012345678"}
		for id, v := range want {
			if got, _ := m.GetString(id); got != v {
				t.Errorf("%s: field %d = %q, want %q", tt.typ, id, got, v)
			}
		}
	}
}

// addMAC's frame is the frame of the MACed message packed again, for a
// message with the MAC in 64 and one with it in 128; the MAC verifies.
func TestAddMACFrame(t *testing.T) {
	e := newEnv(t)
	for _, fields := range []map[int]string{
		{0: "0200", 2: bankCard, 3: "000000", 4: "000000000100", 7: "1204120000", 11: "000001", 41: tid},
		{0: "0200", 2: bankCard, 3: "000000", 4: "000000000100", 7: "1204120000", 11: "000002", 41: tid, 100: "87654321"},
	} {
		m := iso8583.NewMessage(spec.Gateway)
		for id, v := range fields {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		frame, err := e.link.addMAC(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := spec.AppendGatewayFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, want) {
			t.Fatalf("frame\n%x\nwant\n%x", frame, want)
		}
		if !e.link.verifyMAC(frame[2:]) {
			t.Fatalf("the MAC of %x does not verify", frame)
		}
		if _, has128 := fields[100]; has128 != (frame[2+4]&0x80 != 0) {
			t.Fatalf("secondary bitmap %v with field 100 %v", frame[2+4]&0x80 != 0, has128)
		}
		// Packed from the fields (the forwarded requests' way): the same
		// frame.
		var gf []spec.GatewayField
		for id := 2; id <= 128; id++ {
			if v, ok := fields[id]; ok {
				gf = append(gf, spec.GatewayField{ID: id, Value: v})
			}
		}
		packed, err := e.link.packMAC(fields[0], gf)
		if err != nil || !bytes.Equal(packed, frame) {
			t.Fatalf("packMAC: %v\n%x\nwant\n%x", err, packed, frame)
		}
	}
}

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
	out       bytes.Buffer
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}
func (c *deadlineConn) Write(b []byte) (int, error) { return c.out.Write(b) }

// The writer's deadline is at most half a send timeout away: the
// library's Reply stops waiting one send timeout after its writer took
// the message, so every write ends (done or failed) while Reply still
// listens for it.
func TestWriterDeadlineWithinHalfASendTimeout(t *testing.T) {
	const st = 10 * time.Second
	l := newLink(Config{Name: "bank-a", SendTimeout: st}, nil, nil, zap.NewNop(), nil, time.Now)
	m := iso8583.NewMessage(spec.Gateway)
	for id, v := range map[int]string{0: spec.GWNetworkRequest, 7: "1204120000", 11: "000001", 70: spec.GWNetworkEcho} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	c := &deadlineConn{}
	before := time.Now()
	if err := (&writer{l: l}).WriteMessage(c, m); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if len(c.deadlines) != 1 || c.deadlines[0].Before(before.Add(st/2)) || c.deadlines[0].After(after.Add(st/2)) {
		t.Fatalf("write deadlines %v, want one at the call + %v", c.deadlines, st/2)
	}
	if c.out.Len() == 0 {
		t.Fatal("nothing written")
	}
}
