package spec

import (
	"crypto/des"
	"testing"

	"github.com/cardswitch/cardswitch/hsm/mac"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/prefix"
)

// The same POS dialect three ways, to measure what the fast BCD codec buys:
// with the library's BCD encoders and prefixers, and with every BCD field
// and prefix in ASCII instead (the speed ceiling).
var (
	posLibraryBCD = newPOSSpec("POS with library BCD", posCodecs{
		bcd: encoding.BCD, lbcd: encoding.LBCD, track2: Track2BCD, pref: prefix.BCD,
	})
	posASCII = newPOSSpec("POS all ASCII", posCodecs{
		bcd: encoding.ASCII, lbcd: encoding.ASCII, track2: encoding.ASCII, pref: prefix.ASCII,
	})
)

// consume0200 fills a library message with the fields of
// testdata/pos/consume-0200.hex.
func consume0200(tb testing.TB, spec *iso8583.MessageSpec) *iso8583.Message {
	m := iso8583.NewMessage(spec)
	m.MTI("0200")
	for id, v := range map[int]string{
		2: "6230151000000000012", 3: "000000", 4: "000000001234", 11: "000124", 14: "3012",
		22: "021", 25: "00", 26: "06", 35: "6230151000000000012=3012101", 41: "10000001",
		42: "898310000000001", 49: "156", 53: "2600000000000000", 60: "22000001000",
	} {
		if err := m.Field(id, v); err != nil {
			tb.Fatal(err)
		}
	}
	for id, v := range map[int][]byte{52: mustHexG("1A2B3C4D5E6F7081"), 64: []byte("1A2B3C4D")} {
		if err := m.BinaryField(id, v); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

func TestBenchmarkSpecsAgree(t *testing.T) {
	want := goldenMsg(t, "consume-0200.hex")
	fast, err := consume0200(t, POS).Pack()
	if err != nil || string(fast) != string(want) {
		t.Fatalf("fast spec packs %X, %v; want %X", fast, err, want)
	}
	lib, err := consume0200(t, posLibraryBCD).Pack()
	if err != nil || string(lib) != string(want) {
		t.Fatalf("library-BCD spec packs %X, %v; want %X", lib, err, want)
	}
	if _, err := consume0200(t, posASCII).Pack(); err != nil {
		t.Fatalf("ASCII spec: %v", err)
	}
}

func BenchmarkPOS0200PackUnpack(b *testing.B) {
	for _, c := range []struct {
		name string
		spec *iso8583.MessageSpec
	}{
		{"fast-bcd", POS},
		{"library-bcd", posLibraryBCD},
		{"ascii", posASCII},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := consume0200(b, c.spec)
			b.ReportAllocs()
			for b.Loop() {
				packed, err := m.Pack()
				if err != nil {
					b.Fatal(err)
				}
				u := iso8583.NewMessage(c.spec)
				if err := u.Unpack(packed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPOSTyped measures the switch's own path: DecodePOS and EncodePOS.
func BenchmarkPOSTyped(b *testing.B) {
	msg := goldenMsg(b, "consume-0200.hex")
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodePOS(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	m, err := DecodePOS(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodePOS(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPOSConsumePath is the POS message work of one consume at the
// switch, the ledger and journal aside: decode the 0200, verify its MAC
// (the CUP ECB MAC under a single-DES MAK, as the HSM does), build the
// approved 0210 and seal it with its MAC.
func BenchmarkPOSConsumePath(b *testing.B) {
	blk, err := des.NewCipher(mustHexG("0123456789ABCDEF"))
	if err != nil {
		b.Fatal(err)
	}
	macFn := func(block []byte) ([]byte, error) {
		m, err := mac.CUPECB(blk, block)
		return m[:], err
	}
	msg := goldenMsg(b, "consume-0200.hex")
	sum, err := macFn(msg[:len(msg)-8])
	if err != nil {
		b.Fatal(err)
	}
	copy(msg[len(msg)-8:], sum)
	b.ReportAllocs()
	for b.Loop() {
		req, err := DecodePOS(msg)
		if err != nil {
			b.Fatal(err)
		}
		block, err := MACBlock(req.Raw)
		if err != nil {
			b.Fatal(err)
		}
		if want, err := mac.CUPECB(blk, block); err != nil || !mac.Equal(want[:], req.MAC) {
			b.Fatal("MAC", err)
		}
		resp := NewPOSResponse(req, RCApproved)
		resp.RRN = "031500000124"
		resp.SettlementDate = "0315"
		resp.AuthCode = "123456"
		resp.Balances = "00021560C00000005000000102156C000000018766"[:40]
		resp.Reserved63 = "CUP"
		if _, err := EncodePOSWithMAC(resp, macFn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPOSRedactRequest measures what the journal keeps of a consume
// request (docs/journal.md: no PIN block, track 2, IC data or keys):
// packed again from the decoded fields, or cut from the request's bytes.
func BenchmarkPOSRedactRequest(b *testing.B) {
	m, err := DecodePOS(goldenMsg(b, "consume-0200.hex"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("pack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := *m
			c.PINBlock, c.Track2, c.ICData, c.Reserved62 = nil, "", nil, nil
			if _, err := EncodePOS(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cut", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := m.RawWithout(35, 52, 55, 62); !ok {
				b.Fatal("not cut")
			}
		}
	})
}
