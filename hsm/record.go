package hsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Pebble keys owned by hsm all start with 'h' (docs/architecture.md):
//
//	h k <label>   a stored key record
//	h m           the LMK check record (proves the LMK matches the store)
const (
	prefix       = 'h'
	kindKey      = 'k'
	kindLMKCheck = 'm'
)

// maxLabel bounds key labels: printable ASCII, no spaces.
const maxLabel = 96

// maxWrapped bounds the encrypted key inside a record (a 32-byte key plus
// the 16-byte GCM tag).
const maxWrapped = 64

func keyKey(label string) []byte {
	k := make([]byte, 0, 2+len(label))
	k = append(k, prefix, kindKey)
	return append(k, label...)
}

var lmkCheckKey = []byte{prefix, kindLMKCheck}

// ErrBadLabel reports a label that is empty, too long or not printable.
var ErrBadLabel = errors.New("key label must be 1 to 96 printable ASCII characters without spaces")

func checkLabel(label string) error {
	if len(label) == 0 || len(label) > maxLabel {
		return ErrBadLabel
	}
	for i := 0; i < len(label); i++ {
		if label[i] <= 0x20 || label[i] >= 0x7F {
			return ErrBadLabel
		}
	}
	return nil
}

// record is the stored form of one key. Everything but Wrapped is in
// clear (so an operator can list keys without the LMK) and bound to the
// ciphertext as GCM associated data.
//
// Encoding (version 1):
//
//	version(1) type(1) alg(1) keyLen(1) usage(2, BE) kcvLen(1) kcv
//	nonce(12) wrappedLen(1) wrapped
type record struct {
	Type    KeyType
	Alg     Algorithm
	KeyLen  int
	Usage   Usage
	KCV     []byte
	Nonce   []byte
	Wrapped []byte
}

const recordVersion = 1

// ErrCorruptRecord reports a stored key record that does not decode.
var ErrCorruptRecord = errors.New("corrupt key record")

func (r *record) encode() []byte {
	b := make([]byte, 0, 8+len(r.KCV)+len(r.Nonce)+1+len(r.Wrapped))
	b = append(b, recordVersion, byte(r.Type), byte(r.Alg), byte(r.KeyLen))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Usage))
	b = append(b, byte(len(r.KCV)))
	b = append(b, r.KCV...)
	b = append(b, r.Nonce...)
	b = append(b, byte(len(r.Wrapped)))
	return append(b, r.Wrapped...)
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 7 || b[0] != recordVersion {
		return r, ErrCorruptRecord
	}
	r.Type, r.Alg, r.KeyLen = KeyType(b[1]), Algorithm(b[2]), int(b[3])
	r.Usage = Usage(binary.BigEndian.Uint16(b[4:6]))
	if !r.Type.valid() || !r.Alg.ValidKeyLength(r.KeyLen) {
		return r, fmt.Errorf("%w: type %d alg %d length %d", ErrCorruptRecord, b[1], b[2], b[3])
	}
	kl := int(b[6])
	rest := b[7:]
	if kl > 16 || len(rest) < kl+12+1 {
		return r, ErrCorruptRecord
	}
	r.KCV = append([]byte(nil), rest[:kl]...)
	rest = rest[kl:]
	r.Nonce = append([]byte(nil), rest[:12]...)
	rest = rest[12:]
	wl := int(rest[0])
	rest = rest[1:]
	if wl > maxWrapped || wl != len(rest) || wl != r.KeyLen+16 {
		return r, ErrCorruptRecord
	}
	r.Wrapped = append([]byte(nil), rest...)
	return r, nil
}

// aad is the associated data binding a record's clear fields and label.
func (r *record) aad(label string) []byte {
	b := make([]byte, 0, 32+len(label)+len(r.KCV))
	b = append(b, "cardswitch-hsm-key-v1"...)
	b = append(b, byte(r.Type), byte(r.Alg), byte(r.KeyLen))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Usage))
	b = append(b, byte(len(r.KCV)))
	b = append(b, r.KCV...)
	return append(b, label...)
}
