package switching

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/ledger"
)

// The receivables report (docs/ledger.md#receivables): cards that owe the
// school because a reversal took back a credit they had already spent.

// receivableJSON is one owing card; the card number is masked.
type receivableJSON struct {
	Card   string `json:"card"`
	Holder string `json:"holder"`
	State  string `json:"state"`
	Owed   string `json:"owed"`
}

// receivablesJSON is the answer of GET /api/v1/reports/receivables.
type receivablesJSON struct {
	// TotalOwed is the sum over every owing card (not only this page).
	TotalOwed string `json:"total_owed"`
	// Cards is the number of owing cards (not only this page).
	Cards       int              `json:"cards"`
	Receivables []receivableJSON `json:"receivables"`
	// Next is the after= value of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// maxReceivablesPage bounds one page of the report.
const maxReceivablesPage = 1000

// adminReceivables lists the owing cards by card number, paginated with
// ?limit= (1..1000, default 100) and ?after= (the next value of the
// previous page: how many cards it has passed).
func (sw *Switch) adminReceivables(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after := 100, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReceivablesPage {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxReceivablesPage))
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || len(v) > 9 {
			writeJSONError(w, http.StatusBadRequest, "after: want the next value of the previous page")
			return
		}
		after = n
	}
	all, total, _ := sw.ledger.Receivables("", 0)
	out := receivablesJSON{TotalOwed: total.String(), Cards: len(all), Receivables: []receivableJSON{}}
	for i := after; i < len(all) && i < after+limit; i++ {
		out.Receivables = append(out.Receivables, receivableView(all[i]))
	}
	if after+limit < len(all) {
		out.Next = strconv.Itoa(after + limit)
	}
	writeJSON(w, http.StatusOK, out)
}

func receivableView(rc ledger.Receivable) receivableJSON {
	return receivableJSON{Card: cardno.Mask(rc.PAN), Holder: rc.Holder, State: rc.State.String(), Owed: rc.Owed.String()}
}
