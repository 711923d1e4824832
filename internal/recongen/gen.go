// Package recongen writes synthetic business days into a journal, and the
// counterparty file that goes with them, for reconciliation tests and the
// 5-million-entry benchmark (docs/BENCHMARKS.md).
package recongen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Options shape a generated day.
type Options struct {
	Date ledger.BusinessDate
	// Pairs is the number of request/response pairs (two journal entries
	// each).
	Pairs int
	// Institution is the journal listener of the messages, and so the
	// export's institution column.
	Institution string
	Seed        uint64
	// DeclinePercent of the consumes are declined 51.
	DeclinePercent int
	Progress       func(n int)
}

// Txn is what the generator remembers of each pair for the counterparty
// file.
type Txn struct {
	RRN      string
	Card     string
	Amount   ledger.Fen
	Approved bool
}

// Generate appends opts.Pairs consume pairs to j, committed in batches of
// 10 000 without sync, and calls each for every pair.
func Generate(db *pebble.DB, j *journal.Journal, o Options, each func(Txn) error) error {
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	start := time.Date(int(o.Date/10000), time.Month(o.Date/100%100), int(o.Date%100), 0, 0, 0, 0, time.UTC).Add(-time.Hour)
	step := 22 * time.Hour / time.Duration(max(o.Pairs, 1))
	b := db.NewBatch()
	for i := 0; i < o.Pairs; i++ {
		term := fmt.Sprintf("%08d", 10000000+i%200)
		merchant := fmt.Sprintf("8983100000%05d", i%20)
		stan := fmt.Sprintf("%06d", i%999999+1)
		rrn := fmt.Sprintf("%03d%09d", 100, i+1)
		card := fmt.Sprintf("623015%013d", rng.IntN(100000))
		amount := ledger.Fen(100 + rng.IntN(5000))
		approved := rng.IntN(100) >= o.DeclinePercent
		rc := spec.RCApproved
		if !approved {
			rc = spec.RCInsufficientFunds
		}
		req := &spec.POSMessage{MTI: "0200", PAN: card, ProcessingCode: "000000", Amount: spec.Amount(amount), HasAmount: true,
			STAN: stan, TerminalID: term, MerchantID: merchant, ConditionCode: "00",
			Reserved60: spec.Field60{Type: "22", Batch: "000001"}}
		raw, err := spec.EncodePOS(req)
		if err != nil {
			return err
		}
		resp := spec.NewPOSResponse(req, rc)
		resp.RRN = rrn
		if approved {
			resp.AuthCode = fmt.Sprintf("%06d", i%1000000)
		}
		rraw, err := spec.EncodePOS(resp)
		if err != nil {
			return err
		}
		at := start.Add(time.Duration(i) * step)
		in := &journal.Entry{Direction: journal.In, Listener: o.Institution, Terminal: term, Merchant: merchant,
			MTI: "0200", STAN: stan, Batch: "000001", TxType: spec.Consume.String(), Time: at, BusinessDate: o.Date.String(), Raw: raw}
		out := &journal.Entry{Direction: journal.Out, Listener: o.Institution, Terminal: term, Merchant: merchant,
			MTI: "0210", STAN: stan, Batch: "000001", RRN: rrn, TxType: spec.Consume.String(), ResponseCode: rc,
			Time: at.Add(time.Millisecond), BusinessDate: o.Date.String(), Raw: rraw}
		if _, _, err := j.AppendPair(b, in, out); err != nil {
			return err
		}
		if each != nil {
			if err := each(Txn{RRN: rrn, Card: card, Amount: amount, Approved: approved}); err != nil {
				return err
			}
		}
		if (i+1)%10000 == 0 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
			if o.Progress != nil {
				o.Progress(i + 1)
			}
		}
	}
	defer b.Close()
	return b.Commit(pebble.Sync)
}

// GwsimHeader is the header of a file in the gwsim layout
// (testdata/recon/layouts.yaml).
const GwsimHeader = "business_date,time,serial,mti,processing_code,op,card,account,beneficiary,amount_fen,direction,response_code,auth_code,rrn,stan,transmission_time,acquirer,forwarding,terminal,merchant,original,status"

// FileWriter writes the counterparty's file in the gwsim layout, with
// planted discrepancies: Skip leaves a record out (ours-only), Alter
// changes its amount (amount-differs), and Extra lines are debits we never
// had (theirs-only).
type FileWriter struct {
	w     *bufio.Writer
	date  string
	n     int
	sum   ledger.Fen
	Skip  map[string]bool
	Alter map[string]ledger.Fen
}

// NewFileWriter starts a file.
func NewFileWriter(w io.Writer, date ledger.BusinessDate) *FileWriter {
	f := &FileWriter{w: bufio.NewWriterSize(w, 64<<10), date: date.String(), Skip: map[string]bool{}, Alter: map[string]ledger.Fen{}}
	f.w.WriteString(GwsimHeader + "\n")
	return f
}

// Add writes the record of one of our transactions (approved ones only:
// the bank lists what stands).
func (f *FileWriter) Add(t Txn) error {
	if !t.Approved || f.Skip[t.RRN] {
		return nil
	}
	amt := t.Amount
	if a, ok := f.Alter[t.RRN]; ok {
		amt = a
	}
	return f.line(t.RRN, t.Card, amt)
}

// Extra writes a record we do not have.
func (f *FileWriter) Extra(rrn, card string, amount ledger.Fen) error {
	return f.line(rrn, card, amount)
}

func (f *FileWriter) line(rrn, card string, amount ledger.Fen) error {
	f.n++
	f.sum += amount
	_, err := fmt.Fprintf(f.w, "%s,120000,%012d,0200,000000,consume,%s,,,%d,D,00,000000,%s,,,,,,,,A\n",
		f.date, f.n, card, int64(amount), rrn)
	return err
}

// Close writes the trailer and flushes.
func (f *FileWriter) Close() error {
	fmt.Fprintf(f.w, "TOTAL,%d,%d\n", f.n, int64(f.sum))
	return f.w.Flush()
}
