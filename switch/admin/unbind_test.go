package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
)

// failingUnbind is a Recharge whose UnbindGateway removes unbound cards
// and then fails, as when a later batch's commit fails.
type failingUnbind struct {
	Recharge
	unbound int
	err     error
}

func (f failingUnbind) UnbindGateway(gateway, operator string, max int) (int, bool, error) {
	return f.unbound, true, f.err
}

// TestUnbindGatewayFailedPartWay: a gateway unbind whose commit fails
// after earlier batches committed answers 500 with how many cards were
// unbound before the error (docs/admin-api.md); one that unbound none
// answers the plain error.
func TestUnbindGatewayFailedPartWay(t *testing.T) {
	for _, tc := range []struct {
		unbound int
		status  int
		want    string
	}{
		{200, http.StatusInternalServerError, `{"error":"disk full","gateway":"old-bank","unbound":200}`},
		{0, http.StatusBadRequest, `{"error":"disk full"}`},
	} {
		a := New(Config{Log: zap.NewNop(), Recharge: failingUnbind{unbound: tc.unbound, err: errors.New("disk full")}})
		mux := http.NewServeMux()
		a.registerRecharge(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("DELETE", "/api/v1/gateways/old-bank/bindings?operator=alice", nil))
		var got bytes.Buffer
		if rec.Code != tc.status || json.Compact(&got, rec.Body.Bytes()) != nil || got.String() != tc.want {
			t.Fatalf("unbound %d: %d %s, want %d %s", tc.unbound, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
}
