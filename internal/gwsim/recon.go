package gwsim

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/spec"
)

// ReconHeader is the header row of the bank's daily reconciliation file
// (docs/gwsim.md, "Reconciliation file").
var ReconHeader = []string{"business_date", "time", "serial", "mti", "processing_code", "op", "card", "account",
	"beneficiary", "amount_fen", "direction", "response_code", "auth_code", "rrn", "stan", "transmission_time",
	"acquirer", "forwarding", "terminal", "merchant", "original", "status"}

// Plant alters the daily file so that reconciliation has discrepancies
// to find. Records are named by RRN (field 37 as the switch sent it).
type Plant struct {
	Skip  []string               // lines left out: the switch's side alone has them
	Alter map[string]spec.Amount // lines written with this amount instead
	Flip  []string               // lines written with the other status (A <-> R)
	Extra []Extra                // lines of money the switch never moved
}

// Extra is a fabricated debit of a card in the daily file.
type Extra struct {
	Card   string
	Amount spec.Amount
	RRN    string // "" makes one up
}

// Bounds on a plant.
const maxPlanted = 10_000

func (p Plant) check() error {
	if n := len(p.Skip) + len(p.Alter) + len(p.Flip) + len(p.Extra); n > maxPlanted {
		return fmt.Errorf("%d planted discrepancies, at most %d", n, maxPlanted)
	}
	for _, x := range p.Extra {
		if len(x.Card) < 12 || len(x.Card) > 19 || !digits(x.Card) || x.Amount <= 0 || x.Amount > spec.MaxAmount || len(x.RRN) > 12 {
			return fmt.Errorf("extra line: card %d digits, amount %d fen: want a 12..19 digit card and a positive amount", len(x.Card), x.Amount)
		}
	}
	for rrn, a := range p.Alter {
		if a < 0 || a > spec.MaxAmount {
			return fmt.Errorf("altered amount for %s out of range", rrn)
		}
	}
	return nil
}

// normalizeDate accepts a business date as YYYYMMDD or YYYY-MM-DD and
// returns YYYYMMDD.
func normalizeDate(d string) (string, error) {
	for _, layout := range []string{"20060102", "2006-01-02"} {
		if t, err := time.Parse(layout, d); err == nil && len(d) == len(layout) {
			return t.Format("20060102"), nil
		}
	}
	return "", fmt.Errorf("date %q: want YYYYMMDD", d)
}

// WriteReconTo writes the daily file of business date (YYYYMMDD): one
// line per approved consume, void, refund and transfer-load leg of that
// day, status A (stands) or R (reversed since), then the trailer
// TOTAL,<lines>,<sum of amount_fen>. It returns the number of lines.
func (s *Sim) WriteReconTo(w io.Writer, date string, p Plant) (int, error) {
	date, err := normalizeDate(date)
	if err != nil {
		return 0, err
	}
	if err := p.check(); err != nil {
		return 0, err
	}
	skip := setOf(p.Skip)
	flip := setOf(p.Flip)
	cw := csv.NewWriter(w)
	if err := cw.Write(ReconHeader); err != nil {
		return 0, err
	}
	var lines int
	var sum spec.Amount
	write := func(rec []string, amount spec.Amount) error {
		lines++
		sum += amount
		return cw.Write(rec)
	}
	for _, e := range s.Entries() {
		if e.BusinessDate != date || e.RC != spec.RCApproved || skip[e.RRN] {
			continue
		}
		dir := ""
		switch e.Op {
		case OpConsume, OpLoad, OpCompletion:
			dir = "D"
		case OpVoid, OpRefund, OpCompletionVoid:
			dir = "C"
		default:
			continue
		}
		amount := e.Amount
		if a, ok := p.Alter[e.RRN]; ok {
			amount = a
		}
		status := "A"
		if e.Reversed {
			status = "R"
		}
		if flip[e.RRN] {
			status = map[string]string{"A": "R", "R": "A"}[status]
		}
		rec := []string{e.BusinessDate, e.Time.Local().Format("15:04:05"), e.Serial, e.MTI, e.Processing, string(e.Op),
			e.Card, e.Account, e.Beneficiary, strconv.FormatInt(int64(amount), 10), dir, e.RC, e.AuthCode, e.RRN,
			e.STAN, e.Transmission, e.Acquirer, e.Forwarding, e.Terminal, e.Merchant, e.Original, status}
		if err := write(rec, amount); err != nil {
			return 0, err
		}
	}
	for i, x := range p.Extra {
		serial := fmt.Sprintf("9%011d", i+1)
		rrn := x.RRN
		if rrn == "" {
			rrn = serial
		}
		rec := []string{date, "12:00:00", serial, "0200", "000000", string(OpConsume), x.Card, "", "",
			strconv.FormatInt(int64(x.Amount), 10), "D", spec.RCApproved, serial[6:], rrn, "", "", "", "", "", "", "", "A"}
		if err := write(rec, x.Amount); err != nil {
			return 0, err
		}
	}
	if err := cw.Write([]string{"TOTAL", strconv.Itoa(lines), strconv.FormatInt(int64(sum), 10)}); err != nil {
		return 0, err
	}
	cw.Flush()
	return lines, cw.Error()
}

// ReconFileName is the daily file's name for a business date (YYYYMMDD).
func ReconFileName(date string) string { return "gwsim-" + date + ".csv" }

// WriteRecon writes the daily file of date into the recon directory,
// atomically (a temp file renamed) and with mode 0600 (it holds full card
// numbers), and returns its path and line count.
func (s *Sim) WriteRecon(date string, p Plant) (string, int, error) {
	date, err := normalizeDate(date)
	if err != nil {
		return "", 0, err
	}
	dir := s.opts.ReconDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("recon directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".gwsim-recon-*")
	if err != nil {
		return "", 0, fmt.Errorf("recon file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename this finds nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", 0, err
	}
	n, err := s.WriteReconTo(tmp, date, p)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("recon file: %w", err)
	}
	path := filepath.Join(dir, ReconFileName(date))
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", 0, fmt.Errorf("recon file: %w", err)
	}
	return path, n, nil
}

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, v := range list {
		m[v] = true
	}
	return m
}

// ParsePlantAmount parses "RRN=FEN" or "CARD=FEN" (the CLI and HTTP
// form of altered and extra lines).
func ParsePlantAmount(s string) (string, spec.Amount, error) {
	k, v, ok := strings.Cut(s, "=")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || k == "" || err != nil || n < 0 || n > int64(spec.MaxAmount) {
		return "", 0, fmt.Errorf("%q: want KEY=FEN", s)
	}
	return k, spec.Amount(n), nil
}
