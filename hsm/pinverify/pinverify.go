// Package pinverify implements the two classic issuer PIN verification
// methods: the Visa PIN Verification Value (PVV) and the IBM 3624 PIN
// offset. Both take a clear PIN and a PVK; callers inside hsm/ make sure
// neither ever comes from or goes to outside the HSM in clear.
package pinverify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

var (
	// ErrPVKI reports a PVK index that is not one decimal digit.
	ErrPVKI = errors.New("PVKI must be one decimal digit")
	// ErrDecTab reports a decimalisation table that is not 16 decimal digits.
	ErrDecTab = errors.New("decimalisation table must be 16 decimal digits")
	// ErrValidationData reports validation data that is not 1–16 hex digits.
	ErrValidationData = errors.New("validation data must be 1 to 16 hex digits")
	// ErrPVK reports a PVK of the wrong length.
	ErrPVK = errors.New("PVK must be 8, 16 or 24 bytes (DES/TDES)")
)

// VisaPVV computes the 4-digit Visa PVV: the transformed security
// parameter (the 11 rightmost PAN digits excluding the check digit, the
// PVKI and the 4 leftmost PIN digits) is encrypted with the PVK (TDES,
// K1K2K1 for a double-length key) and decimalised: the decimal digits of
// the result left to right, then, if fewer than four, its hex letters A–F
// minus 10.
func VisaPVV(pvk []byte, pan, pin, pvki string) (string, error) {
	if err := pinblock.CheckPIN(pin); err != nil {
		return "", err
	}
	if err := pinblock.CheckPAN(pan); err != nil || len(pan) < 12 {
		return "", pinblock.ErrPAN
	}
	if len(pvki) != 1 || pvki[0] < '0' || pvki[0] > '9' {
		return "", ErrPVKI
	}
	b, err := pvkCipher(pvk)
	if err != nil {
		return "", err
	}
	body := pan[:len(pan)-1]
	tsp := body[len(body)-11:] + pvki + pin[:4]
	in, _ := hex.DecodeString(tsp)
	out := make([]byte, 8)
	b.Encrypt(out, in)
	hx := strings.ToUpper(hex.EncodeToString(out))
	pvv := make([]byte, 0, 4)
	for i := 0; i < len(hx) && len(pvv) < 4; i++ {
		if hx[i] <= '9' {
			pvv = append(pvv, hx[i])
		}
	}
	for i := 0; i < len(hx) && len(pvv) < 4; i++ {
		if hx[i] >= 'A' {
			pvv = append(pvv, '0'+hx[i]-'A')
		}
	}
	return string(pvv), nil
}

func pvkCipher(pvk []byte) (interface {
	Encrypt(dst, src []byte)
	BlockSize() int
}, error) {
	switch len(pvk) {
	case 8, 16, 24:
		return blockcipher.NewDESFamily(pvk)
	}
	return nil, fmt.Errorf("PVK of %d bytes: %w", len(pvk), ErrPVK)
}

// IBM3624NaturalPIN computes the natural PIN of the IBM 3624 method: the
// validation data (right-padded with F to 16 hex digits) encrypted with
// the PVK, each hex digit mapped through the decimalisation table, the
// leftmost n digits.
func IBM3624NaturalPIN(pvk []byte, decTab, validationData string, n int) (string, error) {
	if len(decTab) != 16 {
		return "", ErrDecTab
	}
	for i := 0; i < 16; i++ {
		if decTab[i] < '0' || decTab[i] > '9' {
			return "", ErrDecTab
		}
	}
	if len(validationData) == 0 || len(validationData) > 16 {
		return "", ErrValidationData
	}
	vd := validationData + strings.Repeat("F", 16-len(validationData))
	in, err := hex.DecodeString(vd)
	if err != nil {
		return "", ErrValidationData
	}
	if n < pinblock.MinPINLength || n > pinblock.MaxPINLength {
		return "", pinblock.ErrPINLength
	}
	b, err := pvkCipher(pvk)
	if err != nil {
		return "", err
	}
	out := make([]byte, 8)
	b.Encrypt(out, in)
	hx := strings.ToUpper(hex.EncodeToString(out))
	nat := make([]byte, n)
	for i := 0; i < n; i++ {
		v := hx[i]
		var idx byte
		if v <= '9' {
			idx = v - '0'
		} else {
			idx = v - 'A' + 10
		}
		nat[i] = decTab[idx]
	}
	return string(nat), nil
}

// IBM3624Offset returns the offset that turns the natural PIN into pin:
// digit by digit (pin − natural) mod 10.
func IBM3624Offset(pvk []byte, decTab, validationData, pin string) (string, error) {
	if err := pinblock.CheckPIN(pin); err != nil {
		return "", err
	}
	nat, err := IBM3624NaturalPIN(pvk, decTab, validationData, len(pin))
	if err != nil {
		return "", err
	}
	off := make([]byte, len(pin))
	for i := range off {
		off[i] = '0' + (pin[i]-nat[i]+10)%10
	}
	return string(off), nil
}

// IBM3624PIN applies an offset to the natural PIN (digit-wise sum mod 10).
func IBM3624PIN(pvk []byte, decTab, validationData, offset string) (string, error) {
	if err := pinblock.CheckPIN(offset); err != nil {
		return "", fmt.Errorf("offset: %w", err)
	}
	nat, err := IBM3624NaturalPIN(pvk, decTab, validationData, len(offset))
	if err != nil {
		return "", err
	}
	pin := make([]byte, len(offset))
	for i := range pin {
		pin[i] = '0' + (nat[i]-'0'+offset[i]-'0')%10
	}
	return string(pin), nil
}
