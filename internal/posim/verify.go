package posim

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"os/exec"
	"sort"
	"strings"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
)

// BalanceFunc returns a card's total balance (cash + subsidy) and the
// amount held by pre-authorizations.
type BalanceFunc func(pan string) (total, held spec.Amount, err error)

// Reconcile checks every card of opening against the ledger: its balance
// must be its opening balance plus the net effect of the approved, not
// reversed transactions of the ack log (Deltas), and what it has held
// what its standing pre-auths hold (Holds).
// It returns one line per discrepancy; none means nothing acknowledged was
// lost and nothing unacknowledged survived. Cards in the ack log but not
// in opening are a discrepancy too. The ack log names cards by their
// reference in the index of opening's cards (NewCardIndex).
func Reconcile(acks []Ack, opening map[string]spec.Amount, balance BalanceFunc) ([]string, error) {
	byRef, err := Deltas(acks)
	if err != nil {
		return nil, err
	}
	heldByRef, err := Holds(acks)
	if err != nil {
		return nil, err
	}
	var bad []string
	pans := make([]string, 0, len(opening))
	for p := range opening {
		pans = append(pans, p)
	}
	sort.Strings(pans)
	idx := NewCardIndex(pans)
	deltas := make(map[string]int64, len(byRef))
	holds := make(map[string]int64, len(heldByRef))
	for r, h := range heldByRef {
		if p, ok := idx.PAN(r); ok {
			holds[p] += h
		}
	}
	refs := make([]string, 0, len(byRef))
	for r := range byRef {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	for _, r := range refs {
		p, ok := idx.PAN(r)
		if !ok {
			bad = append(bad, fmt.Sprintf("card %s: in the ack log but not in the cards file", r))
			continue
		}
		deltas[p] += byRef[r]
	}
	for _, p := range pans {
		want := opening[p] + spec.Amount(deltas[p])
		got, held, err := balance(p)
		if err != nil {
			return bad, fmt.Errorf("balance of card %s: %w", cardno.Mask(p), err)
		}
		if got != want || held != spec.Amount(holds[p]) {
			bad = append(bad, fmt.Sprintf("card %s: balance %s held %s, want %s held %s (opening %s, acknowledged %+d fen)",
				cardno.Mask(p), Yuan(got), Yuan(held), Yuan(want), Yuan(spec.Amount(holds[p])), Yuan(opening[p]), deltas[p]))
		}
	}
	return bad, nil
}

// SwitchctlBalance reads balances offline with `switchctl ledger card`
// (the daemon must be stopped).
func SwitchctlBalance(switchctl, dataDir string) BalanceFunc {
	return func(pan string) (spec.Amount, spec.Amount, error) {
		var out, errb bytes.Buffer
		cmd := exec.Command(switchctl, "ledger", "card", "--data", dataDir, "--card", pan)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("%s ledger card: %v: %s", switchctl, err, strings.TrimSpace(errb.String()))
		}
		return parseLedgerCard(out.String())
	}
}

// parseLedgerCard reads the cash, subsidy and held lines of `switchctl
// ledger card`.
func parseLedgerCard(s string) (total, held spec.Amount, err error) {
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		var dst *spec.Amount
		switch f[0] {
		case "cash", "subsidy":
			dst = &total
		case "held":
			dst = &held
		default:
			continue
		}
		v, perr := ledger.ParseYuan(f[1])
		if perr != nil {
			return 0, 0, fmt.Errorf("ledger card line %q: %w", sc.Text(), perr)
		}
		*dst += spec.Amount(v)
		seen++
	}
	if seen != 3 {
		return 0, 0, fmt.Errorf("ledger card output without cash, subsidy and held lines: %q", s)
	}
	return total, held, nil
}
