package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
)

func TestTagList(t *testing.T) {
	good := []struct {
		in   string
		tags []Tag
	}{
		{"", nil},
		{"PK032" + "0123456789ABCDEF0123456789ABCDEF" + "PC006A1B2C3",
			[]Tag{{"PK", "0123456789ABCDEF0123456789ABCDEF"}, {"PC", "A1B2C3"}}},
		{"ON000", []Tag{{"ON", ""}}},
		// "校园" is 6 bytes of UTF-8: the length counts bytes.
		{"NM006\xe6\xa0\xa1\xe5\x9b\xad", []Tag{{"NM", "校园"}}},
	}
	for _, g := range good {
		got, err := ParseTagList(g.in)
		if err != nil {
			t.Fatalf("ParseTagList(%q): %v", g.in, err)
		}
		if len(got) != len(g.tags) {
			t.Fatalf("ParseTagList(%q) = %v, want %v", g.in, got, g.tags)
		}
		for i := range got {
			if got[i] != g.tags[i] {
				t.Errorf("ParseTagList(%q)[%d] = %v, want %v", g.in, i, got[i], g.tags[i])
			}
		}
		back, err := FormatTagList(g.tags)
		if err != nil || back != g.in {
			t.Errorf("FormatTagList(%v) = %q, %v; want %q", g.tags, back, err, g.in)
		}
	}
	bad := []string{
		"PK",                 // short header
		"PK03",               // short length
		"PK0x1A",             // non-digit length
		"PK005ABC",           // value shorter than its length
		"P 001A",             // space in tag
		"PK001APK001B",       // duplicate
		"PK002\xff\xfe",      // not UTF-8
		"PK002A\n",           // control character
		"NM003\xe6\xa0\xa1X", // a 1-byte remainder after the tag
	}
	for _, b := range bad {
		if _, err := ParseTagList(b); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseTagList(%q) = %v, want ErrFormat", b, err)
		}
	}
	if _, err := FormatTagList([]Tag{{"PKX", "1"}}); err == nil {
		t.Error("FormatTagList accepted a 3-character tag")
	}
	if _, err := FormatTagList([]Tag{{"AA", strings.Repeat("a", 995)}}); err == nil {
		t.Error("FormatTagList accepted a list of 1000 bytes")
	}
	if _, err := FormatTagList([]Tag{{"AA", "a\x00"}}); err == nil {
		t.Error("FormatTagList accepted a NUL")
	}
	if v, ok := TagValue([]Tag{{"AK", "x"}}, "AK"); !ok || v != "x" {
		t.Error("TagValue AK")
	}
}

func TestField48UTF8OnTheWire(t *testing.T) {
	m := newGatewayMsg(t, map[int]string{0: "0810", 7: "0315143005", 11: "000001", 39: "00", 48: "NM006校园", 70: "101"})
	b, err := EncodeGateway(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeGateway(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.GetString(48); v != "NM006校园" {
		t.Fatalf("field 48 = %q", v)
	}
	// The same bytes with an invalid UTF-8 byte in 48 are a format error.
	i := len(b) - len("校园") - 3
	b[i] = 0xff
	if _, err := DecodeGateway(b); !errors.Is(err, ErrFormat) {
		t.Fatalf("DecodeGateway with bad UTF-8 in 48: %v", err)
	}
}

func TestOriginalData(t *testing.T) {
	o := OriginalData{MTI: "0200", STAN: "000124", Transmission: "0315143006", Acquirer: "12345678", Forwarding: ""}
	s, err := o.Format()
	// hand-checked: 0200 000124 0315143006 00012345678 00000000000
	if want := "0200" + "000124" + "0315143006" + "00012345678" + "00000000000"; err != nil || s != want {
		t.Fatalf("Format = %q, %v; want %q", s, err, want)
	}
	p, err := ParseOriginalData(s)
	if err != nil || p.MTI != "0200" || p.STAN != "000124" || p.Transmission != "0315143006" ||
		p.Acquirer != "00012345678" || p.Forwarding != "00000000000" {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
	if !SameInstitution(p.Acquirer, "12345678") || SameInstitution(p.Forwarding, "1") {
		t.Error("SameInstitution")
	}
	for _, b := range []OriginalData{
		{MTI: "200", STAN: "000124", Transmission: "0315143006", Acquirer: "1"},
		{MTI: "0200", STAN: "12", Transmission: "0315143006", Acquirer: "1"},
		{MTI: "0200", STAN: "000124", Transmission: "031514300", Acquirer: "1"},
		{MTI: "0200", STAN: "000124", Transmission: "0315143006", Acquirer: "123456789012"},
		{MTI: "0200", STAN: "000124", Transmission: "0315143006", Acquirer: "1", Forwarding: "x"},
	} {
		if _, err := b.Format(); err == nil {
			t.Errorf("Format(%+v) accepted", b)
		}
	}
	for _, b := range []string{"", "0200000124031514300600012345678000000000", "0200000124031514300600012345678000000000A0"} {
		if _, err := ParseOriginalData(b); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseOriginalData(%q) = %v", b, err)
		}
	}
}

func TestTransmissionTime(t *testing.T) {
	now := time.Date(2026, 3, 15, 14, 30, 5, 0, time.FixedZone("CST", 8*3600)) // 06:30:05 UTC
	if got := FormatTransmissionTime(now); got != "0315063005" {
		t.Fatalf("FormatTransmissionTime = %q, want UTC 0315063005", got)
	}
	cases := []struct {
		s    string
		now  time.Time
		want time.Time
	}{
		{"0315063005", now, time.Date(2026, 3, 15, 6, 30, 5, 0, time.UTC)},
		// sent just before the new year, read just after
		{"1231235959", time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		// sent just after the new year by a fast clock
		{"0101000001", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)},
		// 29 February exists in 2028 only
		{"0229120000", time.Date(2028, 2, 29, 12, 0, 1, 0, time.UTC), time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		got, err := ParseTransmissionTime(c.s, c.now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseTransmissionTime(%s, %v) = %v, %v; want %v", c.s, c.now, got, err, c.want)
		}
	}
	if d, err := TransmissionSkew("0315063505", now); err != nil || d != 5*time.Minute {
		t.Errorf("skew = %v, %v", d, err)
	}
	for _, b := range []string{"1315063005", "0332063005", "0315243005", "031506300", "03150630x5", "0229120000"} {
		if _, err := ParseTransmissionTime(b, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseTransmissionTime(%q) = %v, want ErrFormat", b, err)
		}
	}
}

func FuzzTagList(f *testing.F) {
	f.Add("PK0320123456789ABCDEF0123456789ABCDEFPC006A1B2C3")
	f.Add("NM006校园ON000")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTagList(s)
		if err != nil {
			return
		}
		back, err := FormatTagList(tags)
		if err != nil || back != s {
			t.Fatalf("%q parsed to %v, formats back to %q, %v", s, tags, back, err)
		}
	})
}

func FuzzOriginalData(f *testing.F) {
	f.Add("020000012403151430060001234567800000000000")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOriginalData(s)
		if err != nil {
			return
		}
		back, err := o.Format()
		if err != nil || back != s {
			t.Fatalf("%q -> %+v -> %q, %v", s, o, back, err)
		}
	})
}

func FuzzTransmissionTime(f *testing.F) {
	f.Add("0315063005", int64(1773556205))
	f.Add("1231235959", int64(1798761601))
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		if unix < 0 || unix > 1<<40 {
			return
		}
		now := time.Unix(unix, 0)
		got, err := ParseTransmissionTime(s, now)
		if err != nil {
			return
		}
		if back := FormatTransmissionTime(got); back != s {
			t.Fatalf("%q -> %v -> %q", s, got, back)
		}
		if d := got.Sub(now); d > 184*24*time.Hour || d < -184*24*time.Hour {
			t.Fatalf("%q read at %v gave %v, more than half a year away", s, now, got)
		}
	})
}

func newGatewayMsg(t *testing.T, fields map[int]string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(Gateway)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	return m
}
