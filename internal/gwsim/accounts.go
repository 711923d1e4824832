package gwsim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/spec"
	"gopkg.in/yaml.v3"
)

// Account is one of the simulated bank's account holders: a bank card
// (field 2 of consumes, balance inquiries, voids and refunds) over a bank
// account (field 102 of transfer-load legs), with a PIN and a balance.
type Account struct {
	Card    string      // bank card number, 12..19 digits
	Number  string      // bank account number, 1..28 characters
	Holder  string      // the holder's name (printed, never checked)
	PIN     string      // 4..12 digits, verified under the ZPK
	Balance spec.Amount // opening balance in fen
}

// Bounds on the account list.
const (
	MaxAccounts   = 100_000
	maxHolderLen  = 60
	maxAccountLen = 28
)

// DemoZMK is the demo zone master key, in clear (demo only: a real bank
// and switch exchange it as components). The demo switch configuration's
// gateway link holds the same key.
const DemoZMK = "4CA2161637D0133E5E151AEA45DA2A12"

// DemoInstitution is the demo bank's institution id (field 100 of the
// requests it receives).
const DemoInstitution = "01020000"

// DemoAccounts returns the demo bank's account holders (docs/gwsim.md).
// Their cards begin with the demo bank's BIN 622202.
func DemoAccounts() []Account {
	return []Account{
		{Card: "6222020000000000018", Number: "1102000000000018", Holder: "Li Guoqiang", PIN: "123456", Balance: 1_000_000},
		{Card: "6222020000000000026", Number: "1102000000000026", Holder: "Wang Xiuying", PIN: "654321", Balance: 500_000},
		{Card: "6222020000000000034", Number: "1102000000000034", Holder: "Zhang Wei", PIN: "111111", Balance: 2_000},
		{Card: "6222020000000000042", Number: "1102000000000042", Holder: "Chen Jing", PIN: "222222", Balance: 0},
	}
}

// fileConfig is the YAML accounts file (docs/gwsim.md).
type fileConfig struct {
	Accounts []struct {
		Card    string `yaml:"card"`
		Account string `yaml:"account"`
		Holder  string `yaml:"holder"`
		PIN     string `yaml:"pin"`
		Balance string `yaml:"balance"`
	} `yaml:"accounts"`
}

// maxAccountsFile bounds the accounts file's size.
const maxAccountsFile = 16 << 20

// LoadAccounts reads an accounts file: YAML with a list `accounts:` of
// {card, account, holder, pin, balance} where balance is in yuan
// ("1000.00").
func LoadAccounts(path string) ([]Account, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	if st.Size() > maxAccountsFile {
		return nil, fmt.Errorf("accounts file %s: %d bytes, at most %d", path, st.Size(), maxAccountsFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	return ParseAccounts(b)
}

// ParseAccounts parses the YAML of an accounts file.
func ParseAccounts(b []byte) ([]Account, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	out := make([]Account, 0, len(fc.Accounts))
	for i, a := range fc.Accounts {
		bal, err := ParseYuan(a.Balance)
		if err != nil {
			return nil, fmt.Errorf("accounts file: account %d balance: %w", i+1, err)
		}
		out = append(out, Account{Card: a.Card, Number: a.Account, Holder: a.Holder, PIN: a.PIN, Balance: bal})
	}
	if err := checkAccounts(out); err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	return out, nil
}

// checkAccounts validates a list: bounded, every field well formed, cards
// and account numbers unique.
func checkAccounts(list []Account) error {
	if len(list) == 0 || len(list) > MaxAccounts {
		return fmt.Errorf("%d accounts (1..%d)", len(list), MaxAccounts)
	}
	cards := make(map[string]bool, len(list))
	numbers := make(map[string]bool, len(list))
	for i, a := range list {
		switch {
		case len(a.Card) < 12 || len(a.Card) > 19 || !digits(a.Card):
			return fmt.Errorf("account %d: card number must be 12..19 digits", i+1)
		case a.Number == "" || len(a.Number) > maxAccountLen || !printableASCII(a.Number):
			return fmt.Errorf("account %d: account number must be 1..%d printable characters", i+1, maxAccountLen)
		case len(a.Holder) > maxHolderLen:
			return fmt.Errorf("account %d: holder name over %d bytes", i+1, maxHolderLen)
		case a.Balance < 0 || a.Balance > spec.MaxAmount:
			return fmt.Errorf("account %d: balance out of range", i+1)
		case cards[a.Card]:
			return fmt.Errorf("account %d: card number repeated", i+1)
		case numbers[a.Number]:
			return fmt.Errorf("account %d: account number repeated", i+1)
		}
		if err := pinblock.CheckPIN(a.PIN); err != nil {
			return fmt.Errorf("account %d: %w", i+1, err)
		}
		cards[a.Card] = true
		numbers[a.Number] = true
	}
	return nil
}

// ParseYuan parses an amount in yuan with at most two decimals ("12",
// "12.5", "12.05") into fen.
func ParseYuan(s string) (spec.Amount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty amount")
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !digits(whole) || len(whole) > 10 || (hasFrac && (len(frac) == 0 || len(frac) > 2 || !digits(frac))) {
		return 0, fmt.Errorf("amount %q is not yuan with at most two decimals", s)
	}
	y, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f := int64(0)
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	return spec.Amount(y*100 + f), nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
