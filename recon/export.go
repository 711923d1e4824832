package recon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cockroachdb/pebble/v2"
)

// Header is the export's header row (docs/reconciliation.md "Export").
const Header = "business_date,time,institution,mti,processing_code,terminal,merchant,card,amount_fen,fee_fen,response_code,rrn,stan,link_stan,order_no,auth_code,original_rrn"

// LocalInstitution names the switch's own card ledger in the institution
// column: POS transactions on campus cards.
const LocalInstitution = "local"

// TimeLayout is the format of the time column: local time of the business
// day's zone with milliseconds and offset.
const TimeLayout = "2006-01-02T15:04:05.000-07:00"

// Row is one line of an export: one financial message that reached a final
// state (it was answered).
type Row struct {
	BusinessDate   string
	Time           time.Time
	Institution    string
	MTI            string
	ProcessingCode string
	Terminal       string
	Merchant       string
	Card           string
	Amount         ledger.Fen
	Fee            ledger.Fen
	ResponseCode   string
	RRN            string
	STAN           string
	LinkSTAN       string
	OrderNo        string
	AuthCode       string
	OriginalRRN    string
	// TxType is the journal's transaction label; not a column.
	TxType string
	// LinkTime is the transmission time (field 7, MMDDhhmmss) sent on
	// the gateway link with LinkSTAN; not a column, a match key.
	LinkTime string
	// Batch is the terminal's batch (field 60.2); not a column.
	Batch string
	// seq is the journal sequence of the request.
	seq uint64
}

// Approved reports whether the message was approved.
func (r *Row) Approved() bool { return r.ResponseCode == spec.RCApproved }

// financial lists the transaction labels that move money or holds; the
// export has one line for each answered one.
var financial = map[string]bool{
	spec.Consume.String(): true, spec.ConsumeVoid.String(): true, spec.Refund.String(): true,
	spec.PreAuth.String(): true, spec.PreAuthCancel.String(): true, spec.PreAuthCompletion.String(): true,
	spec.CompletionVoid.String(): true, spec.CashLoad.String(): true, spec.CashLoadVoid.String(): true,
	spec.Reversal.String(): true,
	// A kiosk's bank-transfer load: one line, with the link's numbering
	// of its bank leg (docs/recharge.md).
	spec.TransferLoad.String(): true,
	// Resolutions that move money are lines too, so they are reconciled
	// like any other credit.
	ResolutionType(ActionCredit): true, ResolutionType(ActionRefund): true,
	// Credits from outside institutions (docs/recharge.md).
	txOutsideCredit: true, txOutsideReversal: true,
}

// The journal labels of outside credits and their reversals, and the
// listener of their JSON channel (docs/recharge.md).
const (
	txOutsideCredit   = "recharge_credit"
	txOutsideReversal = "recharge_reversal"
	listenerHTTP      = "recharge_http"
	listenerGateway   = "gateway"
)

// IsFinancial reports whether a journal transaction label is exported.
func IsFinancial(txType string) bool { return financial[txType] }

// Source is what an export reads: the journal and the Pebble reader the
// ledger's posting sets are in (for fees and card numbers).
type Source struct {
	Journal *journal.Journal
	Books   pebble.Reader
	// Location is the business day's zone, for the time column.
	Location *time.Location
	// Context, when set, interrupts a scan once it is done.
	Context context.Context
	// Links, when set, names the gateway link each forwarded message
	// went out on, with the link's STAN and transmission time.
	Links *journal.Links
}

// ScanDay calls fn for every export row of business date date, in journal
// order. The journal is read from one snapshot, so traffic goes on while
// it runs; a day that is closed no longer changes. fn's error stops the
// scan and is returned.
func (s Source) ScanDay(date ledger.BusinessDate, fn func(*Row) error) error {
	if !date.Valid() {
		return fmt.Errorf("recon: scan day: %w", ledger.ErrBadDate)
	}
	loc := s.loc()
	var pending *journal.Entry
	var ferr error
	var n int
	err := s.Journal.ByBusinessDay(date.String(), func(e *journal.Entry) bool {
		if n++; n%4096 == 0 && s.Context != nil && s.Context.Err() != nil {
			ferr = s.Context.Err()
			return false
		}
		if e.Direction == journal.In {
			pending = e
			return true
		}
		req := pending
		pending = nil
		if req == nil || req.Seq+1 != e.Seq || e.Flags&journal.FlagReplayed != 0 ||
			e.Flags&journal.FlagUndecodable != 0 || req.Flags&journal.FlagUndecodable != 0 ||
			!financial[req.TxType] || e.ResponseCode == "" {
			return true
		}
		row, err := s.row(date, req, e, loc)
		if err != nil {
			ferr = err
			return false
		}
		if err := fn(row); err != nil {
			ferr = err
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("recon: scan day %s: %w", date, err)
	}
	return ferr
}

func (s Source) loc() *time.Location {
	if s.Location == nil {
		return time.Local
	}
	return s.Location
}

// row builds the export row of a request/response pair.
func (s Source) row(date ledger.BusinessDate, req, resp *journal.Entry, loc *time.Location) (*Row, error) {
	r := &Row{
		BusinessDate: req.BusinessDate, Time: req.Time.In(loc), Institution: LocalInstitution,
		MTI: req.MTI, Terminal: req.Terminal, Merchant: req.Merchant, ResponseCode: resp.ResponseCode,
		RRN: resp.RRN, STAN: req.STAN, TxType: req.TxType, Batch: req.Batch, seq: req.Seq,
	}
	if req.Listener == Listener {
		var res Resolution
		if err := json.Unmarshal(req.Raw, &res); err != nil {
			return nil, fmt.Errorf("recon: resolution entry %d: %w", req.Seq, err)
		}
		r.Institution, r.Card, r.Amount, r.OriginalRRN = res.Gateway, res.Card, res.Amount, ""
		r.OrderNo = strings.TrimPrefix(res.Key, "order_no:")
		if r.OrderNo == res.Key {
			r.OrderNo = ""
		}
		return r, nil
	}
	switch req.Listener {
	case listenerGateway:
		outsideISO(r, req.Raw, resp.Raw)
	case listenerHTTP:
		outsideJSON(r, req.Raw, resp.Raw)
	}
	if req.Listener != "pos" {
		if r.Institution == LocalInstitution {
			r.Institution = req.Listener
		}
	} else if s.Links != nil && req.Terminal != "" {
		// Forwarded on a gateway link: the link's name is the
		// institution, and its STAN and transmission time a match key.
		lr, err := s.Links.ByLocal(req.Terminal, req.Batch, req.STAN)
		switch {
		case err == nil && lr.BusinessDate == req.BusinessDate:
			r.Institution, r.LinkSTAN, r.LinkTime = lr.Link, lr.STAN, lr.Transmission
		case err != nil && !errors.Is(err, journal.ErrNotFound):
			return nil, fmt.Errorf("recon: link record of terminal %s batch %s stan %s: %w", req.Terminal, req.Batch, req.STAN, err)
		}
	}
	if req.Listener != listenerGateway && req.Listener != listenerHTTP {
		if q, err := spec.DecodePOS(req.Raw); err == nil {
			r.ProcessingCode = q.ProcessingCode
			r.Card = q.PAN
			r.Amount = ledger.Fen(q.Amount)
			if q.RRN != "" && q.RRN != resp.RRN {
				r.OriginalRRN = q.RRN
			}
		}
		if a, err := spec.DecodePOS(resp.Raw); err == nil {
			r.AuthCode = a.AuthCode
		}
	}
	if r.Approved() && resp.RRN != "" && s.Books != nil {
		p, ok, err := ledger.PostingByRRN(s.Books, date, resp.RRN)
		if err != nil {
			return nil, fmt.Errorf("recon: posting of rrn %s: %w", resp.RRN, err)
		}
		if !ok && req.Listener == "pos" {
			// The ledger keeps no RRN index for POS requests (the
			// journal's is theirs, docs/journal.md): their posting is
			// found by the terminal's reference, if it is still this one.
			if p, ok, err = s.postingByReference(req, date, resp.RRN); err != nil {
				return nil, err
			}
		}
		if ok {
			r.Fee = p.Fee
			if r.Card == "" {
				r.Card = p.PAN
			}
		}
	}
	return r, nil
}

// postingByReference returns the posting set of a POS request through its
// terminal, batch and STAN, when that reference still names the
// transaction answered under rrn on date (a reference is reused once the
// terminal's batch and STAN come round again, and pruned after the
// ledger's lookup window).
func (s Source) postingByReference(req *journal.Entry, date ledger.BusinessDate, rrn string) (ledger.PostingView, bool, error) {
	batch, err1 := strconv.ParseUint(req.Batch, 10, 32)
	stan, err2 := strconv.ParseUint(req.STAN, 10, 32)
	if err1 != nil || err2 != nil || req.Terminal == "" || batch > 999999 || stan > 999999 {
		return ledger.PostingView{}, false, nil
	}
	ref := ledger.TxnRef{Terminal: req.Terminal, Batch: uint32(batch), STAN: uint32(stan)}
	p, ok, err := ledger.PostingByReference(s.Books, s.references(), ref)
	var damaged *journal.DamagedRecordError
	if errors.As(err, &damaged) {
		// A duplicate record of this reference does not decode: the
		// journal reported it (docs/journal.md#damaged-duplicate-records);
		// the row goes out without what the posting set adds (its fee),
		// and the day's export goes on.
		return ledger.PostingView{}, false, nil
	}
	if err != nil {
		return ledger.PostingView{}, false, fmt.Errorf("recon: posting of %s: %w", ref, err)
	}
	if !ok || p.Date != date || p.RRN != rrn {
		return ledger.PostingView{}, false, nil
	}
	return p, true, nil
}

// references is the journal's index of POS references (its duplicate
// records carry the ledger's transaction id, docs/journal.md), nil
// without a journal.
func (s Source) references() ledger.References {
	if s.Journal == nil {
		return nil
	}
	return ledger.DigitReferences(s.Journal)
}

// appendCSV appends the row as one CSV line. Every value is digits,
// letters or the time, never a comma or quote, except what a terminal or
// merchant id could hold; those are quoted when needed.
func (r *Row) appendCSV(b []byte) []byte {
	b = append(b, r.BusinessDate...)
	b = append(b, ',')
	b = r.Time.AppendFormat(b, TimeLayout)
	for _, f := range [...]string{r.Institution, r.MTI, r.ProcessingCode, r.Terminal, r.Merchant, r.Card} {
		b = appendField(append(b, ','), f)
	}
	b = strconv.AppendInt(append(b, ','), int64(r.Amount), 10)
	b = strconv.AppendInt(append(b, ','), int64(r.Fee), 10)
	for _, f := range [...]string{r.ResponseCode, r.RRN, r.STAN, r.LinkSTAN, r.OrderNo, r.AuthCode, r.OriginalRRN} {
		b = appendField(append(b, ','), f)
	}
	return append(b, '\n')
}

func appendField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

// Totals are a file's trailer: lines and the sum of their amounts.
type Totals struct {
	Count  int64      `json:"count"`
	Amount ledger.Fen `json:"amount"`
}

// csvFile is an export being written: a temporary file renamed into place
// when complete, mode 0600 (the lines hold full card numbers).
type csvFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	line []byte
	tot  Totals
}

func createCSV(path string) (*csvFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	c := &csvFile{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10)}
	c.w.WriteString(Header + "\n")
	return c, nil
}

func (c *csvFile) add(r *Row) error {
	c.line = r.appendCSV(c.line[:0])
	c.tot.Count++
	c.tot.Amount += r.Amount
	_, err := c.w.Write(c.line)
	return err
}

// finish writes the trailer, syncs and renames the file into place.
func (c *csvFile) finish() error {
	fmt.Fprintf(c.w, "TOTAL,%d,%d\n", c.tot.Count, int64(c.tot.Amount))
	err := c.w.Flush()
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(c.f.Name(), c.path)
	}
	if err != nil {
		os.Remove(c.f.Name())
	}
	return err
}

func (c *csvFile) abort() {
	c.f.Close()
	os.Remove(c.f.Name())
}

// Filter picks the rows of one export file: one institution (gateway) or
// one merchant; the zero Filter takes every row.
type Filter struct {
	Institution string
	Merchant    string
}

func (f Filter) match(r *Row) bool {
	return (f.Institution == "" || r.Institution == f.Institution) && (f.Merchant == "" || r.Merchant == f.Merchant)
}

// WriteCSV streams the export of one business day, filtered, to w.
func (s Source) WriteCSV(w io.Writer, date ledger.BusinessDate, f Filter, progress func(int64)) (Totals, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var tot Totals
	var line []byte
	var seen int64
	bw.WriteString(Header + "\n")
	err := s.ScanDay(date, func(r *Row) error {
		seen++
		if progress != nil && seen%progressEvery == 0 {
			progress(seen)
		}
		if !f.match(r) {
			return nil
		}
		line = r.appendCSV(line[:0])
		tot.Count++
		tot.Amount += r.Amount
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return tot, err
	}
	fmt.Fprintf(bw, "TOTAL,%d,%d\n", tot.Count, int64(tot.Amount))
	return tot, bw.Flush()
}

// progressEvery is how many rows pass between progress callbacks.
const progressEvery = 100_000

// MaxExportFiles bounds the files one day's export writes (institutions
// plus merchants), and so the files it holds open at once.
const MaxExportFiles = 512

// FileInfo describes one written export file.
type FileInfo struct {
	Name   string `json:"name"`
	Totals Totals `json:"totals"`
}

// DayExport is the result of exporting a day into a directory.
type DayExport struct {
	Date  string     `json:"business_date"`
	Dir   string     `json:"dir"`
	Files []FileInfo `json:"files"`
	Rows  int64      `json:"rows"`
}

// ErrTooManyFiles: the day has more institutions and merchants than one
// export writes.
var ErrTooManyFiles = errors.New("recon: too many institutions and merchants for one export")

// InstitutionFile and MerchantFile name the export files of a day.
func InstitutionFile(name string) string { return "institution-" + safeName(name) + ".csv" }
func MerchantFile(id string) string      { return "merchant-" + safeName(id) + ".csv" }

// safeName keeps a name usable as part of a file name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		return "_" + string(b)
	}
	return string(b)
}

// ExportDay writes the day's files into dir/DATE/: one per institution and
// one per merchant, in one pass over the journal. Each file appears whole
// or not at all (temporary name, then rename); files already there are
// replaced, and with the day unchanged come out byte for byte the same.
func (s Source) ExportDay(dir string, date ledger.BusinessDate, progress func(int64)) (*DayExport, error) {
	out := filepath.Join(dir, date.String())
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, fmt.Errorf("recon: export %s: %w", date, err)
	}
	files := map[string]*csvFile{}
	abort := func() {
		for _, f := range files {
			f.abort()
		}
	}
	open := func(name string) (*csvFile, error) {
		if f := files[name]; f != nil {
			return f, nil
		}
		if len(files) >= MaxExportFiles {
			return nil, fmt.Errorf("%w (%d)", ErrTooManyFiles, MaxExportFiles)
		}
		f, err := createCSV(filepath.Join(out, name))
		if err != nil {
			return nil, err
		}
		files[name] = f
		return f, nil
	}
	res := &DayExport{Date: date.String(), Dir: out}
	err := s.ScanDay(date, func(r *Row) error {
		res.Rows++
		if progress != nil && res.Rows%progressEvery == 0 {
			progress(res.Rows)
		}
		f, err := open(InstitutionFile(r.Institution))
		if err == nil {
			err = f.add(r)
		}
		if err == nil && r.Merchant != "" {
			if f, err = open(MerchantFile(r.Merchant)); err == nil {
				err = f.add(r)
			}
		}
		return err
	})
	if err != nil {
		abort()
		return nil, fmt.Errorf("recon: export %s: %w", date, err)
	}
	// A day with no traffic still gets the local institution's file, so
	// that "no file" always means "not exported".
	if _, err := open(InstitutionFile(LocalInstitution)); err != nil {
		abort()
		return nil, fmt.Errorf("recon: export %s: %w", date, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		f := files[n]
		if err := f.finish(); err != nil {
			for _, m := range names[i+1:] {
				files[m].abort()
			}
			return nil, fmt.Errorf("recon: export %s: %s: %w", date, n, err)
		}
		res.Files = append(res.Files, FileInfo{Name: n, Totals: f.tot})
	}
	if d, err := os.Open(out); err == nil {
		d.Sync()
		d.Close()
	}
	return res, nil
}

// outsideISO fills a row from an inbound institution's gateway message:
// card (2), processing code (3), amount (4), institution (32), order
// number (48 tag ON), and the answer's authorization code (38).
func outsideISO(r *Row, req, resp []byte) {
	m, err := spec.DecodeGateway(req)
	if err != nil {
		return
	}
	r.Card, _ = m.GetString(2)
	r.ProcessingCode, _ = m.GetString(3)
	if a, err := m.GetString(4); err == nil {
		if v, err := strconv.ParseInt(a, 10, 64); err == nil {
			r.Amount = ledger.Fen(v)
		}
	}
	if inst, err := m.GetString(32); err == nil && inst != "" {
		r.Institution = inst
	}
	if f48, err := m.GetString(48); err == nil {
		if tags, err := spec.ParseTagList(f48); err == nil {
			r.OrderNo, _ = spec.TagValue(tags, "ON")
		}
	}
	if a, err := spec.DecodeGateway(resp); err == nil {
		r.AuthCode, _ = a.GetString(38)
	}
}

// outsideJSON fills a row from the JSON recharge channel's request and
// answer.
func outsideJSON(r *Row, req, resp []byte) {
	var q struct {
		Institution string `json:"institution"`
		Order       string `json:"order"`
		Card        string `json:"card"`
		AmountFen   *int64 `json:"amount_fen"`
	}
	if json.Unmarshal(req, &q) != nil {
		return
	}
	r.Institution, r.OrderNo, r.Card = q.Institution, q.Order, q.Card
	if q.AmountFen != nil {
		r.Amount = ledger.Fen(*q.AmountFen)
	}
	var a struct {
		AuthCode string `json:"auth_code"`
	}
	if json.Unmarshal(resp, &a) == nil {
		r.AuthCode = a.AuthCode
	}
}
