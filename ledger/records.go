package ledger

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"

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
func refKey(r TxnRef) []byte { return appendRefKey(make([]byte, 0, 2+len(r.Terminal)+9), r) }

// appendRefKey appends refKey(r) to dst.
func appendRefKey(dst []byte, r TxnRef) []byte {
	b := append(append(dst, keyPrefix, tagRef), r.Terminal...)
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

// encode writes the hold; packed (version 3 postings, version 2 purse
// records) writes the auth code and merchant as digits and the expiry as
// a day, and leaves out Subsidy, which is Amount + Fee − Cash.
func (h *hold) encode(e *encoder, packed bool) {
	if packed {
		e.digits(h.AuthCode)
		e.u(h.TxID)
		e.digits(h.Merchant)
		e.fen(h.Amount)
		e.fen(h.Fee)
		e.fen(h.Cash)
		e.day(h.Expiry)
		return
	}
	e.str(h.AuthCode)
	e.u(h.TxID)
	e.str(h.Merchant)
	e.fen(h.Amount)
	e.fen(h.Fee)
	e.fen(h.Cash)
	e.fen(h.Subsidy)
	e.date(h.Expiry)
}

func (h *hold) decode(d *decoder, packed bool) {
	if packed {
		h.AuthCode = d.digits()
		h.TxID = d.u()
		h.Merchant = d.digits()
		h.Amount = d.fen()
		h.Fee = d.fen()
		h.Cash = d.fen()
		h.Subsidy = h.Amount + h.Fee - h.Cash
		h.Expiry = d.day()
	} else {
		h.AuthCode = d.str()
		h.TxID = d.u()
		h.Merchant = d.str()
		h.Amount = d.fen()
		h.Fee = d.fen()
		h.Cash = d.fen()
		h.Subsidy = d.fen()
		h.Expiry = d.date()
	}
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
	// purseVer is the version of the purse record the purses were read
	// from (recordV1, recordV2), so that they re-encode as they were
	// stored; 0 for purses to write in version 3, as putCard does.
	purseVer uint8
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

// cloneNew is clone into a new card of its own, allocated with room for
// its contributions and at least one more: one allocation instead of
// two for every operation that changes a card (cards post to a handful
// of accounts: opening funds, subsidy funding, the merchants they paid).
// Cards with more contributions are cloned as two allocations.
func (c *card) cloneNew() *card {
	var n *card
	var room []contrib
	switch k := len(c.Contribs); {
	case k == 0: // no contributions stay nil, as clone leaves them
		v := c.clone()
		return &v
	case k < 4:
		b := new(struct {
			c    card
			room [4]contrib
		})
		n, room = &b.c, b.room[:0]
	case k < 8:
		b := new(struct {
			c    card
			room [8]contrib
		})
		n, room = &b.c, b.room[:0]
	case k < 16:
		b := new(struct {
			c    card
			room [16]contrib
		})
		n, room = &b.c, b.room[:0]
	default:
		v := c.clone()
		return &v
	}
	*n = *c
	n.Holds = append([]hold(nil), c.Holds...)
	n.Contribs = append(room, c.Contribs...)
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
		c.Holds[i].encode(&e, false)
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

// encodePurse returns the purse record: what transactions change,
// rewritten in place by each one. Accounts are tagged (codec.go), so the
// card's own purses and the system accounts cost a byte.
//
// Version 3 (docs/ledger.md#key-layout-prefix-l):
//
//	version 3 | PIN tries << 1 | last contribution implied (uvarint) |
//	cash | subsidy | day date (a day) | day spent | holds (count, each
//	packed) | contributions (count, each account, merchant ids packed,
//	+ amount, the last left out when implied: every posting balances, so
//	a card's contributions are minus its purses and the last is what
//	makes them so)
//
// A merchant's id that shares 4 or more leading characters with the
// merchant id before it in the record (merchant ids share their
// acquirer's prefix) is stored as tag 128 + 4, the length of the shared
// prefix and the rest as digits.
//
// Version 2, still read, is version 3 without that form. Version 1, still
// read: version 1 | cash | subsidy | PIN tries 1 | day date | day spent |
// holds (count, each as in the card record) | contributions (count, each
// account + amount).
func (c *card) encodePurse() []byte {
	return c.appendPurse(make([]byte, 0, 24+len(c.Contribs)*8+len(c.Holds)*40))
}

// appendPurse appends the purse record (encodePurse) to dst.
func (c *card) appendPurse(dst []byte) []byte { return c.appendPurseCode(dst, nil) }

// appendPurseCode is appendPurse with the contributions' accounts written
// through *code (built again first when it does not fit c), when code is
// not nil: the same bytes.
func (c *card) appendPurseCode(dst []byte, code **contribCode) []byte {
	e := encoder{b: dst}
	start := len(dst)
	if c.purseVer == recordV1 {
		e.byte1(recordV1)
		e.fen(c.Cash)
		e.fen(c.Subsidy)
		e.byte1(c.PINTries)
		e.date(c.DayDate)
		e.fen(c.DaySpent)
		e.u(uint64(len(c.Holds)))
		for i := range c.Holds {
			c.Holds[i].encode(&e, false)
		}
		e.u(uint64(len(c.Contribs)))
		for _, k := range c.Contribs {
			e.account(k.Account, c.PAN, "", false)
			e.fen(k.Amount)
		}
		return e.b
	}
	share := c.purseVer != recordV2
	implied := c.lastContribImplied()
	e.byte1(recordV3)
	if !share {
		e.b[start] = recordV2
	}
	flags := uint64(c.PINTries) << 1
	if implied {
		flags |= 1
	}
	e.u(flags)
	e.fen(c.Cash)
	e.fen(c.Subsidy)
	e.day(c.DayDate)
	e.fen(c.DaySpent)
	e.u(uint64(len(c.Holds)))
	for i := range c.Holds {
		c.Holds[i].encode(&e, true)
	}
	e.u(uint64(len(c.Contribs)))
	if share && code != nil {
		if !(*code).fits(c) {
			*code = newContribCode(c)
		}
		cc, at := *code, 0
		for i, k := range c.Contribs {
			e.b = append(e.b, cc.b[at:cc.ends[i]]...)
			at = cc.ends[i]
			if !implied || i < len(c.Contribs)-1 {
				e.fen(k.Amount)
			}
		}
		return e.b
	}
	prev := ""
	for i, k := range c.Contribs {
		e.contribAccount(k.Account, c.PAN, &prev, share)
		if !implied || i < len(c.Contribs)-1 {
			e.fen(k.Amount)
		}
	}
	return e.b
}

// contribAccount writes the account of a contribution in a packed purse
// record; prev is the merchant id before it in the record, which share
// (version 3) lets it share its leading characters with.
func (e *encoder) contribAccount(a AccountID, pan string, prev *string, share bool) {
	tag, id := accountTag(a, pan, "")
	if n := sharedPrefix(*prev, id); share && tag == acctMerchant && n >= minSharedID {
		e.byte1(acctMerchantShared)
		e.u(uint64(n))
		e.digits(id[n:])
	} else {
		e.accountAs(tag, id, true) // e.account(a, pan, "", true), its tag known
	}
	if tag == acctMerchant {
		*prev = id
	}
}

// contribCode is how a version 3 purse record writes the accounts of a
// card's contributions, in order: the accounts change only when the card
// pays a merchant (or posts to an account) it never did before, their
// amounts with every operation. The card's entry keeps the one of its
// last purse record written (cardEntry.contribs), so the next writes copy
// the accounts' bytes instead of tagging and packing each again.
type contribCode struct {
	pan      string      // the card's number (own purse accounts are tagged by it)
	accounts []AccountID // the accounts it was built for, in order
	ends     []int       // where each account's bytes end in b
	b        []byte
}

func newContribCode(c *card) *contribCode {
	cc := &contribCode{pan: c.PAN, accounts: make([]AccountID, len(c.Contribs)), ends: make([]int, len(c.Contribs))}
	e := encoder{b: make([]byte, 0, 16*len(c.Contribs))}
	prev := ""
	for i, k := range c.Contribs {
		e.contribAccount(k.Account, c.PAN, &prev, true)
		cc.accounts[i], cc.ends[i] = k.Account, len(e.b)
	}
	cc.b = e.b
	return cc
}

// fits reports whether cc was built for c's accounts.
func (cc *contribCode) fits(c *card) bool {
	if cc == nil || cc.pan != c.PAN || len(cc.accounts) != len(c.Contribs) {
		return false
	}
	for i := range c.Contribs {
		if c.Contribs[i].Account != cc.accounts[i] {
			return false
		}
	}
	return true
}

// A merchant id in a version 3 purse record sharing at least minSharedID
// leading characters with the merchant id before it is stored as
// acctMerchantShared, the shared length and the rest.
const (
	minSharedID        = 4
	acctMerchantShared = 0x80 | acctMerchant
)

// sharedPrefix is the length of the common prefix of a and b.
func sharedPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// impliedContrib is the amount the last contribution has when the
// contributions and the purses sum to zero (wrapping as the decoder
// computes it, so it is exact whatever the amounts).
func (c *card) impliedContrib() Fen {
	v := -(c.Cash + c.Subsidy)
	for _, k := range c.Contribs[:len(c.Contribs)-1] {
		v -= k.Amount
	}
	return v
}

func (c *card) lastContribImplied() bool {
	return len(c.Contribs) > 0 && c.Contribs[len(c.Contribs)-1].Amount == c.impliedContrib()
}

// decodePurse fills c's purses from a purse record; c.PAN must be set.
func decodePurse(b []byte, c *card) error {
	d := decoder{b: b}
	c.purseVer = 0
	switch v := d.byte1(); {
	case d.err != nil:
	case v == recordV1 || v == recordV2:
		c.purseVer = v
	case v != recordV3:
		d.fail(fmt.Sprintf("unknown purse record version %d", v))
	}
	packed, share, implied := c.purseVer != recordV1, c.purseVer == 0, false
	if packed {
		flags := d.u()
		if flags>>1 > 255 {
			d.fail("bad PIN tries")
		}
		c.PINTries, implied = uint8(flags>>1), flags&1 == 1
		c.Cash = d.fen()
		c.Subsidy = d.fen()
		c.DayDate = d.day()
	} else {
		c.Cash = d.fen()
		c.Subsidy = d.fen()
		c.PINTries = d.byte1()
		c.DayDate = d.date()
	}
	c.DaySpent = d.fen()
	c.Holds, c.Contribs = nil, nil
	if n := d.count(maxHolds, "holds"); n > 0 {
		c.Holds = make([]hold, n)
		for i := range c.Holds {
			c.Holds[i].decode(&d, packed)
		}
	}
	n := d.count(maxContribs, "contributions")
	if n > 0 {
		c.Contribs = make([]contrib, n)
		prev := ""
		for i := range c.Contribs {
			c.Contribs[i].Account = d.purseAccount(c.PAN, packed, share, &prev)
			if !implied || i < n-1 {
				c.Contribs[i].Amount = d.fen()
			}
		}
	}
	if packed && d.err == nil {
		switch {
		case implied && n == 0:
			d.fail("implied contribution without contributions")
		case implied:
			v := c.impliedContrib()
			if v > 1<<60 || v < -(1<<60) {
				d.fail("amount out of range")
			}
			c.Contribs[n-1].Amount = v
		case c.lastContribImplied():
			d.fail("contribution not in its shortest form")
		}
	}
	return d.done()
}

// purseAccount reads a contribution's account; with share (version 3)
// a merchant id may be stored against prev, the merchant id before it,
// and must be when it shares minSharedID characters with it.
func (d *decoder) purseAccount(pan string, packed, share bool, prev *string) AccountID {
	if share && len(d.b) > 0 && d.b[0] == acctMerchantShared {
		d.b = d.b[1:]
		n := d.u()
		rest := d.digits()
		if d.err != nil {
			return ""
		}
		if n < minSharedID || n > uint64(len(*prev)) || rest != "" && n < uint64(len(*prev)) && rest[0] == (*prev)[n] || n+uint64(len(rest)) > maxField {
			d.fail("bad shared merchant id")
			return ""
		}
		id := (*prev)[:n] + rest
		*prev = id
		return MerchantPayable(id)
	}
	a := d.account(pan, "", packed)
	if tag, id := accountTag(a, pan, ""); d.err == nil && tag == acctMerchant {
		if share && sharedPrefix(*prev, id) >= minSharedID {
			d.fail("merchant id not in its shortest form")
		}
		*prev = id
	}
	return a
}

// putCard writes card c into b: the purse record always, the card record
// when it differs from old (nil: a new card) or old was read in version 1.
// code, when not nil, is the card entry's contribCode (appendPurseCode).
func putCard(b *pebble.Batch, old, c *card, scratch []byte, code **contribCode) error {
	if old == nil || old.v1 || c.v1 || !c.sameStatic(old) {
		c.v1 = false
		if err := b.Set(cardKey(c.PAN), c.encode(), nil); err != nil {
			return err
		}
	}
	c.purseVer = 0
	// Key and value built in scratch, which the batch copies.
	k := append(append(scratch[:0], keyPrefix, tagPurse), c.PAN...)
	return b.Set(k, c.appendPurseCode(k[len(k):], code), nil)
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
				c.Holds[i].decode(&d, false)
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
	// ver is the version a posting was read in (recordV1: accounts
	// spelled out; recordV2: tagged accounts; recordV3: packed), so that
	// it re-encodes as it was stored; 0 for a new posting, written in
	// version 4.
	ver uint8
}

// Posting flags (version 3): which optional fields follow and what the
// day spend is; the frequent ones fit a one-byte uvarint.
const (
	spendZero      = 0 // DaySpend 0
	spendTotal     = 1 // DaySpend Amount + Fee (a debit)
	spendNegTotal  = 2 // DaySpend −(Amount + Fee) (its undoing)
	spendExplicit  = 3 // DaySpend follows
	spendMask      = 3
	postLegImplied = 1 << 2 // the last leg's amount is left out: the legs balance
	postAuthCode   = 1 << 3
	postFee        = 1 << 4
	postLink       = 1 << 5
	postPAN2       = 1 << 6
	postHoldAdd    = 1 << 7
	postHoldDrop   = 1 << 8
	postFlagsAll   = 1<<9 - 1
)

// Leg amount modes (version 4), in the high nibble of a leg's account
// tag: the amount is named by its relation to the posting's amount and
// fee instead of written — a consume's purse leg is minus amount + fee,
// its merchant's plus the amount. The first mode that fits is the one.
const (
	legExplicit    = 0
	legAmount      = 1 // +Amount
	legNegAmount   = 2 // −Amount
	legTotal       = 3 // +(Amount + Fee)
	legNegTotal    = 4 // −(Amount + Fee)
	legFee         = 5 // +Fee
	legNegFee      = 6 // −Fee
	legModes       = 7
	legModeShift   = 4
	legTagMask     = 1<<legModeShift - 1
	legModeInvalid = 0xff
)

// legMode returns the mode of a leg amount v.
func (p *posting) legMode(v Fen) uint8 {
	total := p.Amount + p.Fee
	for m, w := range [legModes]Fen{legAmount: p.Amount, legNegAmount: -p.Amount, legTotal: total, legNegTotal: -total, legFee: p.Fee, legNegFee: -p.Fee} {
		if m != legExplicit && v == w {
			return uint8(m)
		}
	}
	return legExplicit
}

// legAmountOf returns the amount mode m names.
func (p *posting) legAmountOf(m uint8) Fen {
	total := p.Amount + p.Fee
	return [legModes]Fen{legAmount: p.Amount, legNegAmount: -p.Amount, legTotal: total, legNegTotal: -total, legFee: p.Fee, legNegFee: -p.Fee}[m]
}

// encode returns the posting in the version it was read in, a new one in
// version 4 (docs/ledger.md#key-layout-prefix-l):
//
//	version 4 | tx id | kind 1 | flags (uvarint, above) | date (a day) |
//	terminal, merchant (digits) | batch | STAN | RRN, card number
//	(digits) | amount | fee, card 2 (digits), auth code (digits), link:
//	each only when its flag says so | legs (count, each a tagged account,
//	merchant ids packed, + amount, the last amount left out when the legs
//	balance; an amount a mode names, in the tag's high nibble, left out
//	too) | day spend when explicit | the hold added, the hold dropped,
//	packed, when flagged
//
// Version 3, still read: version 4 without leg amount modes.
//
// Versions 1 and 2, still read: version | tx id | kind 1 | date | the
// strings terminal, merchant | batch | STAN | RRN, card, card 2 | amount |
// fee | auth code | link | legs (count, each account — spelled out in
// version 1, tagged in 2 — + amount) | day spend | hold added, hold
// dropped, each a presence byte and the hold.
func (p *posting) encode() []byte { return p.appendTo(make([]byte, 0, 64+len(p.Legs)*8)) }

// appendTo appends the posting set's record (encode) to dst.
func (p *posting) appendTo(dst []byte) []byte { return p.appendKnown(dst, nil) }

// knownDigits are the digit encodings (encoder.digits) of a card number
// and a merchant id, built once where the card and the merchant are
// loaded: a posting set naming them copies them instead of packing the
// digits again.
//
// It knows the card's purse accounts and the merchant's payable too
// (CardCash(pan), CardSubsidy(pan), MerchantPayable(merchant)): a leg
// posting to one of them is tagged without taking its id apart.
type knownDigits struct {
	pan, merchant       string
	panEnc, merchantEnc string // "" when not known
	cash, subsidy       AccountID
	payable             AccountID
}

// tag returns accountTag's tag of a, when a is one of the accounts k
// knows and the posting set's own (ownPAN: its card is k's, ownMerchant:
// its merchant is k's).
func (k *knownDigits) tag(a AccountID, ownPAN, ownMerchant bool) (uint8, bool) {
	switch {
	case ownPAN && a == k.cash:
		return acctOwnCash, true
	case ownPAN && a == k.subsidy:
		return acctOwnSubsidy, true
	case ownMerchant && a == k.payable:
		return acctOwnMerchant, true
	}
	return 0, false
}

// digitsOf writes s as digits does, copying enc when s is known, the
// string enc encodes.
func (e *encoder) digitsOf(s, known, enc string) {
	if enc != "" && s == known {
		e.b = append(e.b, enc...)
		return
	}
	e.digits(s)
}

// appendKnown is appendTo with the digits of the card and merchant k
// knows (nil: none) copied: the same bytes.
func (p *posting) appendKnown(dst []byte, k *knownDigits) []byte {
	var kd knownDigits
	if k != nil {
		kd = *k
	}
	e := encoder{b: dst}
	if p.ver == recordV1 || p.ver == recordV2 {
		p.encodeOld(&e)
		return e.b
	}
	flags := p.spendMode()
	implied := p.lastLegImplied()
	for _, f := range [...]struct {
		set  bool
		flag uint64
	}{{implied, postLegImplied}, {p.AuthCode != "", postAuthCode}, {p.Fee != 0, postFee}, {p.Link != 0, postLink},
		{p.PAN2 != "", postPAN2}, {p.HoldAdd != nil, postHoldAdd}, {p.HoldDrop != nil, postHoldDrop}} {
		if f.set {
			flags |= f.flag
		}
	}
	modes := p.ver != recordV3
	if modes {
		e.byte1(recordV4)
	} else {
		e.byte1(recordV3)
	}
	e.u(p.TxID)
	e.byte1(uint8(p.Kind))
	e.u(flags)
	e.day(p.Date)
	e.digits(p.Terminal)
	e.digitsOf(p.Merchant, kd.merchant, kd.merchantEnc)
	e.u(uint64(p.Batch))
	e.u(uint64(p.STAN))
	e.digits(p.RRN)
	e.digitsOf(p.PAN, kd.pan, kd.panEnc)
	e.fen(p.Amount)
	if p.Fee != 0 {
		e.fen(p.Fee)
	}
	if p.PAN2 != "" {
		e.digits(p.PAN2)
	}
	if p.AuthCode != "" {
		e.digits(p.AuthCode)
	}
	if p.Link != 0 {
		e.u(p.Link)
	}
	e.u(uint64(len(p.Legs)))
	ownPAN := kd.panEnc != "" && p.PAN == kd.pan && p.PAN != ""
	ownMerchant := kd.merchantEnc != "" && p.Merchant == kd.merchant && p.Merchant != ""
	for i, l := range p.Legs {
		at := len(e.b)
		if tag, ok := kd.tag(l.Account, ownPAN, ownMerchant); ok {
			e.byte1(tag)
		} else {
			e.account(l.Account, p.PAN, p.Merchant, true)
		}
		if implied && i == len(p.Legs)-1 {
			break
		}
		if m := p.legMode(l.Amount); modes && m != legExplicit {
			e.b[at] |= m << legModeShift
			continue
		}
		e.fen(l.Amount)
	}
	if flags&spendMask == spendExplicit {
		e.fen(p.DaySpend)
	}
	for _, h := range [...]*hold{p.HoldAdd, p.HoldDrop} {
		if h != nil {
			h.encode(&e, true)
		}
	}
	return e.b
}

func (p *posting) encodeOld(e *encoder) {
	e.byte1(p.ver)
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
		if p.ver == recordV1 {
			e.str(string(l.Account))
		} else {
			e.account(l.Account, p.PAN, p.Merchant, false)
		}
		e.fen(l.Amount)
	}
	e.fen(p.DaySpend)
	for _, h := range [...]*hold{p.HoldAdd, p.HoldDrop} {
		e.boolean(h != nil)
		if h != nil {
			h.encode(e, false)
		}
	}
}

// spendMode returns the shortest form of the day spend (the first of
// zero, the total, its negation that matches; else explicit).
func (p *posting) spendMode() uint64 {
	total := p.Amount + p.Fee
	switch p.DaySpend {
	case 0:
		return spendZero
	case total:
		return spendTotal
	case -total:
		return spendNegTotal
	}
	return spendExplicit
}

// impliedLeg is the amount that makes the legs balance given all but the
// last (wrapping as the decoder computes it, so it is exact whatever the
// amounts).
func (p *posting) impliedLeg() Fen {
	var v Fen
	for _, l := range p.Legs[:len(p.Legs)-1] {
		v -= l.Amount
	}
	return v
}

func (p *posting) lastLegImplied() bool {
	return len(p.Legs) > 0 && p.Legs[len(p.Legs)-1].Amount == p.impliedLeg()
}

func decodePosting(b []byte) (posting, error) {
	d := decoder{b: b}
	var p posting
	switch v := d.byte1(); {
	case d.err != nil:
	case v == recordV1 || v == recordV2 || v == recordV3:
		p.ver = v
	case v != recordV4:
		d.fail(fmt.Sprintf("unknown posting version %d", v))
	}
	if d.err == nil && (p.ver == 0 || p.ver == recordV3) {
		return decodePosting3(&d, p.ver)
	}
	p.TxID = d.u()
	p.Kind = Kind(d.byte1())
	p.Date = d.date()
	p.Terminal = d.str()
	p.Merchant = d.str()
	p.Batch, p.STAN = d.batchSTAN()
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
			if p.ver == recordV1 {
				p.Legs[i].Account = AccountID(d.str())
			} else {
				p.Legs[i].Account = d.account(p.PAN, p.Merchant, false)
			}
			p.Legs[i].Amount = d.fen()
		}
	}
	p.DaySpend = d.fen()
	for _, h := range []**hold{&p.HoldAdd, &p.HoldDrop} {
		if d.boolean() {
			*h = new(hold)
			(*h).decode(&d, false)
		}
	}
	return p.done(&d)
}

func (d *decoder) batchSTAN() (batch, stan uint32) {
	b, s := d.u(), d.u()
	if b > maxSixDigits || s > maxSixDigits {
		d.fail("batch or STAN above six digits")
	}
	return uint32(min(b, maxSixDigits)), uint32(min(s, maxSixDigits))
}

func (p *posting) done(d *decoder) (posting, error) {
	if err := d.done(); err != nil {
		return posting{}, err
	}
	if p.Kind == 0 || p.Kind >= kindCount {
		d.fail("bad posting kind")
		return posting{}, d.err
	}
	return *p, nil
}

// decodePosting3 decodes the rest of a version 3 or (ver 0) 4 posting.
// Each optional field flagged must be non-zero and each implied one must
// not be spelled out, so that the posting re-encodes to the same bytes.
func decodePosting3(d *decoder, ver uint8) (posting, error) {
	p := posting{ver: ver}
	p.TxID = d.u()
	p.Kind = Kind(d.byte1())
	flags := d.u()
	if flags&^postFlagsAll != 0 {
		d.fail("bad posting flags")
	}
	p.Date = d.day()
	p.Terminal = d.digits()
	p.Merchant = d.digits()
	p.Batch, p.STAN = d.batchSTAN()
	p.RRN = d.digits()
	p.PAN = d.digits()
	p.Amount = d.fen()
	if flags&postFee != 0 {
		if p.Fee = d.fen(); p.Fee == 0 {
			d.fail("fee flagged but zero")
		}
	}
	if flags&postPAN2 != 0 {
		if p.PAN2 = d.digits(); p.PAN2 == "" {
			d.fail("card 2 flagged but empty")
		}
	}
	if flags&postAuthCode != 0 {
		if p.AuthCode = d.digits(); p.AuthCode == "" {
			d.fail("auth code flagged but empty")
		}
	}
	if flags&postLink != 0 {
		if p.Link = d.u(); p.Link == 0 {
			d.fail("link flagged but zero")
		}
	}
	implied := flags&postLegImplied != 0
	n := d.count(maxLegs, "legs")
	if n > 0 {
		p.Legs = make([]leg, n)
		for i := range p.Legs {
			tag := d.byte1()
			m := tag >> legModeShift
			if ver == recordV3 {
				m = 0
			}
			p.Legs[i].Account = d.accountTagged(tag&^(m<<legModeShift), p.PAN, p.Merchant, true)
			switch last := implied && i == n-1; {
			case d.err != nil:
			case m >= legModes || last && m != legExplicit:
				d.fail("bad leg amount mode")
			case last:
			case m != legExplicit:
				if p.Legs[i].Amount = p.legAmountOf(m); p.legMode(p.Legs[i].Amount) != m {
					d.fail("leg amount mode not the first that fits")
				}
			default:
				if p.Legs[i].Amount = d.fen(); ver != recordV3 && p.legMode(p.Legs[i].Amount) != legExplicit {
					d.fail("leg amount not in its shortest form")
				}
			}
		}
	}
	if d.err == nil {
		switch {
		case implied && n == 0:
			d.fail("implied leg without legs")
		case implied:
			v := p.impliedLeg()
			if v > 1<<60 || v < -(1<<60) {
				d.fail("amount out of range")
			}
			p.Legs[n-1].Amount = v
		case p.lastLegImplied():
			d.fail("leg not in its shortest form")
		}
	}
	total := p.Amount + p.Fee
	switch flags & spendMask {
	case spendTotal:
		p.DaySpend = total
	case spendNegTotal:
		p.DaySpend = -total
	case spendExplicit:
		p.DaySpend = d.fen()
	}
	if d.err == nil && p.spendMode() != flags&spendMask {
		d.fail("day spend not in its shortest form")
	}
	if flags&postHoldAdd != 0 {
		p.HoldAdd = new(hold)
		p.HoldAdd.decode(d, true)
	}
	if flags&postHoldDrop != 0 {
		p.HoldDrop = new(hold)
		p.HoldDrop.decode(d, true)
	}
	return p.done(d)
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
	// payable is MerchantPayable(ID), built once where the merchant is
	// loaded or added (not part of the record), with its balance's home
	// and the digit encoding of ID (knownDigits).
	payable AccountID
	bal     *atomic.Int64
	idEnc   string
}

// account is the merchant's payable account.
func (m *merchant) account() AccountID {
	if m.payable != "" {
		return m.payable
	}
	return MerchantPayable(m.ID)
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
