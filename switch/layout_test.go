package switching

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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
	for p := range moduleImports(t, "transport") {
		t.Errorf("switch/transport imports %s", p)
	}
}

// module is this module's import path prefix.
const module = "github.com/cardswitch/cardswitch/"

// moduleImports is the set of this module's packages (as paths below the
// module, "switch/txn") that the sources in dir (relative to switch/)
// import, its own subpackages left out.
func moduleImports(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(dir + "/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources in %s: %v", dir, err)
	}
	self := strings.TrimPrefix(filepath.ToSlash(filepath.Join("switch", dir)), "../")
	got := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range parsed.Imports {
			path := strings.Trim(im.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(path, module); ok && !strings.HasPrefix(rest, self+"/") {
				got[rest] = true
			}
		}
	}
	return got
}

// TestArchitectureImports: the import table of docs/architecture.md is
// the code's: every package it names imports exactly the packages of this
// module its row lists (or none, for "nothing of ours"), so the drawing's
// boxes and arrows stay true.
func TestArchitectureImports(t *testing.T) {
	b, err := os.ReadFile("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "| package | imports of this module |")
	if !ok {
		t.Fatal("docs/architecture.md has no import table")
	}
	names := regexp.MustCompile("`([a-z/]+)`")
	rows := 0
	for _, line := range strings.Split(after, "\n")[2:] {
		if !strings.HasPrefix(line, "| ") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.Contains(cells[2], "every package below it") {
			continue
		}
		want := map[string]bool{}
		if !strings.Contains(cells[2], "nothing of ours") {
			for _, m := range names.FindAllStringSubmatch(cells[2], -1) {
				want[m[1]] = true
			}
		}
		for _, m := range names.FindAllStringSubmatch(cells[1], -1) {
			pkg := m[1]
			rows++
			got := moduleImports(t, "../"+pkg)
			for p := range got {
				if !want[p] {
					t.Errorf("%s imports %s; docs/architecture.md does not list it", pkg, p)
				}
			}
			for p := range want {
				if !got[p] {
					t.Errorf("docs/architecture.md lists %s among the imports of %s; it does not import it", p, pkg)
				}
			}
		}
	}
	if rows < 10 {
		t.Fatalf("%d packages in the import table, want every package under switch/", rows)
	}
}
