package links

import (
	"testing"
	"time"
)

// TestRequestWithinBudget: a link waits the shorter of its own timeout
// and what is left of the request's answer budget; a spent budget is
// zero or less, and no budget leaves the link's timeout as it is.
func TestRequestWithinBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tt := range []struct {
		name     string
		deadline time.Time
		d, want  time.Duration
	}{
		{"no budget", time.Time{}, 10 * time.Second, 10 * time.Second},
		{"budget longer than the timeout", now.Add(30 * time.Second), 10 * time.Second, 10 * time.Second},
		{"budget shorter than the timeout", now.Add(2 * time.Second), 10 * time.Second, 2 * time.Second},
		{"budget ends now", now, 10 * time.Second, 0},
		{"budget spent", now.Add(-time.Second), 10 * time.Second, -time.Second},
	} {
		r := &Request{Deadline: tt.deadline}
		if got := r.within(tt.d, now); got != tt.want {
			t.Errorf("%s: within = %s, want %s", tt.name, got, tt.want)
		}
	}
}
