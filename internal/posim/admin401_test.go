package posim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAdminRefusalNamesToken: a 401 or 403 from the admin API tells the
// user how posim takes the token.
func TestAdminRefusalNamesToken(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}`))
		}))
		o := &ProvisionOptions{Admin: srv.URL, Token: "wrong", Client: srv.Client()}
		err := adminCall(context.Background(), o, "GET", "/api/v1/merchants/898310000000001", nil, nil)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "--token or in POSIM_TOKEN") {
			t.Errorf("HTTP %d: %v, want the --token/POSIM_TOKEN hint", status, err)
		}
	}
}
