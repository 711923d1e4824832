package spec

import (
	"fmt"
	"testing"
)

// validateField60Joined is Field60.validate as it was, joining the
// pieces for ParseField60: the reference the unjoined check must equal.
func validateField60Joined(f Field60) error {
	if !f.Present() {
		return f.validate() // unchanged branch
	}
	if _, err := ParseField60(f.String()); err != nil {
		return err
	}
	if len(f.Type) != 2 || (f.Batch != "" && len(f.Batch) != 6) ||
		(f.NetworkCode != "" && (len(f.NetworkCode) != 3 || f.Batch == "")) ||
		(f.Rest != "" && f.NetworkCode == "") {
		return fmt.Errorf("%w: field 60 sub-field widths %d/%d/%d/%d", ErrFormat,
			len(f.Type), len(f.Batch), len(f.NetworkCode), len(f.Rest))
	}
	return nil
}

// FuzzField60Pieces checks, for any four pieces, that validate answers as
// the joined check did and that head is the start of String, and so that
// TxType names what it named with the whole field.
func FuzzField60Pieces(f *testing.F) {
	f.Add("22", "000001", "000", "")
	f.Add("00", "000001", "301", "12")
	f.Add("2", "0000012", "00", "")
	f.Add("22", "00000a", "", "")
	f.Add("", "000001", "", "")
	f.Fuzz(func(t *testing.T, typ, batch, code, rest string) {
		v := Field60{Type: typ, Batch: batch, NetworkCode: code, Rest: rest}
		if got, want := fmt.Sprint(v.validate()), fmt.Sprint(validateField60Joined(v)); got != want {
			t.Fatalf("%+v: validate = %s, joined check = %s", v, got, want)
		}
		head, n := v.head()
		whole := v.String()
		if want := whole[:min(len(whole), field60HeadLen)]; string(head[:n]) != want {
			t.Fatalf("%+v: head %q, want %q", v, head[:n], want)
		}
		for _, mti := range []string{"0200", "0800", "0400"} {
			m := &POSMessage{MTI: mti, ProcessingCode: "000000", ConditionCode: "00", Reserved60: v}
			tx, orig := m.TxType()
			wantTx := Identify(mti, m.ProcessingCode, m.ConditionCode, whole)
			wantOrig := Unknown
			if wantTx == Reversal {
				wantOrig = IdentifyReversal(m.ProcessingCode, m.ConditionCode, whole)
			}
			if tx != wantTx || orig != wantOrig {
				t.Fatalf("%s %+v: TxType %v/%v, want %v/%v", mti, v, tx, orig, wantTx, wantOrig)
			}
		}
	})
}

func TestField60Pieces(t *testing.T) {
	for _, v := range []Field60{
		{Type: "22", Batch: "000001"}, {Type: "00", Batch: "000001", NetworkCode: "301", Rest: "12"},
		{Type: "22", Batch: "000001", NetworkCode: "000", Rest: "123456"}, {Type: "2", Batch: "0000012"},
		{Type: "22", Batch: "00000a"}, {Type: "22", Batch: "000001", NetworkCode: "00"}, {Type: "22"},
		{Type: "22", Batch: "000001", NetworkCode: "000", Rest: "123456789012345678901234567890"},
		{Type: "22", Rest: "1"}, {Batch: "000001"},
	} {
		if got, want := fmt.Sprint(v.validate()), fmt.Sprint(validateField60Joined(v)); got != want {
			t.Errorf("%+v: validate = %s, joined check = %s", v, got, want)
		}
	}
}
