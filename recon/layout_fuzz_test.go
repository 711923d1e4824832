package recon

import (
	"bytes"
	"io"
	"testing"
)

// FuzzLayoutRecords feeds arbitrary files through the two example layouts:
// no panic, every record's amount within bounds, line numbers rising, and
// no more records than lines.
func FuzzLayoutRecords(f *testing.F) {
	f.Add([]byte("business_date,rrn,stan,transmission_time,card,amount_fen,status,serial\n20261204,000000000001,000001,1204120000,6222020000000000018,100,A,1\nTOTAL,1,100\n"), false)
	f.Add([]byte("6230151000000000012 6222020000000000018000000000001B00000000001000000001234\n"), true)
	f.Add([]byte("\ufeffbusiness_date,rrn\n\"a,b\",\"\"\"\"\n"), false)
	csvLayout := &Layout{Format: "csv", Header: true, SkipPrefix: []string{"TOTAL,"}, Success: []string{"A"},
		Fields: map[string]Column{"date": {Name: "business_date"}, "rrn": {Name: "rrn"}, "link_stan": {Name: "stan"},
			"transmission_time": {Name: "transmission_time"}, "card": {Name: "card"}, "amount": {Name: "amount_fen"},
			"status": {Name: "status"}, "their_ref": {Name: "serial"}}}
	fixedLayout := &Layout{Format: "fixed", AmountUnit: "yuan",
		Fields: map[string]Column{"card": {Start: 1, Length: 19}, "bank_card": {Start: 20, Length: 19}, "rrn": {Start: 39, Length: 12},
			"their_ref": {Start: 51, Length: 12}, "amount": {Start: 63, Length: 12}}}
	f.Fuzz(func(t *testing.T, data []byte, fixed bool) {
		l := csvLayout
		if fixed {
			l = fixedLayout
		}
		rd, err := newReader(l, bytes.NewReader(data))
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		prev, n := 0, 0
		var rec Record
		for {
			err := rd.next(&rec)
			if err == io.EOF {
				return
			}
			if err != nil {
				return
			}
			n++
			if rec.Line <= prev || rec.Amount < 0 || rec.Amount > 999_999_999_999 || n > lines {
				t.Fatalf("record %+v after line %d (%d of %d lines)", rec, prev, n, lines)
			}
			prev = rec.Line
		}
	})
}
