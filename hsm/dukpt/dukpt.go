// Package dukpt derives Derived Unique Key Per Transaction keys: the TDES
// scheme of ANSI X9.24-1:2009 (10-byte KSN, 21-bit counter) and the AES
// scheme of ANSI X9.24-3-2017 (12-byte KSN, 32-bit counter), on the host
// side: from a BDK and a KSN to the initial key, the transaction key and
// the working keys (PIN, MAC request/response, data request/response).
//
// Counter rules are enforced: a TDES counter with more than 10 one-bits,
// or an AES counter with more than 16, is never used by a conforming
// originator, so a KSN carrying one is rejected; NextKSN steps over such
// counters and reports exhaustion at the end of the counter space.
package dukpt

import (
	"crypto/aes"
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
)

// KSN lengths.
const (
	TDESKSNLen = 10
	AESKSNLen  = 12
)

var (
	// ErrKSN reports a KSN of the wrong length.
	ErrKSN = errors.New("KSN must be 10 bytes (TDES) or 12 bytes (AES)")
	// ErrCounter reports a KSN whose counter a conforming device never
	// uses (too many one-bits).
	ErrCounter = errors.New("KSN transaction counter has too many one-bits")
	// ErrExhausted reports that a device has used its last counter value.
	ErrExhausted = errors.New("DUKPT counter exhausted: the device must be re-keyed")
	// ErrBDK reports a BDK of the wrong length.
	ErrBDK = errors.New("wrong BDK length")
)

// Keys are the keys derived for one transaction. Response keys are the
// keys the host uses on responses (TDES: the response variants of
// X9.24-1:2009 Table 3; AES: MAC verification and data decryption usages).
type Keys struct {
	Initial      []byte
	Transaction  []byte
	PIN          []byte
	MAC          []byte
	MACResponse  []byte
	Data         []byte
	DataResponse []byte
}

// Zero wipes all keys.
func (k *Keys) Zero() {
	for _, b := range [][]byte{k.Initial, k.Transaction, k.PIN, k.MAC, k.MACResponse, k.Data, k.DataResponse} {
		clear(b)
	}
}

// ---- TDES (ANSI X9.24-1:2009) ----

const tdesCounterMask = 0x1FFFFF

// tdesMaxOnes is the most one-bits a TDES counter may have.
const tdesMaxOnes = 10

var keyMask = [16]byte{0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0}

func tdesCounter(ksn []byte) uint32 {
	return uint32(ksn[7]&0x1F)<<16 | uint32(ksn[8])<<8 | uint32(ksn[9])
}

func checkTDES(bdkOrKey, ksn []byte) error {
	if len(bdkOrKey) != 16 {
		return fmt.Errorf("TDES DUKPT key of %d bytes: %w", len(bdkOrKey), ErrBDK)
	}
	if len(ksn) != TDESKSNLen {
		return fmt.Errorf("KSN of %d bytes: %w", len(ksn), ErrKSN)
	}
	return nil
}

// TDESInitialKey derives the initial key (IPEK) from a double-length BDK:
// the KSN with its counter cleared, encrypted under the BDK and under the
// BDK XOR C0C0C0C000000000C0C0C0C000000000.
func TDESInitialKey(bdk, ksn []byte) ([]byte, error) {
	if err := checkTDES(bdk, ksn); err != nil {
		return nil, err
	}
	var reg [8]byte
	copy(reg[:], ksn[:8])
	reg[7] &= 0xE0
	ik := make([]byte, 16)
	b, err := blockcipher.New(blockcipher.TDES, bdk)
	if err != nil {
		return nil, err
	}
	b.Encrypt(ik[:8], reg[:])
	var masked [16]byte
	for i := range masked {
		masked[i] = bdk[i] ^ keyMask[i]
	}
	b2, err := blockcipher.New(blockcipher.TDES, masked[:])
	clear(masked[:])
	if err != nil {
		return nil, err
	}
	b2.Encrypt(ik[8:], reg[:])
	return ik, nil
}

// nrkgp is the non-reversible key generation process of X9.24-1:2009
// A.2, turning key (16 bytes) and an 8-byte KSN register into a new key.
func nrkgp(key []byte, reg [8]byte) ([]byte, error) {
	half := func(k []byte) ([]byte, error) {
		var msg [8]byte
		for i := range msg {
			msg[i] = reg[i] ^ k[8+i]
		}
		c, err := des.NewCipher(k[:8])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 8)
		c.Encrypt(out, msg[:])
		for i := range out {
			out[i] ^= k[8+i]
		}
		return out, nil
	}
	right, err := half(key)
	if err != nil {
		return nil, err
	}
	var masked [16]byte
	for i := range masked {
		masked[i] = key[i] ^ keyMask[i]
	}
	left, err := half(masked[:])
	clear(masked[:])
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// TDESTransactionKey derives the transaction key for ksn from the initial
// key, processing the counter's one-bits from the most significant down.
func TDESTransactionKey(ik, ksn []byte) ([]byte, error) {
	if err := checkTDES(ik, ksn); err != nil {
		return nil, err
	}
	ctr := tdesCounter(ksn)
	if bits.OnesCount32(ctr) > tdesMaxOnes {
		return nil, fmt.Errorf("counter %06X: %w", ctr, ErrCounter)
	}
	var reg [8]byte
	copy(reg[:], ksn[2:10])
	reg[5] &= 0xE0
	reg[6], reg[7] = 0, 0
	key := append([]byte(nil), ik...)
	for mask := uint32(0x100000); mask != 0; mask >>= 1 {
		if ctr&mask == 0 {
			continue
		}
		reg[5] |= byte(mask >> 16)
		reg[6] |= byte(mask >> 8)
		reg[7] |= byte(mask)
		next, err := nrkgp(key, reg)
		clear(key)
		if err != nil {
			return nil, err
		}
		key = next
	}
	return key, nil
}

func variant(key []byte, v [8]byte) []byte {
	out := make([]byte, 16)
	for i := range out {
		out[i] = key[i] ^ v[i%8]
	}
	return out
}

// The variants of X9.24-1:2009 Table 3, applied to both key halves.
var (
	variantPIN          = [8]byte{0, 0, 0, 0, 0, 0, 0, 0xFF}
	variantMACRequest   = [8]byte{0, 0, 0, 0, 0, 0, 0xFF, 0}
	variantMACResponse  = [8]byte{0, 0, 0, 0, 0xFF, 0, 0, 0}
	variantDataRequest  = [8]byte{0, 0, 0, 0, 0, 0xFF, 0, 0}
	variantDataResponse = [8]byte{0, 0, 0, 0xFF, 0, 0, 0, 0}
)

// dataKey applies the one-way step X9.24-1:2009 adds for data keys: each
// half of the variant key is encrypted under the variant key itself.
func dataKey(v []byte) ([]byte, error) {
	b, err := blockcipher.New(blockcipher.TDES, v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	b.Encrypt(out[:8], v[:8])
	b.Encrypt(out[8:], v[8:])
	return out, nil
}

// TDESKeys derives every key for one transaction from a BDK and KSN.
func TDESKeys(bdk, ksn []byte) (*Keys, error) {
	ik, err := TDESInitialKey(bdk, ksn)
	if err != nil {
		return nil, err
	}
	tk, err := TDESTransactionKey(ik, ksn)
	if err != nil {
		clear(ik)
		return nil, err
	}
	k := &Keys{Initial: ik, Transaction: tk,
		PIN: variant(tk, variantPIN), MAC: variant(tk, variantMACRequest), MACResponse: variant(tk, variantMACResponse)}
	dreq := variant(tk, variantDataRequest)
	dresp := variant(tk, variantDataResponse)
	defer clear(dreq)
	defer clear(dresp)
	if k.Data, err = dataKey(dreq); err != nil {
		return nil, err
	}
	if k.DataResponse, err = dataKey(dresp); err != nil {
		return nil, err
	}
	return k, nil
}

// TDESPINKey derives only the PIN encryption key (host PIN translation).
func TDESPINKey(bdk, ksn []byte) ([]byte, error) {
	ik, err := TDESInitialKey(bdk, ksn)
	if err != nil {
		return nil, err
	}
	defer clear(ik)
	tk, err := TDESTransactionKey(ik, ksn)
	if err != nil {
		return nil, err
	}
	defer clear(tk)
	return variant(tk, variantPIN), nil
}

// NextKSN returns the KSN an originating device uses after ksn (10 bytes
// TDES or 12 bytes AES), skipping counters with too many one-bits, or
// ErrExhausted after the last valid counter.
func NextKSN(ksn []byte) ([]byte, error) {
	out := append([]byte(nil), ksn...)
	switch len(ksn) {
	case TDESKSNLen:
		c := uint64(tdesCounter(ksn)) + 1
		for bits.OnesCount64(c) > tdesMaxOnes {
			c += c & -c
		}
		if c > tdesCounterMask {
			return nil, ErrExhausted
		}
		out[7] = out[7]&0xE0 | byte(c>>16)
		out[8], out[9] = byte(c>>8), byte(c)
		return out, nil
	case AESKSNLen:
		c := uint64(binary.BigEndian.Uint32(ksn[8:])) + 1
		for bits.OnesCount64(c) > aesMaxOnes {
			c += c & -c
		}
		if c > 0xFFFFFFFF {
			return nil, ErrExhausted
		}
		binary.BigEndian.PutUint32(out[8:], uint32(c))
		return out, nil
	}
	return nil, ErrKSN
}

// ---- AES (ANSI X9.24-3-2017) ----

// KeyType is the X9.24-3 algorithm indicator of a derived key.
type KeyType uint16

const (
	TDES2  KeyType = 0 // two-key TDEA working key
	TDES3  KeyType = 1
	AES128 KeyType = 2
	AES192 KeyType = 3
	AES256 KeyType = 4
)

func (t KeyType) bits() int {
	switch t {
	case TDES2, AES128:
		return 128
	case TDES3, AES192:
		return 192
	case AES256:
		return 256
	}
	return 0
}

// ParseKeyType parses the CLI names tdes2, tdes3, aes128, aes192, aes256.
func ParseKeyType(s string) (KeyType, error) {
	switch s {
	case "tdes2":
		return TDES2, nil
	case "tdes3":
		return TDES3, nil
	case "aes128":
		return AES128, nil
	case "aes192":
		return AES192, nil
	case "aes256":
		return AES256, nil
	}
	return 0, fmt.Errorf("working key type %q (want tdes2, tdes3, aes128, aes192 or aes256)", s)
}

// Usage is the X9.24-3 key usage indicator.
type Usage uint16

const (
	UsageKEK                  Usage = 0x0002
	UsagePINEncryption        Usage = 0x1000
	UsageMACGeneration        Usage = 0x2000
	UsageMACVerification      Usage = 0x2001
	UsageMACBothWays          Usage = 0x2002
	UsageDataEncrypt          Usage = 0x3000
	UsageDataDecrypt          Usage = 0x3001
	UsageDataBothWays         Usage = 0x3002
	UsageKeyDerivation        Usage = 0x8000
	UsageKeyDerivationInitial Usage = 0x8001
)

const aesMaxOnes = 16

func bdkType(n int) (KeyType, error) {
	switch n {
	case 16:
		return AES128, nil
	case 24:
		return AES192, nil
	case 32:
		return AES256, nil
	}
	return 0, fmt.Errorf("AES BDK of %d bytes: %w", n, ErrBDK)
}

// derivationData builds the 16-byte derivation data of X9.24-3-2017 §6.3.2.
func derivationData(usage Usage, t KeyType, id []byte, counter uint32, initial bool) [16]byte {
	var d [16]byte
	d[0], d[1] = 0x01, 0x01
	binary.BigEndian.PutUint16(d[2:], uint16(usage))
	binary.BigEndian.PutUint16(d[4:], uint16(t))
	binary.BigEndian.PutUint16(d[6:], uint16(t.bits()))
	if initial {
		copy(d[8:], id[:8])
	} else {
		copy(d[8:12], id[4:8])
		binary.BigEndian.PutUint32(d[12:], counter)
	}
	return d
}

// deriveKey runs AES-ECB under key over the derivation data, with the
// block counter byte stepping for keys longer than one block.
func deriveKey(key []byte, t KeyType, d [16]byte) ([]byte, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := t.bits() / 8
	out := make([]byte, 0, 32)
	for i := 1; len(out) < n; i++ {
		d[1] = byte(i)
		var blk [16]byte
		c.Encrypt(blk[:], d[:])
		out = append(out, blk[:]...)
	}
	return out[:n], nil
}

func checkAES(bdk, ksn []byte) (KeyType, error) {
	t, err := bdkType(len(bdk))
	if err != nil {
		return 0, err
	}
	if len(ksn) != AESKSNLen {
		return 0, fmt.Errorf("KSN of %d bytes: %w", len(ksn), ErrKSN)
	}
	return t, nil
}

// AESInitialKey derives the initial key from an AES BDK and the 8-byte
// initial key ID (the first 8 bytes of the KSN).
func AESInitialKey(bdk, ikid []byte) ([]byte, error) {
	t, err := bdkType(len(bdk))
	if err != nil {
		return nil, err
	}
	if len(ikid) < 8 {
		return nil, fmt.Errorf("initial key ID of %d bytes: %w", len(ikid), ErrKSN)
	}
	return deriveKey(bdk, t, derivationData(UsageKeyDerivationInitial, t, ikid, 0, true))
}

// AESDerivationKey derives the transaction's derivation key from the
// initial key (of the BDK's type t) by walking the counter's one-bits.
func AESDerivationKey(ik []byte, ksn []byte) ([]byte, error) {
	t, err := checkAES(ik, ksn)
	if err != nil {
		return nil, err
	}
	ctr := binary.BigEndian.Uint32(ksn[8:])
	if bits.OnesCount32(ctr) > aesMaxOnes {
		return nil, fmt.Errorf("counter %08X: %w", ctr, ErrCounter)
	}
	key := append([]byte(nil), ik...)
	var working uint32
	for mask := uint32(1) << 31; mask != 0; mask >>= 1 {
		if ctr&mask == 0 {
			continue
		}
		working |= mask
		next, err := deriveKey(key, t, derivationData(UsageKeyDerivation, t, ksn, working, false))
		clear(key)
		if err != nil {
			return nil, err
		}
		key = next
	}
	return key, nil
}

// AESWorkingKey derives a working key of type wt for usage from the
// transaction's derivation key.
func AESWorkingKey(derivationKey, ksn []byte, usage Usage, wt KeyType) ([]byte, error) {
	if _, err := checkAES(derivationKey, ksn); err != nil {
		return nil, err
	}
	if wt.bits() == 0 || wt.bits()/8 > len(derivationKey) {
		return nil, fmt.Errorf("a %d-bit working key from a %d-byte derivation key is not allowed", wt.bits(), len(derivationKey))
	}
	ctr := binary.BigEndian.Uint32(ksn[8:])
	return deriveKey(derivationKey, wt, derivationData(usage, wt, ksn, ctr, false))
}

// AESKeys derives every key for one transaction; wt is the working key
// type (AES128 for an AES-128 BDK is the usual choice).
func AESKeys(bdk, ksn []byte, wt KeyType) (*Keys, error) {
	if _, err := checkAES(bdk, ksn); err != nil {
		return nil, err
	}
	ik, err := AESInitialKey(bdk, ksn[:8])
	if err != nil {
		return nil, err
	}
	dk, err := AESDerivationKey(ik, ksn)
	if err != nil {
		clear(ik)
		return nil, err
	}
	k := &Keys{Initial: ik, Transaction: dk}
	for _, w := range []struct {
		dst   *[]byte
		usage Usage
	}{{&k.PIN, UsagePINEncryption}, {&k.MAC, UsageMACGeneration}, {&k.MACResponse, UsageMACVerification},
		{&k.Data, UsageDataEncrypt}, {&k.DataResponse, UsageDataDecrypt}} {
		if *w.dst, err = AESWorkingKey(dk, ksn, w.usage, wt); err != nil {
			k.Zero()
			return nil, err
		}
	}
	return k, nil
}

// AESPINKey derives only the PIN encryption working key of type wt.
func AESPINKey(bdk, ksn []byte, wt KeyType) ([]byte, error) {
	if _, err := checkAES(bdk, ksn); err != nil {
		return nil, err
	}
	ik, err := AESInitialKey(bdk, ksn[:8])
	if err != nil {
		return nil, err
	}
	defer clear(ik)
	dk, err := AESDerivationKey(ik, ksn)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	return AESWorkingKey(dk, ksn, UsagePINEncryption, wt)
}
