package recharge

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cockroachdb/pebble/v2"
)

// Card ↔ bank account binding (docs/recharge.md "Bank binding"): a campus
// card may be bound to one bank card and account at one configured
// gateway, for bank-transfer loads. The bank card number and account
// number are kept sealed under the HSM's data key; operators see them
// masked. Binding and unbinding are journaled with the operator's name.

// Sealer seals and opens data under an HSM data key; *hsm.HSM has it.
type Sealer interface {
	SealData(label string, plaintext, aad []byte) ([]byte, error)
	OpenData(label string, sealed, aad []byte) ([]byte, error)
}

// DataKeyLabel is the HSM label of the AES-256 data key bank account
// numbers are sealed under.
const DataKeyLabel = "data/bank-accounts"

// BindListener names binding entries in the journal.
const BindListener = "binding"

const tagBinding = 'b' // r b PAN → binding record (JSON, numbers sealed)

func bindingKey(pan string) []byte { return append([]byte{keyPrefix, tagBinding}, pan...) }

type bindingRecord struct {
	Gateway  string    `json:"gateway"`
	BankCard []byte    `json:"bank_card"` // sealed
	Account  []byte    `json:"account"`   // sealed
	Masked   string    `json:"masked_card"`
	MaskedAc string    `json:"masked_account"`
	BoundAt  time.Time `json:"bound_at"`
	Operator string    `json:"operator"`
}

// BindingView is a binding as operators see it.
type BindingView struct {
	Card     string    `json:"card"`      // masked
	Gateway  string    `json:"gateway"`   // the link the bank leg goes to
	BankCard string    `json:"bank_card"` // masked
	Account  string    `json:"account"`   // masked: last 4 characters
	BoundAt  time.Time `json:"bound_at"`
	Operator string    `json:"operator"`
}

// Binding errors (the admin API answers 400, 404 or 409).
var (
	ErrBadBinding  = errors.New("recharge: invalid binding")
	ErrNotBound    = errors.New("recharge: card is not bound")
	ErrBound       = errors.New("recharge: card is already bound (unbind it first)")
	ErrUnknownCard = errors.New("recharge: unknown card")
)

// MaskAccount shows the last 4 characters of an account number.
func MaskAccount(a string) string {
	if len(a) <= 4 {
		return strings.Repeat("*", len(a))
	}
	return strings.Repeat("*", len(a)-4) + a[len(a)-4:]
}

func validBankCard(s string) bool { return len(s) >= 12 && len(s) <= 19 && digits(s) }

// Bind binds pan to a bank card and account at gateway (a gateway link
// in force now, one a reload added included). operator is kept with it.
func (s *Service) Bind(pan, gateway, bankCard, account, operator string) (BindingView, error) {
	// The gateway stays in force until the binding is committed.
	defer s.holdGWs()()
	switch {
	case s.sealer == nil:
		return BindingView{}, fmt.Errorf("%w: no data key", ErrBadBinding)
	case !s.isGateway(gateway):
		return BindingView{}, fmt.Errorf("%w: gateway %q is not a gateway link in force", ErrBadBinding, gateway)
	case !validBankCard(bankCard):
		return BindingView{}, fmt.Errorf("%w: bank card must be 12 to 19 digits", ErrBadBinding)
	case len(account) == 0 || len(account) > 28 || !printableASCII(account):
		return BindingView{}, fmt.Errorf("%w: account must be 1 to 28 printable characters (field 102)", ErrBadBinding)
	case len(operator) == 0 || len(operator) > 64 || !printableASCII(operator):
		return BindingView{}, fmt.Errorf("%w: operator must be 1 to 64 printable characters", ErrBadBinding)
	}
	if _, ok := s.ledger.Card(pan); !ok {
		return BindingView{}, ErrUnknownCard
	}
	defer s.lockCard(pan)()
	if old, err := get(s.db, bindingKey(pan)); err != nil {
		return BindingView{}, err
	} else if old != nil {
		return BindingView{}, ErrBound
	}
	aad := []byte("binding:" + pan)
	sc, err := s.sealer.SealData(DataKeyLabel, []byte(bankCard), aad)
	if err != nil {
		return BindingView{}, fmt.Errorf("seal bank card: %w", err)
	}
	sa, err := s.sealer.SealData(DataKeyLabel, []byte(account), aad)
	if err != nil {
		return BindingView{}, fmt.Errorf("seal account: %w", err)
	}
	rec := bindingRecord{Gateway: gateway, BankCard: sc, Account: sa, Masked: cardno.Mask(bankCard),
		MaskedAc: MaskAccount(account), BoundAt: s.now().UTC(), Operator: operator}
	view := rec.view(pan)
	raw, _ := json.Marshal(rec)
	return view, s.commitBinding(pan, "card_bind", operator, view, func(b *pebble.Batch) error {
		return b.Set(bindingKey(pan), raw, nil)
	})
}

// Unbind removes a card's binding. A damaged binding record (one that
// does not decode) is removed too, journaled the same way; its view holds
// the card and the gateway its bytes still name, if one can be read
// (docs/gateway-links.md "Reloading links").
func (s *Service) Unbind(pan, operator string) (BindingView, error) {
	if len(operator) == 0 || len(operator) > 64 || !printableASCII(operator) {
		return BindingView{}, fmt.Errorf("%w: operator must be 1 to 64 printable characters", ErrBadBinding)
	}
	defer s.lockCard(pan)()
	raw, err := get(s.db, bindingKey(pan))
	if err != nil {
		return BindingView{}, err
	}
	if raw == nil {
		return BindingView{}, ErrNotBound
	}
	rec, damaged := decodeBinding(raw)
	view := rec.view(pan)
	if damaged {
		s.log.Warn("damaged binding record removed", zapCard(pan), zapStr("gateway_read", rec.Gateway),
			zapStr("operator", operator))
	}
	return view, s.commitBinding(pan, "card_unbind", operator, view, func(b *pebble.Batch) error {
		return b.Delete(bindingKey(pan), nil)
	})
}

// MaxUnbindGateway bounds the cards one UnbindGateway call unbinds.
const MaxUnbindGateway = 1000

// UnbindGateway removes, each journaled as an unbinding by operator, the
// bindings of up to max cards (1..MaxUnbindGateway) bound to gateway,
// configured or not: before a reload removes the link
// (docs/gateway-links.md "Reloading links"). more reports that cards
// bound to it remain.
func (s *Service) UnbindGateway(gateway, operator string, max int) (unbound int, more bool, err error) {
	switch {
	case gateway == "" || len(gateway) > 64:
		return 0, false, fmt.Errorf("%w: gateway must be 1 to 64 bytes", ErrBadBinding)
	case len(operator) == 0 || len(operator) > 64 || !printableASCII(operator):
		return 0, false, fmt.Errorf("%w: operator must be 1 to 64 printable characters", ErrBadBinding)
	case max < 1 || max > MaxUnbindGateway:
		return 0, false, fmt.Errorf("%w: at most 1 to %d cards a call", ErrBadBinding, MaxUnbindGateway)
	}
	pans, more, err := s.boundTo(gateway, max)
	if err != nil {
		return 0, false, err
	}
	for len(pans) > 0 {
		n := min(len(pans), unbindPerCommit)
		done, err := s.unbindBatch(pans[:n], gateway, operator)
		unbound += done
		if err != nil {
			return unbound, true, err
		}
		pans = pans[n:]
	}
	return unbound, more, nil
}

// unbindPerCommit is how many cards UnbindGateway unbinds in one synced
// commit: a call of MaxUnbindGateway cards costs a few fsyncs, not one a
// card (docs/gateway-links.md "Reloading links").
const unbindPerCommit = 100

// boundTo lists the first max cards bound to gateway — and those whose
// damaged binding record may name it (damagedMayName) — in card order;
// more reports others.
func (s *Service) boundTo(gateway string, max int) (pans []string, more bool, err error) {
	err = s.eachBinding(func(pan string, rec *bindingRecord, damaged bool) bool {
		if !s.unbinds(rec, damaged, gateway) {
			return true
		}
		if len(pans) == max {
			more = true
			return false
		}
		pans = append(pans, pan)
		return true
	})
	if err != nil {
		return nil, false, err
	}
	return pans, more, nil
}

// unbinds reports whether UnbindGateway(gateway) removes a binding: one
// to gateway, or a damaged one that may name it — its readable gateway
// is gateway, or none can be read, or the name read is no link in force
// (it may be a damaged name of gateway). A damaged binding is of no use
// for a transfer load anyway (its numbers cannot be read); removing it is
// journaled like any other (docs/gateway-links.md "Reloading links").
func (s *Service) unbinds(rec *bindingRecord, damaged bool, gateway string) bool {
	if !damaged {
		return rec.Gateway == gateway
	}
	return rec.Gateway == gateway || rec.Gateway == "" || !s.isGateway(rec.Gateway)
}

// eachBinding calls fn with every binding, in card order, until it
// returns false; a record that does not decode is passed as damaged,
// with the gateway its bytes still name (decodeBinding).
func (s *Service) eachBinding(fn func(pan string, rec *bindingRecord, damaged bool) bool) (err error) {
	lo := []byte{keyPrefix, tagBinding}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{keyPrefix, tagBinding + 1}})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, damaged := decodeBinding(v)
		if !fn(string(it.Key()[len(lo):]), &rec, damaged) {
			return nil
		}
	}
	return nil
}

// readableGateway finds the one gateway name a damaged binding record
// still holds ("gateway":"NAME" followed by a JSON token boundary, ','
// or '}'); "" when there is none or more than one. Without the boundary
// a '"' written over a character of the name would read a shorter name
// — bank-b damaged to bank"b reads bank — perhaps one kept.
var readableGateway = regexp.MustCompile(`"gateway"\s*:\s*"([^"\\]{1,64})"\s*[,}]`)

// decodeBinding decodes a binding record. One that does not decode, or
// names no gateway, is damaged: its Gateway is then the name its bytes
// still hold, if exactly one can be read, else "".
func decodeBinding(raw []byte) (rec bindingRecord, damaged bool) {
	if err := json.Unmarshal(raw, &rec); err == nil && rec.Gateway != "" {
		return rec, false
	}
	rec = bindingRecord{}
	if m := readableGateway.FindAllSubmatch(raw, 2); len(m) == 1 {
		rec.Gateway = string(m[0][1])
	}
	return rec, true
}

// unbindBatch removes, in one synced batch with a card_unbind journal
// pair each, the bindings of pans (at most unbindPerCommit) that are still
// to gateway, and reports how many. Each card's binding and its journal
// pair are in the same batch: after a crash a card is bound as before,
// or unbound with its pair journaled.
func (s *Service) unbindBatch(pans []string, gateway, operator string) (int, error) {
	defer s.lockCards(pans)()
	b := s.db.NewBatch()
	defer b.Close()
	var gone []string
	for _, pan := range pans {
		raw, err := get(s.db, bindingKey(pan))
		if err != nil {
			return 0, err
		}
		if raw == nil {
			continue // unbound meanwhile
		}
		rec, damaged := decodeBinding(raw)
		if !s.unbinds(&rec, damaged, gateway) {
			continue // rebound meanwhile
		}
		view := rec.view(pan)
		if damaged {
			s.log.Warn("damaged binding record removed", zapCard(pan), zapStr("gateway_read", rec.Gateway),
				zapStr("unbound_from", gateway), zapStr("operator", operator))
		}
		if err := s.addBindingChange(b, pan, "card_unbind", operator, view, func(b *pebble.Batch) error {
			return b.Delete(bindingKey(pan), nil)
		}); err != nil {
			return 0, err
		}
		gone = append(gone, pan)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	if s.beforeUnbindCommit != nil {
		s.beforeUnbindCommit(b, gone)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, err
	}
	for _, pan := range gone {
		s.log.Info("card_unbind", zapCard(pan), zapStr("gateway", gateway), zapStr("operator", operator))
	}
	if s.afterUnbindBatch != nil {
		s.afterUnbindBatch(len(gone))
	}
	return len(gone), nil
}

// Binding returns a card's binding, masked.
func (s *Service) Binding(pan string) (BindingView, bool, error) {
	raw, err := get(s.db, bindingKey(pan))
	if err != nil || raw == nil {
		return BindingView{}, false, err
	}
	var rec bindingRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return BindingView{}, false, fmt.Errorf("%w: binding of %s", errCorrupt, cardno.Mask(pan))
	}
	return rec.view(pan), true, nil
}

func (r *bindingRecord) view(pan string) BindingView {
	return BindingView{Card: cardno.Mask(pan), Gateway: r.Gateway, BankCard: r.Masked, Account: r.MaskedAc,
		BoundAt: r.BoundAt, Operator: r.Operator}
}

// commitBinding writes a binding change and its journal pair (the masked
// view, never the numbers) in one synced batch.
func (s *Service) commitBinding(pan, tx, operator string, view BindingView, write func(*pebble.Batch) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.addBindingChange(b, pan, tx, operator, view, write); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	s.log.Info(tx, zapCard(pan), zapStr("gateway", view.Gateway), zapStr("operator", operator))
	return nil
}

// addBindingChange adds a binding change and its journal pair to b.
func (s *Service) addBindingChange(b *pebble.Batch, pan, tx, operator string, view BindingView, write func(*pebble.Batch) error) error {
	if err := write(b); err != nil {
		return err
	}
	if s.journal == nil {
		return nil
	}
	raw, _ := json.Marshal(view)
	now := time.Now()
	in := &journal.Entry{Direction: journal.In, Listener: BindListener, Peer: "operator:" + operator[:min(len(operator), 55)],
		TxType: tx, Time: now, BusinessDate: s.today().String(), Raw: raw}
	out := *in
	out.Direction, out.ResponseCode = journal.Out, "00"
	_, _, err := s.journal.AppendPair(b, in, &out)
	return err
}

// GatewayBindings is how many cards are bound to one gateway, and the
// first of them (masked); and the damaged binding records that may name
// it.
type GatewayBindings struct {
	Gateway string
	Count   int
	Cards   []string // masked, at most the max asked, in card order
	// Damaged counts the binding records that do not decode and may name
	// the gateway: their readable gateway is this one, or none, or a name
	// that is no link kept; DamagedCards are the first of them (masked).
	Damaged      int
	DamagedCards []string
}

// DamagedBinding is a binding record that does not decode and whose
// readable gateway is one kept: it cannot name a link being removed.
type DamagedBinding struct {
	Card    string // masked
	Gateway string // the gateway its bytes name
}

// RemovalBindings is what BindingsTo found.
type RemovalBindings struct {
	// Bound are the gateways asked with cards bound to them, or damaged
	// records that may name them.
	Bound []GatewayBindings
	// Skipped counts the damaged records that cannot name a gateway
	// asked; SkippedFirst are the first max of them.
	Skipped      int
	SkippedFirst []DamagedBinding
}

// BindingsTo reads every binding once and reports, for each of removed
// with cards bound to it, in the order given, how many there are and the
// first max of them, with the damaged records that may name it. A reload
// that would remove such a gateway link is refused (docs/gateway-links.md
// "Reloading links"). The damaged records that cannot name a link of
// removed — their readable gateway is one of keep — are skipped and
// counted.
func (s *Service) BindingsTo(removed, keep []string, max int) (RemovalBindings, error) {
	var out RemovalBindings
	if len(removed) == 0 {
		return out, nil
	}
	want := make(map[string]*GatewayBindings, len(removed))
	for _, g := range removed {
		want[g] = &GatewayBindings{Gateway: g}
	}
	damagedTo := func(g *GatewayBindings, pan string) {
		g.Damaged++
		if len(g.DamagedCards) < max {
			g.DamagedCards = append(g.DamagedCards, cardno.Mask(pan))
		}
	}
	err := s.eachBinding(func(pan string, rec *bindingRecord, damaged bool) bool {
		g := want[rec.Gateway]
		switch {
		case !damaged && g != nil:
			g.Count++
			if len(g.Cards) < max {
				g.Cards = append(g.Cards, cardno.Mask(pan))
			}
		case !damaged:
		case g != nil:
			damagedTo(g, pan)
		case rec.Gateway != "" && slices.Contains(keep, rec.Gateway):
			out.Skipped++
			if len(out.SkippedFirst) < max {
				out.SkippedFirst = append(out.SkippedFirst, DamagedBinding{Card: cardno.Mask(pan), Gateway: rec.Gateway})
			}
		default: // no gateway, or no link kept: it may name any link removed
			for _, g := range want {
				damagedTo(g, pan)
			}
		}
		return true
	})
	if err != nil {
		return RemovalBindings{}, err
	}
	for _, g := range removed {
		if w := want[g]; w.Count+w.Damaged > 0 {
			out.Bound = append(out.Bound, *w)
			w.Count, w.Damaged = 0, 0 // a gateway named twice is reported once
		}
	}
	return out, nil
}

// BindingsOutside reads every binding once and reports, in gateway-name
// order, each gateway that is not one of configured yet has cards bound
// to it, or damaged records whose readable gateway is it: how many, and
// the first max of them (masked). The switch refuses to start while
// there are any: their transfer loads would go to a link that does not
// exist (docs/gateway-links.md "Removing a link"). A damaged record
// whose gateway cannot be read names no link; it is not reported.
func (s *Service) BindingsOutside(configured []string, max int) ([]GatewayBindings, error) {
	found := map[string]*GatewayBindings{}
	err := s.eachBinding(func(pan string, rec *bindingRecord, damaged bool) bool {
		if rec.Gateway == "" || slices.Contains(configured, rec.Gateway) {
			return true
		}
		g := found[rec.Gateway]
		if g == nil {
			g = &GatewayBindings{Gateway: rec.Gateway}
			found[rec.Gateway] = g
		}
		if damaged {
			g.Damaged++
			if len(g.DamagedCards) < max {
				g.DamagedCards = append(g.DamagedCards, cardno.Mask(pan))
			}
			return true
		}
		g.Count++
		if len(g.Cards) < max {
			g.Cards = append(g.Cards, cardno.Mask(pan))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]GatewayBindings, 0, len(found))
	for _, g := range found {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b GatewayBindings) int { return strings.Compare(a.Gateway, b.Gateway) })
	return out, nil
}
