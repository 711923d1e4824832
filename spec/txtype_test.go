package spec

import (
	"testing"
)

// Rows transcribed from docs/pos-dialect.md#transaction-identification (the UnionPay POS field guide's
// identification table): MTI, field 3, field 25, field 60.
func TestIdentify(t *testing.T) {
	tests := []struct {
		mti, proc, cond, f60 string
		want                 TxType
	}{
		{"0800", "", "", "00000000001", SignOn},
		{"0800", "", "", "00000000003", SignOn},
		{"0800", "", "", "00000000004", SignOn},
		{"0800", "", "", "00000000006", SignOn},
		{"0800", "", "", "00000000005", Unknown},
		{"0810", "", "", "00000002003", SignOn},
		{"0820", "", "", "00000001002", SignOff},
		{"0820", "", "", "00000001301", EchoTest},
		{"0830", "", "", "00000001301", EchoTest},
		{"0820", "", "", "22000001301", Unknown}, // 60.1 must be 00
		{"0200", "310000", "00", "01000001000", BalanceInquiry},
		{"0200", "000000", "00", "22000001000", Consume},
		{"0200", "000000", "00", "22000001", Consume},
		{"0210", "000000", "00", "22000001000", Consume},
		{"0200", "200000", "00", "23000001000", ConsumeVoid},
		{"0220", "200000", "00", "25000001000", Refund},
		{"0100", "030000", "06", "10000001000", PreAuth},
		{"0100", "200000", "06", "11000001000", PreAuthCancel},
		{"0200", "000000", "06", "20000001000", PreAuthCompletion},
		{"0200", "200000", "06", "21000001000", CompletionVoid},
		{"0200", "630000", "91", "46000001000", CashLoad},
		{"0200", "170000", "00", "51000001000", CashLoadVoid},
		{"0200", "210000", "00", "49000001000", PendingClaim},
		{"0200", "400000", "00", "48000001000", TransferLoad},
		{"0400", "000000", "00", "22000001000", Reversal},
		{"0500", "", "", "00000001201", BatchSettlement},
		{"0320", "", "", "00000001201", BatchUpload},
		{"0320", "", "", "00000001202", BatchUpload},
		// Near misses.
		{"0200", "000000", "06", "22000001000", Unknown}, // consume with pre-auth condition
		{"0220", "000000", "00", "22000001000", Unknown}, // consume as advice
		{"0200", "0", "00", "22000001000", Unknown},      // short processing code
		{"0200", "000000", "00", "", Unknown},
		{"020", "000000", "00", "22000001000", Unknown},
		{"0800", "", "", "0000000", Unknown},
	}
	for _, tc := range tests {
		if got := Identify(tc.mti, tc.proc, tc.cond, tc.f60); got != tc.want {
			t.Errorf("Identify(%s, %s, %s, %s) = %v, want %v", tc.mti, tc.proc, tc.cond, tc.f60, got, tc.want)
		}
	}
}

func TestIdentifyReversal(t *testing.T) {
	tests := []struct {
		proc, cond, f60 string
		want            TxType
	}{
		{"000000", "00", "22000001000", Consume},
		{"200000", "00", "23000001000", ConsumeVoid},
		{"030000", "06", "10000001000", PreAuth},
		{"200000", "06", "11000001000", PreAuthCancel},
		{"000000", "06", "20000001000", PreAuthCompletion},
		{"200000", "06", "21000001000", CompletionVoid},
		{"630000", "91", "46000001000", CashLoad},
		{"170000", "00", "51000001000", CashLoadVoid},
		{"210000", "00", "49000001000", PendingClaim},
		{"310000", "00", "01000001000", Unknown}, // balance inquiry is never reversed
		{"200000", "00", "25000001000", Unknown}, // refund is an advice
		{"000000", "00", "2", Unknown},
	}
	for _, tc := range tests {
		if got := IdentifyReversal(tc.proc, tc.cond, tc.f60); got != tc.want {
			t.Errorf("IdentifyReversal(%s, %s, %s) = %v, want %v", tc.proc, tc.cond, tc.f60, got, tc.want)
		}
	}
}

func TestTxTypeLabels(t *testing.T) {
	want := map[TxType]string{
		Unknown: "unknown", SignOn: "sign_on", SignOff: "sign_off", EchoTest: "echo_test",
		BalanceInquiry: "balance_inquiry", Consume: "consume", ConsumeVoid: "consume_void",
		Refund: "refund", PreAuth: "pre_auth", PreAuthCancel: "pre_auth_cancel",
		PreAuthCompletion: "pre_auth_completion", CompletionVoid: "completion_void",
		CashLoad: "cash_load", CashLoadVoid: "cash_load_void", Reversal: "reversal",
		BatchSettlement: "batch_settlement", BatchUpload: "batch_upload", PendingClaim: "pending_claim",
		TransferLoad: "transfer_load", RechargeVerify: "recharge_verify", RechargeCredit: "recharge_credit",
		RechargeQuery: "recharge_query", RechargeReversal: "recharge_reversal",
	}
	all := append([]TxType{Unknown}, TxTypes()...)
	if len(all) != len(want) {
		t.Fatalf("%d types, want %d", len(all), len(want))
	}
	for _, tx := range all {
		if tx.String() != want[tx] {
			t.Errorf("%d.String() = %q, want %q", tx, tx.String(), want[tx])
		}
	}
	if TxType(200).String() != "unknown" {
		t.Errorf("out of range type = %q", TxType(200).String())
	}
	if !Consume.Financial() || SignOn.Financial() || Reversal.Financial() {
		t.Error("Financial() wrong")
	}
}

func TestResponseMTI(t *testing.T) {
	tests := []struct{ in, resp, req string }{
		{"0200", "0210", "0200"}, {"0800", "0810", "0800"}, {"0820", "0830", "0820"},
		{"0400", "0410", "0400"}, {"0500", "0510", "0500"}, {"0320", "0330", "0320"},
		{"0100", "0110", "0100"}, {"0220", "0230", "0220"}, {"0600", "0610", "0600"},
		{"0210", "", "0200"}, {"02A0", "", ""}, {"020", "", ""},
	}
	for _, tc := range tests {
		if got := ResponseMTI(tc.in); got != tc.resp {
			t.Errorf("ResponseMTI(%q) = %q, want %q", tc.in, got, tc.resp)
		}
		if got := RequestMTI(tc.in); got != tc.req {
			t.Errorf("RequestMTI(%q) = %q, want %q", tc.in, got, tc.req)
		}
	}
}

func TestResponseCodes(t *testing.T) {
	// Every code of docs/pos-dialect.md#response-codes-field-39.
	want := []string{"00", "03", "05", "12", "13", "14", "22", "25", "30", "33", "40", "41", "45",
		"51", "55", "57", "58", "61", "62", "64", "65", "75", "77", "94", "96", "97", "98", "A0"}
	got := ResponseCodes()
	if len(got) != len(want) {
		t.Fatalf("ResponseCodes() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || RCDescription(got[i]) == "" {
			t.Fatalf("code %d = %q (%q), want %q", i, got[i], RCDescription(got[i]), want[i])
		}
	}
	if RCDescription("XX") != "" {
		t.Error("description for an unknown code")
	}
}

func TestMTILabel(t *testing.T) {
	for in, want := range map[string]string{"0200": "0200", "0421": "0421", "0830": "0830", "0201": "other", "9999": "other", "": "other", "02000": "other"} {
		if got := MTILabel(in); got != want {
			t.Errorf("MTILabel(%q) = %q, want %q", in, got, want)
		}
	}
}
