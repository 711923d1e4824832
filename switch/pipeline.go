package switching

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
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
	// Financial messages always carry a MAC; settlement and upload are
	// checked when they do.
	needMAC := x.tx != spec.BatchSettlement && x.tx != spec.BatchUpload
	if x.req.MAC != nil || needMAC {
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
	if _, err := sw.routes.Route(pan, x.tx.String(), x.req.MerchantID); err != nil {
		r := x.answer(spec.RCInvalidCard)
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
	lreq, rc := p.ledgerRequest(x, pan, rrn)
	if rc != "" {
		r := x.answer(rc)
		r.mac = true
		return r
	}
	return p.execute(x, lreq, rrn, dupKey, fp)
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

// ledgerRequest builds the ledger operation of a POS request. A non-empty
// rc declines it before the ledger (malformed original data, missing
// amount).
func (p *posProtocol) ledgerRequest(x *exchange, pan, rrn string) (ledger.Request, string) {
	req := x.req
	batch, err1 := strconv.ParseUint(req.Reserved60.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, spec.RCFormatError
	}
	c := ledger.Common{
		Key:      fmt.Sprintf("%s/%s/%s/%s", req.TerminalID, req.Reserved60.Batch, req.STAN, x.duplicateKey().Date),
		Date:     x.date,
		Terminal: req.TerminalID,
		Merchant: req.MerchantID,
		Batch:    uint32(batch),
		STAN:     uint32(stan),
		RRN:      rrn,
		KnownNew: x.fresh,
	}
	amount := ledger.Fen(req.Amount)
	needsAmount := x.tx != spec.BalanceInquiry
	if needsAmount && !req.HasAmount {
		return nil, spec.RCInvalidAmount
	}
	pin, rc := p.verifyPIN(x, pan)
	if rc != "" {
		return nil, rc
	}
	var orig ledger.TxnRef
	if req.Original.Present() {
		ob, e1 := strconv.ParseUint(req.Original.Batch, 10, 32)
		os, e2 := strconv.ParseUint(req.Original.STAN, 10, 32)
		if e1 != nil || e2 != nil {
			return nil, spec.RCFormatError
		}
		orig = ledger.TxnRef{Terminal: req.TerminalID, Batch: uint32(ob), STAN: uint32(os)}
	}
	needOriginal := func() bool { return req.Original.Present() }
	switch x.tx {
	case spec.BalanceInquiry:
		return &ledger.BalanceInquiry{Common: c, PAN: pan, PIN: pin}, ""
	case spec.Consume:
		return &ledger.Consume{Common: c, PAN: pan, Amount: amount, PIN: pin}, ""
	case spec.ConsumeVoid:
		if !needOriginal() {
			return nil, spec.RCFormatError
		}
		return &ledger.Void{Common: c, PAN: pan, Amount: amount, Original: orig, PIN: pin}, ""
	case spec.Refund:
		od, ok := rrnDate(req.RRN, x.date)
		if !ok {
			od, ok = originalDate(req.Original.Date, x.date)
		}
		if !needOriginal() || !ok || req.RRN == "" {
			return nil, spec.RCFormatError
		}
		return &ledger.Refund{Common: c, PAN: pan, Amount: amount, OriginalRRN: req.RRN, OriginalDate: od, PIN: pin}, ""
	case spec.CashLoad:
		return &ledger.CashLoad{Common: c, PAN: pan, Amount: amount, MayLoad: x.term.MayLoad, PIN: pin}, ""
	case spec.CashLoadVoid:
		if !needOriginal() {
			return nil, spec.RCFormatError
		}
		return &ledger.CashLoadVoid{Common: c, PAN: pan, Amount: amount, Original: orig, PIN: pin}, ""
	case spec.PreAuth:
		return &ledger.PreAuth{Common: c, PAN: pan, Amount: amount, PIN: pin}, ""
	case spec.PreAuthCompletion:
		if !needOriginal() || req.AuthCode == "" {
			return nil, spec.RCFormatError
		}
		return &ledger.PreAuthCompletion{Common: c, PAN: pan, Amount: amount, AuthCode: req.AuthCode, Original: orig, PIN: pin}, ""
	case spec.PreAuthCancel:
		if !needOriginal() || req.AuthCode == "" {
			return nil, spec.RCFormatError
		}
		return &ledger.PreAuthCancel{Common: c, PAN: pan, Amount: amount, AuthCode: req.AuthCode, Original: orig, PIN: pin}, ""
	case spec.CompletionVoid:
		if !needOriginal() || req.AuthCode == "" {
			return nil, spec.RCFormatError
		}
		return &ledger.CompletionVoid{Common: c, PAN: pan, Amount: amount, AuthCode: req.AuthCode, Original: orig, PIN: pin}, ""
	case spec.Reversal:
		kind, ok := reversedKind[x.orig]
		if !ok {
			return nil, spec.RCInvalidTransaction
		}
		// A reversal repeats its original's STAN (field 11) and batch.
		return &ledger.Reversal{Common: c, PAN: pan, Amount: amount, OriginalKind: kind,
			Original: ledger.TxnRef{Terminal: req.TerminalID, Batch: uint32(batch), STAN: uint32(stan)}}, ""
	}
	return nil, spec.RCFunctionNotSupported
}

// reversedKind maps the type a 0400 names to the ledger operation it
// undoes.
var reversedKind = map[spec.TxType]ledger.Kind{
	spec.Consume:           ledger.KindConsume,
	spec.ConsumeVoid:       ledger.KindVoid,
	spec.Refund:            ledger.KindRefund,
	spec.CashLoad:          ledger.KindCashLoad,
	spec.CashLoadVoid:      ledger.KindCashLoadVoid,
	spec.PreAuth:           ledger.KindPreAuth,
	spec.PreAuthCompletion: ledger.KindPreAuthCompletion,
	spec.PreAuthCancel:     ledger.KindPreAuthCancel,
	spec.CompletionVoid:    ledger.KindCompletionVoid,
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

// verifyPIN checks a PIN block inside the HSM against the card's stored
// verification value. The ledger keeps the try counter, so only the
// cardholder's outcome reaches it: a block that does not decode is a wrong
// PIN, but a PIN the switch cannot check (field 53 unreadable, a format or
// PIK algorithm the HSM does not support, a key missing) is declined here
// with rc, before the ledger, and never costs the card a try.
func (p *posProtocol) verifyPIN(x *exchange, pan string) (outcome ledger.PINOutcome, rc string) {
	if len(x.req.PINBlock) == 0 {
		return ledger.PINNotPresent, ""
	}
	pvv, err := p.sw.ledger.PINVerificationValue(pan)
	if err != nil || len(pvv) == 0 {
		// Unknown card: the ledger declines it for what it is.
		return ledger.PINNotPresent, ""
	}
	format, err := hsm.PINFormatFromField53(x.req.SecurityControl)
	if err != nil {
		return ledger.PINNotPresent, spec.RCFormatError
	}
	ok, err := p.sw.hsm.VerifyTerminalPIN(x.term.ID, x.req.PINBlock, format, pan, string(pvv))
	switch {
	case errors.Is(err, hsm.ErrPINBlock):
		p.sw.log.Info("PIN block did not decode", zap.String("terminal", x.term.ID), panField(pan), zap.Error(err))
		return ledger.PINWrong, ""
	case errors.Is(err, hsm.ErrUnsupported):
		p.sw.log.Warn("PIN block the HSM cannot verify", zap.String("terminal", x.term.ID), zap.Error(err))
		return ledger.PINNotPresent, spec.RCFunctionNotSupported
	case err != nil:
		p.sw.log.Error("PIN verification failed", zap.String("terminal", x.term.ID), zap.Error(err))
		return ledger.PINNotPresent, spec.RCSystemMalfunction
	case ok:
		return ledger.PINVerified, ""
	}
	return ledger.PINWrong, ""
}

// execute runs a ledger operation and commits it, with the request and
// response journal entries and the duplicate record, in one synced batch
// before the response is sent.
func (p *posProtocol) execute(x *exchange, lreq ledger.Request, rrn string, dupKey journal.DuplicateKey, fp [journal.FingerprintLen]byte) reply {
	sw := p.sw
	b := sw.db.NewBatch()
	defer b.Close()
	var out reply
	res, err := sw.ledger.Execute(lreq, b, func(res ledger.Result) error {
		resp := spec.NewPOSResponse(x.req, responseCodeOf(res.Decline))
		resp.RRN = rrn
		resp.SettlementDate = x.date.String()[4:]
		if res.Approved() && res.AuthCode != "" {
			resp.AuthCode = res.AuthCode
		}
		if res.Approved() && x.tx != spec.Reversal {
			if f54, err := balancesField(res.Balances); err == nil {
				resp.Balances = f54
			}
		}
		resp.Reserved63 = p.receiptText(x)
		packed, err := p.pack(x, resp)
		if err != nil {
			return err
		}
		seq, err := p.journalPair(b, x, resp, packed)
		if err != nil {
			return err
		}
		if err := p.storeResponse(b, x, dupKey, fp, resp.ResponseCode, seq); err != nil {
			return err
		}
		if lreq.Kind() == ledger.KindConsume {
			maybeCrash(crashBeforeCommit)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if lreq.Kind() == ledger.KindConsume {
			maybeCrash(crashAfterCommit)
		}
		out = reply{resp: resp, packed: packed}
		return nil
	})
	if err != nil {
		sw.log.Error("transaction failed", zap.String("terminal", x.term.ID), zap.String("type", x.tx.String()),
			panField(x.req.CardNumber()), zap.Error(err))
		r := x.answer(spec.RCSystemMalfunction)
		r.mac = true
		return r
	}
	if res.Alert {
		sw.log.Warn("grey-listed card approved", zap.String("terminal", x.term.ID), panField(x.req.CardNumber()), zap.String("rrn", rrn))
	}
	return out
}

// balancesField builds field 54: available cash and subsidy purses.
func balancesField(b ledger.Balances) (string, error) {
	return spec.FormatBalances([]spec.Balance{
		{AccountType: spec.AccountCashPurse, AmountType: spec.AmountTypeAvailable, Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Cash)},
		{AccountType: spec.AccountSubsidyPurse, AmountType: spec.AmountTypeAvailable, Currency: spec.CurrencyCNY, Amount: spec.Amount(b.Subsidy)},
	})
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
	mode := x.req.Reserved60.NetworkCode
	keys, err := sw.hsm.SignOn(t.ID, mode)
	if err != nil {
		sw.log.Warn("sign-on refused", zap.String("terminal", t.ID), zap.String("mode", mode), zap.Error(err))
		if errors.Is(err, hsm.ErrUnsupported) {
			return x.answer(spec.RCFunctionNotSupported)
		}
		return x.answer(spec.RCSystemMalfunction)
	}
	t, err = sw.terminals.update(t.ID, func(t *Terminal) error {
		t.Batch = t.Batch%999999 + 1
		t.SignedOn = true
		t.KeyMode = mode
		t.KeyGeneration++
		return nil
	})
	if err != nil {
		sw.log.Error("sign-on: store terminal", zap.String("terminal", x.req.TerminalID), zap.Error(err))
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
