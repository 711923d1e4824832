package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LMKSize is the local master key length: an AES-256 key.
const LMKSize = 32

// maxLMKFile bounds what LoadLMKFile reads: a hex LMK plus whitespace.
const maxLMKFile = 4096

var (
	// ErrLMKPermissions reports an LMK file readable by group or others.
	ErrLMKPermissions = errors.New("LMK file must not be accessible by group or others (chmod 600)")
	// ErrLMKFormat reports LMK text that is not 64 hex digits.
	ErrLMKFormat = errors.New("LMK must be 64 hex digits (32 bytes)")
	// ErrLMKInDataDir reports an LMK stored under the data directory, where
	// a copy of the data would carry its own master key.
	ErrLMKInDataDir = errors.New("LMK file must not be inside the data directory")
	// ErrWrongLMK reports an LMK that did not encrypt this key store.
	ErrWrongLMK = errors.New("LMK does not match the key store")
)

// LMK is the local master key: every key in the store is encrypted under
// it with AES-256-GCM, the record's label, type, algorithm and usage bound
// in as associated data, so that a stored key cannot be relabelled or
// retyped (turned from a MAK into a PIN key) by editing the database.
//
// An LMK lives outside the data directory (a file of mode 0600 or an
// environment variable) so that a copy of the data is useless without it.
type LMK struct {
	key [LMKSize]byte
	set bool
}

// ParseLMK parses 64 hex digits (surrounding whitespace ignored).
func ParseLMK(text string) (LMK, error) {
	var l LMK
	s := strings.TrimSpace(text)
	if len(s) != 2*LMKSize {
		return l, ErrLMKFormat
	}
	if _, err := hex.Decode(l.key[:], []byte(s)); err != nil {
		return LMK{}, ErrLMKFormat
	}
	l.set = true
	return l, nil
}

// NewRandomLMK draws a fresh LMK from crypto/rand.
func NewRandomLMK() (LMK, error) {
	var l LMK
	if _, err := rand.Read(l.key[:]); err != nil {
		return l, fmt.Errorf("generate LMK: %w", err)
	}
	l.set = true
	return l, nil
}

// LoadLMKFile reads an LMK from a file holding 64 hex digits. It refuses a
// file whose mode grants any access to group or others.
func LoadLMKFile(path string) (LMK, error) {
	f, err := os.Open(path)
	if err != nil {
		return LMK{}, fmt.Errorf("open LMK file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return LMK{}, fmt.Errorf("stat LMK file %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return LMK{}, fmt.Errorf("LMK file %s has mode %04o: %w", path, st.Mode().Perm(), ErrLMKPermissions)
	}
	if st.Size() > maxLMKFile {
		return LMK{}, fmt.Errorf("LMK file %s is %d bytes: %w", path, st.Size(), ErrLMKFormat)
	}
	buf := make([]byte, maxLMKFile)
	n, _ := f.Read(buf)
	defer clear(buf)
	l, err := ParseLMK(string(buf[:n]))
	if err != nil {
		return LMK{}, fmt.Errorf("LMK file %s: %w", path, err)
	}
	return l, nil
}

// LoadLMKEnv reads an LMK from the environment variable name.
func LoadLMKEnv(name string) (LMK, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return LMK{}, fmt.Errorf("LMK environment variable %s is not set", name)
	}
	l, err := ParseLMK(v)
	if err != nil {
		return LMK{}, fmt.Errorf("LMK environment variable %s: %w", name, err)
	}
	return l, nil
}

// CreateDemoLMK writes a random LMK to path with mode 0600 and returns it.
// It refuses to overwrite an existing file. The caller must log that this
// is a demo key: a real deployment loads its LMK from key custodians.
func CreateDemoLMK(path string) (LMK, error) {
	l, err := NewRandomLMK()
	if err != nil {
		return LMK{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return LMK{}, fmt.Errorf("create demo LMK file: %w", err)
	}
	text := []byte(strings.ToUpper(hex.EncodeToString(l.key[:])) + "\n")
	defer clear(text)
	if _, err := f.Write(text); err != nil {
		f.Close()
		return LMK{}, fmt.Errorf("write demo LMK file %s: %w", path, err)
	}
	// The umask may have narrowed the mode further; never widened it, but
	// set it explicitly so the file passes LoadLMKFile.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return LMK{}, fmt.Errorf("chmod demo LMK file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return LMK{}, fmt.Errorf("sync demo LMK file %s: %w", path, err)
	}
	return l, f.Close()
}

// CheckLMKPath refuses an LMK file located inside dataDir.
func CheckLMKPath(lmkPath, dataDir string) error {
	lp, err := filepath.Abs(lmkPath)
	if err != nil {
		return err
	}
	dp, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dp, lp)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is under %s: %w", lmkPath, dataDir, ErrLMKInDataDir)
	}
	return nil
}

// IsSet reports whether the LMK was loaded or generated (the zero LMK is
// never valid).
func (l *LMK) IsSet() bool { return l.set }

// CheckValue returns a 6-hex-digit check value of the LMK (AES of a zero
// block, first 3 bytes), which custodians compare without seeing the key.
func (l *LMK) CheckValue() string {
	b, err := aes.NewCipher(l.key[:])
	if err != nil {
		return ""
	}
	var z [16]byte
	b.Encrypt(z[:], z[:])
	return strings.ToUpper(hex.EncodeToString(z[:3]))
}

// Zero wipes the LMK.
func (l *LMK) Zero() {
	clear(l.key[:])
	l.set = false
}

func (l *LMK) aead() (cipher.AEAD, error) {
	if !l.set {
		return nil, errors.New("LMK is not loaded")
	}
	b, err := aes.NewCipher(l.key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
