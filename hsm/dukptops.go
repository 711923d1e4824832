package hsm

import (
	"fmt"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/dukpt"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
)

// TranslatePINFromDUKPT re-encrypts a PIN block from a DUKPT terminal to
// the ZPK at toLabel. The PIN key is derived from the BDK at bdkLabel and
// the KSN: a 10-byte KSN means TDES DUKPT (ANSI X9.24-1:2009); a 12-byte
// KSN means AES DUKPT (X9.24-3-2017) with an AES-128 PIN key for format 4
// blocks and a double-length TDES PIN key otherwise. The BDK, the derived
// key and the clear PIN are wiped before returning.
func (h *HSM) TranslatePINFromDUKPT(bdkLabel string, ksn []byte, fromFormat PINFormat, toLabel string, toFormat PINFormat, block []byte, pan string) (out []byte, err error) {
	defer func() { h.observe(opPINTranslateDUKPT, err, true) }()
	to, err := h.translationTarget(toLabel, fromFormat, toFormat)
	if err != nil {
		return nil, err
	}
	var pin string
	err = h.withClear(bdkLabel, UsageDerive, func(k *loadedKey, bdk []byte) error {
		pinKey, alg, err := dukptPINKey(k.alg, bdk, ksn, fromFormat)
		if err != nil {
			return err
		}
		defer wipe(pinKey)
		b, err := blockcipher.New(alg, pinKey)
		if err != nil {
			return err
		}
		pin, err = pinblock.Decrypt(b, fromFormat, block, pan)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("translate DUKPT PIN: %w", err)
	}
	return pinblock.Encrypt(to.block, toFormat, pin, pan, "")
}

// dukptPINKey derives the PIN encryption key for a KSN from a clear BDK.
func dukptPINKey(bdkAlg Algorithm, bdk, ksn []byte, f PINFormat) ([]byte, Algorithm, error) {
	switch len(ksn) {
	case dukpt.TDESKSNLen:
		if bdkAlg != TDES {
			return nil, 0, fmt.Errorf("a 10-byte KSN needs a TDES BDK, not %s: %w", bdkAlg, ErrUnsupported)
		}
		k, err := dukpt.TDESPINKey(bdk, ksn)
		return k, TDES, err
	case dukpt.AESKSNLen:
		if bdkAlg != AES {
			return nil, 0, fmt.Errorf("a 12-byte KSN needs an AES BDK, not %s: %w", bdkAlg, ErrUnsupported)
		}
		if f == PINFormat4 {
			k, err := dukpt.AESPINKey(bdk, ksn, dukpt.AES128)
			return k, AES, err
		}
		k, err := dukpt.AESPINKey(bdk, ksn, dukpt.TDES2)
		return k, TDES, err
	}
	return nil, 0, dukpt.ErrKSN
}
