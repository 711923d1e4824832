package admin

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
	"go.uber.org/zap"
)

// Cards and the receivables report (docs/admin-api.md, docs/ledger.md).

func (a *API) registerCards(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/cards/{pan}", a.getCard)
	mux.HandleFunc("POST /api/v1/cards", a.openCard)
	c := a.cfg.Cards
	for action, f := range map[string]func(string) error{
		"freeze":   c.Freeze,
		"unfreeze": c.Unfreeze,
		"lost":     c.ReportLost,
		"found":    c.CancelLoss,
		"close":    c.CloseCard,
	} {
		mux.HandleFunc("POST /api/v1/cards/{pan}/"+action, a.cardAction(action, f))
	}
	mux.HandleFunc("GET /api/v1/reports/receivables", a.receivables)
}

// panField is a card number fit for a log.
func panField(pan string) zap.Field { return zap.String("card", cardno.Mask(pan)) }

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

func (a *API) getCard(w http.ResponseWriter, r *http.Request) {
	v, ok := a.cfg.Cards.Card(r.PathValue("pan"))
	if !ok {
		a.fail(w, r, ledger.ErrUnknownCard)
		return
	}
	writeJSON(w, http.StatusOK, cardJSON(v))
}

func (a *API) openCard(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ledger.CardSpec
		PIN string
	}
	if err := decodeCardSpec(r, &req.CardSpec, &req.PIN); err != nil {
		a.fail(w, r, err)
		return
	}
	pvv, err := a.cfg.Keys.PINVerificationValue(req.PAN, req.PIN)
	req.PIN = ""
	if err != nil {
		a.fail(w, r, fmt.Errorf("card PIN: %w", err))
		return
	}
	if err := a.cfg.Cards.OpenCard(req.CardSpec, []byte(pvv)); err != nil {
		a.fail(w, r, err)
		return
	}
	v, _ := a.cfg.Cards.Card(req.PAN)
	a.log.Info("card opened", panField(req.PAN), zap.String("holder_type", v.HolderType.String()))
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

func (a *API) cardAction(action string, f func(string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pan := r.PathValue("pan")
		if err := f(pan); err != nil {
			a.fail(w, r, fmt.Errorf("%s card %s: %w", action, cardno.Mask(pan), err))
			return
		}
		v, _ := a.cfg.Cards.Card(pan)
		a.log.Info("card "+action, panField(pan))
		writeJSON(w, http.StatusOK, cardJSON(v))
	}
}

// maxReceivablesPage bounds one page of the receivables report.
const maxReceivablesPage = 1000

// receivables lists the cards that owe the school because a reversal took
// back a credit they had already spent (docs/ledger.md#receivables), by
// card number, paginated with ?limit= (1..1000, default 100) and ?after=
// (the next value of the previous page: how many cards it has passed).
func (a *API) receivables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after := 100, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReceivablesPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxReceivablesPage))
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || len(v) > 9 {
			writeError(w, http.StatusBadRequest, "after: want the next value of the previous page")
			return
		}
		after = n
	}
	all, total, _ := a.cfg.Cards.Receivables("", 0)
	out := ReceivablesPage{TotalOwed: total.String(), Cards: len(all), Receivables: []Receivable{}}
	for i := after; i < len(all) && i < after+limit; i++ {
		rc := all[i]
		out.Receivables = append(out.Receivables, Receivable{Card: cardno.Mask(rc.PAN), Holder: rc.Holder, State: rc.State.String(), Owed: rc.Owed.String()})
	}
	if after+limit < len(all) {
		out.Next = strconv.Itoa(after + limit)
	}
	writeJSON(w, http.StatusOK, out)
}
