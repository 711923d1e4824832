package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// The message journal and the retention job (docs/admin-api.md).

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

func (a *API) journal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 200
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxJournalAnswer {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1..%d", maxJournalAnswer))
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
		entries, err = a.cfg.Journal.ByRRN(q.Get("rrn"), q.Get("date"), limit)
	case q.Get("terminal") != "" && q.Get("batch") != "":
		batch := q.Get("batch")
		if n, perr := strconv.Atoi(batch); perr == nil && len(batch) < 6 {
			batch = fmt.Sprintf("%06d", uint32(n))
		}
		entries, err = a.cfg.Journal.ByTerminalBatch(q.Get("terminal"), batch, limit)
	default:
		writeError(w, http.StatusBadRequest, "give rrn (and optionally date), or terminal and batch")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]JournalEntryResponse, 0, len(entries))
	for _, e := range entries {
		out = append(out, journalJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// ErrRetentionBusy answers a retention run asked for while one is going
// on (409).
var ErrRetentionBusy = errors.New("a retention run is already in progress")

// retentionRun runs the retention job now and answers its report: 409
// while another run is going on, 500 with the report when it failed.
func (a *API) retentionRun(w http.ResponseWriter, r *http.Request) {
	rep, err := a.cfg.Retention.RunRetention()
	switch {
	case errors.Is(err, ErrRetentionBusy):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, rep)
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}
