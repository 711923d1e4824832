package pos

import (
	"strings"
	"testing"
	"time"
)

// TestOptionsValidate: a protocol without one of its collaborators, an
// answer budget or sign-on limits is refused with every missing part
// named.
func TestOptionsValidate(t *testing.T) {
	err := Options{}.Validate()
	if err == nil {
		t.Fatal("empty options accepted")
	}
	for _, want := range []string{"no DB", "no Journal", "no Terminals", "no HSM", "no Ledger", "no Clock",
		"no Routes", "no Destinations", "no Log", "no Metrics", "answer timeout", "sign-on limits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Originals") {
		t.Errorf("Originals is optional: %v", err)
	}
	if _, err := New(Options{AnswerTimeout: time.Second}); err == nil {
		t.Fatal("New accepted options without collaborators")
	}
}
