package spec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
)

// readHexFile parses a golden file: hex digits, whitespace ignored, '#'
// comments to the end of the line.
func readHexFile(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var digits strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

var (
	goldenTPDUReq  = TPDU{0x60, 0x00, 0x03, 0x00, 0x00}
	goldenHeader   = Header{0x60, 0x31, 0x00, 0x31, 0x03, 0x01}
	goldenTerminal = "10000001"
	goldenMerchant = "898310000000001"
	goldenPAN      = "6230151000000000012"
)

// The field values each golden frame documents (see its comments).
var goldenPOS = []struct {
	file   string
	tx     TxType
	orig   TxType
	want   POSMessage
	binary map[string][]byte // expected binary fields, hex in the file
}{
	{
		file: "echo-0820.hex", tx: EchoTest,
		want: POSMessage{MTI: "0820", TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Reserved60: Field60{Type: "00", Batch: "000001", NetworkCode: "301"}},
	},
	{
		file: "echo-0830.hex", tx: EchoTest,
		want: POSMessage{MTI: "0830", ResponseCode: "00", TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Reserved60: Field60{Type: "00", Batch: "000001", NetworkCode: "301"}},
	},
	{
		file: "signon-0800.hex", tx: SignOn,
		want: POSMessage{MTI: "0800", STAN: "000123", TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Reserved60: Field60{Type: "00", Batch: "000000", NetworkCode: "003"}, Reserved63: "001"},
	},
	{
		file: "signon-0810.hex", tx: SignOn,
		want: POSMessage{MTI: "0810", STAN: "000123", LocalTime: "143005", LocalDate: "0315", ResponseCode: "00",
			TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Reserved60: Field60{Type: "00", Batch: "000002", NetworkCode: "003"},
			Reserved62: mustHexG("0123456789ABCDEFFEDCBA9876543210" + "82E13665" + "1122334455667788" + "0000000000000000" + "7D2A1B3C")},
	},
	{
		file: "consume-0200.hex", tx: Consume,
		want: POSMessage{MTI: "0200", PAN: goldenPAN, ProcessingCode: "000000", Amount: 1234, HasAmount: true,
			STAN: "000124", Expiry: "3012", EntryMode: "021", ConditionCode: "00", PINCaptureCode: "06",
			Track2: "6230151000000000012=3012101", TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Currency: "156", PINBlock: mustHexG("1A2B3C4D5E6F7081"), SecurityControl: "2600000000000000",
			Reserved60: Field60{Type: "22", Batch: "000001", NetworkCode: "000"}, MAC: []byte("1A2B3C4D")},
	},
	{
		file: "consume-0210.hex", tx: Consume,
		want: POSMessage{MTI: "0210", PAN: goldenPAN, ProcessingCode: "000000", Amount: 1234, HasAmount: true,
			STAN: "000124", LocalTime: "143006", LocalDate: "0315", Expiry: "3012", SettlementDate: "0315",
			ConditionCode: "00", RRN: "031500000124", ResponseCode: "00", TerminalID: goldenTerminal,
			MerchantID: goldenMerchant, Currency: "156",
			Balances:   "0002156C000000050000" + "0102156C000000018766",
			Reserved60: Field60{Type: "22", Batch: "000001", NetworkCode: "000"}, MAC: []byte("98765432")},
	},
	{
		file: "void-0200.hex", tx: ConsumeVoid,
		want: POSMessage{MTI: "0200", PAN: goldenPAN, ProcessingCode: "200000", Amount: 1234, HasAmount: true,
			STAN: "000125", Expiry: "3012", EntryMode: "012", ConditionCode: "00", RRN: "031500000124",
			TerminalID: goldenTerminal, MerchantID: goldenMerchant, Currency: "156",
			Reserved60: Field60{Type: "23", Batch: "000001", NetworkCode: "000"},
			Original:   Field61{Batch: "000001", STAN: "000124"}, MAC: []byte("ABCDEF01")},
	},
	{
		file: "void-0210.hex", tx: ConsumeVoid,
		want: POSMessage{MTI: "0210", PAN: goldenPAN, ProcessingCode: "200000", Amount: 1234, HasAmount: true,
			STAN: "000125", LocalTime: "143110", LocalDate: "0315", Expiry: "3012", ConditionCode: "00",
			RRN: "031500000124", ResponseCode: "00", TerminalID: goldenTerminal, MerchantID: goldenMerchant,
			Currency: "156", Reserved60: Field60{Type: "23", Batch: "000001", NetworkCode: "000"},
			Original: Field61{Batch: "000001", STAN: "000124"}, MAC: []byte("01234567")},
	},
	{
		file: "reversal-0400.hex", tx: Reversal, orig: Consume,
		want: POSMessage{MTI: "0400", PAN: goldenPAN, ProcessingCode: "000000", Amount: 1234, HasAmount: true,
			STAN: "000124", Expiry: "3012", EntryMode: "021", ConditionCode: "00", ResponseCode: "98",
			TerminalID: goldenTerminal, MerchantID: goldenMerchant, Currency: "156",
			Reserved60: Field60{Type: "22", Batch: "000001", NetworkCode: "000"}, MAC: []byte("FEDCBA98")},
	},
	{
		file: "reversal-0410.hex", tx: Reversal, orig: Consume,
		want: POSMessage{MTI: "0410", PAN: goldenPAN, ProcessingCode: "000000", Amount: 1234, HasAmount: true,
			STAN: "000124", LocalTime: "143040", LocalDate: "0315", Expiry: "3012", ConditionCode: "00",
			ResponseCode: "00", TerminalID: goldenTerminal, MerchantID: goldenMerchant, Currency: "156",
			Reserved60: Field60{Type: "22", Batch: "000001", NetworkCode: "000"}, MAC: []byte("55667788")},
	},
}

func mustHexG(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func loadGoldenPOS(t testing.TB, file string) (TPDU, Header, []byte, []byte) {
	frame := readHexFile(t, filepath.Join("..", "testdata", "pos", file))
	body, err := ReadFrame(bytes.NewReader(frame), nil, DefaultMaxFrame)
	if err != nil {
		t.Fatalf("%s: ReadFrame: %v", file, err)
	}
	if len(body)+2 != len(frame) {
		t.Fatalf("%s: length prefix says %d, file has %d bytes after it", file, len(body), len(frame)-2)
	}
	tp, h, msg, err := SplitPOS(body)
	if err != nil {
		t.Fatalf("%s: SplitPOS: %v", file, err)
	}
	return tp, h, msg, frame
}

func TestGoldenPOS(t *testing.T) {
	for _, g := range goldenPOS {
		t.Run(g.file, func(t *testing.T) {
			tp, h, msg, frame := loadGoldenPOS(t, g.file)
			isResp := (g.want.MTI[2]-'0')%2 == 1
			wantTPDU := goldenTPDUReq
			if isResp {
				wantTPDU = goldenTPDUReq.Reply()
			}
			if tp != wantTPDU || h != goldenHeader {
				t.Fatalf("TPDU %s header %s, want %s %s", tp, h, wantTPDU, goldenHeader)
			}
			m, err := DecodePOS(msg)
			if err != nil {
				t.Fatalf("DecodePOS: %v", err)
			}
			if !bytes.Equal(m.Raw, msg) {
				t.Fatalf("Raw differs from the message")
			}
			got := *withoutWire(m)
			got.Raw = nil
			if !reflect.DeepEqual(got, g.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, g.want)
			}
			if tx, orig := m.TxType(); tx != g.tx || orig != g.orig {
				t.Fatalf("TxType = %v/%v, want %v/%v", tx, orig, g.tx, g.orig)
			}
			re, err := EncodePOS(m)
			if err != nil {
				t.Fatalf("EncodePOS: %v", err)
			}
			if !bytes.Equal(re, msg) {
				t.Fatalf("re-encoded\n%X\nwant\n%X", re, msg)
			}
			if out := AppendPOSFrame(nil, tp, h, re); !bytes.Equal(out, frame) {
				t.Fatalf("re-framed\n%X\nwant\n%X", out, frame)
			}

			// The library, driven by the same spec, reads and writes the
			// same bytes.
			lm := iso8583.NewMessage(POS)
			if err := lm.Unpack(msg); err != nil {
				t.Fatalf("library Unpack: %v", err)
			}
			packed, err := lm.Pack()
			if err != nil || !bytes.Equal(packed, msg) {
				t.Fatalf("library Pack = %X, %v", packed, err)
			}
			if s, _ := lm.GetString(11); s != g.want.STAN {
				t.Fatalf("library field 11 = %q, want %q", s, g.want.STAN)
			}

			// MAC block: everything before the last 8 bytes.
			if m.MAC != nil {
				block, err := MACBlock(msg)
				if err != nil || !bytes.Equal(block, msg[:len(msg)-8]) {
					t.Fatalf("MACBlock: %X, %v", block, err)
				}
			}
		})
	}
}

// Responses built with NewPOSResponse from the golden requests, plus the
// fields the switch adds, are the golden responses.
func TestGoldenResponsesFromRequests(t *testing.T) {
	tests := []struct {
		req, resp string
		rc        string
		add       func(r *POSMessage)
	}{
		{"echo-0820.hex", "echo-0830.hex", RCApproved, nil},
		{"signon-0800.hex", "signon-0810.hex", RCApproved, func(r *POSMessage) {
			r.LocalTime, r.LocalDate = "143005", "0315"
			r.Reserved60.Batch = "000002"
			r.Reserved62 = mustHexG("0123456789ABCDEFFEDCBA9876543210" + "82E13665" + "1122334455667788" + "0000000000000000" + "7D2A1B3C")
		}},
		{"consume-0200.hex", "consume-0210.hex", RCApproved, func(r *POSMessage) {
			r.LocalTime, r.LocalDate, r.SettlementDate, r.RRN = "143006", "0315", "0315", "031500000124"
			var err error
			r.Balances, err = FormatBalances([]Balance{
				{AccountCashPurse, AmountTypeAvailable, CurrencyCNY, 50000},
				{AccountSubsidyPurse, AmountTypeAvailable, CurrencyCNY, 18766},
			})
			if err != nil {
				panic(err)
			}
		}},
		{"void-0200.hex", "void-0210.hex", RCApproved, func(r *POSMessage) { r.LocalTime, r.LocalDate = "143110", "0315" }},
		{"reversal-0400.hex", "reversal-0410.hex", RCApproved, func(r *POSMessage) { r.LocalTime, r.LocalDate = "143040", "0315" }},
	}
	for _, tc := range tests {
		t.Run(tc.resp, func(t *testing.T) {
			tp, h, msg, _ := loadGoldenPOS(t, tc.req)
			req, err := DecodePOS(msg)
			if err != nil {
				t.Fatal(err)
			}
			rtp, rh, want, _ := loadGoldenPOS(t, tc.resp)
			if tp.Reply() != rtp || h != rh {
				t.Fatalf("response TPDU/header %s %s, want %s %s", rtp, rh, tp.Reply(), h)
			}
			resp := NewPOSResponse(req, tc.rc)
			if tc.add != nil {
				tc.add(resp)
			}
			wantMAC := want[len(want)-8:]
			var macBlock []byte
			got, err := EncodePOSWithMAC(resp, func(block []byte) ([]byte, error) {
				macBlock = append([]byte(nil), block...)
				return wantMAC, nil
			})
			if tc.req == "echo-0820.hex" || tc.req == "signon-0800.hex" {
				// Network management responses carry no MAC here.
				resp.MAC = nil
				got, err = EncodePOS(resp)
			} else if !bytes.Equal(macBlock, want[:len(want)-8]) {
				t.Fatalf("MAC block\n%X\nwant\n%X", macBlock, want[:len(want)-8])
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("response\n%X\nwant\n%X", got, want)
			}
		})
	}
}
