package switching

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCodeCitesRepositoryDocs: comments and pages cite the repository's
// own docs/, never a design document a reader of the repository does not
// have.
func TestCodeCitesRepositoryDocs(t *testing.T) {
	banned := []string{"DESIGN " + "§", "shared/" + "DESIGN"}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "bin" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".go" && ext != ".md" && ext != ".yaml" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if filepath.ToSlash(path) == "../deploy/docs_test.go" {
			return nil // the docs pages' own check for the citation
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, s := range banned {
				if strings.Contains(line, s) {
					t.Errorf("%s:%d cites %q: cite docs/ instead", path, i+1, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdminAnswersAreTyped: the admin API's handlers (switch/admin) and
// the switch's own HTTP handlers answer with typed structs (admin/types.go
// and their packages' report types), never an untyped map, so every key
// an answer can hold is declared in one place.
func TestAdminAnswersAreTyped(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	api, err := filepath.Glob("admin/*.go")
	if err != nil || len(api) == 0 {
		t.Fatalf("admin API sources: %v, %v", api, err)
	}
	files = append(files, api...)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"map[string]any", "map[string]interface{}"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s builds a %s", f, s)
			}
		}
	}
}

// TestTransportKnowsNoProtocol: switch/transport serves a Protocol and
// imports nothing of this module, so that it can hold no *Switch and no
// message type (docs/architecture.md).
func TestTransportKnowsNoProtocol(t *testing.T) {
	files, err := filepath.Glob("transport/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("transport sources: %v, %v", files, err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range parsed.Imports {
			if strings.Contains(im.Path.Value, "github.com/cardswitch/cardswitch/") {
				t.Errorf("%s imports %s", f, im.Path.Value)
			}
		}
	}
}
