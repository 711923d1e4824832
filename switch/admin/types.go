package admin

import (
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/recon"
	"github.com/cardswitch/cardswitch/switch/links"
	"github.com/cardswitch/cardswitch/switch/recharge"
)

// The admin API's answers as typed structs: each handler writes one of
// these (or a slice of them, or a report type of the package it
// asks), so the JSON keys live in one place (docs/admin-api.md).

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

// GatewaysResponse answers GET /api/v1/gateways.
type GatewaysResponse struct {
	Gateways []links.LinkStatus `json:"gateways"`
}

// ZMKResponse answers POST /api/v1/gateways/{name}/zmk.
type ZMKResponse struct {
	Gateway  string `json:"gateway"`
	ZMKCheck string `json:"zmk_kcv"`
}

// SAFPage answers GET /api/v1/saf: entries oldest first; Next is the id
// to pass as after= for the next page ("" at the end).
type SAFPage struct {
	Entries []links.SAFEntry `json:"entries"`
	Next    string           `json:"next,omitempty"`
}

// SAFActionResponse answers POST /api/v1/saf/{id}/retry|drop.
type SAFActionResponse struct {
	Gateway string `json:"gateway"`
	ID      uint64 `json:"id"`
	Action  string `json:"action"`
	NewID   uint64 `json:"new_id,omitempty"`
}

// InstitutionResponse is an outside institution (no keys).
type InstitutionResponse struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Allow             []string `json:"allow"`
	MaxCreditFen      int64    `json:"max_credit_fen"`
	MaxDailyCreditFen int64    `json:"max_daily_credit_fen"`
}

// InstitutionsResponse answers GET /api/v1/recharge/institutions.
type InstitutionsResponse struct {
	Institutions []InstitutionResponse `json:"institutions"`
}

// OrdersPage is one page of an institution's orders.
type OrdersPage struct {
	Orders []recharge.OrderView `json:"orders"`
	// Next is the after= of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// BindRequest is the body of POST /api/v1/cards/{pan}/binding.
type BindRequest struct {
	Gateway  string `json:"gateway"`
	BankCard string `json:"bank_card"`
	Account  string `json:"account"`
	Operator string `json:"operator"`
}

// UnbindGatewayResponse answers DELETE /api/v1/gateways/{name}/bindings:
// how many cards' bindings to the gateway were removed, and whether
// others remain (call again).
type UnbindGatewayResponse struct {
	Gateway string `json:"gateway"`
	Unbound int    `json:"unbound"`
	More    bool   `json:"more"`
}

// UnbindGatewayError answers DELETE /api/v1/gateways/{name}/bindings
// (500) when a commit fails after others committed: the error, and how
// many cards' bindings were removed before it (they stay removed).
// Calling again carries on with the cards still bound.
type UnbindGatewayError struct {
	Error   string `json:"error"`
	Gateway string `json:"gateway"`
	Unbound int    `json:"unbound"`
}

// PendingResponse answers GET /api/v1/recharge/pending.
type PendingResponse struct {
	OlderThanDays int                      `json:"older_than_days"`
	Credits       []recharge.PendingCredit `json:"credits"`
	TotalFen      int64                    `json:"total_fen"`
	Truncated     bool                     `json:"truncated,omitempty"`
}

// Receivable is one owing card; the card number is masked.
type Receivable struct {
	Card   string `json:"card"`
	Holder string `json:"holder"`
	State  string `json:"state"`
	Owed   string `json:"owed"`
}

// ReceivablesPage answers GET /api/v1/reports/receivables.
type ReceivablesPage struct {
	// TotalOwed is the sum over every owing card (not only this page).
	TotalOwed string `json:"total_owed"`
	// Cards is the number of owing cards (not only this page).
	Cards       int          `json:"cards"`
	Receivables []Receivable `json:"receivables"`
	// Next is the after= value of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// DayCloseRequest is the body of POST /api/v1/day/close: the date to
// close (default: the current business day) and who closes it.
type DayCloseRequest struct {
	Date     string `json:"date"`
	Operator string `json:"operator"`
}

// RatesList answers GET /api/v1/settlement/rates.
type RatesList struct {
	Rates []recon.Rates `json:"rates"`
}

// SetRatesRequest is the body of POST /api/v1/settlement/rates.
type SetRatesRequest struct {
	Merchant     string `json:"merchant"`
	From         string `json:"from"`
	FeeBP        int32  `json:"fee_bp"`
	ManagementBP int32  `json:"management_bp"`
	Operator     string `json:"operator"`
}

// RefundPage is one page of the refund list.
type RefundPage struct {
	Refunds []recon.RefundItem `json:"refunds"`
	Total   ledger.Fen         `json:"total"`
	// Next is the after= of the next page ("" on the last).
	Next string `json:"next,omitempty"`
}

// DiscrepancyPage is one page of discrepancies.
type DiscrepancyPage struct {
	Discrepancies []recon.Discrepancy `json:"discrepancies"`
	// Next is the after= of the next page; 0 when this is the last.
	Next uint64 `json:"next,omitempty"`
}

// ResolveRequest is the body of POST /api/v1/recon/discrepancies/{id}/resolve.
type ResolveRequest struct {
	Action   string `json:"action"`
	Operator string `json:"operator"`
}
