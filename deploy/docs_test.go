package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocsCiteOnlyTheRepository: the project's docs are read without the
// design notes the team works from, and without its issue tracker: no
// page cites ../shared/DESIGN.md, and the benchmark page cites no issue
// or work session a reader cannot look up.
func TestDocsCiteOnlyTheRepository(t *testing.T) {
	pages, _ := filepath.Glob("../docs/*.md")
	pages = append(pages, "../README.md")
	shared := regexp.MustCompile(`shared/DESIGN`)
	tracker := regexp.MustCompile(`(?i)\b(issue|session)s?\b\s*#?\d+|\(issue|\bsession\b`)
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if loc := shared.FindIndex(b); loc != nil {
			t.Errorf("%s cites %s", p, b[loc[0]:loc[1]])
		}
		if filepath.Base(p) == "BENCHMARKS.md" {
			for _, m := range tracker.FindAll(b, -1) {
				t.Errorf("%s cites %q", p, m)
			}
		}
	}
}
