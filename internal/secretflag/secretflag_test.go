package secretflag

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestValue(t *testing.T) {
	t.Setenv("X_TOKEN", "from-env-secret")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "from-env-secret"},
		{[]string{"--token", "from-flag"}, "from-flag"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		tok := New(fs, "token", "X_TOKEN", "admin token")
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if got := tok.Get(); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.args, got, tt.want)
		}
		fs.PrintDefaults()
		if u := out.String(); strings.Contains(u, "secret") || !strings.Contains(u, "$X_TOKEN") {
			t.Errorf("usage shows the secret or not its variable:\n%s", u)
		}
	}
}
