package integration_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/redisstore"
)

// loginServer is a fleet server on Redis with login-only resumption, set
// up as a user would (fleet.NewServer), serving HTTPS on loopback.
func loginServer(t *testing.T, ropts *redis.UniversalOptions, prefix string, keys []fleet.Key, cert tls.Certificate) string {
	t.Helper()
	rdb, err := redisstore.Open(context.Background(), ropts)
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
		if _, err := srv.Approve(adapter.ConnSessionsFrom(r.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
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
	ropts := &redis.UniversalOptions{Addrs: []string{redistest.Addr(t)}}
	a, b, step := loginFleet(t, ropts)
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

// loginFleet starts two login servers on the Redis ropts names, and
// returns their URLs and a client's step (see loginClient).
func loginFleet(t *testing.T, ropts *redis.UniversalOptions) (a, b string, step func(method, url string, wantResumed bool, status ...int) string) {
	prefix := redistest.Prefix(t)
	keys := []fleet.Key{fleet.GenerateKey()}
	pki := thePKI(t)
	cert := pki.leaf(t, "localhost")
	a = loginServer(t, ropts, prefix, keys, cert)
	b = loginServer(t, ropts, prefix, keys, cert)
	return a, b, loginClient(t, pki)
}

// loginClient returns a client's step: a request on a new connection that
// must resume as wanted and answer 200, or the status given; it returns
// the body.
func loginClient(t *testing.T, pki *pki) func(method, url string, wantResumed bool, status ...int) string {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		RootCAs: pki.pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}}}
	return func(method, url string, wantResumed bool, status ...int) string {
		t.Helper()
		want := http.StatusOK
		if len(status) > 0 {
			want = status[0]
		}
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s %s, want %d", method, url, resp.Status, body, want)
		}
		if resp.TLS.DidResume != wantResumed {
			t.Fatalf("%s %s: resumed %v, want %v", method, url, resp.TLS.DidResume, wantResumed)
		}
		return strings.TrimSpace(string(body))
	}
}

// On a Sentinel set whose replica is stopped, a logout's RevokeWait says
// the revocation is not yet safe from a failover (one would promote the
// replica, which lacks its tombstone), and the fleet applies it anyway;
// with the replica back, logouts succeed again.
func TestFleetLogoutReplicaStopped(t *testing.T) {
	st := redistest.StartSentinel(t)
	ropts := &redis.UniversalOptions{Addrs: st.Addrs(), MasterName: st.MasterName}
	a, b, step := loginFleet(t, ropts)
	step("POST", a+"/login", false)
	step("GET", b+"/", true)

	st.Replica.Pause()
	defer st.Replica.Resume()
	start := time.Now()
	body := step("POST", b+"/logout", true, http.StatusServiceUnavailable)
	took := time.Since(start)
	if !strings.Contains(body, "replicas") {
		t.Fatalf("logout with the replica stopped answered %q, which does not name the replicas", body)
	}
	t.Logf("logout with the replica stopped, after %v: %s", took.Round(time.Millisecond), body)
	step("GET", a+"/", false) // applied anyway: refused on A
	step("GET", b+"/", false)

	st.Replica.Resume()
	// The replica has caught up (WAIT on the master returns once it
	// acknowledged every write so far) before the next logout waits for it.
	master := redistest.Client(t, st.Master.Addr)
	testwait.For(t, "the replica to catch up", 10*time.Second, func() bool {
		n, err := master.Do(context.Background(), "WAIT", 1, 1000).Int()
		return err == nil && n >= 1
	})
	step("POST", a+"/login", false)
	step("GET", b+"/", true)
	step("POST", b+"/logout", true)
	step("GET", a+"/", false)
}
