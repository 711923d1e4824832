package ledger

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// AccountID names one account. Card purses are "card/PAN/cash" and
// "card/PAN/subsidy"; merchant settlement payables "merchant/ID"; system
// accounts "system/NAME". The class is the part before the first slash.
type AccountID string

// Account classes, the first component of an AccountID.
const (
	ClassCard     = "card"
	ClassMerchant = "merchant"
	ClassSystem   = "system"
)

// System accounts. Sign convention for every account: a positive balance is
// money the school owes the account's holder (a card's purse, a merchant's
// payable, fee income); the funding and clearing accounts carry the matching
// negative balances, so the sum over all accounts is always zero.
const (
	FeeIncome        AccountID = "system/fee-income"         // service fees earned by the school
	CashLoadClearing AccountID = "system/cash-load-clearing" // cash taken in at kiosks, to be banked
	SubsidyFunding   AccountID = "system/subsidy-funding"    // subsidies granted by the school
	OpeningFunds     AccountID = "system/opening-funds"      // cash balances brought in when a card is opened
	RefundPayable    AccountID = "system/refund-payable"     // balances of closed cards, owed to their holders
	// CardReceivable is what card holders owe the school: the shortfall of
	// a reversed credit that was already spent (docs/ledger.md#receivables).
	// Each card's contribution to it is that card's debt (negative: owed).
	CardReceivable AccountID = "system/card-receivable"
	// PendingLoads holds outside credits not yet on a card's purse (sites
	// that write money onto the card chip: the card claims them at a load
	// terminal). Each card's contribution is its pending amount.
	PendingLoads  AccountID = "system/pending-loads"
	gatewayPrefix           = "system/gateway/"
)

// CardCash is the cash purse of a card.
func CardCash(pan string) AccountID { return AccountID("card/" + pan + "/cash") }

// CardSubsidy is the subsidy purse of a card.
func CardSubsidy(pan string) AccountID { return AccountID("card/" + pan + "/subsidy") }

// MerchantPayable is what the school owes merchant id at settlement.
func MerchantPayable(id string) AccountID { return AccountID("merchant/" + id) }

// GatewayClearing is the clearing account of one payment gateway (web
// recharge and bank links credit cards against it).
func GatewayClearing(name string) AccountID { return AccountID(gatewayPrefix + name) }

// Class returns the account class ("card", "merchant" or "system").
func (a AccountID) Class() string {
	s := string(a)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// Key layout (every key starts with 'l'; docs/ledger.md):
//
//	l c PAN                      card record (holder, state, limits, PIN verification value)
//	l b PAN                      the card's purses: balances, PIN tries, day spend, holds, contributions
//	l m MERCHANT                 merchant record
//	l p TXID(8, big-endian)      posting set, immutable
//	l s TXID(8)                  status of a posting set (voided, refunded, reversed...)
//	l i KIND(1) KEY              idempotency record: fingerprint, business date + result
//	l r TERMINAL 0x00 BATCH(4) STAN(4)   reference index -> TXID (or reversal tombstone)
//	l n DATE(4) RRN              RRN index -> TXID, for refunds
//	l t TERMINAL 0x00 BATCH(4) STAN(4)   reversal tombstone (reversal before its original)
//
// 'l i', 'l r', 'l n' and 'l t' are lookup records: Prune deletes them
// once they are older than the retention window (prune.go). The others
// are the books and are never deleted.
const (
	keyPrefix = 'l'
	tagCard   = 'c'
	tagMerch  = 'm'
	tagPost   = 'p'
	tagStatus = 's'
	tagIdem   = 'i'
	tagRef    = 'r'
	tagRRN    = 'n'
	tagTomb   = 't'
	tagPurse  = 'b'
)

// Key builders size their result exactly: they run several times per
// operation on the hot path.
func tagged(tag byte, n int) []byte { return append(make([]byte, 0, 2+n), keyPrefix, tag) }

func cardKey(pan string) []byte    { return append(tagged(tagCard, len(pan)), pan...) }
func purseKey(pan string) []byte   { return append(tagged(tagPurse, len(pan)), pan...) }
func merchantKey(id string) []byte { return append(tagged(tagMerch, len(id)), id...) }
func postKey(tx uint64) []byte     { return binary.BigEndian.AppendUint64(tagged(tagPost, 8), tx) }
func statusKey(tx uint64) []byte   { return binary.BigEndian.AppendUint64(tagged(tagStatus, 8), tx) }
func idemKey(k Kind, key string) []byte {
	return append(append(tagged(tagIdem, 1+len(key)), byte(k)), key...)
}
func refKey(r TxnRef) []byte {
	b := append(tagged(tagRef, len(r.Terminal)+9), r.Terminal...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, r.Batch)
	return binary.BigEndian.AppendUint32(b, r.STAN)
}

// tombKey is the tombstone of a reference; it shares refKey's layout so
// the in-memory tombstone set can be keyed by the reference's bytes.
func tombKey(r TxnRef) []byte {
	k := refKey(r)
	k[1] = tagTomb
	return k
}

// batchPrefix bounds the reference index entries of one terminal batch.
func batchPrefix(terminal string, batch uint32) []byte {
	b := append([]byte{keyPrefix, tagRef}, terminal...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, batch)
}
func rrnKey(d BusinessDate, rrn string) []byte {
	b := binary.BigEndian.AppendUint32(tagged(tagRRN, 4+len(rrn)), uint32(d))
	return append(b, rrn...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// hold is an open pre-authorization: money reserved on a card, split over
// the purses the way a consume at the same merchant would take it.
type hold struct {
	AuthCode string
	TxID     uint64 // the pre-auth's posting set
	Merchant string
	Amount   Fen // the authorized amount
	Fee      Fen // service fee reserved on top of Amount
	Cash     Fen // reserved from cash (Cash + Subsidy == Amount + Fee)
	Subsidy  Fen // reserved from subsidy
	Expiry   BusinessDate
}

func (h *hold) total() Fen { return h.Cash + h.Subsidy }

func (h *hold) encode(e *encoder) {
	e.str(h.AuthCode)
	e.u(h.TxID)
	e.str(h.Merchant)
	e.fen(h.Amount)
	e.fen(h.Fee)
	e.fen(h.Cash)
	e.fen(h.Subsidy)
	e.date(h.Expiry)
}

func (h *hold) decode(d *decoder) {
	h.AuthCode = d.str()
	h.TxID = d.u()
	h.Merchant = d.str()
	h.Amount = d.fen()
	h.Fee = d.fen()
	h.Cash = d.fen()
	h.Subsidy = d.fen()
	h.Expiry = d.date()
	if d.err == nil && (h.Amount < 0 || h.Fee < 0 || h.Cash < 0 || h.Subsidy < 0 || h.Cash+h.Subsidy != h.Amount+h.Fee) {
		d.fail("inconsistent hold")
	}
}

// contrib is the part of a non-card account's balance that postings with
// this card produced. Keeping it in the card record lets every POS
// operation write exactly the records of the cards it locked, so the hot
// merchant and fee accounts are never a lock or a write conflict; their
// balances are the sums of the contributions (computed at Open, kept in
// memory after).
type contrib struct {
	Account AccountID
	Amount  Fen
}

// card is the state of one card. It is a value: operations compute a new
// card from the old and publish it only after the commit.
type card struct {
	PAN         string
	Holder      string
	HolderType  HolderType
	State       CardState
	LostFrom    CardState // for a lost card, its state before the loss report
	List        ListFlag
	Cash        Fen
	Subsidy     Fen
	DailyLimit  Fen // 0: no daily limit
	PerTxnLimit Fen // 0: no per-transaction limit
	NoPINLimit  Fen // amounts above need a verified PIN
	MaxBalance  Fen // 0: no maximum
	FeeBP       int32
	PVV         []byte // opaque PIN verification value from the HSM
	PINTries    uint8
	DayDate     BusinessDate // the business day DaySpent counts
	DaySpent    Fen
	ReplacedBy  string // the new card after a replacement
	Holds       []hold
	Contribs    []contrib
	// v1 marks a card read from a version 1 record, which held the
	// purses too; it re-encodes as it was stored. Written again, a card
	// becomes a version 2 record and a purse record (putCard).
	v1 bool
}

func (c *card) held() Fen {
	var t Fen
	for i := range c.Holds {
		t += c.Holds[i].total()
	}
	return t
}

func (c *card) heldSplit() (cash, subsidy Fen) {
	for i := range c.Holds {
		cash += c.Holds[i].Cash
		subsidy += c.Holds[i].Subsidy
	}
	return
}

func (c *card) balances() Balances {
	h := c.held()
	return Balances{Cash: c.Cash, Subsidy: c.Subsidy, Held: h, Available: c.Cash + c.Subsidy - h}
}

// clone copies the slices so the copy can be changed without touching the
// published state.
func (c *card) clone() card {
	n := *c
	n.Holds = append([]hold(nil), c.Holds...)
	n.Contribs = append([]contrib(nil), c.Contribs...)
	return n
}

// owed is what the card's holder owes the school (its receivable), zero
// or positive. A card that owes is *owing*: debits are declined and the
// next credits repay the receivable first.
func (c *card) owed() Fen {
	for i := range c.Contribs {
		if c.Contribs[i].Account == CardReceivable {
			return max(0, -c.Contribs[i].Amount)
		}
	}
	return 0
}

// pending is what outside credits hold for the card until it claims them
// at a load terminal, zero or positive.
func (c *card) pending() Fen {
	for i := range c.Contribs {
		if c.Contribs[i].Account == PendingLoads {
			return max(0, c.Contribs[i].Amount)
		}
	}
	return 0
}

func (c *card) addContrib(a AccountID, v Fen) {
	for i := range c.Contribs {
		if c.Contribs[i].Account == a {
			c.Contribs[i].Amount += v
			return
		}
	}
	c.Contribs = append(c.Contribs, contrib{a, v})
}

// encode returns the card record: version 1 (everything) for a card read
// in version 1, else version 2 (what admin operations change; the purses
// are in the purse record, encodePurse).
func (c *card) encode() []byte {
	e := encoder{b: make([]byte, 0, 128+len(c.Contribs)*32+len(c.Holds)*48)}
	if !c.v1 {
		e.byte1(recordV2)
		c.encodeStatic(&e)
		return e.b
	}
	e.byte1(recordV1)
	e.str(c.PAN)
	e.str(c.Holder)
	e.byte1(uint8(c.HolderType))
	e.byte1(packState(c))
	e.byte1(uint8(c.List))
	e.fen(c.Cash)
	e.fen(c.Subsidy)
	e.fen(c.DailyLimit)
	e.fen(c.PerTxnLimit)
	e.fen(c.NoPINLimit)
	e.fen(c.MaxBalance)
	e.i(int64(c.FeeBP))
	e.bytes(c.PVV)
	e.byte1(c.PINTries)
	e.date(c.DayDate)
	e.fen(c.DaySpent)
	e.str(c.ReplacedBy)
	e.u(uint64(len(c.Holds)))
	for i := range c.Holds {
		c.Holds[i].encode(&e)
	}
	e.u(uint64(len(c.Contribs)))
	for _, k := range c.Contribs {
		e.str(string(k.Account))
		e.fen(k.Amount)
	}
	return e.b
}

func (c *card) encodeStatic(e *encoder) {
	e.str(c.PAN)
	e.str(c.Holder)
	e.byte1(uint8(c.HolderType))
	e.byte1(packState(c))
	e.byte1(uint8(c.List))
	e.fen(c.DailyLimit)
	e.fen(c.PerTxnLimit)
	e.fen(c.NoPINLimit)
	e.fen(c.MaxBalance)
	e.i(int64(c.FeeBP))
	e.bytes(c.PVV)
	e.str(c.ReplacedBy)
}

// sameStatic reports whether c and o have the same card record (version
// 2): a transaction that changed only purses writes only the purse record.
func (c *card) sameStatic(o *card) bool {
	return c.PAN == o.PAN && c.Holder == o.Holder && c.HolderType == o.HolderType && c.State == o.State &&
		c.LostFrom == o.LostFrom && c.List == o.List && c.DailyLimit == o.DailyLimit && c.PerTxnLimit == o.PerTxnLimit &&
		c.NoPINLimit == o.NoPINLimit && c.MaxBalance == o.MaxBalance && c.FeeBP == o.FeeBP &&
		string(c.PVV) == string(o.PVV) && c.ReplacedBy == o.ReplacedBy
}

// encodePurse returns the purse record (version 1): what transactions
// change, rewritten in place by each one. Accounts are tagged (codec.go),
// so the card's own purses and the system accounts cost a byte.
//
//	version 1 | cash | subsidy | PIN tries 1 | day date | day spent |
//	holds (count, each as in the card record) | contributions (count,
//	each account + amount)
func (c *card) encodePurse() []byte {
	e := encoder{b: make([]byte, 0, 24+len(c.Contribs)*8+len(c.Holds)*40)}
	e.byte1(recordV1)
	e.fen(c.Cash)
	e.fen(c.Subsidy)
	e.byte1(c.PINTries)
	e.date(c.DayDate)
	e.fen(c.DaySpent)
	e.u(uint64(len(c.Holds)))
	for i := range c.Holds {
		c.Holds[i].encode(&e)
	}
	e.u(uint64(len(c.Contribs)))
	for _, k := range c.Contribs {
		e.account(k.Account, c.PAN, "")
		e.fen(k.Amount)
	}
	return e.b
}

// decodePurse fills c's purses from a purse record; c.PAN must be set.
func decodePurse(b []byte, c *card) error {
	d := decoder{b: b}
	d.version()
	c.Cash = d.fen()
	c.Subsidy = d.fen()
	c.PINTries = d.byte1()
	c.DayDate = d.date()
	c.DaySpent = d.fen()
	c.Holds, c.Contribs = nil, nil
	if n := d.count(maxHolds, "holds"); n > 0 {
		c.Holds = make([]hold, n)
		for i := range c.Holds {
			c.Holds[i].decode(&d)
		}
	}
	if n := d.count(maxContribs, "contributions"); n > 0 {
		c.Contribs = make([]contrib, n)
		for i := range c.Contribs {
			c.Contribs[i].Account = d.account(c.PAN, "")
			c.Contribs[i].Amount = d.fen()
		}
	}
	return d.done()
}

// putCard writes card c into b: the purse record always, the card record
// when it differs from old (nil: a new card) or old was read in version 1.
func putCard(b *pebble.Batch, old, c *card) error {
	if old == nil || old.v1 || c.v1 || !c.sameStatic(old) {
		c.v1 = false
		if err := b.Set(cardKey(c.PAN), c.encode(), nil); err != nil {
			return err
		}
	}
	return b.Set(purseKey(c.PAN), c.encodePurse(), nil)
}

// loadCard decodes a stored card record and, for version 2, reads its
// purse record from r.
func loadCard(r pebble.Reader, v []byte) (card, error) {
	c, err := decodeCard(v)
	if err != nil || c.v1 {
		return c, err
	}
	raw, err := get(r, purseKey(c.PAN))
	if err != nil {
		return card{}, err
	}
	if raw == nil {
		return card{}, fmt.Errorf("%w: card without its purse record", ErrCorrupt)
	}
	if err := decodePurse(raw, &c); err != nil {
		return card{}, fmt.Errorf("purse record: %w", err)
	}
	return c, nil
}

// decodeCard decodes a card record: version 1 with its purses, version 2
// without (loadCard adds them).
func decodeCard(b []byte) (card, error) {
	d := decoder{b: b}
	var c card
	switch v := d.byte1(); {
	case d.err != nil:
	case v == recordV1:
		c.v1 = true
	case v != recordV2:
		d.fail(fmt.Sprintf("unknown card record version %d", v))
	}
	c.PAN = d.str()
	c.Holder = d.str()
	c.HolderType = HolderType(d.byte1())
	state, lostFrom, stateOK := unpackState(d.byte1())
	c.State, c.LostFrom = state, lostFrom
	c.List = ListFlag(d.byte1())
	if c.v1 {
		c.Cash = d.fen()
		c.Subsidy = d.fen()
	}
	c.DailyLimit = d.fen()
	c.PerTxnLimit = d.fen()
	c.NoPINLimit = d.fen()
	c.MaxBalance = d.fen()
	fee := d.i()
	if fee < 0 || fee > maxFeeBP {
		d.fail("fee rate out of range")
	}
	c.FeeBP = int32(fee)
	c.PVV = d.bytes()
	if c.v1 {
		c.PINTries = d.byte1()
		c.DayDate = d.date()
		c.DaySpent = d.fen()
	}
	c.ReplacedBy = d.str()
	if c.v1 {
		if n := d.count(maxHolds, "holds"); n > 0 {
			c.Holds = make([]hold, n)
			for i := range c.Holds {
				c.Holds[i].decode(&d)
			}
		}
		if n := d.count(maxContribs, "contributions"); n > 0 {
			c.Contribs = make([]contrib, n)
			for i := range c.Contribs {
				c.Contribs[i].Account = AccountID(d.str())
				c.Contribs[i].Amount = d.fen()
			}
		}
	}
	if err := d.done(); err != nil {
		return card{}, err
	}
	if c.HolderType < Student || c.HolderType > Visitor || !stateOK || c.List > ListBlack {
		d.fail("bad card enum")
		return card{}, d.err
	}
	return c, nil
}

// leg is one posting: a signed amount on one account.
type leg struct {
	Account AccountID
	Amount  Fen
}

// posting is the immutable record of one money-moving (or hold-changing)
// operation. Undoing it means applying its inverse: negated legs, the hold
// it added removed, the hold it removed restored, the day spend taken back.
type posting struct {
	TxID     uint64
	Kind     Kind
	Date     BusinessDate
	Terminal string
	Merchant string
	Batch    uint32
	STAN     uint32
	RRN      string
	PAN      string
	PAN2     string // the new card of a replacement
	Amount   Fen    // the transaction amount as the terminal sees it
	Fee      Fen
	AuthCode string
	Link     uint64 // the posting set this one voids, refunds, completes, cancels or reverses
	Legs     []leg
	DaySpend Fen // added to the card's spend of Date (negative to give back)
	HoldAdd  *hold
	HoldDrop *hold
	// v1 marks a posting read in version 1 (accounts spelled out), so
	// that it re-encodes as it was stored; new postings are version 2.
	v1 bool
}

func (p *posting) encode() []byte {
	e := encoder{b: make([]byte, 0, 96+len(p.Legs)*8)}
	if p.v1 {
		e.byte1(recordV1)
	} else {
		e.byte1(recordV2)
	}
	e.u(p.TxID)
	e.byte1(uint8(p.Kind))
	e.date(p.Date)
	e.str(p.Terminal)
	e.str(p.Merchant)
	e.u(uint64(p.Batch))
	e.u(uint64(p.STAN))
	e.str(p.RRN)
	e.str(p.PAN)
	e.str(p.PAN2)
	e.fen(p.Amount)
	e.fen(p.Fee)
	e.str(p.AuthCode)
	e.u(p.Link)
	e.u(uint64(len(p.Legs)))
	for _, l := range p.Legs {
		if p.v1 {
			e.str(string(l.Account))
		} else {
			e.account(l.Account, p.PAN, p.Merchant)
		}
		e.fen(l.Amount)
	}
	e.fen(p.DaySpend)
	for _, h := range []*hold{p.HoldAdd, p.HoldDrop} {
		e.boolean(h != nil)
		if h != nil {
			h.encode(&e)
		}
	}
	return e.b
}

func decodePosting(b []byte) (posting, error) {
	d := decoder{b: b}
	var p posting
	switch v := d.byte1(); {
	case d.err != nil:
	case v == recordV1:
		p.v1 = true
	case v != recordV2:
		d.fail(fmt.Sprintf("unknown posting version %d", v))
	}
	p.TxID = d.u()
	p.Kind = Kind(d.byte1())
	p.Date = d.date()
	p.Terminal = d.str()
	p.Merchant = d.str()
	batch, stan := d.u(), d.u()
	if batch > maxSixDigits || stan > maxSixDigits {
		d.fail("batch or STAN above six digits")
	}
	p.Batch, p.STAN = uint32(min(batch, maxSixDigits)), uint32(min(stan, maxSixDigits))
	p.RRN = d.str()
	p.PAN = d.str()
	p.PAN2 = d.str()
	p.Amount = d.fen()
	p.Fee = d.fen()
	p.AuthCode = d.str()
	p.Link = d.u()
	if n := d.count(maxLegs, "legs"); n > 0 {
		p.Legs = make([]leg, n)
		for i := range p.Legs {
			if p.v1 {
				p.Legs[i].Account = AccountID(d.str())
			} else {
				p.Legs[i].Account = d.account(p.PAN, p.Merchant)
			}
			p.Legs[i].Amount = d.fen()
		}
	}
	p.DaySpend = d.fen()
	for _, h := range []**hold{&p.HoldAdd, &p.HoldDrop} {
		if d.boolean() {
			*h = new(hold)
			(*h).decode(&d)
		}
	}
	if err := d.done(); err != nil {
		return posting{}, err
	}
	if p.Kind == 0 || p.Kind >= kindCount {
		d.fail("bad posting kind")
		return posting{}, d.err
	}
	return p, nil
}

// status is the mutable fate of a posting set: which later posting set
// voided, reversed or finished (completed or cancelled) it, and how much of
// it was refunded. The postings themselves never change.
type status struct {
	VoidedBy        uint64
	ReversedBy      uint64
	FinishedBy      uint64
	Refunded        Fen
	RefundedFee     Fen
	RefundedSubsidy Fen
}

func (s *status) encode() []byte {
	e := encoder{b: make([]byte, 0, 32)}
	e.byte1(recordV1)
	e.u(s.VoidedBy)
	e.u(s.ReversedBy)
	e.u(s.FinishedBy)
	e.fen(s.Refunded)
	e.fen(s.RefundedFee)
	e.fen(s.RefundedSubsidy)
	return e.b
}

func decodeStatus(b []byte) (status, error) {
	d := decoder{b: b}
	var s status
	d.version()
	s.VoidedBy = d.u()
	s.ReversedBy = d.u()
	s.FinishedBy = d.u()
	s.Refunded = d.fen()
	s.RefundedFee = d.fen()
	s.RefundedSubsidy = d.fen()
	return s, d.done()
}

// merchant is a merchant's record.
type merchant struct {
	ID             string
	Name           string
	OnCampus       bool
	FeeRateBP      int32 // settlement commission the school keeps, basis points
	SettlementDays int32 // T+N settlement
}

func (m *merchant) encode() []byte {
	e := encoder{}
	e.byte1(recordV1)
	e.str(m.ID)
	e.str(m.Name)
	e.boolean(m.OnCampus)
	e.i(int64(m.FeeRateBP))
	e.i(int64(m.SettlementDays))
	return e.b
}

func decodeMerchant(b []byte) (merchant, error) {
	d := decoder{b: b}
	var m merchant
	d.version()
	m.ID = d.str()
	m.Name = d.str()
	m.OnCampus = d.boolean()
	fee, days := d.i(), d.i()
	if fee < 0 || fee > maxFeeBP || days < 0 || days > 366 {
		d.fail("merchant parameters out of range")
	}
	m.FeeRateBP, m.SettlementDays = int32(fee), int32(days)
	return m, d.done()
}

// idemRecord is the stored answer for an idempotency key. Date is the
// business date of the request it answers, which Prune cuts by. Records
// written before it existed (version 1) have Date 0; they are encoded in
// version 1 again, so every record keeps one encoding, and Prune dates
// them by their posting set when they have one (see Prune).
type idemRecord struct {
	Fingerprint uint64
	Date        BusinessDate
	Result      Result
}

func (r *idemRecord) encode() []byte {
	e := encoder{b: make([]byte, 0, 64)}
	if r.Date == 0 {
		e.byte1(recordV1)
		e.u(r.Fingerprint)
	} else {
		e.byte1(recordV2)
		e.u(r.Fingerprint)
		e.date(r.Date)
	}
	r.Result.encode(&e)
	return e.b
}

func decodeIdem(b []byte) (idemRecord, error) {
	d := decoder{b: b}
	var r idemRecord
	r.Fingerprint, r.Date = d.idemHead()
	r.Result.decode(&d)
	return r, d.done()
}

// idemHead reads the version, fingerprint and date of an idempotency
// record (date 0 for version 1); a version 2 record must carry a date.
func (d *decoder) idemHead() (fingerprint uint64, date BusinessDate) {
	v := d.byte1()
	if d.err != nil {
		return 0, 0
	}
	if v != recordV1 && v != recordV2 {
		d.fail(fmt.Sprintf("unknown idempotency record version %d", v))
		return 0, 0
	}
	fingerprint = d.u()
	if v == recordV2 {
		if date = d.date(); d.err == nil && date == 0 {
			d.fail("idempotency record without date")
		}
	}
	return fingerprint, date
}

// peekIdem reads what Prune needs of an idempotency record without
// decoding (and allocating) the whole result: its date and, for a version
// 1 record, the posting set its result names.
func peekIdem(b []byte) (date BusinessDate, tx uint64, err error) {
	d := decoder{b: b}
	_, date = d.idemHead()
	d.byte1() // result kind
	d.byte1() // decline reason
	tx = d.u()
	return date, tx, d.err
}

// refValue is what the reference index holds: the posting set a terminal
// reference names. A tombstone (TxID 0, under its own prefix) is left by a
// reversal that came before its original, so a late original is declined
// instead of applied. Tombstones are few and kept in memory, so the hot
// path never reads them from Pebble.
type refValue struct {
	TxID uint64
	Kind Kind
	Date BusinessDate
}

func (v *refValue) encode() []byte {
	e := encoder{b: make([]byte, 0, 16)}
	e.byte1(recordV1)
	e.u(v.TxID)
	e.byte1(uint8(v.Kind))
	e.date(v.Date)
	return e.b
}

func decodeRef(b []byte) (refValue, error) {
	d := decoder{b: b}
	var v refValue
	d.version()
	v.TxID = d.u()
	v.Kind = Kind(d.byte1())
	v.Date = d.date()
	return v, d.done()
}
