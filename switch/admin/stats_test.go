package admin

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestErrorRingMasksAndBounds: the console's recent errors keep warnings
// and errors only, the newest MaxRecentErrors, with card numbers masked
// whatever field they came in.
func TestErrorRingMasksAndBounds(t *testing.T) {
	r := newErrorRing(3)
	log := zap.New(zapcore.NewTee(zapcore.NewNopCore(), r.Core()))
	log.Info("not kept")
	log.Warn("card 6230151000000000012 refused", zap.String("detail", "pan=6230151000000000020"))
	for i := 0; i < 2; i++ {
		log.Error("later")
	}
	got := r.list()
	if len(got) != 3 || got[2].Message != "later" || got[0].Level != "warn" {
		t.Fatalf("ring %+v", got)
	}
	log.Error("pushes the warning out")
	if l := r.list(); len(l) != 3 || l[0].Level != "error" {
		t.Fatalf("ring %+v", got)
	}
	if strings.Contains(got[0].Line, "6230151000000000012") || strings.Contains(got[0].Line, "6230151000000000020") {
		t.Fatalf("a card number reached the console: %s", got[0].Line)
	}
	if got[0].Time.IsZero() {
		t.Fatalf("no time parsed from %s", got[0].Line)
	}
}
