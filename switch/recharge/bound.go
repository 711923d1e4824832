package recharge

import (
	"encoding/json"
	"fmt"

	"github.com/cardswitch/cardswitch/internal/cardno"
)

// BoundAccount is a card's binding opened for the bank leg of a transfer
// load: the gateway link and the bank card and account numbers in clear.
// It lives only for the one request; never log it.
type BoundAccount struct {
	Gateway  string
	BankCard string
	Account  string
}

// String never shows the numbers.
func (b BoundAccount) String() string { return "BoundAccount(" + b.Gateway + ", redacted)" }

// OpenBinding opens the binding of pan inside the HSM (docs/recharge.md,
// "Bank binding"); ok is false when the card is not bound.
func (s *Service) OpenBinding(pan string) (BoundAccount, bool, error) {
	raw, err := get(s.db, bindingKey(pan))
	if err != nil || raw == nil {
		return BoundAccount{}, false, err
	}
	var rec bindingRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return BoundAccount{}, false, fmt.Errorf("%w: binding of %s", errCorrupt, cardno.Mask(pan))
	}
	if s.sealer == nil {
		return BoundAccount{}, false, fmt.Errorf("%w: no data key", ErrBadBinding)
	}
	aad := []byte("binding:" + pan)
	card, err := s.sealer.OpenData(DataKeyLabel, rec.BankCard, aad)
	if err != nil {
		return BoundAccount{}, false, fmt.Errorf("open bank card of %s: %w", cardno.Mask(pan), err)
	}
	account, err := s.sealer.OpenData(DataKeyLabel, rec.Account, aad)
	if err != nil {
		return BoundAccount{}, false, fmt.Errorf("open account of %s: %w", cardno.Mask(pan), err)
	}
	return BoundAccount{Gateway: rec.Gateway, BankCard: string(card), Account: string(account)}, true, nil
}
