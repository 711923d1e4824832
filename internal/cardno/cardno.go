// Package cardno masks card numbers, the only form in which any package of
// the switch may log, journal, print or return one to an operator. It is a
// leaf so that spec, hsm and ledger, which must not import one another,
// share one rule.
package cardno

// Mask keeps the first 6 and last 4 digits of a card number (PCI DSS
// 3.4's most that may be shown) and replaces the rest with '*'. A number
// of 10 digits or fewer would show all of itself that way, so it is
// masked whole, keeping its length.
func Mask(pan string) string {
	b := []byte(pan)
	keepHead, keepTail := 6, 4
	if len(b) <= keepHead+keepTail {
		keepHead, keepTail = 0, 0
	}
	for i := keepHead; i < len(b)-keepTail; i++ {
		b[i] = '*'
	}
	return string(b)
}
