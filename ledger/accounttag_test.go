package ledger

import (
	"strings"
	"testing"
)

// accountTagReference is accountTag as it was written before it looked
// at the account's first byte, kept as the reference.
func accountTagReference(a AccountID, pan, merchant string) (uint8, string) {
	s := string(a)
	if pan != "" && len(s) > len("card/")+len(pan) && s[:len("card/")] == "card/" && s[len("card/"):len("card/")+len(pan)] == pan {
		switch s[len("card/")+len(pan):] {
		case "/cash":
			return acctOwnCash, ""
		case "/subsidy":
			return acctOwnSubsidy, ""
		}
	}
	if id, ok := cutPrefix(s, "merchant/"); ok {
		if merchant != "" && id == merchant {
			return acctOwnMerchant, ""
		}
		return acctMerchant, id
	}
	for i, w := range wellKnown {
		if a == w {
			return acctSystem + uint8(i), ""
		}
	}
	return acctOther, s
}

// TestAccountTagMatchesReference compares accountTag with the reference
// on every combination of record card and merchant with accounts of each
// class, near misses of each and the well-known system accounts.
func TestAccountTagMatchesReference(t *testing.T) {
	pans := []string{"", panStudent, panStudent[:10], panVisitor}
	merchants := []string{"", canteen, canteen[:8], market}
	accounts := []AccountID{"", "c", "m", "s", "x", "card/", "merchant/", "system/", "card//cash",
		GatewayClearing("bank"), "system/fee-income2", "system/fee-incom", "other/account"}
	for _, p := range pans {
		accounts = append(accounts, CardCash(p), CardSubsidy(p), AccountID("card/"+p), AccountID("card/"+p+"/cashx"),
			AccountID("card/"+p+"/"), AccountID("card/"+p+"/subsid"))
	}
	for _, m := range merchants {
		accounts = append(accounts, MerchantPayable(m), MerchantPayable(m+"0"))
	}
	accounts = append(accounts, wellKnown[:]...)
	for _, a := range accounts {
		for _, p := range pans {
			for _, m := range merchants {
				gotTag, gotRest := accountTag(a, p, m)
				wantTag, wantRest := accountTagReference(a, p, m)
				if gotTag != wantTag || gotRest != wantRest {
					t.Errorf("accountTag(%q, %q, %q) = %d %q, want %d %q", a, p, m, gotTag, gotRest, wantTag, wantRest)
				}
			}
		}
	}
}

// splitPurseReference is splitPurse as it was written with the last '/'
// looked for, kept as the reference.
func splitPurseReference(a AccountID) (pan string, subsidy bool, ok bool) {
	s, found := strings.CutPrefix(string(a), "card/")
	if !found {
		return "", false, false
	}
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", false, false
	}
	switch s[i+1:] {
	case "cash":
		return s[:i], false, true
	case "subsidy":
		return s[:i], true, true
	}
	return "", false, false
}

func TestSplitPurseMatchesReference(t *testing.T) {
	accounts := []AccountID{"", "card/", "card/cash", "card//cash", "card/x/cash", "card/x/subsidy", "card/x/y/cash",
		"card/x/cash/", "card/x/cashx", "card/x/xcash", "card/xcash", "card/x/subsid", "card/x/Cash", "card/cash/x",
		"merchant/" + canteen, FeeIncome, "card/subsidy", "card//subsidy", "cards/x/cash", "/card/x/cash"}
	for _, p := range []string{panStudent, "", "a/b"} {
		accounts = append(accounts, CardCash(p), CardSubsidy(p), AccountID("card/"+p))
	}
	for _, a := range accounts {
		pan, sub, ok := splitPurse(a)
		wpan, wsub, wok := splitPurseReference(a)
		if pan != wpan || sub != wsub || ok != wok {
			t.Errorf("splitPurse(%q) = %q %v %v, want %q %v %v", a, pan, sub, ok, wpan, wsub, wok)
		}
	}
}
