package pos

import (
	"github.com/cardswitch/cardswitch/switch/transport"

	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/local"
	"github.com/cardswitch/cardswitch/switch/txn"
	"go.uber.org/zap"
)

// exchange is one POS request on its way through the flow (handle in
// protocol.go). Each step fills in what it established.
type exchange struct {
	s     *transport.Session
	req   *spec.POSMessage
	tx    spec.TxType
	orig  spec.TxType // the type a reversal reverses
	tpdu  spec.TPDU
	start time.Time
	date  ledger.BusinessDate
	// hdr is the header of the answer: the request's, with the
	// processing requirement set to 3 when the terminal must sign on
	// again.
	hdr spec.Header
	// term is the terminal, once looked up.
	term *terminals.Terminal
	// macTerm names the terminal whose MAK MACs the answer: set by
	// authenticate, "" until the request is authenticated (then seal
	// sends no MAC).
	macTerm string
	// fresh: the trace number is above every one the terminal sent in
	// this batch, so this cannot be a retransmission.
	fresh bool
	// unrouted: the card matched no route; it is journaled without its
	// card number (journalpolicy.go).
	unrouted bool
	// dest names the destination the route chose (for the log).
	dest string
	// res is the journal sequences the RRN issued to the request names:
	// its pair is journaled there (docs/journal.md#sequences).
	res journal.Reservation
	// txn, rec, ctx, in and out are the exchange's transaction, record
	// step, destination's context and journal entries, allocated with
	// it: one allocation per request for all of them
	// (docs/BENCHMARKS.md#where-the-time-goes).
	txn     txn.Transaction
	rec     record
	ctx     answerContext
	in, out journal.Entry
	written written
	// resp is the answer a destination's outcome maps into
	// (answerOutcome), allocated with the exchange.
	resp spec.POSMessage
}

// answer is the response to the request with response code rc.
func (x *exchange) answer(rc string) *spec.POSMessage {
	return spec.NewPOSResponse(x.req, rc)
}

// process runs the steps from authenticate to record. Every path ends in
// the record step: rec.decide for an answer that decides the request (a
// destination reaches it through rec.Commit), rec.answer for one that
// decides nothing.
func (p *Protocol) process(x *exchange, rec *record) {
	switch x.tx {
	case spec.EchoTest:
		rec.answer(x.answer(spec.RCApproved))
	case spec.SignOn:
		rec.answer(p.signOn(x))
	case spec.SignOff:
		rec.answer(p.signOff(x))
	case spec.Unknown:
		// A combination of MTI, processing code, condition code and
		// 60.1 this dialect does not define.
		rec.answer(x.answer(spec.RCFunctionNotSupported))
	default:
		p.transaction(x, rec)
	}
}

// transaction handles every financial and settlement message.
func (p *Protocol) transaction(x *exchange, rec *record) {
	if rc := p.authenticate(x); rc != "" {
		rec.answer(x.answer(rc))
		return
	}
	if x.req.STAN == "" {
		rec.answer(x.answer(spec.RCFormatError))
		return
	}
	claim, done := p.dedupe(x, rec)
	defer claim.Release()
	if done {
		return
	}
	switch x.tx {
	case spec.BatchSettlement:
		p.settle(x, rec)
		return
	case spec.BatchUpload:
		p.decideOrFail(x, rec, x.answer(spec.RCApproved))
		return
	}
	pan := x.req.CardNumber()
	dest, rc := p.route(x, pan)
	if rc != "" {
		rec.answer(x.answer(rc))
		return
	}
	rrn, err := p.clock.ReserveRRN(x.date, &x.res)
	if err != nil {
		p.log.Error("no RRN", zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
		return
	}
	t, rc := p.transactionOf(x, pan, rrn)
	if rc == "" {
		rc = t.Check()
	}
	if rc != "" {
		rec.answer(x.answer(rc))
		return
	}
	if d, ok := p.dests.Pinned(t); ok {
		dest = d
	} else if FollowsOriginal(t.Type) {
		if dest, rc = p.originalDestination(t, dest); rc != "" {
			rec.answer(x.answer(rc))
			return
		}
	}
	p.execute(x, rec, dest, t)
}

// FollowsOriginal reports whether a transaction of type typ acts on an
// original (field 61, or a reversal's own numbering) and so goes where its
// original went.
func FollowsOriginal(typ spec.TxType) bool {
	switch typ {
	case spec.Reversal, spec.ConsumeVoid, spec.Refund, spec.PreAuthCancel, spec.PreAuthCompletion, spec.CompletionVoid:
		return true
	}
	return false
}

// originalDestination sends a reversal, void, refund, completion or
// cancel where its original went, whatever the routes say now: a reload
// may have moved the card's BIN. An original the links' journal holds was
// forwarded on that link, and what follows it must reach the bank that
// holds the money; any other original was decided by the local ledger (or
// nowhere), and what follows goes there — the ledger approves the
// reversal of an unknown original itself, while a link would answer 00
// with nothing done and the card would lose the money
// (docs/gateway-links.md). An original forwarded on a link no longer
// configured cannot be acted on: answered 96, logged.
func (p *Protocol) originalDestination(t *txn.Transaction, routed txn.Destination) (txn.Destination, string) {
	if p.originals == nil {
		return routed, ""
	}
	batch, stan := t.Batch, t.STAN
	if t.Original.Present {
		batch, stan = t.Original.Batch, t.Original.STAN
	}
	var (
		name  string
		found bool
		err   error
	)
	if t.Type == spec.Refund {
		// A refund names its consume by RRN, at any terminal.
		name, found, err = p.originals.RefundedOn(t.Terminal, batch, stan, t.Original.RRN)
	} else {
		name, found, err = p.originals.ForwardedOn(t.Terminal, batch, stan)
	}
	if err != nil {
		p.log.Error("original's destination: links journal lookup", zap.String("terminal", t.Terminal), zap.Error(err))
		return nil, spec.RCSystemMalfunction
	}
	if t.Type == spec.PreAuthCompletion || t.Type == spec.PreAuthCancel {
		// As at the local ledger, a completion or cancel may come from
		// another terminal of the pre-auth's merchant: its field 61 is
		// then that terminal's batch and STAN, which may also number an
		// unrelated request of this terminal (docs/gateway-links.md).
		// Looked up whatever the card routes to now: a reload may have
		// moved its BIN off the link the pre-auth went out on.
		pa, ok1 := p.originals.(PreAuths)
		mt, ok2 := p.terminals.(MerchantTerminals)
		if ok1 && ok2 {
			at, link, ok, err := pa.PreAuthAt([]string{t.Terminal}, batch, stan, t.Card, t.AuthCode)
			atLedger := false
			if err == nil && !ok && p.localPreAuths != nil {
				// A pre-auth of the local ledger at this terminal: the
				// other terminals' links records are not probed for it.
				atLedger, err = p.localPreAuths.LocalPreAuth(t.Terminal, batch, stan, t.Card)
			}
			if err == nil && !ok && !atLedger {
				at, link, ok, err = pa.PreAuthAt(mt.OfMerchant(t.Merchant, t.Terminal, maxPreAuthTerminals), batch, stan, t.Card, t.AuthCode)
			}
			if err != nil {
				p.log.Error("original's destination: links journal lookup", zap.String("terminal", t.Terminal), zap.Error(err))
				return nil, spec.RCSystemMalfunction
			}
			if ok {
				name, found = link, true
				if at != t.Terminal {
					t.Original.Terminal = at
				}
			}
		}
	}
	if !found {
		name = local.Name
	}
	if name == routed.Name() {
		return routed, ""
	}
	if d, ok := p.dests.Destination(name); ok {
		return d, ""
	}
	p.log.Error("follow-up of a transaction forwarded on a gateway link no longer configured",
		zap.String("type", t.Type.String()), zap.String("link", name), zap.String("terminal", t.Terminal))
	return nil, spec.RCSystemMalfunction
}

// authenticate runs the checks every transaction passes before any
// business logic: terminal (97, 03, 58), sign-on and batch (77), MAC
// (A0), permission (58). It returns "" when the request may proceed; from
// then on every answer carries a MAC (x.macTerm).
func (p *Protocol) authenticate(x *exchange) string {
	t := p.terminals.Get(x.req.TerminalID)
	if t == nil {
		return spec.RCTerminalNotFound
	}
	x.term = t
	if t.Merchant != x.req.MerchantID {
		return spec.RCInvalidMerchant
	}
	if t.Disabled {
		return spec.RCNotPermittedTerminal
	}
	if !t.SignedOn || !isBatch(x.req.Reserved60.Batch, t.Batch) {
		x.hdr = x.hdr.WithProcessingRequirement(spec.ProcessingSignOn)
		return spec.RCBatchMismatch
	}
	// Every message past sign-on carries a MAC: financial messages, batch
	// settlement (0500) and batch upload (0320) alike
	// (docs/pos-dialect.md#rules).
	{
		ok := false
		if block, err := spec.MACBlock(x.req.Raw); err == nil && x.req.MAC != nil {
			ok, err = p.hsm.VerifyTerminalMAC(t.ID, block, x.req.MAC)
			if err != nil {
				p.log.Warn("MAC verification failed", zap.String("terminal", t.ID), zap.Error(err))
				ok = false
			}
		}
		if !ok {
			return spec.RCMACError
		}
	}
	x.macTerm = t.ID
	// A reversal is always approved (docs/pos-dialect.md): it undoes only
	// what this terminal was answered for under its batch and STAN, so it
	// is never refused for a permission the terminal has lost since.
	if x.tx != spec.Reversal && !t.Permits(x.tx) {
		return spec.RCNotPermittedTerminal
	}
	return ""
}

func batchString(b uint32) string { return fmt.Sprintf("%06d", b) }

// isBatch reports whether s is batchString(b), without formatting it:
// every transaction compares its 60.2 with the terminal's batch.
func isBatch(s string, b uint32) bool {
	if b > 999999 {
		return s == batchString(b)
	}
	if len(s) != 6 {
		return false
	}
	for i := 5; i >= 0; i-- {
		if s[i] != byte('0'+b%10) {
			return false
		}
		b /= 10
	}
	return true
}

// duplicateKey names a request for duplicate detection (docs/pos-dialect.md#rules):
// terminal, batch, STAN and the terminal's date, whatever the message
// type, so that another request reusing a STAN is a duplicate with other
// content (94). A reversal is the one exception: it carries its
// original's STAN by rule, so its key is the reversal MTI + STAN.
func (x *exchange) duplicateKey() journal.DuplicateKey {
	date := x.req.LocalDate
	if date == "" {
		date = x.date.String()
	}
	stan := x.req.STAN
	if x.tx == spec.Reversal {
		stan = x.req.MTI + stan
	}
	return journal.DuplicateKey{
		Terminal: x.req.TerminalID,
		Batch:    x.req.Reserved60.Batch,
		STAN:     stan,
		Date:     date,
	}
}

// fingerprint hashes the request as sent, less its MAC: a true
// retransmission is byte-identical. The duplicate record keeps its first
// 16 bytes (journal.StoredFingerprintLen: why 128 bits suffice).
func (x *exchange) fingerprint() [journal.FingerprintLen]byte {
	block := x.req.Raw
	if b, err := spec.MACBlock(x.req.Raw); err == nil {
		block = b
	}
	return sha256.Sum256(block)
}

// dedupe identifies the request (duplicate key and fingerprint, kept in
// rec) and answers a duplicate: the stored response again, or 94 for
// other content under the same name. done reports that it answered.
// release frees the terminal's trace-number claim; call it once the
// answer is recorded.
func (p *Protocol) dedupe(x *exchange, rec *record) (claim terminals.STANClaim, done bool) {
	rec.dupKey, rec.fp = x.duplicateKey(), x.fingerprint()
	fresh, claim, err := p.claimNewSTAN(x)
	if err == nil && !fresh {
		var (
			stored journal.ResponseRecord
			found  bool
		)
		stored, found, err = p.journal.GetResponse(rec.dupKey)
		if err == nil && found {
			p.replay(x, rec, stored)
			return claim, true
		}
	}
	if err != nil {
		p.log.Error("duplicate lookup failed", zap.String("terminal", x.term.ID), zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
		return claim, true
	}
	x.fresh = fresh
	return claim, false
}

// claimNewSTAN asks the terminal's trace watermark whether this request
// can be a retransmission at all.
func (p *Protocol) claimNewSTAN(x *exchange) (bool, terminals.STANClaim, error) {
	stan, err := strconv.ParseUint(x.req.STAN, 10, 32)
	if err != nil {
		return false, terminals.STANClaim{}, nil
	}
	return p.terminals.ClaimNewSTAN(x.term.ID, x.term.Batch, uint32(stan), x.tx == spec.Reversal, p.loadSTANs)
}

// storedSTANMax is the highest trace number the journal holds an answer
// for in a terminal's batch, and the highest of its reversals: the
// watermarks ClaimNewSTAN loads (p.loadSTANs, this method bound once, so
// that a claim makes no closure).
func (p *Protocol) storedSTANMax(id string, batch uint32) (top, reversed uint32, err error) {
	var t, r uint64
	err = p.journal.ResponseSTANs(id, batchString(batch), func(s string) bool {
		// Stored as the STAN, or a reversal's MTI + STAN: the trace
		// number is the last six digits either way.
		if len(s) >= 6 {
			if n, err := strconv.ParseUint(s[len(s)-6:], 10, 32); err == nil {
				t = max(t, n)
				if len(s) > 6 {
					r = max(r, n)
				}
			}
		}
		return true
	})
	return uint32(t), uint32(r), err
}

// replay answers a duplicate: the stored response when the request is the
// same, 94 when the same terminal, batch, STAN and date carry different
// content (docs/pos-dialect.md, duplicates). The stored response is sealed
// again, so it carries a MAC under the terminal's current MAK even when
// the terminal signed on since.
func (p *Protocol) replay(x *exchange, rec *record, stored journal.ResponseRecord) {
	// A record keeps the first 16 bytes of the fingerprint, one written
	// before all 32: compared on what it holds (docs/journal.md).
	if !stored.MatchesFingerprint(rec.fp) {
		rec.answer(x.answer(spec.RCDuplicate))
		return
	}
	e, err := p.journal.Get(stored.ResponseSeq)
	if err != nil {
		p.log.Error("stored response missing from the journal", zap.String("terminal", x.term.ID),
			zap.Uint64("seq", stored.ResponseSeq), zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
		return
	}
	resp, err := spec.DecodePOS(e.Raw)
	if err != nil {
		p.log.Error("stored response does not decode", zap.String("terminal", x.term.ID), zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
		return
	}
	rec.replayed = true
	rec.answer(resp)
}

// route finds the destination that serves a transaction: routing names
// it, the registry holds it. A card no route covers is answered 14.
func (p *Protocol) route(x *exchange, pan string) (txn.Destination, string) {
	name, err := p.routes.Route(pan, x.tx.String(), x.req.MerchantID)
	x.dest = name
	if err != nil {
		x.unrouted = true
		return nil, spec.RCInvalidCard
	}
	dest, ok := p.dests.Destination(name)
	if !ok {
		// routing.New checked every route against the registry.
		p.log.Error("route names an unregistered destination", zap.String("destination", name))
		return nil, spec.RCSystemMalfunction
	}
	return dest, ""
}

// execute hands a transaction to its destination with the record step:
// the destination decides and calls rec.Commit, which commits the
// destination's writes with the journal entries and the stored response
// in one synced batch. An error is answered with its response code
// (txn.ResponseCodeOf) and decides nothing. The destination's context
// ends with the request's answer budget (pos.answer_timeout, counted
// from the frame's arrival), so that no destination holds the terminal
// longer.
func (p *Protocol) execute(x *exchange, rec *record, dest txn.Destination, t *txn.Transaction) {
	rec.t = t
	ctx := &x.ctx
	ctx.deadline = x.start.Add(p.answerTimeout)
	defer ctx.stop()
	_, err := dest.Execute(ctx, t, rec)
	if rec.decided {
		// The committed answer stands, whatever followed.
		if err != nil {
			p.log.Error("destination failed after recording", zap.String("destination", dest.Name()), zap.Error(err))
		}
		return
	}
	if err == nil {
		err = txn.ErrNotRecorded
	}
	var rej *txn.Rejection
	if !errors.As(err, &rej) {
		p.log.Error("transaction failed", zap.String("terminal", x.term.ID), zap.String("type", x.tx.String()),
			zap.String("destination", dest.Name()), cardField(t.Card), zap.Error(err))
	}
	rec.answer(x.answer(txn.ResponseCodeOf(err)))
}

// decideOrFail records an answer the pipeline decides itself (settlement,
// batch upload); when it cannot be recorded, 96 decides nothing.
func (p *Protocol) decideOrFail(x *exchange, rec *record, resp *spec.POSMessage) {
	resp.SettlementDate = x.date.String()[4:]
	if err := rec.decide(resp); err != nil {
		p.log.Error("record answer", zap.String("terminal", x.term.ID), zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
	}
}

// settle answers a batch settlement (0500): the terminal's totals in field
// 48 against the ledger's own for the batch; flag 1 balanced, 2 not. The
// answer is stored for duplicates; totals that do not parse, or a ledger
// that cannot count, decide nothing.
func (p *Protocol) settle(x *exchange, rec *record) {
	theirs, err := spec.ParseSettlement(x.req.AdditionalData)
	if err != nil {
		rec.answer(x.answer(spec.RCFormatError))
		return
	}
	ours, err := p.ledger.BatchTotals(x.term.ID, x.term.Batch)
	if err != nil {
		p.log.Error("batch totals", zap.String("terminal", x.term.ID), zap.Error(err))
		rec.answer(x.answer(spec.RCSystemMalfunction))
		return
	}
	d := theirs.Domestic
	flag := byte(spec.SettlementBalanced)
	if d.DebitCount != ours.DebitCount || int64(d.DebitAmount) != int64(ours.DebitAmount) ||
		d.CreditCount != ours.CreditCount || int64(d.CreditAmount) != int64(ours.CreditAmount) {
		flag = spec.SettlementUnbalanced
	}
	answer := theirs
	answer.Domestic.Flag = flag
	if answer.Foreign.Flag == spec.SettlementRequested {
		answer.Foreign.Flag = spec.SettlementBalanced
	}
	resp := x.answer(spec.RCApproved)
	if resp.AdditionalData, err = spec.FormatSettlement(answer); err != nil {
		resp = x.answer(spec.RCFormatError)
	}
	p.log.Info("batch settlement", zap.String("terminal", x.term.ID), zap.Uint32("batch", x.term.Batch),
		zap.Bool("balanced", flag == spec.SettlementBalanced))
	p.decideOrFail(x, rec, resp)
}

// signOn opens a new batch and hands the terminal fresh working keys under
// its TMK (docs/hsm.md#sign-on).
func (p *Protocol) signOn(x *exchange) *spec.POSMessage {
	t := p.terminals.Get(x.req.TerminalID)
	switch {
	case t == nil:
		return x.answer(spec.RCTerminalNotFound)
	case t.Merchant != x.req.MerchantID:
		return x.answer(spec.RCInvalidMerchant)
	case t.Disabled:
		return x.answer(spec.RCNotPermittedTerminal)
	}
	x.term = t
	// The proof, or a legacy terminal's network, before anything changes
	// (docs/pos-dialect.md#sign-on-proof).
	stamp, reason := p.authenticateSignOn(x, t)
	if reason != "" {
		return p.refuseSignOn(x, t, reason)
	}
	mode := x.req.Reserved60.NetworkCode
	var keys []byte
	t, err := p.terminals.Update(t.ID, func(t *terminals.Terminal) error {
		// Under the terminal's lock: two copies of one sign-on cannot
		// both pass the replay rule.
		if stamp != "" && stamp <= t.LastSignOn {
			return errSignOnReplay
		}
		var err error
		if keys, err = p.hsm.SignOn(t.ID, mode); err != nil {
			return err
		}
		t.Batch = t.Batch%999999 + 1
		t.SignedOn = true
		t.KeyMode = mode
		t.KeyGeneration++
		if stamp != "" {
			t.LastSignOn = stamp
		}
		return nil
	})
	switch {
	case errors.Is(err, errSignOnReplay):
		return p.refuseSignOn(x, x.term, signOnReplay)
	case errors.Is(err, hsm.ErrUnsupported):
		p.log.Warn("sign-on refused", zap.String("terminal", x.term.ID), zap.String("mode", mode), zap.Error(err))
		return x.answer(spec.RCFunctionNotSupported)
	case err != nil:
		p.log.Error("sign-on failed", zap.String("terminal", x.req.TerminalID), zap.String("mode", mode), zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	x.term = t
	r := x.answer(spec.RCApproved)
	r.Reserved60 = spec.Field60{Type: x.req.Reserved60.Type, Batch: batchString(t.Batch), NetworkCode: mode}
	r.Reserved62 = keys
	now := time.Now()
	r.LocalTime, r.LocalDate = now.Format("150405"), now.Format("0102")
	p.log.Info("terminal signed on", zap.String("terminal", t.ID), zap.String("mode", mode), zap.Uint32("batch", t.Batch))
	return r
}

func (p *Protocol) signOff(x *exchange) *spec.POSMessage {
	t := p.terminals.Get(x.req.TerminalID)
	if t == nil {
		return x.answer(spec.RCTerminalNotFound)
	}
	if t.Merchant != x.req.MerchantID {
		return x.answer(spec.RCInvalidMerchant)
	}
	// Signing a terminal off stops its transactions (77 until it signs on
	// again), so the 0820 of a signed-on terminal carries a MAC under its
	// MAK, like everything after sign-on (docs/pos-dialect.md#rules).
	if t.SignedOn {
		ok := false
		if block, err := spec.MACBlock(x.req.Raw); err == nil && x.req.MAC != nil {
			if ok, err = p.hsm.VerifyTerminalMAC(t.ID, block, x.req.MAC); err != nil {
				ok = false
			}
		}
		if !ok {
			p.metrics.SignOnRejected.WithLabelValues(signOffMAC).Inc()
			p.log.Warn("sign-off refused", zap.String("terminal", t.ID), zap.String("reason", signOffMAC), zap.String("peer", x.s.Peer))
			return x.answer(spec.RCMACError)
		}
	}
	if _, err := p.terminals.Update(t.ID, func(t *terminals.Terminal) error { t.SignedOn = false; return nil }); err != nil {
		return x.answer(spec.RCSystemMalfunction)
	}
	return x.answer(spec.RCApproved)
}
