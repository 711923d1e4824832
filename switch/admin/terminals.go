package admin

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/switch/terminals"
	"go.uber.org/zap"
)

// Merchants and terminals (docs/admin-api.md).

func (a *API) listMerchants(w http.ResponseWriter, r *http.Request) {
	ms := a.cfg.Merchants.Merchants()
	out := make([]MerchantResponse, 0, len(ms))
	for _, m := range ms {
		out = append(out, merchantJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getMerchant(w http.ResponseWriter, r *http.Request) {
	m, ok := a.cfg.Merchants.Merchant(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "merchant not registered")
		return
	}
	writeJSON(w, http.StatusOK, merchantJSON(m))
}

func merchantJSON(m ledger.MerchantInfo) MerchantResponse {
	return MerchantResponse{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus,
		FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays}
}

func (a *API) addMerchant(w http.ResponseWriter, r *http.Request) {
	var m struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		OnCampus       bool   `json:"on_campus"`
		FeeRateBP      int32  `json:"fee_rate_bp"`
		SettlementDays int32  `json:"settlement_days"`
	}
	if err := decodeBody(r, &m); err != nil {
		a.fail(w, r, err)
		return
	}
	spec := ledger.MerchantSpec{ID: m.ID, Name: m.Name, OnCampus: m.OnCampus, FeeRateBP: m.FeeRateBP, SettlementDays: m.SettlementDays}
	if err := a.cfg.Merchants.AddMerchant(spec); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("merchant added", zap.String("merchant", m.ID))
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
		Disabled: t.Disabled, SignedOn: t.SignedOn, Batch: fmt.Sprintf("%06d", t.Batch),
		KeyMode: t.KeyMode, KeyGeneration: t.KeyGeneration, Permitted: permitted,
		LegacySignOn: t.LegacySignOn, SourceNetwork: t.SourceNetwork}
}

func (a *API) listTerminals(w http.ResponseWriter, r *http.Request) {
	ts := a.cfg.Terminals.List()
	out := make([]TerminalResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, terminalJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getTerminal(w http.ResponseWriter, r *http.Request) {
	t := a.cfg.Terminals.Get(r.PathValue("id"))
	if t == nil {
		a.fail(w, r, terminals.ErrUnknown)
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
			clearComponents(out)
			return nil, fmt.Errorf("key component %d: want 32 or 48 hex digits", i+1)
		}
		out = append(out, b)
	}
	return out, nil
}

// clearComponents zeroes key components once the HSM has them.
func clearComponents(comps [][]byte) {
	for _, c := range comps {
		clear(c)
	}
}

func (a *API) importTMK(id string, hexes []string) (string, error) {
	comps, err := decodeComponents(hexes)
	if err != nil {
		return "", err
	}
	defer clearComponents(comps)
	kcv, err := a.cfg.Keys.ImportTMK(id, comps...)
	if err != nil {
		return "", fmt.Errorf("load TMK of terminal %s: %w", id, err)
	}
	k := strings.ToUpper(hex.EncodeToString(kcv))
	if len(k) > 6 {
		k = k[:6] // a KCV is the leading 3 bytes of the check block
	}
	return k, nil
}

func (a *API) addTerminal(w http.ResponseWriter, r *http.Request) {
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
		a.fail(w, r, err)
		return
	}
	if err := terminals.ValidIDs(req.ID, req.Merchant); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Terminals.Get(req.ID) != nil {
		a.fail(w, r, fmt.Errorf("%w: %s", terminals.ErrExists, req.ID))
		return
	}
	if _, ok := a.cfg.Merchants.Merchant(req.Merchant); !ok {
		writeError(w, http.StatusBadRequest, "merchant not registered")
		return
	}
	if err := terminals.CheckSourceNetwork(req.LegacySignOn, req.SourceNetwork); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	kcv := ""
	if len(req.TMKComponents) > 0 {
		var err error
		if kcv, err = a.importTMK(req.ID, req.TMKComponents); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.cfg.Terminals.Register(terminals.Spec{ID: req.ID, Merchant: req.Merchant, MayLoad: req.MayLoad, Permitted: req.Permitted,
		LegacySignOn: req.LegacySignOn, SourceNetwork: req.SourceNetwork}); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("terminal added", zap.String("terminal", req.ID), zap.String("merchant", req.Merchant), zap.String("tmk_kcv", kcv))
	writeJSON(w, http.StatusCreated, TMKResponse{ID: req.ID, TMKKCV: kcv})
}

func (a *API) loadTMK(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req struct {
		Components []string `json:"components"`
	}
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Terminals.Get(id) == nil {
		a.fail(w, r, terminals.ErrUnknown)
		return
	}
	kcv, err := a.importTMK(id, req.Components)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Working keys under the old TMK are no longer trusted; the sign-on
	// stamps start again under the new one (docs/pos-dialect.md#sign-on-proof).
	if _, err := a.cfg.Terminals.Update(id, func(t *terminals.Terminal) error { t.SignedOn, t.LastSignOn = false, ""; return nil }); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("terminal TMK loaded", zap.String("terminal", id), zap.String("tmk_kcv", kcv))
	writeJSON(w, http.StatusOK, TMKResponse{ID: id, TMKKCV: kcv})
}

func (a *API) setTerminalDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := a.cfg.Terminals.Update(r.PathValue("id"), func(t *terminals.Terminal) error { t.Disabled = disabled; return nil })
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.log.Info("terminal state changed", zap.String("terminal", t.ID), zap.Bool("disabled", disabled))
		writeJSON(w, http.StatusOK, terminalJSON(t))
	}
}

// changePermitted permits or forbids transaction types to a terminal
// (docs/admin-api.md): how a kiosk registered before transfer loads
// existed is given transfer_load.
func (a *API) changePermitted(permit bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Types []string `json:"types"`
		}
		if err := decodeBody(r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
		if len(req.Types) > maxTypeLabels {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%d types: at most %d", len(req.Types), maxTypeLabels))
			return
		}
		t, err := a.cfg.Terminals.Update(r.PathValue("id"), func(t *terminals.Terminal) error {
			return t.ChangePermitted(req.Types, permit)
		})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		action := "forbid"
		if permit {
			action = "permit"
		}
		if a.cfg.PermissionChanges != nil {
			a.cfg.PermissionChanges.WithLabelValues(action).Inc()
		}
		a.log.Info("terminal permissions changed", zap.String("terminal", t.ID), zap.Bool("permit", permit),
			zap.Strings("types", req.Types))
		writeJSON(w, http.StatusOK, terminalJSON(t))
	}
}

// maxTypeLabels bounds the types of one permission change: there are
// fewer transaction types than this.
const maxTypeLabels = 64
