package rechargesim

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestMainUsage(t *testing.T) {
	// A gateway port that closes every connection at once: the client's
	// sign-on fails whatever the machine's load. (A port picked from
	// port 0 and closed could be taken meanwhile by another connection.)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed := l.Addr().String()
	for _, tc := range []struct {
		args   []string
		rc     int
		stderr string
	}{
		{[]string{"help"}, 0, ""},
		{[]string{"--help"}, 0, ""},
		{nil, 2, ""},
		{[]string{"refund"}, 2, "unknown command"},
		{[]string{"credit", "--order", "A"}, 2, "missing --order, --card and --amount"},
		{[]string{"verify", "--card", "6230151000000000061"}, 2, "missing --card and --name"},
		{[]string{"query"}, 2, "missing --order"},
		{[]string{"credit", "--order", "A", "--card", "6230151000000000061", "--amount", "1.234"}, 2, "--amount"},
		{[]string{"--via", "smoke", "query", "--order", "A"}, 2, "--via"},
		{[]string{"--zak", "XYZ", "query", "--order", "A"}, 1, "ZAK"},
		{[]string{"--addr", closed, "query", "--order", "A"}, 1, "rechargesim"},
	} {
		var out, errs bytes.Buffer
		if rc := Main(tc.args, &out, &errs); rc != tc.rc || !strings.Contains(errs.String(), tc.stderr) {
			t.Errorf("%v: rc %d, stderr %q; want %d and %q", tc.args, rc, errs.String(), tc.rc, tc.stderr)
		}
	}
}

func TestAnswerString(t *testing.T) {
	a := Answer{RC: "00", Order: "WEB-1", RRN: "338000000001", AuthCode: "000006", HasBalances: true, Cash: 5000}
	if got := a.String(); got != "rc=00 (approved) order=WEB-1 rrn=338000000001 auth=000006 cash=50.00 subsidy=0.00" {
		t.Fatalf("%q", got)
	}
	q := Answer{RC: "00", Status: "D", StatusRC: "61", Amount: 100001, Card: "6230151000000000061"}
	if got := q.String(); !strings.Contains(got, "status=D status_rc=61") || !strings.Contains(got, "amount=1000.01") {
		t.Fatalf("%q", got)
	}
}
