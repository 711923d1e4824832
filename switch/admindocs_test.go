package switching

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/spec"
)

// docFields returns the field names of the first {…} of a docs table
// cell: "{card (masked), permitted: [types], cash}" → card, permitted, cash.
func docFields(cell string) []string {
	i := strings.IndexByte(cell, '{')
	if i < 0 {
		return nil
	}
	depth, start := 0, i+1
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if j := strings.IndexAny(s, " :("); j >= 0 {
			s = s[:j]
		}
		if s != "" {
			out = append(out, s)
		}
	}
	for j := i; j < len(cell); j++ {
		switch cell[j] {
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
			if depth == 0 {
				add(cell[start:j])
				return out
			}
		case ',':
			if depth == 1 {
				add(cell[start:j])
				start = j + 1
			}
		}
	}
	return out
}

// TestAdminAPIDocMatchesAnswers: every answer docs/admin-api.md spells
// out field by field lists exactly the fields the real daemon answers.
func TestAdminAPIDocMatchesAnswers(t *testing.T) {
	if got := strings.Join(docFields("`[{id, card (masked), permitted: [types], fields}]` and more"), ","); got != "id,card,permitted,fields" {
		t.Fatalf("docFields = %s", got)
	}
	b, err := os.ReadFile("../docs/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // "GET /api/v1/x" → answer cell
	rowRe := regexp.MustCompile("^\\| `((?:GET|POST) /api/[^`]*)` \\|([^|]*)\\|(.*)\\|$")
	for _, line := range strings.Split(string(b), "\n") {
		if m := rowRe.FindStringSubmatch(line); m != nil {
			rows[m[1]] = m[3]
		}
	}
	sw := testSwitch(t)
	term := signedOn(t, sw, termCanteen, canteen)
	req, err := term.Balance(cardStudent, pinStudent)
	resp := do(t, term, req, err)
	expectRC(t, "balance", resp, spec.RCApproved)
	for doc, call := range map[string]string{
		"GET /api/v1/status":                        "GET /api/v1/status",
		"GET /api/v1/merchants":                     "GET /api/v1/merchants",
		"GET /api/v1/merchants/{id}":                "GET /api/v1/merchants/" + canteen,
		"GET /api/v1/terminals":                     "GET /api/v1/terminals",
		"GET /api/v1/cards/{pan}":                   "GET /api/v1/cards/" + cardStudent,
		"GET /api/v1/journal?rrn=R[&date=YYYYMMDD]": "GET /api/v1/journal?rrn=" + resp.RRN,
		"POST /api/v1/retention/run":                "POST /api/v1/retention/run",
		"GET /api/v1/terminals/{id}":                "",
		"GET /api/v1/transfers?card=&date=YYYYMMDD&terminal=&limit=&after=": "GET /api/v1/transfers",
	} {
		cell, ok := rows[doc]
		if !ok {
			t.Errorf("docs/admin-api.md has no row for %s", doc)
			continue
		}
		want := docFields(cell)
		if call == "" || len(want) == 0 {
			continue // "one terminal", "the terminal": no field list of its own
		}
		method, path, _ := strings.Cut(call, " ")
		status, body := adminCall(t, sw, method, path, nil)
		if status != 200 {
			t.Errorf("%s: HTTP %d %s", call, status, body)
			continue
		}
		var one map[string]json.RawMessage
		if strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
			var list []map[string]json.RawMessage
			if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
				t.Errorf("%s: %v, %d entries", call, err, len(list))
				continue
			}
			one = list[0]
		} else if err := json.Unmarshal(body, &one); err != nil {
			t.Errorf("%s: %v", call, err)
			continue
		}
		got := make([]string, 0, len(one))
		for k := range one {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: docs/admin-api.md lists %v, the answer has %v", doc, want, got)
		}
	}
}
