package integration_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/redisstore"
)

// loginServer is a fleet server on Redis with login-only resumption, set
// up as a user would (fleet.NewServer), serving HTTPS on loopback.
func loginServer(t *testing.T, addr, prefix string, keys []fleet.Key, cert tls.Certificate) string {
	t.Helper()
	rdb, err := redisstore.Open(context.Background(), &redis.UniversalOptions{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	store, err := redisstore.New(rdb, &redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fleet.NewServer(store, &fleet.ServerOptions{Keys: keys, ApprovedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		srv.Approve(adapter.ConnSessionsFrom(r.Context()))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if _, err := srv.RevokeWait(r.Context(), adapter.Revocation{Conn: adapter.ConnSessionsFrom(r.Context())}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(hs, ln, "", "") }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the fleet's watch did not start")
	}
	return "https://" + ln.Addr().String()
}

// Login on A, resume on B, logout on B, refused on A: approval and
// revocation reach the fleet through the library calls alone
// (Server.Approve, RevokeWait), on a real Redis.
func TestFleetLoginLibrary(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix(t)
	keys := []fleet.Key{fleet.GenerateKey()}
	pki := thePKI(t)
	cert := pki.leaf(t, "localhost")
	a := loginServer(t, addr, prefix, keys, cert)
	b := loginServer(t, addr, prefix, keys, cert)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		RootCAs: pki.pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}}}
	step := func(method, url string, wantResumed bool) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s", method, url, resp.Status)
		}
		if resp.TLS.DidResume != wantResumed {
			t.Fatalf("%s %s: resumed %v, want %v", method, url, resp.TLS.DidResume, wantResumed)
		}
	}
	step("GET", a+"/", false)
	step("GET", b+"/", false) // nothing approved: nothing resumes
	step("POST", a+"/login", false)
	step("GET", b+"/", true) // approved on A, resumed on B
	step("GET", a+"/", true) // the ticket B issued inherits the approval
	step("GET", b+"/", true)
	step("POST", b+"/logout", true)
	step("GET", a+"/", false) // logged out on B, refused on A
	step("GET", b+"/", false)
}
