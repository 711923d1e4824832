package gateway

import (
	"encoding/hex"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/txn"
	"github.com/moov-io/iso8583"
)

func TestInboundType(t *testing.T) {
	for _, tt := range []struct {
		mti, proc string
		want      txn.Type
	}{
		{"0100", "330000", spec.RechargeVerify},
		{"0100", "380000", spec.RechargeQuery},
		{"0200", "210000", spec.RechargeCredit},
		{"0400", "210000", spec.RechargeReversal},
		{"0401", "210000", spec.RechargeReversal},
		{"0100", "210000", spec.Unknown},
		{"0200", "330000", spec.Unknown},
		{"0420", "210000", spec.Unknown},
	} {
		if got := inboundType(tt.mti, tt.proc); got != tt.want {
			t.Errorf("%s/%s: %v, want %v", tt.mti, tt.proc, got, tt.want)
		}
	}
	if typeLabel(spec.Unknown) != "recharge_unknown" || typeLabel(spec.RechargeCredit) != "recharge_credit" {
		t.Fatalf("labels %q %q", typeLabel(spec.Unknown), typeLabel(spec.RechargeCredit))
	}
}

func message(t *testing.T, mti string, fields map[int]string) *iso8583.Message {
	t.Helper()
	m, err := spec.DecodeGateway(body(t, mti, fields))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInboundTransaction(t *testing.T) {
	credit := map[int]string{2: "6230151000000000012", 3: "210000", 4: "000000005000", 48: "ON005WEB-1CH003WEB"}
	tr, ok := inboundTransaction(spec.RechargeCredit, "10001", message(t, "0200", credit))
	if !ok || tr.Type != spec.RechargeCredit || tr.Institution != "10001" || tr.Card != "6230151000000000012" ||
		!tr.HasAmount || tr.Amount != 5000 || tr.Order != "WEB-1" || tr.Source != "gateway" {
		t.Fatalf("credit: ok %v, %+v", ok, tr)
	}
	verify := map[int]string{2: "6230151000000000012", 3: "330000", 48: "NM006Li Lei"}
	if tr, ok := inboundTransaction(spec.RechargeVerify, "10001", message(t, "0100", verify)); !ok || tr.HolderName != "Li Lei" || tr.HasAmount {
		t.Fatalf("verify: ok %v, %+v", ok, tr)
	}
	for name, tt := range map[string]struct {
		tx        txn.Type
		fields    map[int]string
		wantOrder string
	}{
		"credit without amount":   {spec.RechargeCredit, map[int]string{2: "6230151000000000012", 48: "ON005WEB-1"}, "WEB-1"},
		"credit without order":    {spec.RechargeCredit, map[int]string{2: "6230151000000000012", 4: "000000000100"}, ""},
		"verify without name":     {spec.RechargeVerify, map[int]string{2: "6230151000000000012"}, ""},
		"query without order":     {spec.RechargeQuery, map[int]string{48: "CH003WEB"}, ""},
		"order over 32 bytes":     {spec.RechargeQuery, map[int]string{48: "ON033" + "123456789012345678901234567890123"}, ""},
		"channel over 8 bytes":    {spec.RechargeQuery, map[int]string{48: "ON001XCH009123456789"}, ""},
		"order not printable":     {spec.RechargeQuery, map[int]string{48: "ON002A\x01"}, ""},
		"field 48 not a tag list": {spec.RechargeQuery, map[int]string{48: "ON9"}, ""},
	} {
		tr, ok := inboundTransaction(tt.tx, "10001", message(t, "0200", tt.fields))
		if ok {
			t.Errorf("%s: accepted %+v", name, tr)
		}
		if tr.Order != tt.wantOrder {
			t.Errorf("%s: order %q kept for the answer, want %q", name, tr.Order, tt.wantOrder)
		}
	}
}

func TestInboundAnswer(t *testing.T) {
	req := message(t, "0100", map[int]string{3: "380000", 7: "1204174500", 11: "000042", 32: "10001", 49: "156", 48: "ON005WEB-1"})
	for _, tt := range []struct {
		name string
		o    txn.Outcome
		want map[int]string
	}{
		{"query of a declined order", txn.Outcome{ResponseCode: "00", RRN: "338000000007",
			Order: &txn.OrderState{State: 'D', RC: "61", Card: "6230151000000000012", Amount: 5000}},
			map[int]string{2: "6230151000000000012", 3: "380000", 4: "000000005000", 7: "1204174500", 11: "000042",
				32: "10001", 37: "338000000007", 39: "00", 48: "ON005WEB-1ST001DRC00261", 49: "156"}},
		{"order never seen", txn.Outcome{ResponseCode: "25"},
			map[int]string{3: "380000", 7: "1204174500", 11: "000042", 32: "10001", 39: "25", 48: "ON005WEB-1", 49: "156"}},
		{"approved credit", txn.Outcome{ResponseCode: "00", AuthCode: "123456", RRN: "338000000008",
			Balances: []txn.Balance{{Account: txn.CashPurse, Amount: 15000}, {Account: txn.SubsidyPurse, Amount: 0}}},
			map[int]string{3: "380000", 7: "1204174500", 11: "000042", 32: "10001", 37: "338000000008", 38: "123456", 39: "00",
				48: "ON005WEB-1", 49: "156", 54: "0002156C0000000150000102156C000000000000"}},
	} {
		resp := iso8583.NewMessage(spec.Gateway)
		resp.MTI("0110")
		if err := inboundAnswer(resp, req, "WEB-1", tt.o); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		packed, err := resp.Pack()
		if err != nil {
			t.Fatal(err)
		}
		got, err := spec.DecodeGateway(packed)
		if err != nil {
			t.Fatal(err)
		}
		for id := 2; id <= 64; id++ {
			v, _ := got.GetString(id)
			if v != tt.want[id] {
				t.Errorf("%s: field %d = %q, want %q (%s)", tt.name, id, v, tt.want[id], hex.EncodeToString(packed))
			}
		}
	}
}
