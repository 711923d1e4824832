package posim

import (
	"bytes"
	"context"
	"crypto/des"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardswitch/cardswitch/internal/gwsim"
	"github.com/cardswitch/cardswitch/spec"
)

// Demo data of README.md#demo-data: the demo terminals share one clear TMK.
const DemoTMK = "0123456789ABCDEFFEDCBA9876543210"

// DemoTerminals returns the first n (at most 5) demo terminals, each
// presenting the demo cards that can pay: the staff card (no daily limit),
// the student card and the visitor card (which pays the service fee).
func DemoTerminals(n int) ([]TerminalSpec, error) {
	tmk, _ := hex.DecodeString(DemoTMK)
	all := []TerminalSpec{
		{ID: "10000001", Merchant: "898310000000001"},
		{ID: "10000002", Merchant: "898310000000001"},
		{ID: "10000003", Merchant: "898310000000002"},
		{ID: "90000001", Merchant: "898310000000001", MayLoad: true},
		{ID: "20000001", Merchant: "898320000000001"},
	}
	if n < 1 || n > len(all) {
		return nil, fmt.Errorf("%w: %d demo terminals (1..%d; use --admin to provision more)", ErrOptions, n, len(all))
	}
	cards := []Card{
		{PAN: "6230151000000000020", PIN: "654321"},
		{PAN: "6230151000000000012", PIN: "123456"},
		{PAN: "6230151000000000038", PIN: "111111"},
	}
	out := all[:n]
	for i := range out {
		out[i].TMK = tmk
		out[i].Cards = cards
	}
	return out, nil
}

// Card sets: which cards the simulated cardholders present.
const (
	CardsCampus = "campus" // the switch's own campus cards (the default)
	CardsBank   = "bank"   // bank cards of gwsim's demo bank, forwarded over a gateway link
	CardsBoth   = "both"   // campus and bank cards alike
)

// BankCards turns a bank's account holders (a gwsim accounts file) into
// bank cards.
func BankCards(accts []gwsim.Account) []Card {
	out := make([]Card, 0, len(accts))
	for _, a := range accts {
		out = append(out, Card{PAN: a.Card, PIN: a.PIN, Bank: true})
	}
	return out
}

// DemoBankCards are gwsim's demo bank cards (docs/gwsim.md) with 1000.00
// or more: the nearly empty ones would turn a load into a run of 51s.
func DemoBankCards() []Card {
	var rich []gwsim.Account
	for _, a := range gwsim.DemoAccounts() {
		if a.Balance >= 100_000 {
			rich = append(rich, a)
		}
	}
	return BankCards(rich)
}

// WithCards replaces or extends every terminal's cards by the named set:
// campus keeps them, bank replaces them with bank cards, both adds the
// bank cards to them.
func WithCards(terms []TerminalSpec, set string, bank []Card) ([]TerminalSpec, error) {
	switch set {
	case "", CardsCampus:
		return terms, nil
	case CardsBank, CardsBoth:
	default:
		return nil, fmt.Errorf("%w: card set %q (want campus, bank or both)", ErrOptions, set)
	}
	if len(bank) == 0 {
		return nil, fmt.Errorf("%w: no bank cards", ErrOptions)
	}
	out := make([]TerminalSpec, len(terms))
	for i, t := range terms {
		cards := slices.Clone(bank)
		if set == CardsBoth {
			cards = append(slices.Clone(t.Cards), bank...)
		}
		t.Cards = cards
		out[i] = t
	}
	return out, nil
}

// ProvisionOptions say what to create through the admin API
// (docs/admin-api.md).
type ProvisionOptions struct {
	// Admin is the HTTP base URL, e.g. http://127.0.0.1:9583.
	Admin string
	Token string
	// Merchant the terminals belong to (it must exist). Default the demo
	// canteen, 898310000000001, an on-campus merchant.
	Merchant string
	// Terminals to create; CardsPerTerminal cards each (default 2).
	Terminals        int
	CardsPerTerminal int
	// Cash is each card's opening cash purse. Default 1,000,000.00 yuan.
	Cash spec.Amount
	// PIN of every card. Default 246810.
	PIN string
	// BIN starts every card number: it must be routed to the local
	// ledger. Default 623015, the demo route.
	BIN string
	// Rand supplies the run ID and the TMK components. Default crypto/rand.
	Rand io.Reader
	// Client is the HTTP client. Default one with a 10 s timeout.
	Client *http.Client
}

// Provisioned is what Provision created.
type Provisioned struct {
	// RunID is the run-unique part of every terminal ID and card number.
	RunID     int
	Terminals []TerminalSpec
	// Opening balance of every card (cash; no subsidy).
	Opening map[string]spec.Amount
}

// ErrAdmin: the admin API refused or failed a request.
var ErrAdmin = errors.New("posim: admin API")

// errConflict: the terminal or card exists already (HTTP 409).
var errConflict = errors.New("exists already")

const (
	maxProvisionAttempts = 5
	provisionParallel    = 8
	maxAdminAnswer       = 64 << 10
)

// Provision creates terminals and cards of its own through the admin API.
// Terminal IDs are "6" + 3 digits of the run ID + a 4-digit index; card
// numbers are BIN + the 6-digit run ID + a 6-digit index + a Luhn check
// digit, so repeated runs against one data directory do not collide (on a
// collision it draws another run ID). Each terminal gets its TMK as two
// random clear components, which posim XORs itself; each card is a staff
// card (no service fee) with no daily or per-transaction limit, no maximum
// balance and a generous cash purse, so the load is never declined for
// money.
func Provision(ctx context.Context, o ProvisionOptions) (*Provisioned, error) {
	if o.Merchant == "" {
		o.Merchant = "898310000000001"
	}
	if o.CardsPerTerminal <= 0 {
		o.CardsPerTerminal = 2
	}
	if o.Cash <= 0 {
		o.Cash = 100_000_000
	}
	if o.PIN == "" {
		o.PIN = "246810"
	}
	if o.BIN == "" {
		o.BIN = "623015"
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	switch {
	case o.Terminals < 1 || o.Terminals > MaxTerminals:
		return nil, fmt.Errorf("%w: %d terminals (1..%d)", ErrOptions, o.Terminals, MaxTerminals)
	case o.CardsPerTerminal > 100 || o.Terminals*o.CardsPerTerminal > 999_999:
		return nil, fmt.Errorf("%w: %d cards per terminal", ErrOptions, o.CardsPerTerminal)
	case len(o.BIN) != 6 || !digits(o.BIN):
		return nil, fmt.Errorf("%w: BIN %q must be 6 digits", ErrOptions, o.BIN)
	case o.Cash > spec.MaxAmount:
		return nil, fmt.Errorf("%w: cash %d fen", ErrOptions, o.Cash)
	}
	for attempt := 1; ; attempt++ {
		var b [4]byte
		if _, err := io.ReadFull(o.Rand, b[:]); err != nil {
			return nil, fmt.Errorf("draw run ID: %w", err)
		}
		run := int(binary.BigEndian.Uint32(b[:]) % 1_000_000)
		p, err := provisionRun(ctx, &o, run)
		if errors.Is(err, errConflict) && attempt < maxProvisionAttempts {
			continue
		}
		return p, err
	}
}

func provisionRun(ctx context.Context, o *ProvisionOptions, run int) (*Provisioned, error) {
	p := &Provisioned{RunID: run, Terminals: make([]TerminalSpec, o.Terminals), Opening: make(map[string]spec.Amount)}
	// The first terminal alone first: a collision of run IDs shows there.
	errs := make([]error, o.Terminals)
	errs[0] = provisionTerminal(ctx, o, p, run, 0)
	if errs[0] != nil {
		return nil, errs[0]
	}
	sem := make(chan struct{}, provisionParallel)
	var wg sync.WaitGroup
	for i := 1; i < o.Terminals; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = provisionTerminal(ctx, o, p, run, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, t := range p.Terminals {
		for _, c := range t.Cards {
			p.Opening[c.PAN] = o.Cash
		}
	}
	return p, nil
}

// TerminalID and CardPAN name the i-th terminal and card of a run.
func TerminalID(run, i int) string { return fmt.Sprintf("6%03d%04d", run%1000, i) }

// CardPAN is BIN + 6-digit run + 6-digit index + Luhn check digit.
func CardPAN(bin string, run, i int) string {
	body := fmt.Sprintf("%s%06d%06d", bin, run, i)
	return body + string(rune('0'+luhnCheck(body)))
}

// luhnCheck returns the check digit that makes body+digit pass the Luhn
// test (ISO/IEC 7812-1 Annex B).
func luhnCheck(body string) int {
	sum := 0
	double := true // the digit left of the check digit is doubled
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func provisionTerminal(ctx context.Context, o *ProvisionOptions, p *Provisioned, run, i int) error {
	if i >= 10000 {
		return fmt.Errorf("%w: terminal index %d needs more than 4 digits", ErrOptions, i)
	}
	id := TerminalID(run, i)
	c1, c2 := make([]byte, 16), make([]byte, 16)
	if _, err := io.ReadFull(o.Rand, c1); err != nil {
		return err
	}
	if _, err := io.ReadFull(o.Rand, c2); err != nil {
		return err
	}
	tmk := make([]byte, 16)
	for k := range tmk {
		tmk[k] = c1[k] ^ c2[k]
	}
	var created struct {
		ID     string `json:"id"`
		TMKKCV string `json:"tmk_kcv"`
	}
	err := adminCall(ctx, o, http.MethodPost, "/api/v1/terminals", map[string]any{
		"id": id, "merchant": o.Merchant, "may_load": true,
		"tmk_components": []string{strings.ToUpper(hex.EncodeToString(c1)), strings.ToUpper(hex.EncodeToString(c2))},
	}, &created)
	if err != nil {
		return fmt.Errorf("create terminal %s: %w", id, err)
	}
	if want := KCV(tmk); !kcvMatches(created.TMKKCV, want) {
		return fmt.Errorf("%w: terminal %s TMK check value %q, posim computed %s", ErrAdmin, id, created.TMKKCV, want)
	}
	t := TerminalSpec{ID: id, Merchant: o.Merchant, TMK: tmk, MayLoad: true}
	for k := 0; k < o.CardsPerTerminal; k++ {
		idx := i*o.CardsPerTerminal + k
		pan := CardPAN(o.BIN, run, idx)
		err := adminCall(ctx, o, http.MethodPost, "/api/v1/cards", map[string]any{
			"pan": pan, "holder": fmt.Sprintf("posim %06d-%d", run, idx), "holder_type": "staff",
			"cash": Yuan(o.Cash), "subsidy": "0", "pin": o.PIN,
			"daily_limit": "0", "per_txn_limit": "0", "max_balance": "0",
		}, nil)
		if err != nil {
			return fmt.Errorf("create card %s: %w", cardno.Mask(pan), err)
		}
		t.Cards = append(t.Cards, Card{PAN: pan, PIN: o.PIN})
	}
	p.Terminals[i] = t
	return nil
}

// KCV is the 6-hex-digit check value of a double-length DES key: the key
// encrypting a zero block, first 3 bytes (ANSI X9.24-1).
func KCV(key []byte) string {
	k := append(append([]byte(nil), key...), key[:8]...) // K1 K2 K1
	c, err := des.NewTripleDESCipher(k)
	if err != nil {
		return ""
	}
	var out [8]byte
	c.Encrypt(out[:], make([]byte, 8))
	return strings.ToUpper(hex.EncodeToString(out[:3]))
}

// kcvMatches compares the check value the admin API answered with the one
// posim computed. It also accepts the check value's ASCII hex-encoded a
// second time ("346339383561" for 4C985A), which the admin API answered
// while it was being built; the custodians' comparison is the same.
func kcvMatches(got, want string) bool {
	if strings.EqualFold(got, want) {
		return true
	}
	b, err := hex.DecodeString(got)
	return err == nil && strings.EqualFold(string(b), want)
}

// Yuan formats fen as the admin API's yuan string, "1234.50".
func Yuan(f spec.Amount) string {
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	return fmt.Sprintf("%s%d.%02d", sign, f/100, f%100)
}

// adminCall sends one JSON request; a 409 is errConflict.
func adminCall(ctx context.Context, o *ProvisionOptions, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(o.Admin, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("%w: read answer: %v", ErrAdmin, err)
	}
	if resp.StatusCode == http.StatusConflict {
		return errConflict
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %s %s: HTTP %d: the admin API refused the token: pass the switch's admin token with --token or in POSIM_TOKEN (demo: demo-admin-token)",
			ErrAdmin, method, path, resp.StatusCode)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("%w: %s %s: HTTP %d %s", ErrAdmin, method, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %s %s: answer: %v", ErrAdmin, method, path, err)
		}
	}
	return nil
}

// WriteCards writes the opening balances, one "PAN fen" line per card, for
// reconciliation after the run.
func WriteCards(w io.Writer, opening map[string]spec.Amount) error {
	pans := make([]string, 0, len(opening))
	for p := range opening {
		pans = append(pans, p)
	}
	sortStrings(pans)
	var buf bytes.Buffer
	for _, p := range pans {
		buf.WriteString(p + " " + strconv.FormatInt(int64(opening[p]), 10) + "\n")
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Amount is a sum of money in fen (spec.Amount).
type Amount = spec.Amount
