// Package hsm is the software HSM of cardswitch: a key store whose keys are
// held only encrypted under a local master key (LMK), and the operations a
// switch needs on them — sign-on key exchange, terminal MACs, PIN block
// verification and translation, DUKPT, and key import/export — without a
// clear key or PIN ever leaving the package.
//
// The algorithms themselves live in small subpackages (blockcipher, mac,
// pinblock, dukpt, pinverify) that hold no keys; this package adds the key
// store, key separation (a key only does what its type allows), caching
// of cipher objects, and metrics/log hooks that never see secrets.
package hsm

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

// Options configure an HSM.
type Options struct {
	// Logger receives operational events (labels, types, check values,
	// masked card numbers — never key or PIN material). Nil: no logging.
	Logger *zap.Logger
	// Counter, when set, is asked once for each operation and result an
	// operation ends with — the operation's name (e.g. "mac_verify") and
	// its result ("ok", "fail" for a negative verification, "error"), so
	// the switch can count switch_hsm_operations_total{op,result}
	// without hsm importing Prometheus — and returns
	// the function to call every time after: a Prometheus counter's Inc,
	// so that counting costs no label lookup per operation. It may be
	// asked twice for the same pair and must then return the same
	// counter's function.
	Counter func(op, result string) func()
	// CampusPVKLabel is the label of the PVK behind PINVerificationValue;
	// default DefaultCampusPVKLabel.
	CampusPVKLabel string
	// Rand is the source for generated keys; default crypto/rand.
	Rand io.Reader
}

// DefaultCampusPVKLabel is the default label of the campus-card PVK.
const DefaultCampusPVKLabel = "campus/PVK"

var (
	// ErrKeyNotFound reports a label with no stored key.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists reports an attempt to generate over an existing key.
	ErrKeyExists = errors.New("key already exists")
	// ErrKCVMismatch reports a component or imported key whose check value
	// differs from the one supplied.
	ErrKCVMismatch = errors.New("key check value mismatch")
	// ErrUnsupported reports a combination this HSM does not implement.
	ErrUnsupported = errors.New("not supported")
)

// HSM is the software HSM. It is safe for concurrent use.
type HSM struct {
	db   *pebble.DB
	opts Options
	log  *zap.Logger
	rand io.Reader

	mu   sync.RWMutex // guards lmk, keys, macs, piks
	lmk  LMK
	aead cipher.AEAD
	keys map[string]*loadedKey // by label
	macs map[string]*loadedKey // terminal MAKs, by terminal id
	piks map[string]*loadedKey // terminal PIKs, by terminal id
	// retail holds X9.19 key schedules of zone MAC keys, by label.
	retail map[string]*retailKey
	gen    uint64     // bumped on every key write, under mu
	write  sync.Mutex // serialises writers (sign-on, loads, rotation)
	// counters are Options.Counter's functions, by operation and result,
	// resolved on first use.
	counters [numOperations][numResults]atomic.Pointer[func()]
}

// loadedKey is a key ready for use: its metadata and cipher object. The
// clear key bytes are not kept; keys whose algorithms need raw bytes (a
// BDK, a PVK for Visa PVV) are decrypted per use and wiped.
type loadedKey struct {
	label string
	typ   KeyType
	alg   Algorithm
	usage Usage
	kcv   []byte
	block cipher.Block
}

// Open opens the key store held in db under prefix 'h'. On an empty store
// it records the LMK's check record; otherwise it refuses an LMK that does
// not match (ErrWrongLMK), so a daemon with the wrong LMK fails at start
// instead of at the first MAC.
func Open(db *pebble.DB, lmk LMK, opts Options) (*HSM, error) {
	if db == nil {
		return nil, errors.New("hsm: nil pebble DB")
	}
	if !lmk.IsSet() {
		return nil, errors.New("hsm: LMK not loaded")
	}
	if opts.CampusPVKLabel == "" {
		opts.CampusPVKLabel = DefaultCampusPVKLabel
	}
	if err := checkLabel(opts.CampusPVKLabel); err != nil {
		return nil, fmt.Errorf("hsm: campus PVK label: %w", err)
	}
	h := &HSM{db: db, opts: opts, log: opts.Logger, rand: opts.Rand, lmk: lmk,
		keys: map[string]*loadedKey{}, macs: map[string]*loadedKey{}, piks: map[string]*loadedKey{}, retail: map[string]*retailKey{}}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	a, err := h.lmk.aead()
	if err != nil {
		return nil, err
	}
	h.aead = a
	if err := h.checkLMK(); err != nil {
		return nil, err
	}
	h.log.Info("hsm key store open", zap.String("lmk_check", lmk.CheckValue()))
	return h, nil
}

const lmkCheckPlain = "cardswitch LMK check v1"

func (h *HSM) checkLMK() error {
	v, closer, err := h.db.Get(lmkCheckKey)
	if errors.Is(err, pebble.ErrNotFound) {
		nonce := make([]byte, h.aead.NonceSize())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return err
		}
		rec := append(nonce, h.aead.Seal(nil, nonce, []byte(lmkCheckPlain), lmkCheckKey)...)
		return h.db.Set(lmkCheckKey, rec, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("read LMK check record: %w", err)
	}
	defer closer.Close()
	ns := h.aead.NonceSize()
	if len(v) < ns {
		return fmt.Errorf("LMK check record: %w", ErrCorruptRecord)
	}
	pt, err := h.aead.Open(nil, v[:ns], v[ns:], lmkCheckKey)
	if err != nil || string(pt) != lmkCheckPlain {
		return ErrWrongLMK
	}
	return nil
}

// Close drops cached cipher objects. The caller owns and closes the DB.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = map[string]*loadedKey{}
	h.macs = map[string]*loadedKey{}
	h.piks = map[string]*loadedKey{}
	h.lmk.Zero()
	h.aead = nil
	return nil
}

// operation names an HSM operation for the metric hooks; operationNames
// are its label values (switch_hsm_operations_total{op}).
type operation uint8

const (
	opDataOpen operation = iota
	opDataSeal
	opHMACGenerate
	opHMACVerify
	opKeyExport
	opKeyGenerate
	opKeyImport
	opKeyLoad
	opMACGenerate
	opMACVerify
	opPINTranslate
	opPINTranslateDUKPT
	opPINVerify
	opPVVGenerate
	opSignOn
	opSignOnProofVerify
	opZoneKeyImport
	opZoneKeyIssue
	opZoneMACGenerate
	opZoneMACVerify
	opZonePINVerify
	numOperations
)

var operationNames = [numOperations]string{
	opDataOpen:          "data_open",
	opDataSeal:          "data_seal",
	opHMACGenerate:      "hmac_generate",
	opHMACVerify:        "hmac_verify",
	opKeyExport:         "key_export",
	opKeyGenerate:       "key_generate",
	opKeyImport:         "key_import",
	opKeyLoad:           "key_load",
	opMACGenerate:       "mac_generate",
	opMACVerify:         "mac_verify",
	opPINTranslate:      "pin_translate",
	opPINTranslateDUKPT: "pin_translate_dukpt",
	opPINVerify:         "pin_verify",
	opPVVGenerate:       "pvv_generate",
	opSignOn:            "sign_on",
	opSignOnProofVerify: "signon_proof_verify",
	opZoneKeyImport:     "zone_key_import",
	opZoneKeyIssue:      "zone_key_issue",
	opZoneMACGenerate:   "zone_mac_generate",
	opZoneMACVerify:     "zone_mac_verify",
	opZonePINVerify:     "zone_pin_verify",
}

// The results of an operation, the metric hooks' result label.
const (
	resultOK = iota
	resultFail
	resultError
	numResults
)

var resultNames = [numResults]string{resultOK: "ok", resultFail: "fail", resultError: "error"}

// observe reports an operation's result to the metric hooks: ok for a
// verification that passed (or an operation that needs none), err for one
// that could not decide.
func (h *HSM) observe(op operation, err error, ok bool) {
	r := resultFail
	switch {
	case err != nil:
		r = resultError
	case ok:
		r = resultOK
	}
	if h.opts.Counter != nil {
		// Resolved once per operation and result: a racing second
		// resolution asks for the same counter again, which Counter
		// allows.
		slot := &h.counters[op][r]
		inc := slot.Load()
		if inc == nil {
			f := h.opts.Counter(operationNames[op], resultNames[r])
			inc = &f
			slot.Store(inc)
		}
		(*inc)()
	}
}

// seal encrypts clear under the LMK into a record for label.
func (h *HSM) seal(label string, t KeyType, alg Algorithm, usage Usage, clear []byte) (record, error) {
	kcvBlock, err := blockcipher.CheckBlock(alg, clear)
	if err != nil {
		return record{}, err
	}
	r := record{Type: t, Alg: alg, KeyLen: len(clear), Usage: usage, KCV: kcvBlock[:checkLen(alg)]}
	r.Nonce = make([]byte, 12)
	if _, err := io.ReadFull(rand.Reader, r.Nonce); err != nil {
		return record{}, err
	}
	r.Wrapped = h.aead.Seal(nil, r.Nonce, clear, r.aad(label))
	return r, nil
}

// checkLen is how many check-block bytes are stored and shown: 4 for every
// algorithm, as in field 62, so sign-on check values compare directly (the
// classic 3-byte KCV is its prefix).
func checkLen(Algorithm) int { return 4 }

// open decrypts a record; the caller must clear the result.
func (h *HSM) open(label string, r *record) ([]byte, error) {
	if h.aead == nil {
		return nil, errors.New("hsm is closed")
	}
	clear, err := h.aead.Open(nil, r.Nonce, r.Wrapped, r.aad(label))
	if err != nil {
		return nil, fmt.Errorf("decrypt key %s under LMK: %w", label, ErrWrongLMK)
	}
	return clear, nil
}

func (h *HSM) readRecord(label string) (record, error) {
	v, closer, err := h.db.Get(keyKey(label))
	if errors.Is(err, pebble.ErrNotFound) {
		return record{}, fmt.Errorf("%s: %w", label, ErrKeyNotFound)
	}
	if err != nil {
		return record{}, fmt.Errorf("read key %s: %w", label, err)
	}
	defer closer.Close()
	r, err := decodeRecord(v)
	if err != nil {
		return record{}, fmt.Errorf("key %s: %w", label, err)
	}
	return r, nil
}

// withClear runs fn with the clear key of label after checking that its
// usage includes need, and wipes the clear key afterwards.
func (h *HSM) withClear(label string, need Usage, fn func(k *loadedKey, clear []byte) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, err := h.readRecord(label)
	if err != nil {
		return err
	}
	if r.Usage&need != need {
		return fmt.Errorf("%s key %s: %w", r.Type, label, ErrKeyUsage)
	}
	clear, err := h.open(label, &r)
	if err != nil {
		return err
	}
	defer wipe(clear)
	return fn(&loadedKey{label: label, typ: r.Type, alg: r.Alg, usage: r.Usage, kcv: r.KCV}, clear)
}

func wipe(b []byte) { clear(b) }

// key returns the cached cipher for label, loading it on a miss, after
// checking that its usage includes need.
func (h *HSM) key(label string, need Usage) (*loadedKey, error) {
	h.mu.RLock()
	k := h.keys[label]
	h.mu.RUnlock()
	if k == nil {
		var (
			err error
			gen uint64
		)
		if k, gen, err = h.loadKey(label); err != nil {
			return nil, err
		}
		h.mu.Lock()
		// Cache only if no key was written meanwhile: a concurrent sign-on
		// must not have its new key shadowed by this older one.
		if h.gen == gen {
			h.keys[label] = k
		}
		h.mu.Unlock()
	}
	if k.usage&need != need {
		return nil, fmt.Errorf("%s key %s: %w", k.typ, label, ErrKeyUsage)
	}
	return k, nil
}

func (h *HSM) loadKey(label string) (*loadedKey, uint64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	gen := h.gen
	r, err := h.readRecord(label)
	if err != nil {
		return nil, gen, err
	}
	clear, err := h.open(label, &r)
	if err != nil {
		return nil, gen, err
	}
	defer wipe(clear)
	b, err := blockcipher.New(r.Alg, clear)
	if err != nil {
		return nil, gen, fmt.Errorf("key %s: %w", label, err)
	}
	return &loadedKey{label: label, typ: r.Type, alg: r.Alg, usage: r.Usage, kcv: r.KCV, block: b}, gen, nil
}

// invalidateLocked drops cache entries for label; h.mu must be held.
func (h *HSM) invalidateLocked(label string) {
	h.gen++
	delete(h.keys, label)
	delete(h.retail, label)
	if tid, ok := strings.CutPrefix(label, terminalLabelPrefix); ok {
		if tid, ok := strings.CutSuffix(tid, "/"+TAK.String()); ok {
			delete(h.macs, tid)
		}
		if tid, ok := strings.CutSuffix(tid, "/"+TPK.String()); ok {
			delete(h.piks, tid)
		}
	}
}

// store writes records (one synced batch) and invalidates their caches.
func (h *HSM) store(labels []string, recs []record) error {
	b := h.db.NewBatch()
	defer b.Close()
	for i := range labels {
		if err := b.Set(keyKey(labels[i]), recs[i].encode(), nil); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store keys: %w", err)
	}
	for _, l := range labels {
		h.invalidateLocked(l)
	}
	return nil
}

// KeyInfo describes a stored key without its value.
type KeyInfo struct {
	Label string
	Type  KeyType
	Alg   Algorithm
	Len   int
	Usage Usage
	KCV   []byte // first 4 bytes of the key encrypting a zero block
}

// HasKey reports whether label holds a key.
func (h *HSM) HasKey(label string) bool {
	_, err := h.readRecord(label)
	return err == nil
}

// Info returns the metadata of a stored key.
func (h *HSM) Info(label string) (KeyInfo, error) {
	r, err := h.readRecord(label)
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{Label: label, Type: r.Type, Alg: r.Alg, Len: r.KeyLen, Usage: r.Usage, KCV: r.KCV}, nil
}

// Keys lists stored keys in label order, at most limit (≤ 100000).
func (h *HSM) Keys(limit int) ([]KeyInfo, error) {
	if limit <= 0 || limit > 100000 {
		return nil, fmt.Errorf("list limit %d outside 1..100000", limit)
	}
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, kindKey}, UpperBound: []byte{prefix, kindKey + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []KeyInfo
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		label := string(it.Key()[2:])
		r, err := decodeRecord(it.Value())
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", label, err)
		}
		out = append(out, KeyInfo{Label: label, Type: r.Type, Alg: r.Alg, Len: r.KeyLen, Usage: r.Usage, KCV: r.KCV})
	}
	return out, it.Error()
}

// LoadClearKey stores a clear key under label (demo seeding and tests):
// the algorithm follows from the length (8 DES, 16/24 TDES, 32 AES-256);
// use LoadClearKeyAlg for AES-128 or SM4. It returns the 4-byte KCV. The
// caller should wipe clear afterwards.
func (h *HSM) LoadClearKey(label string, t KeyType, clear []byte) ([]byte, error) {
	alg, err := defaultAlgorithm(len(clear))
	if err != nil {
		return nil, err
	}
	return h.LoadClearKeyAlg(label, t, alg, clear)
}

// LoadClearKeyAlg is LoadClearKey with an explicit algorithm.
func (h *HSM) LoadClearKeyAlg(label string, t KeyType, alg Algorithm, clear []byte) ([]byte, error) {
	kcv, err := h.put(label, t, alg, clear)
	h.observe(opKeyLoad, err, true)
	return kcv, err
}

func (h *HSM) put(label string, t KeyType, alg Algorithm, clear []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if !t.valid() {
		return nil, fmt.Errorf("key type %d: %w", t, ErrUnsupported)
	}
	if !alg.ValidKeyLength(len(clear)) {
		return nil, fmt.Errorf("%s %s key of %d bytes: %w", alg, t, len(clear), blockcipher.ErrKeyLength)
	}
	h.write.Lock()
	defer h.write.Unlock()
	h.mu.RLock()
	r, err := h.seal(label, t, alg, DefaultUsage(t), clear)
	h.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("seal key %s: %w", label, err)
	}
	if err := h.store([]string{label}, []record{r}); err != nil {
		return nil, err
	}
	h.log.Debug("key stored", zap.String("label", label), zap.Stringer("type", t),
		zap.Stringer("alg", alg), zap.String("kcv", hexUpper(r.KCV)))
	return append([]byte(nil), r.KCV...), nil
}

// GenerateKey creates a random key of type t and algorithm alg (keyLen
// bytes) under label; it refuses to overwrite (ErrKeyExists).
func (h *HSM) GenerateKey(label string, t KeyType, alg Algorithm, keyLen int) ([]byte, error) {
	if h.HasKey(label) {
		return nil, fmt.Errorf("%s: %w", label, ErrKeyExists)
	}
	clear, err := h.randomKey(alg, keyLen)
	if err != nil {
		return nil, err
	}
	defer wipe(clear)
	kcv, err := h.put(label, t, alg, clear)
	h.observe(opKeyGenerate, err, true)
	return kcv, err
}

// EnsureKey returns the KCV of the key at label, generating it first when
// absent. The switch uses it at start for the campus PVK.
func (h *HSM) EnsureKey(label string, t KeyType, alg Algorithm, keyLen int) (kcv []byte, created bool, err error) {
	if info, err := h.Info(label); err == nil {
		if info.Type != t || info.Alg != alg {
			return nil, false, fmt.Errorf("key %s is %s/%s, want %s/%s: %w", label, info.Type, info.Alg, t, alg, ErrKeyUsage)
		}
		return info.KCV, false, nil
	}
	kcv, err = h.GenerateKey(label, t, alg, keyLen)
	return kcv, err == nil, err
}

// randomKey draws a key; DES-family keys get odd parity and distinct
// halves (a double-length key with K1 = K2 is single DES).
func (h *HSM) randomKey(alg Algorithm, n int) ([]byte, error) {
	if !alg.ValidKeyLength(n) {
		return nil, fmt.Errorf("%s key of %d bytes: %w", alg, n, blockcipher.ErrKeyLength)
	}
	k := make([]byte, n)
	for tries := 0; tries < 8; tries++ {
		if _, err := io.ReadFull(h.rand, k); err != nil {
			return nil, fmt.Errorf("random key: %w", err)
		}
		if alg != DES && alg != TDES {
			return k, nil
		}
		blockcipher.FixParity(k)
		if n >= 16 && string(k[:8]) == string(k[8:16]) {
			continue
		}
		return k, nil
	}
	return nil, errors.New("random source keeps producing degenerate keys")
}

// Component is one clear key component entered by a key custodian, with
// the check value printed on its form (empty to skip the check).
type Component struct {
	Clear []byte
	KCV   []byte
}

// LoadComponents forms a key as the XOR of 2 or 3 clear components,
// checking each component's KCV (leading bytes of its check block) when
// given, and stores it under label. It returns the combined key's KCV for
// the custodians to compare with their key form.
func (h *HSM) LoadComponents(label string, t KeyType, alg Algorithm, comps ...Component) ([]byte, error) {
	kcv, err := h.loadComponents(label, t, alg, 2, comps)
	h.observe(opKeyLoad, err, true)
	return kcv, err
}

func (h *HSM) loadComponents(label string, t KeyType, alg Algorithm, minComps int, comps []Component) ([]byte, error) {
	if len(comps) < minComps || len(comps) > 3 {
		return nil, fmt.Errorf("key %s from %d components: need %d to 3", label, len(comps), minComps)
	}
	n := len(comps[0].Clear)
	if !alg.ValidKeyLength(n) {
		return nil, fmt.Errorf("%s component of %d bytes: %w", alg, n, blockcipher.ErrKeyLength)
	}
	key := make([]byte, n)
	defer wipe(key)
	for i, c := range comps {
		if len(c.Clear) != n {
			return nil, fmt.Errorf("component %d is %d bytes, want %d: %w", i+1, len(c.Clear), n, blockcipher.ErrKeyLength)
		}
		if len(c.KCV) > 0 {
			cb, err := blockcipher.CheckBlock(alg, c.Clear)
			if err != nil {
				return nil, err
			}
			if len(c.KCV) > len(cb) || string(cb[:len(c.KCV)]) != string(c.KCV) {
				return nil, fmt.Errorf("component %d: %w", i+1, ErrKCVMismatch)
			}
		}
		for j := range key {
			key[j] ^= c.Clear[j]
		}
	}
	if alg == DES || alg == TDES {
		blockcipher.FixParity(key)
	}
	return h.put(label, t, alg, key)
}

// ImportTMK loads a terminal's TDES master key as the XOR of its clear
// components (2–3 from key custodians; a single component means a clear
// key and is logged as such) under TerminalKeyLabel(terminalID, TMK), and
// returns its KCV. Use ImportTMKAlg for an SM4 TMK (sign-on mode 006).
func (h *HSM) ImportTMK(terminalID string, components ...[]byte) ([]byte, error) {
	return h.ImportTMKAlg(terminalID, TDES, components...)
}

// ImportTMKAlg is ImportTMK with an explicit algorithm (TDES or SM4).
func (h *HSM) ImportTMKAlg(terminalID string, alg Algorithm, components ...[]byte) ([]byte, error) {
	if err := checkTerminalID(terminalID); err != nil {
		return nil, err
	}
	if alg != TDES && alg != SM4 {
		return nil, fmt.Errorf("TMK algorithm %s: %w", alg, ErrUnsupported)
	}
	comps := make([]Component, len(components))
	for i, c := range components {
		comps[i] = Component{Clear: c}
	}
	if len(comps) == 1 {
		h.log.Warn("TMK loaded from a single clear component", zap.String("terminal", terminalID))
	}
	kcv, err := h.loadComponents(TerminalKeyLabel(terminalID, TMK), TMK, alg, 1, comps)
	h.observe(opKeyLoad, err, true)
	return kcv, err
}

// DeleteKey removes a key.
func (h *HSM) DeleteKey(label string) error {
	h.write.Lock()
	defer h.write.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.db.Delete(keyKey(label), pebble.Sync); err != nil {
		return fmt.Errorf("delete key %s: %w", label, err)
	}
	h.invalidateLocked(label)
	return nil
}

// ExportKey returns the key at label encrypted under the wrapping key at
// wrapLabel (ECB per block, the classic key-exchange form), with the key's
// KCV. The wrapping key's type must permit wrapping the key's type: a KEK
// wraps anything, a ZMK only zone keys, a TMK only terminal working keys.
func (h *HSM) ExportKey(label, wrapLabel string) (wrapped, kcv []byte, err error) {
	defer func() { h.observe(opKeyExport, err, true) }()
	w, err := h.key(wrapLabel, 0)
	if err != nil {
		return nil, nil, err
	}
	err = h.withClear(label, 0, func(k *loadedKey, clear []byte) error {
		if !mayWrap(w.usage, k.typ) {
			return fmt.Errorf("%s %s cannot wrap %s %s: %w", w.typ, wrapLabel, k.typ, label, ErrKeyUsage)
		}
		var werr error
		wrapped, werr = wrapUnder(w, clear)
		kcv = append([]byte(nil), k.kcv...)
		return werr
	})
	return wrapped, kcv, err
}

// ImportKey unwraps a key encrypted under the key at wrapLabel, checks it
// against kcv (leading bytes of its check block; required) and stores it.
func (h *HSM) ImportKey(label string, t KeyType, alg Algorithm, wrapLabel string, wrapped, kcv []byte) (out []byte, err error) {
	defer func() { h.observe(opKeyImport, err, true) }()
	if len(kcv) < 2 {
		return nil, fmt.Errorf("import %s: a KCV of at least 2 bytes is required: %w", label, ErrKCVMismatch)
	}
	w, err := h.key(wrapLabel, 0)
	if err != nil {
		return nil, err
	}
	if !mayWrap(w.usage, t) {
		return nil, fmt.Errorf("%s %s cannot unwrap %s: %w", w.typ, wrapLabel, t, ErrKeyUsage)
	}
	clear, err := unwrapUnder(w, wrapped)
	if err != nil {
		return nil, err
	}
	defer wipe(clear)
	cb, err := blockcipher.CheckBlock(alg, clear)
	if err != nil {
		return nil, err
	}
	if len(kcv) > len(cb) || string(cb[:len(kcv)]) != string(kcv) {
		return nil, fmt.Errorf("import %s: %w", label, ErrKCVMismatch)
	}
	return h.put(label, t, alg, clear)
}

func wrapUnder(w *loadedKey, clear []byte) ([]byte, error) {
	bs := w.block.BlockSize()
	if len(clear)%bs != 0 {
		return nil, fmt.Errorf("a %d-byte key is not whole %s blocks: %w", len(clear), w.alg, ErrUnsupported)
	}
	return blockcipher.EncryptECB(w.block, clear)
}

func unwrapUnder(w *loadedKey, wrapped []byte) ([]byte, error) {
	if len(wrapped) == 0 || len(wrapped) > 32 {
		return nil, fmt.Errorf("wrapped key of %d bytes: %w", len(wrapped), blockcipher.ErrKeyLength)
	}
	return blockcipher.DecryptECB(w.block, wrapped)
}

// RotateLMK re-encrypts every stored key under newLMK in one synced batch
// (with a new LMK check record), then switches the HSM to it. Cached
// cipher objects stay valid: the keys themselves do not change. On error
// nothing is written and the old LMK stays in force. It returns the number
// of keys re-encrypted.
func (h *HSM) RotateLMK(newLMK LMK) (int, error) {
	if !newLMK.IsSet() {
		return 0, errors.New("new LMK not loaded")
	}
	newAEAD, err := newLMK.aead()
	if err != nil {
		return 0, err
	}
	h.write.Lock()
	defer h.write.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, kindKey}, UpperBound: []byte{prefix, kindKey + 1}})
	if err != nil {
		return 0, err
	}
	b := h.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		label := string(it.Key()[2:])
		r, err := decodeRecord(it.Value())
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("rotate LMK: key %s: %w", label, err)
		}
		clear, err := h.open(label, &r)
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("rotate LMK: %w", err)
		}
		if _, err := io.ReadFull(rand.Reader, r.Nonce); err != nil {
			wipe(clear)
			it.Close()
			return 0, err
		}
		r.Wrapped = newAEAD.Seal(nil, r.Nonce, clear, r.aad(label))
		wipe(clear)
		if err := b.Set(it.Key(), r.encode(), nil); err != nil {
			it.Close()
			return 0, err
		}
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("rotate LMK: iterate keys: %w", err)
	}
	nonce := make([]byte, newAEAD.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return 0, err
	}
	if err := b.Set(lmkCheckKey, append(nonce, newAEAD.Seal(nil, nonce, []byte(lmkCheckPlain), lmkCheckKey)...), nil); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("rotate LMK: commit: %w", err)
	}
	h.lmk.Zero()
	h.lmk = newLMK
	h.aead = newAEAD
	h.log.Info("LMK rotated", zap.Int("keys", n), zap.String("lmk_check", newLMK.CheckValue()))
	return n, nil
}

const hexDigits = "0123456789ABCDEF"

func hexUpper(b []byte) string {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = hexDigits[c>>4], hexDigits[c&0x0F]
	}
	return string(out)
}
