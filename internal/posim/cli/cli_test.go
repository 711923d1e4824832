package cli

import (
	"bytes"
	"strings"
	"testing"
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
