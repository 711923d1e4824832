package hsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/hsm/terminal"
)

// demoTMK is the demo terminals' TMK (README.md#demo-data).
var demoTMK = mustHex("0123456789ABCDEFFEDCBA9876543210")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func memDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// quietLogger keeps Pebble's informational lines out of test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})           {}
func (quietLogger) Errorf(string, ...interface{})          {}
func (quietLogger) Fatalf(format string, a ...interface{}) { panic(fmt.Sprintf(format, a...)) }

func testLMK(t testing.TB) LMK {
	l, err := NewRandomLMK()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openHSM(t testing.TB, opts Options) (*HSM, *pebble.DB) {
	t.Helper()
	db := memDB(t)
	h, err := Open(db, testLMK(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.EnsureCampusPVK(); err != nil {
		t.Fatal(err)
	}
	return h, db
}

func seedTerminal(t testing.TB, h *HSM, tid string) {
	t.Helper()
	if _, err := h.LoadClearKey(TerminalKeyLabel(tid, TMK), TMK, demoTMK); err != nil {
		t.Fatal(err)
	}
}

func TestSignOnMACAndPIN(t *testing.T) {
	h, _ := openHSM(t, Options{})
	seedTerminal(t, h, "10000001")
	sm4TMK := mustHex("00112233445566778899AABBCCDDEEFF")
	if _, err := h.LoadClearKeyAlg(TerminalKeyLabel("10000002", TMK), TMK, SM4, sm4TMK); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tid, mode string
		tmk       []byte
		n         int
		pinOK     bool
	}{
		{"10000001", ModeSingleDES, demoTMK, 24, true},
		{"10000001", ModeDoubleDES, demoTMK, 40, true},
		{"10000001", ModeWithTDK, demoTMK, 60, true},
		{"10000002", ModeSM4, sm4TMK, 60, false},
	}
	msg := []byte("\x02\x00\x30\x20\x05\x80\x20\xc0\x98\x11some packed message bytes")
	pan, pin := "6230151000000000012", "123456"
	pvv, err := h.PINVerificationValue(pan, pin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			f62, err := h.SignOn(tc.tid, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if len(f62) != tc.n {
				t.Fatalf("field 62 is %d bytes, want %d", len(f62), tc.n)
			}
			if tc.mode == ModeDoubleDES || tc.mode == ModeWithTDK {
				if !bytes.Equal(f62[28:36], make([]byte, 8)) {
					t.Fatalf("MAK slot padding %X", f62[28:36])
				}
			}
			wk, err := terminal.ParseField62(tc.tmk, tc.mode, f62)
			if err != nil {
				t.Fatal(err)
			}
			want, err := wk.MAC(msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.GenerateTerminalMAC(tc.tid, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[:]) {
				t.Fatalf("switch MAC %s, terminal MAC %s", got, want)
			}
			ok, err := h.VerifyTerminalMAC(tc.tid, msg, want[:])
			if err != nil || !ok {
				t.Fatalf("verify: %v %v", ok, err)
			}
			bad := append([]byte(nil), want[:]...)
			bad[0] ^= 1
			if ok, err := h.VerifyTerminalMAC(tc.tid, msg, bad); err != nil || ok {
				t.Fatalf("bad MAC verified: %v %v", ok, err)
			}
			if !tc.pinOK {
				return
			}
			for _, f := range []pinblock.Format{pinblock.Format0, pinblock.Format1} {
				blk, err := wk.EncryptPIN(f, pin, pan)
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := h.VerifyTerminalPIN(tc.tid, blk, f, pan, pvv); err != nil || !ok {
					t.Fatalf("format %d: right PIN refused: %v %v", f, ok, err)
				}
				wrong, _ := wk.EncryptPIN(f, "654321", pan)
				if ok, err := h.VerifyTerminalPIN(tc.tid, wrong, f, pan, pvv); err != nil || ok {
					t.Fatalf("format %d: wrong PIN accepted: %v %v", f, ok, err)
				}
			}
		})
	}
}

func TestSignOnInvalidatesMACCache(t *testing.T) {
	h, _ := openHSM(t, Options{})
	seedTerminal(t, h, "10000001")
	f62, err := h.SignOn("10000001", ModeDoubleDES)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	msg := []byte("message")
	m, _ := old.MAC(msg)
	if ok, _ := h.VerifyTerminalMAC("10000001", msg, m[:]); !ok {
		t.Fatal("first MAC refused")
	}
	if _, err := h.SignOn("10000001", ModeDoubleDES); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.VerifyTerminalMAC("10000001", msg, m[:]); ok {
		t.Fatal("MAC under the previous MAK still verifies after sign-on")
	}
}

func TestSignOnErrors(t *testing.T) {
	h, _ := openHSM(t, Options{})
	seedTerminal(t, h, "10000001")
	if _, err := h.SignOn("10000009", ModeDoubleDES); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown terminal: %v", err)
	}
	if _, err := h.SignOn("10000001", "005"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("mode 005: %v", err)
	}
	if _, err := h.SignOn("10000001", ModeSM4); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("SM4 mode with a TDES TMK: %v", err)
	}
	if _, err := h.GenerateTerminalMAC("10000001", []byte("x")); !errors.Is(err, ErrNotSignedOn) {
		t.Fatalf("MAC before sign-on: %v", err)
	}
	if _, err := h.SignOn("bad/id", ModeDoubleDES); !errors.Is(err, ErrBadTerminalID) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestKeySeparation(t *testing.T) {
	h, _ := openHSM(t, Options{})
	seedTerminal(t, h, "10000001")
	f62, err := h.SignOn("10000001", ModeDoubleDES)
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	blk, _ := wk.EncryptPIN(pinblock.Format0, "123456", "6230151000000000012")
	if _, err := h.LoadClearKey("zone/bank1/ZPK", ZPK, mustHex("11111111111111112222222222222222")); err != nil {
		t.Fatal(err)
	}
	// A MAK may not decrypt a PIN block.
	_, err = h.TranslatePIN(TerminalKeyLabel("10000001", TAK), PINFormat0, "zone/bank1/ZPK", PINFormat0, blk, "6230151000000000012")
	if !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("MAK used as PIN key: %v", err)
	}
	// A TMK may not be a PIN translation destination, nor a PIN source.
	_, err = h.TranslatePIN(TerminalKeyLabel("10000001", TPK), PINFormat0, TerminalKeyLabel("10000001", TMK), PINFormat0, blk, "6230151000000000012")
	if !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("TMK as destination: %v", err)
	}
	// A TPK may encrypt PINs, but only a ZPK is a translation destination.
	_, err = h.TranslatePIN(TerminalKeyLabel("10000001", TPK), PINFormat0, TerminalKeyLabel("10000001", TPK), PINFormat0, blk, "6230151000000000012")
	if !errors.Is(err, ErrKeyUsage) || !strings.Contains(err.Error(), "must be a ZPK") {
		t.Fatalf("TPK as destination: %v", err)
	}
	// A MAK may not wrap keys for export.
	if _, _, err := h.ExportKey(TerminalKeyLabel("10000001", TPK), TerminalKeyLabel("10000001", TAK)); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("export under a MAK: %v", err)
	}
	// The campus PVK cannot decrypt PIN blocks either.
	_, err = h.TranslatePIN(DefaultCampusPVKLabel, PINFormat0, "zone/bank1/ZPK", PINFormat0, blk, "6230151000000000012")
	if !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("PVK used as PIN key: %v", err)
	}
	// The allowed path works and keeps the PIN: TPK → ZPK, format 0 → 3.
	out, err := h.TranslatePIN(TerminalKeyLabel("10000001", TPK), PINFormat0, "zone/bank1/ZPK", PINFormat3, blk, "6230151000000000012")
	if err != nil {
		t.Fatal(err)
	}
	zpk, _ := blockcipher.New(TDES, mustHex("11111111111111112222222222222222"))
	if pin, err := pinblock.Decrypt(zpk, pinblock.Format3, out, "6230151000000000012"); err != nil || pin != "123456" {
		t.Fatalf("translated PIN %q %v", pin, err)
	}
	// Format 0 → 1 would unbind the PIN from the PAN: refused.
	if _, err := h.TranslatePIN(TerminalKeyLabel("10000001", TPK), PINFormat0, "zone/bank1/ZPK", PINFormat1, blk, "6230151000000000012"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("0 → 1 translation: %v", err)
	}
}

// TestStoredRecordBindsType proves that editing a stored record's type (a
// MAK relabelled as a PIN key in the database) makes it unusable.
func TestStoredRecordBindsType(t *testing.T) {
	h, db := openHSM(t, Options{})
	if _, err := h.LoadClearKey("x/TAK", TAK, mustHex("0123456789ABCDEF")); err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(keyKey("x/TAK"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(v)
	closer.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.Type, r.Usage = TPK, DefaultUsage(TPK)
	if err := db.Set(keyKey("x/TAK"), r.encode(), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.invalidateLocked("x/TAK")
	h.mu.Unlock()
	if _, err := h.key("x/TAK", UsagePINDecrypt); !errors.Is(err, ErrWrongLMK) {
		t.Fatalf("retyped record opened: %v", err)
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var ops []string
	var opsMu sync.Mutex
	h, _ := openHSM(t, Options{Logger: zap.New(core), Counter: func(op, res string) func() {
		return func() {
			opsMu.Lock()
			ops = append(ops, op+"/"+res)
			opsMu.Unlock()
		}
	}})
	comp1 := mustHex("0123456789ABCDEF0123456789ABCDEF")
	comp2 := mustHex("FEDCBA9876543210FEDCBA9876543210")
	if _, err := h.ImportTMK("10000001", comp1, comp2); err != nil {
		t.Fatal(err)
	}
	f62, err := h.SignOn("10000001", ModeWithTDK)
	if err != nil {
		t.Fatal(err)
	}
	tmk := make([]byte, 16)
	for i := range tmk {
		tmk[i] = comp1[i] ^ comp2[i]
	}
	blockcipher.FixParity(tmk)
	tmkB, _ := blockcipher.New(TDES, tmk)
	pik, _ := blockcipher.DecryptECB(tmkB, f62[:16])
	mak, _ := blockcipher.DecryptECB(tmkB, f62[20:28])
	tdk, _ := blockcipher.DecryptECB(tmkB, f62[40:56])
	wk, err := terminal.ParseField62(tmk, ModeWithTDK, f62)
	if err != nil {
		t.Fatal(err)
	}
	pan, pin := "6230151000000000020", "654321"
	pvv, _ := h.PINVerificationValue(pan, pin)
	blk, _ := wk.EncryptPIN(pinblock.Format0, pin, pan)
	if ok, err := h.VerifyTerminalPIN("10000001", blk, PINFormat0, pan, pvv); err != nil || !ok {
		t.Fatalf("verify PIN %v %v", ok, err)
	}
	garbage := bytes.Repeat([]byte{0x5A}, 8)
	_, _ = h.VerifyTerminalPIN("10000001", garbage, PINFormat0, pan, pvv)
	// A format 1 block read as format 0 has the wrong control nibble: the
	// cardholder's problem (ErrPINBlock). A format the terminal path does
	// not take is the set-up's (ErrUnsupported).
	f1, _ := wk.EncryptPIN(pinblock.Format1, pin, pan)
	if _, err := h.VerifyTerminalPIN("10000001", f1, PINFormat0, pan, pvv); !errors.Is(err, ErrPINBlock) {
		t.Fatalf("format 1 block read as format 0: %v, want ErrPINBlock", err)
	}
	if _, err := h.VerifyTerminalPIN("10000001", blk, PINFormat4, pan, pvv); !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrPINBlock) {
		t.Fatalf("format 4 on the terminal path: %v, want ErrUnsupported", err)
	}
	m, _ := h.GenerateTerminalMAC("10000001", []byte("data"))
	_, _ = h.VerifyTerminalMAC("10000001", []byte("data"), m)
	newLMK := testLMK(t)
	if _, err := h.RotateLMK(newLMK); err != nil {
		t.Fatal(err)
	}

	var all strings.Builder
	for _, e := range logs.AllUntimed() {
		fmt.Fprintf(&all, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	text := strings.ToUpper(all.String())
	if logs.Len() == 0 {
		t.Fatal("no log entries: the test would prove nothing")
	}
	secrets := map[string][]byte{"comp1": comp1, "comp2": comp2, "tmk": tmk, "pik": pik, "mak": mak, "tdk": tdk,
		"pinblock": blk, "lmk": newLMK.key[:]}
	for name, s := range secrets {
		hx := strings.ToUpper(hex.EncodeToString(s))
		if strings.Contains(text, hx) || strings.Contains(text, hx[:12]) || strings.Contains(all.String(), string(s)) {
			t.Errorf("%s appears in the logs", name)
		}
	}
	for _, s := range []string{pin, pan, pvv} {
		if strings.Contains(text, s) {
			t.Errorf("%q appears in the logs", s)
		}
	}
	if !strings.Contains(text, cardno.Mask(pan)) {
		t.Error("expected the masked PAN in the PIN-failure debug log")
	}
	opsMu.Lock()
	defer opsMu.Unlock()
	joined := strings.Join(ops, " ")
	for _, want := range []string{"sign_on/ok", "pin_verify/ok", "pin_verify/error", "mac_generate/ok", "mac_verify/ok", "key_load/ok"} {
		if !strings.Contains(joined, want) {
			t.Errorf("operation %s not reported (got %s)", want, joined)
		}
	}
}

func TestComponentsAndKCV(t *testing.T) {
	h, _ := openHSM(t, Options{})
	c1 := mustHex("0123456789ABCDEF0123456789ABCDEF")
	c2 := mustHex("1111111111111111FEDCBA9876543210")
	kcv1, _ := blockcipher.CheckBlock(TDES, c1)
	kcv2, _ := blockcipher.CheckBlock(TDES, c2)
	if _, err := h.LoadComponents("zone/z/ZMK", ZMK, TDES, Component{c1, kcv1[:3]}, Component{c2, kcv2[:3]}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LoadComponents("zone/y/ZMK", ZMK, TDES, Component{c1, kcv2[:3]}, Component{c2, kcv2[:3]}); !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("wrong component KCV: %v", err)
	}
	if _, err := h.LoadComponents("zone/y/ZMK", ZMK, TDES, Component{Clear: c1}); err == nil {
		t.Fatal("a single component accepted by LoadComponents")
	}
	// ImportTMK: the KCV of the XOR of the components (with odd parity).
	kcv, err := h.ImportTMK("20000001", c1, c2)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]byte, 16)
	for i := range x {
		x[i] = c1[i] ^ c2[i]
	}
	blockcipher.FixParity(x)
	want, _ := blockcipher.CheckBlock(TDES, x)
	if !bytes.Equal(kcv, want[:4]) {
		t.Fatalf("KCV %X want %X", kcv, want[:4])
	}
	info, err := h.Info(TerminalKeyLabel("20000001", TMK))
	if err != nil || info.Type != TMK || info.Alg != TDES || !bytes.Equal(info.KCV, kcv) {
		t.Fatalf("info %+v %v", info, err)
	}
}

func TestExportImport(t *testing.T) {
	h, _ := openHSM(t, Options{})
	kek := mustHex("0123456789ABCDEFFEDCBA9876543210")
	zpk := mustHex("1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A")
	if _, err := h.LoadClearKey("kek/1", KEK, kek); err != nil {
		t.Fatal(err)
	}
	kcv, err := h.LoadClearKey("zone/a/ZPK", ZPK, zpk)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, kcv2, err := h.ExportKey("zone/a/ZPK", "kek/1")
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := blockcipher.New(TDES, kek)
	want, _ := blockcipher.EncryptECB(kb, zpk)
	if !bytes.Equal(wrapped, want) || !bytes.Equal(kcv, kcv2) {
		t.Fatalf("export %X want %X", wrapped, want)
	}
	if _, err := h.ImportKey("zone/b/ZPK", ZPK, TDES, "kek/1", wrapped, kcv[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ImportKey("zone/c/ZPK", ZPK, TDES, "kek/1", wrapped, []byte{0, 0, 0}); !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("bad KCV: %v", err)
	}
	if _, err := h.ImportKey("zone/c/ZPK", ZPK, TDES, "zone/a/ZPK", wrapped, kcv[:3]); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("ZPK as KEK: %v", err)
	}
}

func TestRotateLMK(t *testing.T) {
	db := memDB(t)
	old := testLMK(t)
	h, err := Open(db, old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.EnsureCampusPVK()
	seedTerminal(t, h, "10000001")
	f62, _ := h.SignOn("10000001", ModeDoubleDES)
	pvv, _ := h.PINVerificationValue("6230151000000000012", "123456")
	oldCopy := old
	newLMK := testLMK(t)
	newCopy := newLMK
	n, err := h.RotateLMK(newLMK)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // PVK, TMK, TPK, TAK
		t.Fatalf("rotated %d keys, want 4", n)
	}
	if _, err := Open(db, oldCopy, Options{}); !errors.Is(err, ErrWrongLMK) {
		t.Fatalf("old LMK still opens the store: %v", err)
	}
	h2, err := Open(db, newCopy, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	m, _ := wk.MAC([]byte("abc"))
	if ok, err := h2.VerifyTerminalMAC("10000001", []byte("abc"), m[:]); err != nil || !ok {
		t.Fatalf("MAK after rotation: %v %v", ok, err)
	}
	if pvv2, err := h2.PINVerificationValue("6230151000000000012", "123456"); err != nil || pvv2 != pvv {
		t.Fatalf("PVK after rotation: %s %v", pvv2, err)
	}
}

func TestLMKSources(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lmk.hex")
	l, err := CreateDemoLMK(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("demo LMK mode %o", st.Mode().Perm())
	}
	got, err := LoadLMKFile(p)
	if err != nil || got.key != l.key {
		t.Fatalf("load: %v", err)
	}
	if _, err := CreateDemoLMK(p); err == nil {
		t.Fatal("CreateDemoLMK overwrote an existing file")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLMKFile(p); !errors.Is(err, ErrLMKPermissions) {
		t.Fatalf("world-readable LMK accepted: %v", err)
	}
	os.Chmod(p, 0o640)
	if _, err := LoadLMKFile(p); !errors.Is(err, ErrLMKPermissions) {
		t.Fatalf("group-readable LMK accepted: %v", err)
	}
	t.Setenv("TEST_LMK", strings.Repeat("AB", 32))
	if _, err := LoadLMKEnv("TEST_LMK"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LMK", "ABCD")
	if _, err := LoadLMKEnv("TEST_LMK"); !errors.Is(err, ErrLMKFormat) {
		t.Fatalf("short LMK: %v", err)
	}
	if err := CheckLMKPath(filepath.Join(dir, "data", "lmk"), filepath.Join(dir, "data")); !errors.Is(err, ErrLMKInDataDir) {
		t.Fatalf("LMK in data dir: %v", err)
	}
	if err := CheckLMKPath(filepath.Join(dir, "lmk"), filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	if err := CheckLMKPath(filepath.Join(dir, "data-lmk"), filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
}

func TestPINVerificationValue(t *testing.T) {
	h, _ := openHSM(t, Options{})
	a, err := h.PINVerificationValue("6230151000000000012", "123456")
	if err != nil || len(a) != 32 {
		t.Fatalf("%q %v", a, err)
	}
	b, _ := h.PINVerificationValue("6230151000000000046", "123456")
	c, _ := h.PINVerificationValue("6230151000000000012", "123457")
	again, _ := h.PINVerificationValue("6230151000000000012", "123456")
	if a == b || a == c || a != again {
		t.Fatal("PVV not deterministic, or not bound to PAN and PIN")
	}
	// A different PVK gives a different value for the same card and PIN.
	h2, _ := openHSM(t, Options{})
	if d, _ := h2.PINVerificationValue("6230151000000000012", "123456"); d == a {
		t.Fatal("PVV independent of the PVK")
	}
	if _, err := h.PINVerificationValue("6230151000000000012", "12"); !errors.Is(err, pinblock.ErrPINLength) {
		t.Fatalf("short PIN: %v", err)
	}
}

func TestConcurrentMACAndSignOn(t *testing.T) {
	h, _ := openHSM(t, Options{})
	for _, tid := range []string{"10000001", "10000002"} {
		seedTerminal(t, h, tid)
		if _, err := h.SignOn(tid, ModeDoubleDES); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tid := []string{"10000001", "10000002"}[g%2]
			for i := 0; i < 200; i++ {
				if g == 0 && i%50 == 0 {
					if _, err := h.SignOn(tid, ModeDoubleDES); err != nil {
						t.Error(err)
					}
				}
				m, err := h.GenerateTerminalMAC(tid, []byte("payload"))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = h.VerifyTerminalMAC(tid, []byte("payload"), m)
			}
		}(g)
	}
	wg.Wait()
	// After the dust settles the cache must hold the stored MAK.
	f62, _ := h.SignOn("10000001", ModeDoubleDES)
	wk, _ := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	m, _ := wk.MAC([]byte("z"))
	if ok, _ := h.VerifyTerminalMAC("10000001", []byte("z"), m[:]); !ok {
		t.Fatal("cache holds a stale MAK")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	r := record{Type: TAK, Alg: DES, KeyLen: 8, Usage: DefaultUsage(TAK), KCV: []byte{1, 2, 3, 4},
		Nonce: make([]byte, 12), Wrapped: make([]byte, 24)}
	f.Add(r.encode())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), b) {
			t.Fatalf("decode/encode not inverse for %X", b)
		}
	})
}

func benchHSM(b *testing.B) (*HSM, *terminal.WorkingKeys) {
	h, _ := openHSM(b, Options{})
	seedTerminal(b, h, "10000001")
	f62, err := h.SignOn("10000001", ModeDoubleDES)
	if err != nil {
		b.Fatal(err)
	}
	wk, err := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	if err != nil {
		b.Fatal(err)
	}
	return h, wk
}

func BenchmarkGenerateTerminalMAC200(b *testing.B) {
	h, _ := benchHSM(b)
	data := bytes.Repeat([]byte{0x5A}, 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.GenerateTerminalMAC("10000001", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTerminalMAC200(b *testing.B) {
	h, wk := benchHSM(b)
	data := bytes.Repeat([]byte{0x5A}, 200)
	m, _ := wk.MAC(data)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := h.VerifyTerminalMAC("10000001", data, m[:]); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkTranslatePIN(b *testing.B) {
	h, wk := benchHSM(b)
	if _, err := h.LoadClearKey("zone/bank1/ZPK", ZPK, mustHex("11111111111111112222222222222222")); err != nil {
		b.Fatal(err)
	}
	pan := "6230151000000000012"
	blk, _ := wk.EncryptPIN(pinblock.Format0, "123456", pan)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.TranslateTerminalPIN("10000001", PINFormat0, "zone/bank1/ZPK", PINFormat0, blk, pan); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTerminalPIN(b *testing.B) {
	h, wk := benchHSM(b)
	pan := "6230151000000000012"
	pvv, _ := h.PINVerificationValue(pan, "123456")
	blk, _ := wk.EncryptPIN(pinblock.Format0, "123456", pan)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := h.VerifyTerminalPIN("10000001", blk, PINFormat0, pan, pvv); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestTranslatePINFromDUKPT(t *testing.T) {
	h, _ := openHSM(t, Options{})
	if _, err := h.LoadClearKey("bdk/1", BDK, mustHex("0123456789ABCDEFFEDCBA9876543210")); err != nil {
		t.Fatal(err)
	}
	zpk := mustHex("11111111111111112222222222222222")
	if _, err := h.LoadClearKey("zone/bank1/ZPK", ZPK, zpk); err != nil {
		t.Fatal(err)
	}
	// ANSI X9.24-1:2009 A.4: PIN 1234, PAN 4012345678909, KSN
	// FFFF9876543210E00001 encrypts to 1B9C1845EB993A7A.
	out, err := h.TranslatePINFromDUKPT("bdk/1", mustHex("FFFF9876543210E00001"), PINFormat0, "zone/bank1/ZPK", PINFormat0,
		mustHex("1B9C1845EB993A7A"), "4012345678909")
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := blockcipher.New(TDES, zpk)
	want, _ := blockcipher.EncryptECB(zb, mustHex("041274EDCBA9876F"))
	if !bytes.Equal(out, want) {
		t.Fatalf("translated %X want %X", out, want)
	}
	// A BDK is not a PIN key and a ZPK is not a BDK.
	if _, err := h.TranslatePIN("bdk/1", PINFormat0, "zone/bank1/ZPK", PINFormat0, mustHex("1B9C1845EB993A7A"), "4012345678909"); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("BDK as PIN key: %v", err)
	}
	if _, err := h.TranslatePINFromDUKPT("zone/bank1/ZPK", mustHex("FFFF9876543210E00001"), PINFormat0, "zone/bank1/ZPK", PINFormat0,
		mustHex("1B9C1845EB993A7A"), "4012345678909"); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("ZPK as BDK: %v", err)
	}
}

// TestCounterResolvedOnce checks Options.Counter: asked once per
// operation and result, its function called for every operation after.
func TestCounterResolvedOnce(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	counts := map[string]*atomic.Int64{}
	h, _ := openHSM(t, Options{
		Counter: func(op, result string) func() {
			mu.Lock()
			defer mu.Unlock()
			k := op + "/" + result
			asked[k]++
			c := counts[k]
			if c == nil {
				c = new(atomic.Int64)
				counts[k] = c
			}
			return func() { c.Add(1) }
		},
	})
	seedTerminal(t, h, "10000001")
	if _, err := h.SignOn("10000001", ModeDoubleDES); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, c := range counts {
		c.Store(0) // the sign-on's own operations
	}
	mu.Unlock()
	data := []byte("0200 message")
	for range 3 {
		m, err := h.GenerateTerminalMAC("10000001", data)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := h.VerifyTerminalMAC("10000001", data, m); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, err := h.VerifyTerminalMAC("10000001", data, []byte("00000000")); ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if _, err := h.GenerateTerminalMAC("10000009", data); err == nil {
		t.Fatal("MAC for a terminal without keys")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int64{"mac_generate/ok": 3, "mac_verify/ok": 3, "mac_verify/fail": 3, "mac_generate/error": 1}
	for k, n := range want {
		if asked[k] != 1 || counts[k] == nil || counts[k].Load() != n {
			t.Errorf("%s: asked %d times, counted %v; want once, %d", k, asked[k], counts[k], n)
		}
	}
}

func BenchmarkVerifyTerminalMAC200Counted(b *testing.B) {
	var n atomic.Int64
	h, _ := openHSM(b, Options{Counter: func(op, result string) func() { return func() { n.Add(1) } }})
	seedTerminal(b, h, "10000001")
	f62, err := h.SignOn("10000001", ModeDoubleDES)
	if err != nil {
		b.Fatal(err)
	}
	wk, err := terminal.ParseField62(demoTMK, ModeDoubleDES, f62)
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte{0x5A}, 200)
	m, _ := wk.MAC(data)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := h.VerifyTerminalMAC("10000001", data, m[:]); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
