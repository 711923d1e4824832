package spec

// TxType names a POS transaction type. Its String form is the stable label
// used in metrics ({type="consume"}) and journals: never renumber or rename.
type TxType uint8

// Transaction types of docs/pos-dialect.md#transaction-identification.
const (
	Unknown TxType = iota
	SignOn
	SignOff
	EchoTest
	BalanceInquiry
	Consume
	ConsumeVoid
	Refund
	PreAuth
	PreAuthCancel
	PreAuthCompletion
	CompletionVoid
	CashLoad
	CashLoadVoid
	Reversal
	BatchSettlement
	BatchUpload
	PendingClaim // a load terminal claims the card's pending outside credits
	TransferLoad // a kiosk loads the card from its bound bank account (docs/recharge.md)
	// The requests of outside institutions on the gateway port
	// (docs/recharge.md): no terminal sends them.
	RechargeVerify   // account verification
	RechargeCredit   // credit keyed by the institution's order number
	RechargeQuery    // order query
	RechargeReversal // credit reversal
	numTxTypes
)

var txTypeNames = [numTxTypes]string{
	Unknown:           "unknown",
	SignOn:            "sign_on",
	SignOff:           "sign_off",
	EchoTest:          "echo_test",
	BalanceInquiry:    "balance_inquiry",
	Consume:           "consume",
	ConsumeVoid:       "consume_void",
	Refund:            "refund",
	PreAuth:           "pre_auth",
	PreAuthCancel:     "pre_auth_cancel",
	PreAuthCompletion: "pre_auth_completion",
	CompletionVoid:    "completion_void",
	CashLoad:          "cash_load",
	CashLoadVoid:      "cash_load_void",
	Reversal:          "reversal",
	BatchSettlement:   "batch_settlement",
	BatchUpload:       "batch_upload",
	PendingClaim:      "pending_claim",
	TransferLoad:      "transfer_load",
	RechargeVerify:    "recharge_verify",
	RechargeCredit:    "recharge_credit",
	RechargeQuery:     "recharge_query",
	RechargeReversal:  "recharge_reversal",
}

// String returns the snake_case label of the type.
func (t TxType) String() string {
	if t >= numTxTypes {
		return "unknown"
	}
	return txTypeNames[t]
}

// TxTypes returns every known type except Unknown, in declaration order
// (for pre-registering metric label values).
func TxTypes() []TxType {
	out := make([]TxType, 0, numTxTypes-1)
	for t := Unknown + 1; t < numTxTypes; t++ {
		out = append(out, t)
	}
	return out
}

// FromInstitution reports whether the type is an outside institution's
// request on the gateway port (docs/recharge.md), which no terminal may
// be permitted.
func (t TxType) FromInstitution() bool { return t >= RechargeVerify && t <= RechargeReversal }

// Reversible reports whether a terminal reverses this type when it gets no
// answer (the "causes reversal" column of the UnionPay POS field guide):
// every financial type that moves or holds money online. Balance inquiry
// moves nothing and refund is an advice (0220), so neither is reversed.
func (t TxType) Reversible() bool {
	switch t {
	case Consume, ConsumeVoid, PreAuth, PreAuthCancel, PreAuthCompletion,
		CompletionVoid, CashLoad, CashLoadVoid, PendingClaim, TransferLoad:
		return true
	}
	return false
}

// Financial reports whether the type is a financial transaction (as opposed
// to network management, settlement or reversal).
func (t TxType) Financial() bool {
	return t >= BalanceInquiry && t <= CashLoadVoid || t == PendingClaim || t == TransferLoad
}

// The identification table (docs/pos-dialect.md#transaction-identification) — the one place that maps message
// elements to transaction types. Financial rows match MTI + the first two
// digits of field 3 + field 25 + 60.1; network management rows match MTI +
// 60.1 "00" + 60.3.
type financialRow struct {
	tx                      TxType
	mti, proc, cond, type60 string
}

type networkRow struct {
	tx           TxType
	mti          string
	networkCodes []string
}

var financialTable = []financialRow{
	{BalanceInquiry, "0200", "31", "00", "01"},
	{Consume, "0200", "00", "00", "22"},
	{ConsumeVoid, "0200", "20", "00", "23"},
	{Refund, "0220", "20", "00", "25"},
	{PreAuth, "0100", "03", "06", "10"},
	{PreAuthCancel, "0100", "20", "06", "11"},
	{PreAuthCompletion, "0200", "00", "06", "20"},
	{CompletionVoid, "0200", "20", "06", "21"},
	{CashLoad, "0200", "63", "91", "46"},
	{CashLoadVoid, "0200", "17", "00", "51"},
	{PendingClaim, "0200", "21", "00", "49"},
	{TransferLoad, "0200", "40", "00", "48"},
}

// Sign-on modes (60.3 of the 0800): which working keys the 0810 carries
// (docs/hsm.md#sign-on).
const (
	SignOnSingleDES = "001" // single-length keys
	SignOnDoubleDES = "003" // double-length PIK, single-DES MAK
	SignOnWithTDK   = "004" // as 003 plus a track data key
	SignOnSM4       = "006" // SM4 keys
)

// Network management codes (60.3) other than sign-on modes.
const (
	NetworkSignOff        = "002"
	NetworkEchoTest       = "301"
	NetworkSettlement     = "201"
	NetworkBatchUploadEnd = "202"
	NetworkManagementType = "00" // 60.1 of every network management message
)

// Request MTIs of the POS dialect.
const (
	MTIAuthorization     = "0100"
	MTIFinancialRequest  = "0200"
	MTIFinancialAdvice   = "0220"
	MTIBatchUploadAdvice = "0320"
	MTIReversal          = "0400"
	MTIBatchSettlement   = "0500"
	MTINetworkSignOn     = "0800"
	MTINetworkManagement = "0820"
)

// processingCodePrefixLn is how many digits of field 3 identify a type.
const processingCodePrefixLn = 2

var networkTable = []networkRow{
	{SignOn, MTINetworkSignOn, []string{SignOnSingleDES, SignOnDoubleDES, SignOnWithTDK, SignOnSM4}},
	{SignOff, MTINetworkManagement, []string{NetworkSignOff}},
	{EchoTest, MTINetworkManagement, []string{NetworkEchoTest}},
	{BatchSettlement, MTIBatchSettlement, []string{NetworkSettlement}},
	{BatchUpload, MTIBatchUploadAdvice, []string{NetworkSettlement, NetworkBatchUploadEnd}},
}

// Identify names the transaction of a POS request (or of its response: a
// response MTI is mapped back to its request MTI). field60 is the digits of
// field 60. A 0400 is Reversal; use IdentifyReversal for the type it
// reverses. Anything not in the table is Unknown (answer 12 or 40).
func Identify(mti, processingCode, conditionCode, field60 string) TxType {
	mti = RequestMTI(mti)
	if mti == "" {
		return Unknown
	}
	if mti == MTIReversal {
		return Reversal
	}
	type60 := ""
	if len(field60) >= 2 {
		type60 = field60[:2]
	}
	if type60 == NetworkManagementType && len(field60) >= 11 {
		code := field60[8:11]
		for _, r := range networkTable {
			if r.mti != mti {
				continue
			}
			for _, c := range r.networkCodes {
				if c == code {
					return r.tx
				}
			}
		}
	}
	if len(processingCode) < processingCodePrefixLn {
		return Unknown
	}
	proc := processingCode[:processingCodePrefixLn]
	for _, r := range financialTable {
		if r.mti == mti && r.proc == proc && r.cond == conditionCode && r.type60 == type60 {
			return r.tx
		}
	}
	return Unknown
}

// IdentifyReversal names the original transaction of a 0400 reversal from
// the original's field 3, 25 and 60.1, which the reversal repeats. The MTI
// does not take part (60.1 is unique across the table). It returns Unknown
// when nothing matches or the match is not Reversible.
func IdentifyReversal(processingCode, conditionCode, field60 string) TxType {
	if len(processingCode) < processingCodePrefixLn || len(field60) < 2 {
		return Unknown
	}
	proc, type60 := processingCode[:processingCodePrefixLn], field60[:2]
	for _, r := range financialTable {
		if r.proc == proc && r.cond == conditionCode && r.type60 == type60 && r.tx.Reversible() {
			return r.tx
		}
	}
	return Unknown
}

// MTILabel bounds a metrics label to the MTIs of the two dialects;
// anything else is "other", so that a sender of garbage cannot create
// series without bound (docs/operations.md#metrics).
func MTILabel(mti string) string {
	switch mti {
	case "0100", "0110", "0120", "0130", "0200", "0210", "0220", "0230",
		"0320", "0330", "0400", "0410", "0420", "0421", "0430",
		"0500", "0510", "0800", "0810", "0820", "0830":
		return mti
	}
	return "other"
}

// ResponseMTI returns the response MTI of a request MTI ("0200" → "0210",
// "0820" → "0830"), or "" when mti is not a 4-digit request MTI.
func ResponseMTI(mti string) string {
	if len(mti) != 4 || !isDigits(mti) || (mti[2]-'0')%2 != 0 {
		return ""
	}
	switch mti { // the dialect's own, without an allocation
	case "0100":
		return "0110"
	case "0200":
		return "0210"
	case "0220":
		return "0230"
	case "0320":
		return "0330"
	case "0400":
		return "0410"
	case "0420":
		return "0430"
	case "0500":
		return "0510"
	case "0800":
		return "0810"
	case "0820":
		return "0830"
	}
	b := []byte(mti)
	b[2]++
	return string(b)
}

// RequestMTI returns the request MTI for a request or response MTI ("0210"
// → "0200", "0200" → "0200"), or "" when mti is not 4 digits.
func RequestMTI(mti string) string {
	if len(mti) != 4 || !isDigits(mti) {
		return ""
	}
	if (mti[2]-'0')%2 == 0 {
		return mti
	}
	b := []byte(mti)
	b[2]--
	return string(b)
}
