package hsm

import (
	"crypto/hmac"
	"crypto/sha256"
)

// HMACSHA256 computes HMAC-SHA256 of data with the key at label, inside
// the HSM: the clear key exists only for the call and is wiped after. The
// key must permit MAC generation (a TAK or ZAK; the recharge HTTP front
// end keeps each institution's signing key as a ZAK of its own,
// docs/recharge.md).
func (h *HSM) HMACSHA256(label string, data []byte) (out []byte, err error) {
	err = h.withClear(label, UsageMACGenerate, func(_ *loadedKey, key []byte) error {
		m := hmac.New(sha256.New, key)
		m.Write(data)
		out = m.Sum(nil)
		return nil
	})
	h.observe(opHMACGenerate, err, true)
	return out, err
}

// VerifyHMACSHA256 checks an HMAC-SHA256 of data with the key at label in
// constant time: (false, nil) for a wrong one, an error when it cannot
// decide (no such key, a key that may not verify MACs).
func (h *HSM) VerifyHMACSHA256(label string, data, got []byte) (ok bool, err error) {
	err = h.withClear(label, UsageMACVerify, func(_ *loadedKey, key []byte) error {
		m := hmac.New(sha256.New, key)
		m.Write(data)
		ok = hmac.Equal(m.Sum(nil), got)
		return nil
	})
	h.observe(opHMACVerify, err, ok)
	return ok, err
}
