package switching

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"go.uber.org/zap"
)

// registerAdmin installs the admin API (docs/admin-api.md) under /api/,
// behind the bearer token. Every answer is JSON; card numbers are masked
// and no key, PIN, PIN block, PIN verification value or track data is
// ever returned.
func (sw *Switch) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/status", sw.adminStatus)
	mux.HandleFunc("GET /api/v1/stats", sw.adminStats) // console_stats.go
	mux.HandleFunc("GET /api/v1/merchants", sw.adminListMerchants)
	mux.HandleFunc("GET /api/v1/merchants/{id}", sw.adminGetMerchant)
	mux.HandleFunc("POST /api/v1/merchants", sw.adminAddMerchant)
	mux.HandleFunc("GET /api/v1/terminals", sw.adminListTerminals)
	mux.HandleFunc("GET /api/v1/terminals/{id}", sw.adminGetTerminal)
	mux.HandleFunc("POST /api/v1/terminals", sw.adminAddTerminal)
	mux.HandleFunc("POST /api/v1/terminals/{id}/tmk", sw.adminLoadTMK)
	mux.HandleFunc("POST /api/v1/terminals/{id}/disable", sw.adminSetTerminalDisabled(true))
	mux.HandleFunc("POST /api/v1/terminals/{id}/enable", sw.adminSetTerminalDisabled(false))
	mux.HandleFunc("GET /api/v1/cards/{pan}", sw.adminGetCard)
	mux.HandleFunc("POST /api/v1/cards", sw.adminOpenCard)
	for action, f := range map[string]func(string) error{
		"freeze":   sw.ledger.Freeze,
		"unfreeze": sw.ledger.Unfreeze,
		"lost":     sw.ledger.ReportLost,
		"found":    sw.ledger.CancelLoss,
		"close":    sw.ledger.CloseCard,
	} {
		mux.HandleFunc("POST /api/v1/cards/{pan}/"+action, sw.adminCardAction(action, f))
	}
	mux.HandleFunc("GET /api/v1/journal", sw.adminJournal)
	mux.HandleFunc("POST /api/v1/retention/run", sw.adminRetentionRun)
	sw.registerRecon(mux)
	sw.registerLinksAdmin(mux)
	sw.registerRechargeAdmin(mux)
	mux.HandleFunc("GET /api/v1/reports/receivables", sw.adminReceivables)

	// Go's profiler, behind the same token: CPU, heap, goroutines, mutex
	// and block profiles of the running daemon (go tool pprof with
	// -http or a saved file). CPU profiles and traces take at most
	// maxProfileSeconds, and the HTTP write timeout bounds them too: ask
	// for seconds=20 at most.
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/", pprof.Index)
	prof.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	prof.HandleFunc("/debug/pprof/profile", boundedProfile(pprof.Profile))
	prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	prof.HandleFunc("/debug/pprof/trace", boundedProfile(pprof.Trace))
	mux.Handle("GET /api/debug/pprof/", http.StripPrefix("/api", prof))
}

func (sw *Switch) adminStatus(w http.ResponseWriter, r *http.Request) {
	pos, gw, httpAddr := sw.Addrs()
	writeJSON(w, http.StatusOK, StatusResponse{
		POS:          pos,
		Gateway:      gw,
		HTTP:         httpAddr,
		Ready:        sw.ready() == nil,
		BusinessDate: sw.clock.Today().String(),
		JournalSeq:   sw.journal.LastSeq(),
	})
}

// adminRetentionRun runs the retention job now and answers its report:
// 409 while another run is going on, 500 with the report when it failed.
func (sw *Switch) adminRetentionRun(w http.ResponseWriter, r *http.Request) {
	rep, err := sw.retention.run(sw.clock.now())
	switch {
	case errors.Is(err, errRetentionBusy):
		writeJSONError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, rep)
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// decodeBody reads a JSON body, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// maskedPath is a request path fit for a log: card routes carry the card
// number as a path segment (/api/v1/cards/{pan}/freeze), so every segment
// of digits long enough to be one is masked, but a merchant id's.
func maskedPath(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if len(s) > 10 && strings.Trim(s, "0123456789") == "" && (i == 0 || segs[i-1] != "merchants") {
			segs[i] = cardno.Mask(s)
		}
	}
	return strings.Join(segs, "/")
}

// adminError answers an error with the status its kind calls for.
func (sw *Switch) adminError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, terminals.ErrUnknown), errors.Is(err, ledger.ErrUnknownCard):
		status = http.StatusNotFound
	case errors.Is(err, terminals.ErrExists), errors.Is(err, ledger.ErrCardExists),
		errors.Is(err, ledger.ErrMerchantExists), errors.Is(err, ledger.ErrCardState),
		errors.Is(err, ledger.ErrLimit):
		status = http.StatusConflict
	case errors.Is(err, hsm.ErrKCVMismatch):
		status = http.StatusBadRequest
	}
	sw.log.Info("admin API request refused", zap.String("path", logPath(r.URL.Path)), zap.Int("status", status), zap.Error(err))
	writeJSONError(w, status, err.Error())
}

func (sw *Switch) adminListMerchants(w http.ResponseWriter, r *http.Request) {
	ms := sw.ledger.Merchants()
	out := make([]MerchantResponse, 0, len(ms))
	for _, m := range ms {
		out = append(out, merchantJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (sw *Switch) adminGetMerchant(w http.ResponseWriter, r *http.Request) {
	m, ok := sw.ledger.Merchant(r.PathValue("id"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, "merchant not registered")
		return
	}
	writeJSON(w, http.StatusOK, merchantJSON(m))
}

func merchantJSON(m ledger.MerchantInfo) MerchantResponse {
	return MerchantResponse{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus,
		FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays}
}

func (sw *Switch) adminAddMerchant(w http.ResponseWriter, r *http.Request) {
	var m struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		OnCampus       bool   `json:"on_campus"`
		FeeRateBP      int32  `json:"fee_rate_bp"`
		SettlementDays int32  `json:"settlement_days"`
	}
	if err := decodeBody(r, &m); err != nil {
		sw.adminError(w, r, err)
		return
	}
	spec := ledger.MerchantSpec{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus, FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays}
	if err := sw.ledger.AddMerchant(spec); err != nil {
		sw.adminError(w, r, err)
		return
	}
	sw.log.Info("merchant added", zap.String("merchant", m.ID))
	writeJSON(w, http.StatusCreated, merchantJSON(spec))
}

// terminalJSON is a terminal as the admin API shows it.
func terminalJSON(t *terminals.Terminal) TerminalResponse {
	var permitted []string
	for _, tx := range spec.TxTypes() {
		if t.Permits(tx) {
			permitted = append(permitted, tx.String())
		}
	}
	return TerminalResponse{ID: t.ID, Merchant: t.Merchant, MayLoad: t.MayLoad,
		Disabled: t.Disabled, SignedOn: t.SignedOn, Batch: batchString(t.Batch),
		KeyMode: t.KeyMode, KeyGeneration: t.KeyGeneration, Permitted: permitted,
		LegacySignOn: t.LegacySignOn, SourceNetwork: t.SourceNetwork}
}

func (sw *Switch) adminListTerminals(w http.ResponseWriter, r *http.Request) {
	ts := sw.terminals.List()
	out := make([]TerminalResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, terminalJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (sw *Switch) adminGetTerminal(w http.ResponseWriter, r *http.Request) {
	t := sw.terminals.Get(r.PathValue("id"))
	if t == nil {
		sw.adminError(w, r, terminals.ErrUnknown)
		return
	}
	writeJSON(w, http.StatusOK, terminalJSON(t))
}

// maxComponents bounds a key load: key custodians hold 2 or 3.
const maxComponents = 3

func decodeComponents(hexes []string) ([][]byte, error) {
	if len(hexes) == 0 || len(hexes) > maxComponents {
		return nil, fmt.Errorf("%d key components: want 1 to %d", len(hexes), maxComponents)
	}
	out := make([][]byte, 0, len(hexes))
	for i, h := range hexes {
		b, err := hex.DecodeString(h)
		if err != nil || (len(b) != 16 && len(b) != 24) {
			for _, c := range out {
				clearBytes(c)
			}
			return nil, fmt.Errorf("key component %d: want 32 or 48 hex digits", i+1)
		}
		out = append(out, b)
	}
	return out, nil
}

func (sw *Switch) loadTMK(id string, hexes []string) (string, error) {
	comps, err := decodeComponents(hexes)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, c := range comps {
			clearBytes(c)
		}
	}()
	kcv, err := sw.hsm.ImportTMK(id, comps...)
	if err != nil {
		return "", fmt.Errorf("load TMK of terminal %s: %w", id, err)
	}
	k := strings.ToUpper(hex.EncodeToString(kcv))
	if len(k) > 6 {
		k = k[:6] // a KCV is the leading 3 bytes of the check block
	}
	return k, nil
}

func (sw *Switch) adminAddTerminal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID            string   `json:"id"`
		Merchant      string   `json:"merchant"`
		MayLoad       bool     `json:"may_load"`
		Permitted     []string `json:"permitted"`
		TMKComponents []string `json:"tmk_components"`
		// docs/pos-dialect.md#sign-on-proof
		LegacySignOn  bool   `json:"legacy_signon"`
		SourceNetwork string `json:"source_network"`
	}
	if err := decodeBody(r, &req); err != nil {
		sw.adminError(w, r, err)
		return
	}
	if err := terminals.ValidIDs(req.ID, req.Merchant); err != nil {
		sw.adminError(w, r, err)
		return
	}
	if sw.terminals.Get(req.ID) != nil {
		sw.adminError(w, r, fmt.Errorf("%w: %s", terminals.ErrExists, req.ID))
		return
	}
	if _, ok := sw.ledger.Merchant(req.Merchant); !ok {
		writeJSONError(w, http.StatusBadRequest, "merchant not registered")
		return
	}
	if err := checkSourceNetwork(req.LegacySignOn, req.SourceNetwork); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	kcv := ""
	if len(req.TMKComponents) > 0 {
		var err error
		if kcv, err = sw.loadTMK(req.ID, req.TMKComponents); err != nil {
			sw.adminError(w, r, err)
			return
		}
	}
	if err := sw.addTerminal(terminals.Spec{ID: req.ID, Merchant: req.Merchant, MayLoad: req.MayLoad, Permitted: req.Permitted,
		LegacySignOn: req.LegacySignOn, SourceNetwork: req.SourceNetwork}); err != nil {
		sw.adminError(w, r, err)
		return
	}
	sw.log.Info("terminal added", zap.String("terminal", req.ID), zap.String("merchant", req.Merchant), zap.String("tmk_kcv", kcv))
	writeJSON(w, http.StatusCreated, TMKResponse{ID: req.ID, TMKKCV: kcv})
}

func (sw *Switch) adminLoadTMK(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req struct {
		Components []string `json:"components"`
	}
	if err := decodeBody(r, &req); err != nil {
		sw.adminError(w, r, err)
		return
	}
	if sw.terminals.Get(id) == nil {
		sw.adminError(w, r, terminals.ErrUnknown)
		return
	}
	kcv, err := sw.loadTMK(id, req.Components)
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	// Working keys under the old TMK are no longer trusted; the sign-on
	// stamps start again under the new one (docs/pos-dialect.md#sign-on-proof).
	if _, err := sw.terminals.Update(id, func(t *terminals.Terminal) error { t.SignedOn, t.LastSignOn = false, ""; return nil }); err != nil {
		sw.adminError(w, r, err)
		return
	}
	sw.log.Info("terminal TMK loaded", zap.String("terminal", id), zap.String("tmk_kcv", kcv))
	writeJSON(w, http.StatusOK, TMKResponse{ID: id, TMKKCV: kcv})
}

func (sw *Switch) adminSetTerminalDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := sw.terminals.Update(r.PathValue("id"), func(t *terminals.Terminal) error { t.Disabled = disabled; return nil })
		if err != nil {
			sw.adminError(w, r, err)
			return
		}
		sw.log.Info("terminal state changed", zap.String("terminal", t.ID), zap.Bool("disabled", disabled))
		writeJSON(w, http.StatusOK, terminalJSON(t))
	}
}

// cardJSON is a card as the admin API shows it: masked, without its PIN
// verification value.
func cardJSON(v ledger.CardView) CardResponse {
	lostFrom := ""
	if v.LostFrom != 0 {
		lostFrom = v.LostFrom.String()
	}
	return CardResponse{
		LostFrom: lostFrom,
		Card:     cardno.Mask(v.PAN), Holder: v.Holder, HolderType: v.HolderType.String(),
		State: v.State.String(), List: v.List.String(),
		Cash: v.Balances.Cash.String(), Subsidy: v.Balances.Subsidy.String(),
		Held: v.Balances.Held.String(), Available: v.Balances.Available.String(),
		DailyLimit: v.DailyLimit.String(), PerTxnLimit: v.PerTxnLimit.String(),
		NoPINLimit: v.NoPINLimit.String(), MaxBalance: v.MaxBalance.String(),
		FeeRateBP: v.FeeBP, DaySpent: v.DaySpent.String(), PINTries: v.PINTries,
		Owed: v.Owed.String(),
	}
}

func (sw *Switch) adminGetCard(w http.ResponseWriter, r *http.Request) {
	v, ok := sw.ledger.Card(r.PathValue("pan"))
	if !ok {
		sw.adminError(w, r, ledger.ErrUnknownCard)
		return
	}
	writeJSON(w, http.StatusOK, cardJSON(v))
}

func (sw *Switch) adminOpenCard(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ledger.CardSpec
		PIN string
	}
	if err := decodeCardSpec(r, &req.CardSpec, &req.PIN); err != nil {
		sw.adminError(w, r, err)
		return
	}
	pvv, err := sw.hsm.PINVerificationValue(req.PAN, req.PIN)
	req.PIN = ""
	if err != nil {
		sw.adminError(w, r, fmt.Errorf("card PIN: %w", err))
		return
	}
	if err := sw.ledger.OpenCard(req.CardSpec, []byte(pvv)); err != nil {
		sw.adminError(w, r, err)
		return
	}
	v, _ := sw.ledger.Card(req.PAN)
	sw.log.Info("card opened", panField(req.PAN), zap.String("holder_type", v.HolderType.String()))
	writeJSON(w, http.StatusCreated, cardJSON(v))
}

// decodeCardSpec reads the JSON form of a card (the same keys as the YAML
// seed, amounts as yuan strings).
func decodeCardSpec(r *http.Request, c *ledger.CardSpec, pin *string) error {
	var j struct {
		PAN         string            `json:"pan"`
		Holder      string            `json:"holder"`
		HolderType  ledger.HolderType `json:"holder_type"`
		Cash        ledger.Fen        `json:"cash"`
		Subsidy     ledger.Fen        `json:"subsidy"`
		State       ledger.CardState  `json:"state"`
		List        ledger.ListFlag   `json:"list"`
		DailyLimit  ledger.Fen        `json:"daily_limit"`
		PerTxnLimit ledger.Fen        `json:"per_txn_limit"`
		NoPINLimit  *ledger.Fen       `json:"no_pin_limit"`
		MaxBalance  *ledger.Fen       `json:"max_balance"`
		FeeRateBP   *int32            `json:"fee_rate_bp"`
		PIN         string            `json:"pin"`
	}
	if err := decodeBody(r, &j); err != nil {
		return err
	}
	*c = ledger.CardSpec{PAN: j.PAN, Holder: j.Holder, HolderType: j.HolderType, Cash: j.Cash,
		Subsidy: j.Subsidy, State: j.State, List: j.List, DailyLimit: j.DailyLimit,
		PerTxnLimit: j.PerTxnLimit, NoPINLimit: j.NoPINLimit, MaxBalance: j.MaxBalance, FeeRateBP: j.FeeRateBP}
	*pin = j.PIN
	return nil
}

func (sw *Switch) adminCardAction(action string, f func(string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pan := r.PathValue("pan")
		if err := f(pan); err != nil {
			sw.adminError(w, r, fmt.Errorf("%s card %s: %w", action, cardno.Mask(pan), err))
			return
		}
		v, _ := sw.ledger.Card(pan)
		sw.log.Info("card "+action, panField(pan))
		writeJSON(w, http.StatusOK, cardJSON(v))
	}
}

// journalJSON is a journal entry as the admin API shows it. Its raw bytes
// never hold a PIN block, track data or keys: they were removed before it
// was written.
func journalJSON(e *journal.Entry) JournalEntryResponse {
	return JournalEntryResponse{
		Seq: e.Seq, Direction: e.Direction.String(), Listener: e.Listener, Peer: e.Peer,
		Terminal: e.Terminal, Merchant: e.Merchant, MTI: e.MTI, STAN: e.STAN,
		Batch: e.Batch, RRN: e.RRN, Type: e.TxType, RC: e.ResponseCode,
		Time: e.Time.UTC().Format(time.RFC3339Nano), BusinessDate: e.BusinessDate,
		Flags: uint16(e.Flags), Fields: journalFields(e),
	}
}

// journalFields decodes a journaled POS message for an operator: every
// field present, the card number masked. The raw bytes themselves are not
// shown: they hold the card number in clear (reconciliation needs it),
// and the admin API never shows a card number unmasked.
func journalFields(e *journal.Entry) map[string]string {
	if e.Listener != "pos" || e.Flags&journal.FlagUndecodable != 0 {
		return map[string]string{"undecoded_bytes": strconv.Itoa(len(e.Raw))}
	}
	m, err := spec.DecodePOS(e.Raw)
	if err != nil {
		return map[string]string{"undecoded_bytes": strconv.Itoa(len(e.Raw))}
	}
	out := map[string]string{}
	put := func(id int, v string) {
		if v != "" {
			out[strconv.Itoa(id)] = v
		}
	}
	put(2, cardno.Mask(m.PAN))
	put(3, m.ProcessingCode)
	if m.HasAmount {
		put(4, m.Amount.String())
	}
	put(11, m.STAN)
	put(12, m.LocalTime)
	put(13, m.LocalDate)
	put(15, m.SettlementDate)
	put(25, m.ConditionCode)
	put(37, m.RRN)
	put(38, m.AuthCode)
	put(39, m.ResponseCode)
	put(41, m.TerminalID)
	put(42, m.MerchantID)
	if spec.RequestMTI(m.MTI) == spec.MTIBatchSettlement {
		put(48, m.AdditionalData) // settlement totals: counts and amounts
	} else if m.AdditionalData != "" {
		// Elsewhere (batch upload records) field 48 may carry card numbers
		// among its digits, which cannot be told apart to mask them.
		put(48, fmt.Sprintf("(%d digits withheld)", len(m.AdditionalData)))
	}
	put(54, m.Balances)
	put(60, m.Reserved60.String())
	put(61, m.Original.String())
	put(63, m.Reserved63)
	return out
}

// maxJournalAnswer bounds one journal answer.
const maxJournalAnswer = 1000

func (sw *Switch) adminJournal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 200
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxJournalAnswer {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxJournalAnswer))
			return
		}
		limit = n
	}
	var (
		entries []*journal.Entry
		err     error
	)
	switch {
	case q.Get("rrn") != "":
		entries, err = sw.journal.ByRRN(q.Get("rrn"), q.Get("date"), limit)
	case q.Get("terminal") != "" && q.Get("batch") != "":
		batch := q.Get("batch")
		if n, perr := strconv.Atoi(batch); perr == nil && len(batch) < 6 {
			batch = batchString(uint32(n))
		}
		entries, err = sw.journal.ByTerminalBatch(q.Get("terminal"), batch, limit)
	default:
		writeJSONError(w, http.StatusBadRequest, "give rrn (and optionally date), or terminal and batch")
		return
	}
	if err != nil {
		sw.adminError(w, r, err)
		return
	}
	out := make([]JournalEntryResponse, 0, len(entries))
	for _, e := range entries {
		out = append(out, journalJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}
