package hsm

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

// Sign-on modes (field 60.3 of the 0800, docs/pos-dialect.md#transaction-identification, docs/hsm.md#sign-on).
const (
	ModeSingleDES = "001" // single-DES PIK and MAK (legacy)
	ModeDoubleDES = "003" // double-length PIK, single-DES MAK
	ModeWithTDK   = "004" // 003 plus a double-length TDK
	ModeSM4       = "006" // SM4 PIK, MAK and TDK
)

// Field 62 lengths per sign-on mode.
const (
	Field62Len001 = 24
	Field62Len003 = 40
	Field62Len004 = 60
	Field62Len006 = 60
)

const terminalLabelPrefix = "term/"

// maxTerminalID bounds terminal ids used in labels (POS ids are 8).
const maxTerminalID = 32

// ErrBadTerminalID reports an empty, long or unprintable terminal id.
var ErrBadTerminalID = errors.New("terminal id must be 1 to 32 printable ASCII characters without '/' or spaces")

func checkTerminalID(id string) error {
	if len(id) == 0 || len(id) > maxTerminalID {
		return ErrBadTerminalID
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7F || c == '/' {
			return ErrBadTerminalID
		}
	}
	return nil
}

// TerminalKeyLabel is the label of a terminal's key of type t, e.g.
// "term/10000001/TMK"; the switch's terminal registry stores it as the
// terminal's TMK label. Working keys (TPK, TAK, TDK) are replaced at every
// sign-on.
func TerminalKeyLabel(terminalID string, t KeyType) string {
	return terminalLabelPrefix + terminalID + "/" + t.String()
}

// workingKeySpec says what a sign-on mode generates.
type workingKeySpec struct {
	alg                 Algorithm
	pikLen, makLen      int
	tdkLen              int // 0: no TDK
	tmkAlgs             []Algorithm
	padMAK              bool // 003/004: MAK(8) + 8 zero bytes
	field62Len, checkSz int
}

func specFor(mode string) (workingKeySpec, error) {
	switch mode {
	case ModeSingleDES:
		return workingKeySpec{alg: DES, pikLen: 8, makLen: 8, tmkAlgs: []Algorithm{DES, TDES}, field62Len: Field62Len001, checkSz: 4}, nil
	case ModeDoubleDES:
		return workingKeySpec{alg: TDES, pikLen: 16, makLen: 8, padMAK: true, tmkAlgs: []Algorithm{TDES}, field62Len: Field62Len003, checkSz: 4}, nil
	case ModeWithTDK:
		return workingKeySpec{alg: TDES, pikLen: 16, makLen: 8, tdkLen: 16, padMAK: true, tmkAlgs: []Algorithm{TDES}, field62Len: Field62Len004, checkSz: 4}, nil
	case ModeSM4:
		return workingKeySpec{alg: SM4, pikLen: 16, makLen: 16, tdkLen: 16, tmkAlgs: []Algorithm{SM4}, field62Len: Field62Len006, checkSz: 4}, nil
	}
	return workingKeySpec{}, fmt.Errorf("sign-on mode %q (want 001, 003, 004 or 006): %w", mode, ErrUnsupported)
}

// SignOn generates fresh working keys for a terminal, stores them under
// the LMK as its current TPK/TAK(/TDK) — replacing the previous ones and
// the cached MAC key — and returns field 62 of the 0810: each key
// encrypted under the terminal's TMK (ECB), followed by its check value
// (first 4 bytes of the clear key encrypting a zero block):
//
//	001: PIK(8) CV(4) MAK(8) CV(4)                         = 24 bytes, single DES
//	003: PIK(16) CV(4) MAK(8) 00×8 CV(4)                   = 40 bytes
//	004: the 40 of 003 + TDK(16) CV(4)                     = 60 bytes
//	006: PIK(16) CV(4) MAK(16) CV(4) TDK(16) CV(4)         = 60 bytes, SM4
//
// Modes 001/003/004 need a TDES (or for 001 DES) TMK and produce DES
// working keys (single-DES MAK for the POS MAC, docs/pos-dialect.md#mac-field-64); 006 needs an SM4 TMK.
// The keys are durable (synced) before SignOn returns.
func (h *HSM) SignOn(terminalID, mode string) (field62 []byte, err error) {
	defer func() { h.observe(opSignOn, err, true) }()
	if err := checkTerminalID(terminalID); err != nil {
		return nil, err
	}
	spec, err := specFor(mode)
	if err != nil {
		return nil, err
	}
	tmk, err := h.key(TerminalKeyLabel(terminalID, TMK), UsageWrapTerminalKeys)
	if err != nil {
		return nil, fmt.Errorf("sign-on terminal %s: %w", terminalID, err)
	}
	if !algIn(tmk.alg, spec.tmkAlgs) {
		return nil, fmt.Errorf("sign-on terminal %s mode %s: TMK is %s: %w", terminalID, mode, tmk.alg, ErrUnsupported)
	}

	type wk struct {
		t     KeyType
		n     int
		clear []byte
	}
	keys := []wk{{t: TPK, n: spec.pikLen}, {t: TAK, n: spec.makLen}}
	if spec.tdkLen > 0 {
		keys = append(keys, wk{t: TDK, n: spec.tdkLen})
	}
	defer func() {
		for _, k := range keys {
			wipe(k.clear)
		}
	}()
	out := make([]byte, 0, spec.field62Len)
	labels := make([]string, 0, len(keys))
	recs := make([]record, 0, len(keys))
	for i := range keys {
		alg := spec.alg
		if alg == TDES && keys[i].n == 8 {
			alg = DES
		}
		clear, err := h.randomKey(alg, keys[i].n)
		if err != nil {
			return nil, err
		}
		keys[i].clear = clear
		enc, err := blockcipher.EncryptECB(tmk.block, clear)
		if err != nil {
			return nil, fmt.Errorf("sign-on terminal %s: encrypt %s under TMK: %w", terminalID, keys[i].t, err)
		}
		cb, err := blockcipher.CheckBlock(alg, clear)
		if err != nil {
			return nil, err
		}
		out = append(out, enc...)
		if keys[i].t == TAK && spec.padMAK {
			out = append(out, make([]byte, 8)...)
		}
		out = append(out, cb[:spec.checkSz]...)

		label := TerminalKeyLabel(terminalID, keys[i].t)
		h.mu.RLock()
		r, err := h.seal(label, keys[i].t, alg, DefaultUsage(keys[i].t), clear)
		h.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		labels = append(labels, label)
		recs = append(recs, r)
	}
	if len(out) != spec.field62Len {
		// An invariant of the layouts above, not an input error.
		panic(fmt.Sprintf("hsm: field 62 for mode %s is %d bytes, want %d", mode, len(out), spec.field62Len))
	}
	h.write.Lock()
	err = h.store(labels, recs)
	h.write.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sign-on terminal %s: %w", terminalID, err)
	}
	h.log.Debug("terminal signed on", zap.String("terminal", terminalID), zap.String("mode", mode),
		zap.String("pik_kcv", hexUpper(recs[0].KCV)), zap.String("mak_kcv", hexUpper(recs[1].KCV)))
	return out, nil
}

func algIn(a Algorithm, set []Algorithm) bool {
	for _, s := range set {
		if a == s {
			return true
		}
	}
	return false
}
