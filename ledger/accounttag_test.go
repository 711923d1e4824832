package ledger

import "testing"

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
