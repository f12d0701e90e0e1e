package adapter

import (
	"context"
	"crypto/tls"
	"errors"
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

// An import error keeps the whole chain: the adapter's sentinel and the
// core's.
func TestImportErrorChain(t *testing.T) {
	s := &tlscache.Session{ID: []byte("x")}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	err = NewClientCache(nil, nil).Import(b[:len(b)-1]) // truncated
	if !errors.Is(err, ErrInvalidExport) || !errors.Is(err, tlscache.ErrInvalidSession) {
		t.Errorf("Import of a truncated export: %v; want ErrInvalidExport and tlscache.ErrInvalidSession", err)
	}
}

// A cache made with tlscache.New's default mode (Server) and handed to a
// ClientCache stores client sessions: its new hook sees the handshake's
// session, and the next connection resumes.
func TestClientCacheOnDefaultCache(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
		t.Fatal(err)
	}
	var reported int
	cache := tlscache.New(&tlscache.Options{NewHook: func(*tlscache.Session) error { reported++; return nil }})
	NewClientCache(cache, nil).Install(client)
	if cache.Mode()&tlscache.Client == 0 {
		t.Fatalf("mode %v: no Client bit", cache.Mode())
	}
	pipeHandshake(t, server, client)
	if !pipeHandshake(t, server, client).DidResume || reported == 0 {
		t.Errorf("resumed: no; new hook called %d times", reported)
	}

	off := tlscache.New(nil)
	off.SetMode(tlscache.Off)
	NewClientCache(off, nil)
	if off.Mode() != tlscache.Off {
		t.Errorf("a cache in mode Off became %v", off.Mode())
	}
}

// A cache made for clients (mode Client) and handed to a Server stores
// server sessions: the next connection resumes. A cache in mode Off keeps
// its mode.
func TestServerOnClientCache(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Client})
	if err := NewServer(cache, nil).Install(server); err != nil {
		t.Fatal(err)
	}
	if cache.Mode()&tlscache.Server == 0 {
		t.Fatalf("mode %v: no Server bit", cache.Mode())
	}
	pipeHandshake(t, server, client)
	if !pipeHandshake(t, server, client).DidResume {
		t.Error("a Server on a client-mode cache did not resume")
	}
	off := tlscache.New(&tlscache.Options{Off: true})
	NewServer(off, nil)
	if off.Mode() != tlscache.Off {
		t.Errorf("a cache in mode Off became %v", off.Mode())
	}
}
