package adapter

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// A connection that is not tracked (Install without ConnContext, h2c, a
// proxy) has no ConnSessions, and the documented idiom still works: it
// finds nothing.
func TestConnSessionsNilSafe(t *testing.T) {
	var got []*tlscache.Session
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn := ConnSessionsFrom(r.Context())
		got = conn.All()
		if conn.Resumed() != nil || conn.Issued() != nil {
			t.Error("an untracked connection reports sessions")
		}
	}))
	ts.TLS = &tls.Config{}
	ts.StartTLS() // httptest's own certificate; no ConnContext
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != nil {
		t.Errorf("All() = %v on an untracked connection", got)
	}
	if ConnSessionsFrom(context.Background()).All() != nil {
		t.Error("All() on no connection at all")
	}
}
