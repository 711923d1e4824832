package switching

import (
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/moov-io/iso8583"
)

func TestGatewayEchoAndUnsupported(t *testing.T) {
	sw := testSwitch(t)
	_, gw, _ := sw.Addrs()
	c := dial(t, gw)

	exchange := func(mti string, fields map[int]string) *iso8583.Message {
		t.Helper()
		m := iso8583.NewMessage(spec.Gateway)
		m.MTI(mti)
		for id, v := range fields {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		frame, err := spec.AppendGatewayFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := roundTrip(t, c, frame)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := spec.DecodeGateway(got[2:])
		if err != nil {
			t.Fatalf("response %X: %v", got, err)
		}
		return resp
	}
	check := func(resp *iso8583.Message, mti, rc string) {
		t.Helper()
		gotMTI, _ := resp.GetMTI()
		gotRC, _ := resp.GetString(39)
		stan, _ := resp.GetString(11)
		if gotMTI != mti || gotRC != rc || stan != "000123" {
			t.Fatalf("response %s rc %s stan %s, want %s %s 000123", gotMTI, gotRC, stan, mti, rc)
		}
	}
	check(exchange("0800", map[int]string{7: "1122101010", 11: "000123", 70: "301"}), "0810", spec.RCApproved)
	check(exchange("0800", map[int]string{7: "1122101010", 11: "000123", 70: "001"}), "0810", spec.RCApproved)
	// A financial message naming no configured institution: 03
	// (docs/recharge.md).
	check(exchange("0200", map[int]string{3: "000000", 4: "000000000100", 11: "000123", 41: "GW000001"}), "0210", spec.RCInvalidMerchant)

	// Undecodable, with a readable MTI: 30, and the connection stays up.
	garbage := []byte{0x00, 0x06, '0', '8', '0', '0', 0xFF, 0xFF}
	got, err := roundTrip(t, c, garbage)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := spec.DecodeGateway(got[2:])
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(39); rc != spec.RCFormatError {
		t.Fatalf("rc %s, want 30", rc)
	}
	check(exchange("0800", map[int]string{7: "1122101010", 11: "000123", 70: "301"}), "0810", spec.RCApproved)
}
