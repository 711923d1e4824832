package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardswitch/cardswitch/internal/posim"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--mix", "everything"},
		{"--terminals", "6", "--duration", "1s"}, // demo data has 5 terminals
		{"--cards-out", "/dev/null", "--terminals", "1"},
		{"--no-such-flag"},
		{"verify", "--ack-log", "a"},
		{"baseline-server"},
	} {
		var out, errb bytes.Buffer
		if rc := Main(args, &out, &errb); rc != 2 {
			t.Errorf("posim %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), rc, errb.String())
		}
	}
}

// TestTokenFromEnvironment: with no --token, posim sends $POSIM_TOKEN to
// the admin API, so the token need not appear on the command line.
func TestTokenFromEnvironment(t *testing.T) {
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	t.Setenv("POSIM_TOKEN", "from-env")
	var out, errb bytes.Buffer
	if rc := Main([]string{"--admin", srv.URL, "--terminals", "1", "--duration", "1s", "--quiet"}, &out, &errb); rc != 1 {
		t.Fatalf("exit %d, want 1 (provisioning refused); stderr %q", rc, errb.String())
	}
	if h := <-got; h != "Bearer from-env" {
		t.Fatalf("Authorization %q, want the token from POSIM_TOKEN", h)
	}
}

// TestOutputFilesArePrivate: the files posim writes are created 0600, so
// a cards file's card numbers are not readable by other users.
func TestOutputFilesArePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cards.txt")
	f, err := createPrivate(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Fatalf("mode %o, want 600", m)
	}
}

// TestPrintCPU: the server's CPU per transaction is printed under the
// name given only with its PID, posim's own whenever it was read.
func TestPrintCPU(t *testing.T) {
	res := &posim.Result{Approved: 900, Declined: 100, CPUTicks: 5, SelfCPUTicks: 2}
	var b bytes.Buffer
	printCPU(&b, res, "server", 42)
	if want := "server cpu_us_per_tx=50.0\nposim cpu_us_per_tx=20.0\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	printCPU(&b, res, "switch", 0)
	if want := "posim cpu_us_per_tx=20.0\n"; b.String() != want {
		t.Errorf("without a PID: got %q, want %q", b.String(), want)
	}
	b.Reset()
	res.CPUTicks, res.SelfCPUTicks = -1, -1
	if printCPU(&b, res, "switch", 42); b.Len() != 0 {
		t.Errorf("unreadable: got %q, want nothing", b.String())
	}
}
