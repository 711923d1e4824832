package recon

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cardswitch/cardswitch/ledger"
)

// Layout says how to read one counterparty's daily file
// (docs/reconciliation.md "Layouts"): CSV columns by header name or
// position, or fixed-width offsets, the amount's unit and the date format.
type Layout struct {
	// Format is "csv" or "fixed".
	Format string `yaml:"format" json:"format"`
	// Delimiter separates CSV columns [","].
	Delimiter string `yaml:"delimiter" json:"delimiter,omitempty"`
	// Header: the first line of a CSV file names its columns.
	Header bool `yaml:"header" json:"header"`
	// SkipPrefix: lines starting with one of these are not records
	// (trailers such as "TOTAL", comments).
	SkipPrefix []string `yaml:"skip_prefix" json:"skip_prefix,omitempty"`
	// Fields maps what the matcher reads to where it is: order_no,
	// link_stan, transmission_time, rrn (the keys), amount, card, status,
	// date, their_ref (the counterparty's own serial, for the report),
	// bank_card (the payer's bank card in a bank's file, for the report).
	Fields map[string]Column `yaml:"fields" json:"fields"`
	// AmountUnit is "fen" or "yuan" (two decimals) [fen].
	AmountUnit string `yaml:"amount_unit" json:"amount_unit,omitempty"`
	// DateFormat is the Go layout of the date field [20060102].
	DateFormat string `yaml:"date_format" json:"date_format,omitempty"`
	// Success lists the status values meaning the money moved; empty:
	// every record did.
	Success []string `yaml:"success" json:"success,omitempty"`
}

// Column is where one field is: a CSV column by header name or 1-based
// index, or a fixed-width field by 1-based start and length.
type Column struct {
	Name   string `yaml:"name" json:"name,omitempty"`
	Index  int    `yaml:"index" json:"index,omitempty"`
	Start  int    `yaml:"start" json:"start,omitempty"`
	Length int    `yaml:"length" json:"length,omitempty"`
}

// Field names a layout may map.
var layoutFields = map[string]bool{
	"order_no": true, "link_stan": true, "transmission_time": true, "rrn": true,
	"amount": true, "card": true, "status": true, "date": true, "their_ref": true, "bank_card": true,
}

// Bounds of an imported file.
const (
	MaxLineLen    = 4096
	maxLayoutCols = 256
)

// ErrLayout wraps every layout and parse error.
var ErrLayout = errors.New("recon: layout")

// Validate checks a layout.
func (l *Layout) Validate() error {
	switch l.Format {
	case "csv", "fixed":
	default:
		return fmt.Errorf("%w: format %q: want csv or fixed", ErrLayout, l.Format)
	}
	if l.Delimiter != "" && len([]rune(l.Delimiter)) != 1 {
		return fmt.Errorf("%w: delimiter %q: one character", ErrLayout, l.Delimiter)
	}
	switch l.AmountUnit {
	case "", "fen", "yuan":
	default:
		return fmt.Errorf("%w: amount_unit %q: want fen or yuan", ErrLayout, l.AmountUnit)
	}
	if _, ok := l.Fields["amount"]; !ok {
		return fmt.Errorf("%w: no amount field", ErrLayout)
	}
	keys := 0
	for name, c := range l.Fields {
		if !layoutFields[name] {
			return fmt.Errorf("%w: unknown field %q", ErrLayout, name)
		}
		if name == "order_no" || name == "rrn" || name == "link_stan" {
			keys++
		}
		if l.Format == "csv" {
			if (c.Name == "") == (c.Index == 0) || c.Index < 0 || c.Index > maxLayoutCols {
				return fmt.Errorf("%w: field %s: give name or index (1..%d)", ErrLayout, name, maxLayoutCols)
			}
			if c.Name != "" && !l.Header {
				return fmt.Errorf("%w: field %s: column names need header: true", ErrLayout, name)
			}
		} else if c.Start < 1 || c.Length < 1 || c.Start+c.Length-1 > MaxLineLen {
			return fmt.Errorf("%w: field %s: start and length within %d", ErrLayout, name, MaxLineLen)
		}
	}
	if keys == 0 {
		return fmt.Errorf("%w: no match key (order_no, link_stan with transmission_time, or rrn)", ErrLayout)
	}
	if _, ok := l.Fields["link_stan"]; ok {
		if _, ok := l.Fields["transmission_time"]; !ok {
			return fmt.Errorf("%w: link_stan needs transmission_time", ErrLayout)
		}
	}
	return nil
}

// Record is one line of a counterparty's file.
type Record struct {
	Line     int
	OrderNo  string
	LinkSTAN string
	TxTime   string
	RRN      string
	Card     string
	TheirRef string
	BankCard string
	Date     string
	Status   string
	Amount   ledger.Fen
	Success  bool
}

// reader reads records through a layout.
type reader struct {
	l    *Layout
	sc   *bufio.Scanner
	line int
	cols map[string]int // field -> 0-based CSV column
	comm rune
}

func newReader(l *Layout, r io.Reader) (*reader, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLen+2)
	rd := &reader{l: l, sc: sc, comm: ','}
	if l.Delimiter != "" {
		rd.comm = []rune(l.Delimiter)[0]
	}
	if l.Format == "csv" {
		rd.cols = map[string]int{}
		var names map[string]int
		if l.Header {
			if !sc.Scan() {
				if err := sc.Err(); err != nil {
					return nil, fmt.Errorf("%w: header: %v", ErrLayout, err)
				}
				return nil, fmt.Errorf("%w: empty file, no header", ErrLayout)
			}
			rd.line++
			hdr, err := rd.split(strings.TrimPrefix(sc.Text(), "\ufeff"))
			if err != nil {
				return nil, err
			}
			names = map[string]int{}
			for i, h := range hdr {
				names[strings.TrimSpace(h)] = i
			}
		}
		for f, c := range l.Fields {
			if c.Name != "" {
				i, ok := names[c.Name]
				if !ok {
					return nil, fmt.Errorf("%w: header has no column %q (field %s)", ErrLayout, c.Name, f)
				}
				rd.cols[f] = i
			} else {
				rd.cols[f] = c.Index - 1
			}
		}
	}
	return rd, nil
}

func (rd *reader) split(s string) ([]string, error) {
	cr := csv.NewReader(strings.NewReader(s))
	cr.Comma = rd.comm
	cr.FieldsPerRecord = -1
	f, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrLayout, rd.line, err)
	}
	if len(f) > maxLayoutCols {
		return nil, fmt.Errorf("%w: line %d: more than %d columns", ErrLayout, rd.line, maxLayoutCols)
	}
	return f, nil
}

// next reads the next record; io.EOF at the end.
func (rd *reader) next(rec *Record) error {
	for rd.sc.Scan() {
		rd.line++
		text := strings.TrimRight(rd.sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		skip := false
		for _, p := range rd.l.SkipPrefix {
			if strings.HasPrefix(text, p) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		get, err := rd.getter(text)
		if err != nil {
			return err
		}
		*rec = Record{Line: rd.line}
		rec.OrderNo, rec.LinkSTAN, rec.TxTime = get("order_no"), get("link_stan"), get("transmission_time")
		rec.RRN, rec.Card, rec.TheirRef = get("rrn"), get("card"), get("their_ref")
		rec.Date, rec.Status, rec.BankCard = get("date"), get("status"), get("bank_card")
		amt := get("amount")
		if rd.l.AmountUnit == "yuan" {
			rec.Amount, err = ledger.ParseYuan(amt)
		} else {
			var v int64
			v, err = strconv.ParseInt(amt, 10, 64)
			rec.Amount = ledger.Fen(v)
			if err == nil && (v < 0 || rec.Amount > ledger.MaxAmount) {
				err = errors.New("out of range")
			}
		}
		if err != nil {
			return fmt.Errorf("%w: line %d: amount %q: %v", ErrLayout, rd.line, amt, err)
		}
		rec.Success = len(rd.l.Success) == 0
		for _, s := range rd.l.Success {
			if rec.Status == s {
				rec.Success = true
			}
		}
		return nil
	}
	if err := rd.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: line %d longer than %d bytes", ErrLayout, rd.line+1, MaxLineLen)
		}
		return err
	}
	return io.EOF
}

// getter returns the field reader of one line.
func (rd *reader) getter(text string) (func(string) string, error) {
	if rd.l.Format == "fixed" {
		b := []byte(text)
		return func(f string) string {
			c, ok := rd.l.Fields[f]
			if !ok || c.Start > len(b) {
				return ""
			}
			end := min(c.Start-1+c.Length, len(b))
			return string(bytes.TrimSpace(b[c.Start-1 : end]))
		}, nil
	}
	cols, err := rd.split(text)
	if err != nil {
		return nil, err
	}
	return func(f string) string {
		i, ok := rd.cols[f]
		if !ok || i >= len(cols) {
			return ""
		}
		return strings.TrimSpace(cols[i])
	}, nil
}
