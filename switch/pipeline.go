package switching

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// cardOrganisation opens field 63 of every response (DESIGN §4.2: card
// organisation + message text): this switch's closed-loop cards.
const cardOrganisation = "CSC"

// exchange is one POS request on its way through the pipeline.
type exchange struct {
	s     *session
	req   *spec.POSMessage
	tx    spec.TxType
	orig  spec.TxType // the type a reversal reverses
	tpdu  spec.TPDU
	hdr   spec.Header
	start time.Time
	date  ledger.BusinessDate
	term  *Terminal // nil until looked up
	// fresh: the trace number is above every one the terminal sent in
	// this batch, so this cannot be a retransmission.
	fresh bool
	// replayed: the answer is the stored response of an earlier copy.
	replayed bool
	// unrouted: the card matched no route; it is journaled without its
	// card number (journalpolicy.go).
	unrouted bool
}

// reply is the pipeline's answer: a response message, and how to send it.
type reply struct {
	resp *spec.POSMessage
	// mac asks for field 64 under the terminal's MAK.
	mac bool
	// signOnAgain sets the header's processing requirement to 3.
	signOnAgain bool
	// packed, when set, is the response message already packed and
	// journaled by the pipeline, or a stored response being replayed.
	packed []byte
	// replayed marks a stored response sent again for a duplicate.
	replayed bool
}

func (x *exchange) answer(rc string) reply {
	return reply{resp: spec.NewPOSResponse(x.req, rc)}
}

// process runs one decoded POS request to its reply. Anything that moves
// money is committed, with its journal entries, before process returns.
func (p *posProtocol) process(x *exchange) reply {
	switch x.tx {
	case spec.EchoTest:
		return x.answer(spec.RCApproved)
	case spec.SignOn:
		return p.signOn(x)
	case spec.SignOff:
		return p.signOff(x)
	case spec.Unknown:
		// A combination of MTI, processing code, condition code and
		// 60.1 this dialect does not define.
		return x.answer(spec.RCFunctionNotSupported)
	}
	return p.transaction(x)
}

// gate runs the checks every transaction passes before any business
// logic: terminal (97, 03, 58), sign-on and batch (77), MAC (A0),
// permission (58). A nil reply means the request may proceed.
func (p *posProtocol) gate(x *exchange) *reply {
	sw := p.sw
	t := sw.terminals.get(x.req.TerminalID)
	if t == nil {
		r := x.answer(spec.RCTerminalNotFound)
		return &r
	}
	x.term = t
	if t.Merchant != x.req.MerchantID {
		r := x.answer(spec.RCInvalidMerchant)
		return &r
	}
	if t.Disabled {
		r := x.answer(spec.RCNotPermittedTerminal)
		return &r
	}
	if !t.SignedOn || x.req.Reserved60.Batch != batchString(t.Batch) {
		r := x.answer(spec.RCBatchMismatch)
		r.signOnAgain = true
		return &r
	}
	// Every message past sign-on carries a MAC: financial messages, batch
	// settlement (0500) and batch upload (0320) alike
	// (docs/pos-dialect.md#rules).
	{
		ok := false
		if block, err := spec.MACBlock(x.req.Raw); err == nil && x.req.MAC != nil {
			ok, err = sw.hsm.VerifyTerminalMAC(t.ID, block, x.req.MAC)
			if err != nil {
				sw.log.Warn("MAC verification failed", zap.String("terminal", t.ID), zap.Error(err))
				ok = false
			}
		}
		if !ok {
			r := x.answer(spec.RCMACError)
			return &r
		}
	}
	if !t.permits(x.tx) || (x.tx == spec.Reversal && !t.permits(x.orig)) {
		r := x.answer(spec.RCNotPermittedTerminal)
		r.mac = true
		return &r
	}
	return nil
}

func batchString(b uint32) string { return fmt.Sprintf("%06d", b) }

// duplicateKey names a request for duplicate detection (DESIGN §4.7):
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
// retransmission is byte-identical.
func (x *exchange) fingerprint() [journal.FingerprintLen]byte {
	block := x.req.Raw
	if b, err := spec.MACBlock(x.req.Raw); err == nil {
		block = b
	}
	return sha256.Sum256(block)
}

// transaction handles every financial and settlement message.
func (p *posProtocol) transaction(x *exchange) reply {
	sw := p.sw
	if r := p.gate(x); r != nil {
		return *r
	}
	if x.req.STAN == "" {
		return x.answer(spec.RCFormatError)
	}
	dupKey := x.duplicateKey()
	fp := x.fingerprint()
	fresh, release, err := p.claimNewSTAN(x)
	defer release()
	if err == nil && !fresh {
		var (
			rec   journal.ResponseRecord
			found bool
		)
		rec, found, err = sw.journal.GetResponse(dupKey)
		if err == nil && found {
			return p.replay(x, rec, fp)
		}
	}
	if err != nil {
		sw.log.Error("duplicate lookup failed", zap.String("terminal", x.term.ID), zap.Error(err))
		r := x.answer(spec.RCSystemMalfunction)
		r.mac = true
		return r
	}
	x.fresh = fresh
	switch x.tx {
	case spec.BatchSettlement:
		return p.settle(x, dupKey, fp)
	case spec.BatchUpload:
		return p.commitPlain(x, dupKey, fp, x.answer(spec.RCApproved))
	}

	pan := x.req.CardNumber()
	dest, rc := p.route(x, pan)
	if rc != "" {
		r := x.answer(rc)
		r.mac = true
		return r
	}
	rrn, err := sw.clock.NextRRN(x.date)
	if err != nil {
		sw.log.Error("no RRN", zap.Error(err))
		r := x.answer(spec.RCSystemMalfunction)
		r.mac = true
		return r
	}
	t, rc := p.transactionOf(x, pan, rrn)
	if rc == "" {
		rc = t.Check()
	}
	if rc != "" {
		r := x.answer(rc)
		r.mac = true
		return r
	}
	return p.execute(x, dest, t, dupKey, fp)
}

// route finds the destination that serves a transaction: routing names
// it, the registry holds it. A card no route covers is answered 14.
func (p *posProtocol) route(x *exchange, pan string) (txn.Destination, string) {
	name, err := p.sw.routes.Route(pan, x.tx.String(), x.req.MerchantID)
	if err != nil {
		x.unrouted = true
		return nil, spec.RCInvalidCard
	}
	dest, ok := p.sw.destinations.Get(name)
	if !ok {
		// routing.New checked every route against the registry.
		p.sw.log.Error("route names an unregistered destination", zap.String("destination", name))
		return nil, spec.RCSystemMalfunction
	}
	return dest, ""
}

// claimNewSTAN asks the terminal's trace watermark whether this request
// can be a retransmission at all.
func (p *posProtocol) claimNewSTAN(x *exchange) (bool, func(), error) {
	stan, err := strconv.ParseUint(x.req.STAN, 10, 32)
	if err != nil {
		return false, func() {}, nil
	}
	return p.sw.terminals.claimNewSTAN(x.term.ID, x.term.Batch, uint32(stan), func() (uint32, error) {
		var max uint64
		err := p.sw.journal.ResponseSTANs(x.term.ID, batchString(x.term.Batch), func(s string) bool {
			// Stored as the STAN, or a reversal's MTI + STAN: the trace
			// number is the last six digits either way.
			if len(s) >= 6 {
				if n, err := strconv.ParseUint(s[len(s)-6:], 10, 32); err == nil && n > max {
					max = n
				}
			}
			return true
		})
		return uint32(max), err
	})
}

// replay answers a duplicate: the stored response when the request is the
// same, 94 when the same terminal, batch, STAN and date carry different
// content (DESIGN §4.7).
func (p *posProtocol) replay(x *exchange, rec journal.ResponseRecord, fp [journal.FingerprintLen]byte) reply {
	if rec.Fingerprint != fp {
		r := x.answer(spec.RCDuplicate)
		r.mac = true
		return r
	}
	stored, err := p.sw.journal.Get(rec.ResponseSeq)
	if err != nil {
		p.sw.log.Error("stored response missing from the journal", zap.String("terminal", x.term.ID),
			zap.Uint64("seq", rec.ResponseSeq), zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	packed := stored.Raw
	if rec.MAKGeneration != x.term.KeyGeneration {
		// The terminal signed on since: MAC the stored response under
		// its current MAK, or it could not verify it.
		if block, err := spec.MACBlock(packed); err == nil {
			m, err := p.sw.hsm.GenerateTerminalMAC(x.term.ID, block)
			if err != nil || spec.PatchMAC(packed, m) != nil {
				r := x.answer(spec.RCSystemMalfunction)
				return r
			}
		}
	}
	resp, err := spec.DecodePOS(packed)
	if err != nil {
		p.sw.log.Error("stored response does not decode", zap.String("terminal", x.term.ID), zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	x.replayed = true
	return reply{resp: resp, packed: packed, replayed: true}
}

// transactionOf maps a POS request into the internal transaction: the one
// place the POS fields of a financial request are read. A non-empty rc
// answers a request whose numbers do not parse.
func (p *posProtocol) transactionOf(x *exchange, pan, rrn string) (*txn.Transaction, string) {
	req := x.req
	batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, spec.RCFormatError
	}
	dupKey := x.duplicateKey()
	t := &txn.Transaction{
		Type:            x.tx,
		OriginalType:    x.orig,
		Source:          "pos",
		Peer:            x.s.peer,
		Card:            pan,
		Amount:          ledger.Fen(req.Amount),
		HasAmount:       req.HasAmount,
		Terminal:        req.TerminalID,
		Merchant:        req.MerchantID,
		TerminalMayLoad: x.term.MayLoad,
		Batch:           uint32(batch),
		STAN:            uint32(stan),
		LocalDate:       req.LocalDate,
		LocalTime:       req.LocalTime,
		BusinessDate:    x.date,
		RRN:             rrn,
		AuthCode:        req.AuthCode,
		Key:             fmt.Sprintf("%s/%s/%s/%s", req.TerminalID, req.Reserved60.Batch, req.STAN, dupKey.Date),
		KnownNew:        x.fresh,
	}
	// An 8-byte PIN block travels in field 52, a 16-byte SM4 block in
	// field 62 as tag P4 (docs/pos-dialect.md#pin-blocks); never both.
	block := req.PINBlock
	sm4, present, err := spec.SM4PINBlock(req.Reserved62)
	switch {
	case err != nil, present && len(block) > 0:
		return nil, spec.RCFormatError
	case present:
		block = sm4
	}
	if len(block) > 0 {
		t.PIN = &txn.PINBlock{Terminal: x.term.ID, Block: block, SecurityControl: req.SecurityControl}
	}
	switch {
	case x.tx == spec.Reversal:
		// A reversal repeats its original's batch and STAN (60.2, 11).
		t.Original = txn.Original{Present: true, Batch: t.Batch, STAN: t.STAN}
	case req.Original.Present():
		ob, e1 := strconv.ParseUint(req.Original.Batch, 10, 32)
		os, e2 := strconv.ParseUint(req.Original.STAN, 10, 32)
		if e1 != nil || e2 != nil {
			return nil, spec.RCFormatError
		}
		t.Original = txn.Original{Present: true, Batch: uint32(ob), STAN: uint32(os), RRN: req.RRN}
		// The original's business date: from the RRN this switch
		// issued, else from the terminal's MMDD in field 61.
		od, ok := rrnDate(req.RRN, x.date)
		if !ok {
			od, ok = originalDate(req.Original.Date, x.date)
		}
		if ok {
			t.Original.Date = od
		}
	}
	return t, ""
}

// originalDate turns the MMDD of field 61 into a business date: the latest
// such day not after today.
func originalDate(mmdd string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
	if len(mmdd) != 4 {
		return 0, false
	}
	md, err := strconv.Atoi(mmdd)
	if err != nil {
		return 0, false
	}
	year := int(today / 10000)
	d := ledger.BusinessDate(year*10000 + md)
	if d > today {
		d = ledger.BusinessDate((year-1)*10000 + md)
	}
	return d, d.Valid()
}

// rrnDate reads the business date out of an RRN this switch issued: its
// first three digits are the day of the year of the business day, the
// latest such day not after today. It is preferred to the MMDD of field
// 61, which comes from the terminal's clock (and its time zone).
func rrnDate(rrn string, today ledger.BusinessDate) (ledger.BusinessDate, bool) {
	if len(rrn) != 12 {
		return 0, false
	}
	yday, err := strconv.Atoi(rrn[:3])
	if err != nil || yday < 1 || yday > 366 {
		return 0, false
	}
	year := int(today / 10000)
	for y := year; y >= year-1; y-- {
		t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, yday-1)
		if t.Year() != y {
			continue // day 366 of a common year
		}
		if d := ledger.DateOf(t); d <= today {
			return d, true
		}
	}
	return 0, false
}

// execute hands a transaction to its destination with the record step
// for it: the destination decides and calls rec.Commit, which commits the
// destination's writes, the journal entries and the stored response in
// one synced batch before the response is sent.
func (p *posProtocol) execute(x *exchange, dest txn.Destination, t *txn.Transaction, dupKey journal.DuplicateKey, fp [journal.FingerprintLen]byte) reply {
	sw := p.sw
	b := sw.db.NewBatch()
	defer b.Close()
	rec := &posRecord{p: p, x: x, t: t, b: b, dupKey: dupKey, fp: fp}
	_, err := dest.Execute(context.Background(), t, rec)
	if rec.out.resp != nil {
		// Recorded: the committed answer stands, whatever followed.
		if err != nil {
			sw.log.Error("destination failed after recording", zap.String("destination", dest.Name()), zap.Error(err))
		}
		return rec.out
	}
	if err == nil {
		err = txn.ErrNotRecorded
	}
	rc := txn.ResponseCodeOf(err)
	var rej *txn.Rejection
	if !errors.As(err, &rej) {
		sw.log.Error("transaction failed", zap.String("terminal", x.term.ID), zap.String("type", x.tx.String()),
			zap.String("destination", dest.Name()), panField(t.Card), zap.Error(err))
	}
	r := x.answer(rc)
	r.mac = true
	return r
}

// posRecord is the record step of one POS transaction (txn.Record).
type posRecord struct {
	p      *posProtocol
	x      *exchange
	t      *txn.Transaction
	b      *pebble.Batch
	dupKey journal.DuplicateKey
	fp     [journal.FingerprintLen]byte
	out    reply // set once the batch is committed
	called bool
}

func (r *posRecord) Batch() *pebble.Batch { return r.b }

// Commit builds the answer to the outcome, packs and MACs it, journals
// the request and answer, stores the answer for duplicates, and commits
// the batch with sync.
func (r *posRecord) Commit(o txn.Outcome) error {
	if r.called {
		return errors.New("transaction recorded twice")
	}
	r.called = true
	p, x := r.p, r.x
	resp := p.answerOutcome(x, r.t, o)
	packed, err := p.pack(x, resp)
	if err != nil {
		return err
	}
	seq, err := p.journalPair(r.b, x, resp, packed)
	if err != nil {
		return err
	}
	if err := p.storeResponse(r.b, x, r.dupKey, r.fp, resp.ResponseCode, seq); err != nil {
		return err
	}
	if x.tx == spec.Consume {
		maybeCrash(crashBeforeCommit)
	}
	if err := r.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if x.tx == spec.Consume {
		maybeCrash(crashAfterCommit)
	}
	r.out = reply{resp: resp, packed: packed}
	return nil
}

// answerOutcome maps a destination's outcome into the POS response: the
// one place the POS fields of a financial answer are written.
func (p *posProtocol) answerOutcome(x *exchange, t *txn.Transaction, o txn.Outcome) *spec.POSMessage {
	resp := spec.NewPOSResponse(x.req, o.ResponseCode)
	resp.RRN = t.RRN
	settle := o.SettlementDate
	if settle == 0 {
		settle = x.date
	}
	resp.SettlementDate = settle.String()[4:]
	if o.Approved() && o.AuthCode != "" {
		resp.AuthCode = o.AuthCode
	}
	if len(o.Balances) > 0 {
		if f54, err := balancesField(o.Balances); err == nil {
			resp.Balances = f54
		}
	}
	resp.Reserved63 = p.receiptText(x)
	return resp
}

// balancesField builds field 54: the available balance of each account.
func balancesField(bs []txn.Balance) (string, error) {
	out := make([]spec.Balance, len(bs))
	for i, b := range bs {
		out[i] = spec.Balance{AccountType: string(b.Account), AmountType: spec.AmountTypeAvailable,
			Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Amount)}
	}
	return spec.FormatBalances(out)
}

// receiptText is field 63 of a response: the card organisation and the
// merchant's name for the receipt.
func (p *posProtocol) receiptText(x *exchange) string {
	m, ok := p.sw.ledger.Merchant(x.req.MerchantID)
	if !ok {
		return cardOrganisation
	}
	text := cardOrganisation + m.Name
	if len(text) > 163 {
		text = text[:163]
	}
	for i := 0; i < len(text); i++ {
		if text[i] < 0x20 || text[i] > 0x7E {
			return cardOrganisation // the field is ASCII only
		}
	}
	return text
}

// pack packs a response with its MAC under the terminal's current MAK.
func (p *posProtocol) pack(x *exchange, resp *spec.POSMessage) ([]byte, error) {
	return spec.EncodePOSWithMAC(resp, func(block []byte) ([]byte, error) {
		return p.sw.hsm.GenerateTerminalMAC(x.term.ID, block)
	})
}

// settle answers a batch settlement (0500): the terminal's totals in field
// 48 against the ledger's own for the batch; flag 1 balanced, 2 not.
func (p *posProtocol) settle(x *exchange, dupKey journal.DuplicateKey, fp [journal.FingerprintLen]byte) reply {
	theirs, err := spec.ParseSettlement(x.req.AdditionalData)
	if err != nil {
		r := x.answer(spec.RCFormatError)
		r.mac = true
		return r
	}
	ours, err := p.sw.ledger.BatchTotals(x.term.ID, x.term.Batch)
	if err != nil {
		p.sw.log.Error("batch totals", zap.String("terminal", x.term.ID), zap.Error(err))
		r := x.answer(spec.RCSystemMalfunction)
		r.mac = true
		return r
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
	r := x.answer(spec.RCApproved)
	if r.resp.AdditionalData, err = spec.FormatSettlement(answer); err != nil {
		r = x.answer(spec.RCFormatError)
	}
	p.sw.log.Info("batch settlement", zap.String("terminal", x.term.ID), zap.Uint32("batch", x.term.Batch),
		zap.Bool("balanced", flag == spec.SettlementBalanced))
	return p.commitPlain(x, dupKey, fp, r)
}

// commitPlain journals a request and its response, with the duplicate
// record, for a message that moves no money, and returns the reply.
func (p *posProtocol) commitPlain(x *exchange, dupKey journal.DuplicateKey, fp [journal.FingerprintLen]byte, r reply) reply {
	sw := p.sw
	r.resp.SettlementDate = x.date.String()[4:]
	packed, err := p.pack(x, r.resp)
	if err != nil {
		sw.log.Error("pack response", zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	b := sw.db.NewBatch()
	defer b.Close()
	seq, err := p.journalPair(b, x, r.resp, packed)
	if err == nil {
		err = p.storeResponse(b, x, dupKey, fp, r.resp.ResponseCode, seq)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		sw.log.Error("journal commit", zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	return reply{resp: r.resp, packed: packed}
}

// journalPair writes the request and response entries of an exchange into
// b. PIN block, track data, IC data and keys are removed first.
func (p *posProtocol) journalPair(b *pebble.Batch, x *exchange, resp *spec.POSMessage, packed []byte) (responseSeq uint64, err error) {
	now := time.Now()
	in := p.entry(x, x.req, journal.In, x.start)
	in.Raw = redacted(x.req)
	out := p.entry(x, resp, journal.Out, now)
	if x.replayed {
		out.Flags |= journal.FlagReplayed
	}
	if resp.Reserved62 != nil {
		out.Raw = redacted(resp)
	} else {
		out.Raw = packed
	}
	if x.unrouted {
		in.Raw, out.Raw = withoutCardNumber(x.req), withoutCardNumber(resp)
	}
	_, seq, err := p.sw.journal.AppendPair(b, in, out)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	return seq, nil
}

// storeResponse writes the duplicate record of an answered request: the
// request's fingerprint and where its response is in the journal (the
// response bytes themselves are in that entry, not copied again).
func (p *posProtocol) storeResponse(b *pebble.Batch, x *exchange, dupKey journal.DuplicateKey, fp [journal.FingerprintLen]byte, rc string, responseSeq uint64) error {
	return p.sw.journal.PutResponse(b, dupKey, journal.ResponseRecord{
		Fingerprint: fp, ResponseCode: rc, ResponseSeq: responseSeq,
		MAKGeneration: x.term.KeyGeneration, Time: time.Now(),
	})
}

func (p *posProtocol) entry(x *exchange, m *spec.POSMessage, dir journal.Direction, at time.Time) *journal.Entry {
	return &journal.Entry{
		Direction:    dir,
		Listener:     "pos",
		Peer:         x.s.peer,
		Terminal:     x.req.TerminalID,
		Merchant:     x.req.MerchantID,
		MTI:          m.MTI,
		STAN:         x.req.STAN,
		Batch:        x.req.Reserved60.Batch,
		RRN:          m.RRN,
		TxType:       x.tx.String(),
		ResponseCode: m.ResponseCode,
		Time:         at,
		BusinessDate: x.date.String(),
	}
}

// redacted packs m without the fields that must never be stored: the PIN
// block (52), track 2 (35), IC data (55, which may hold track-equivalent
// data) and working keys (62). Messages without them keep their bytes.
func redacted(m *spec.POSMessage) []byte {
	if m.PINBlock == nil && m.Track2 == "" && m.ICData == nil && m.Reserved62 == nil && m.Raw != nil {
		return m.Raw
	}
	c := *m
	c.PINBlock, c.Track2, c.ICData, c.Reserved62 = nil, "", nil, nil
	b, err := spec.EncodePOS(&c)
	if err != nil {
		return nil
	}
	return b
}

// journalAlone journals an exchange that was answered without a commit
// of its own (rejections before the ledger, network management). Nothing
// of value depends on these entries, so they ride the next synced commit.
func (p *posProtocol) journalAlone(x *exchange, resp *spec.POSMessage, packed []byte) {
	b := p.sw.db.NewBatch()
	defer b.Close()
	_, err := p.journalPair(b, x, resp, packed)
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		p.sw.log.Error("journal", zap.Error(err))
	}
}

// signOn opens a new batch and hands the terminal fresh working keys under
// its TMK (DESIGN §4.5).
func (p *posProtocol) signOn(x *exchange) reply {
	sw := p.sw
	t := sw.terminals.get(x.req.TerminalID)
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
	t, err := sw.terminals.update(t.ID, func(t *Terminal) error {
		// Under the terminal's lock: two copies of one sign-on cannot
		// both pass the replay rule.
		if stamp != "" && stamp <= t.LastSignOn {
			return errSignOnReplay
		}
		var err error
		if keys, err = sw.hsm.SignOn(t.ID, mode); err != nil {
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
		sw.log.Warn("sign-on refused", zap.String("terminal", x.term.ID), zap.String("mode", mode), zap.Error(err))
		return x.answer(spec.RCFunctionNotSupported)
	case err != nil:
		sw.log.Error("sign-on failed", zap.String("terminal", x.req.TerminalID), zap.String("mode", mode), zap.Error(err))
		return x.answer(spec.RCSystemMalfunction)
	}
	x.term = t
	r := x.answer(spec.RCApproved)
	r.resp.Reserved60 = spec.Field60{Type: x.req.Reserved60.Type, Batch: batchString(t.Batch), NetworkCode: mode}
	r.resp.Reserved62 = keys
	now := time.Now()
	r.resp.LocalTime, r.resp.LocalDate = now.Format("150405"), now.Format("0102")
	sw.log.Info("terminal signed on", zap.String("terminal", t.ID), zap.String("mode", mode), zap.Uint32("batch", t.Batch))
	return r
}

func (p *posProtocol) signOff(x *exchange) reply {
	t := p.sw.terminals.get(x.req.TerminalID)
	if t == nil {
		return x.answer(spec.RCTerminalNotFound)
	}
	if t.Merchant != x.req.MerchantID {
		return x.answer(spec.RCInvalidMerchant)
	}
	if _, err := p.sw.terminals.update(t.ID, func(t *Terminal) error { t.SignedOn = false; return nil }); err != nil {
		return x.answer(spec.RCSystemMalfunction)
	}
	return x.answer(spec.RCApproved)
}

// packReply turns a reply into response bytes, MACing it when asked and
// possible.
func (p *posProtocol) packReply(x *exchange, r reply) ([]byte, error) {
	if r.packed != nil {
		return r.packed, nil
	}
	if r.mac && x.term != nil && x.term.SignedOn {
		if packed, err := p.pack(x, r.resp); err == nil {
			return packed, nil
		}
	}
	r.resp.MAC = nil
	return spec.EncodePOS(r.resp)
}

// committed reports whether a reply's journal entries were committed by
// the pipeline already (the stored-response path), so the acceptor does
// not journal it again. A replayed duplicate is journaled as a new pair.
func (x *exchange) committed(r reply) bool { return r.packed != nil && !r.replayed }
