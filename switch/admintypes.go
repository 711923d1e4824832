package switching

// The admin API's answers as typed structs: each handler writes one of
// these (or a slice of them), so the JSON keys live in one place
// (docs/admin-api.md).

// ErrorResponse is every error answer: {"error": "..."}.
type ErrorResponse struct {
	Error string `json:"error"`
}

// StatusResponse answers GET /api/v1/status.
type StatusResponse struct {
	POS          string `json:"pos"`
	Gateway      string `json:"gateway"`
	HTTP         string `json:"http"`
	Ready        bool   `json:"ready"`
	BusinessDate string `json:"business_date"`
	JournalSeq   uint64 `json:"journal_seq"`
}

// MerchantResponse is a merchant.
type MerchantResponse struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OnCampus       bool   `json:"on_campus"`
	FeeRateBP      int32  `json:"fee_rate_bp"`
	SettlementDays int32  `json:"settlement_days"`
}

// TerminalResponse is a terminal: its registration and sign-on state,
// never its keys.
type TerminalResponse struct {
	ID            string   `json:"id"`
	Merchant      string   `json:"merchant"`
	MayLoad       bool     `json:"may_load"`
	Disabled      bool     `json:"disabled"`
	SignedOn      bool     `json:"signed_on"`
	Batch         string   `json:"batch"`
	KeyMode       string   `json:"key_mode"`
	KeyGeneration uint32   `json:"key_generation"`
	Permitted     []string `json:"permitted"`
	LegacySignOn  bool     `json:"legacy_signon"`
	SourceNetwork string   `json:"source_network"`
}

// TMKResponse answers a terminal registration or TMK load: the key check
// value of the TMK loaded ("" when none was).
type TMKResponse struct {
	ID     string `json:"id"`
	TMKKCV string `json:"tmk_kcv"`
}

// CardResponse is a card: its number masked, amounts as yuan strings,
// never its PIN verification value.
type CardResponse struct {
	Card       string `json:"card"`
	Holder     string `json:"holder"`
	HolderType string `json:"holder_type"`
	State      string `json:"state"`
	// LostFrom, for a lost card, is the state "found" returns it to.
	LostFrom    string `json:"lost_from"` // "" unless lost
	List        string `json:"list"`
	Cash        string `json:"cash"`
	Subsidy     string `json:"subsidy"`
	Held        string `json:"held"`
	Available   string `json:"available"`
	DailyLimit  string `json:"daily_limit"`
	PerTxnLimit string `json:"per_txn_limit"`
	NoPINLimit  string `json:"no_pin_limit"`
	MaxBalance  string `json:"max_balance"`
	FeeRateBP   int32  `json:"fee_rate_bp"`
	DaySpent    string `json:"day_spent"`
	PINTries    int    `json:"pin_tries"`
	// Owed is the card's debt after a reversal of spent credit; above
	// zero its debits are declined (docs/ledger.md#receivables).
	Owed string `json:"owed"`
}

// JournalEntryResponse is a journal entry: its index fields and the
// decoded fields of its message (card number masked), never its raw
// bytes.
type JournalEntryResponse struct {
	Seq          uint64            `json:"seq"`
	Direction    string            `json:"direction"`
	Listener     string            `json:"listener"`
	Peer         string            `json:"peer"`
	Terminal     string            `json:"terminal"`
	Merchant     string            `json:"merchant"`
	MTI          string            `json:"mti"`
	STAN         string            `json:"stan"`
	Batch        string            `json:"batch"`
	RRN          string            `json:"rrn"`
	Type         string            `json:"type"`
	RC           string            `json:"rc"`
	Time         string            `json:"time"`
	BusinessDate string            `json:"business_date"`
	Flags        uint16            `json:"flags"`
	Fields       map[string]string `json:"fields"`
}
