package integration_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

func TestClientCacheResumes(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), tlscache.New(nil), nil)
		cc := adapter.NewClientCache(nil, nil)
		client := clientConfig(t, version, "localhost", nil)
		cc.Install(client)
		if dial(t, s.addr, client).DidResume {
			t.Fatal("first connection resumed")
		}
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("second connection did not resume")
		}
		st := cc.Cache().Stats()
		if st.Connect != 2 || st.ConnectGood != 2 || st.Hits != 1 || st.Number != 1 {
			t.Errorf("client stats = %+v; want Connect 2, ConnectGood 2, Hits 1, Number 1", st)
		}
	})
}

// The client side honours the mode: NoInternalStore stores nothing, and the
// new hook still sees every ticket; manual Add makes it resume.
func TestClientNoInternalStoreAndManualAdd(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), tlscache.New(nil), nil)
		var seen []*tlscache.Session
		var mu sync.Mutex
		cache := tlscache.New(&tlscache.Options{
			Mode: tlscache.Client | tlscache.NoInternalStore,
			NewHook: func(s *tlscache.Session) error {
				mu.Lock()
				seen = append(seen, s)
				mu.Unlock()
				return nil
			},
		})
		client := clientConfig(t, version, "localhost", adapter.NewClientCache(cache, nil))
		dial(t, s.addr, client)
		if dial(t, s.addr, client).DidResume || cache.Len() != 0 {
			t.Fatalf("NoInternalStore stored a client session (Len %d)", cache.Len())
		}
		mu.Lock()
		last := seen[len(seen)-1]
		mu.Unlock()
		if string(last.ID) != "localhost" {
			t.Errorf("client session ID = %q, want the session key localhost", last.ID)
		}
		cache.Add(last)
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("did not resume the session added by hand")
		}
	})
}

// Two configs with different trust settings share one cache without
// resuming each other's sessions.
func TestClientIDContext(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), tlscache.New(nil), nil)
		shared := tlscache.New(&tlscache.Options{Mode: tlscache.Client})
		strict := clientConfig(t, version, "localhost", adapter.NewClientCache(shared, &adapter.ClientOptions{IDContext: []byte("strict")}))
		lax := clientConfig(t, version, "localhost", adapter.NewClientCache(shared, &adapter.ClientOptions{IDContext: []byte("lax")}))
		dial(t, s.addr, strict)
		if dial(t, s.addr, lax).DidResume {
			t.Fatal("lax config resumed the strict config's session")
		}
		if st := shared.Stats(); st.ContextMismatches != 1 {
			t.Errorf("ContextMismatches = %d, want 1", st.ContextMismatches)
		}
		if !dial(t, s.addr, lax).DidResume {
			t.Fatal("lax config does not resume its own session")
		}
	})
}

// Put(key, nil) deletes without inserting or evicting: a full cache keeps
// its good sessions.
func TestClientDeleteEvictsNothing(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		s := startServer(t, serverConfig(version, p.leaf(t, "a.example", "b.example")), tlscache.New(nil), nil)
		cache := tlscache.New(&tlscache.Options{Mode: tlscache.Client, MaxSessions: 2})
		cc := adapter.NewClientCache(cache, nil)
		a := clientConfig(t, version, "a.example", cc)
		b := clientConfig(t, version, "b.example", cc)
		dial(t, s.addr, a)
		dial(t, s.addr, b)
		if cache.Len() != 2 {
			t.Fatalf("Len = %d, want 2", cache.Len())
		}
		cc.Put("absent.example", nil)
		if cache.Len() != 2 || cache.Stats().CacheFull != 0 {
			t.Fatalf("Put(absent, nil) changed the cache: Len %d, CacheFull %d", cache.Len(), cache.Stats().CacheFull)
		}
		if !dial(t, s.addr, a).DidResume || !dial(t, s.addr, b).DidResume {
			t.Fatal("a session was lost to Put(absent, nil)")
		}
		// The standard library's LRU, for comparison, loses one.
		lru := tls.NewLRUClientSessionCache(2)
		dial(t, s.addr, clientConfig(t, version, "a.example", lru))
		dial(t, s.addr, clientConfig(t, version, "b.example", lru))
		lru.Put("absent.example", nil)
		_, okA := lru.Get("a.example")
		_, okB := lru.Get("b.example")
		t.Logf("stdlib LRU after Put(absent, nil): a.example kept %v, b.example kept %v", okA, okB)
	})
}

// A session exported from one cache and imported into a new one resumes,
// as with openssl s_client -sess_out / -sess_in.
func TestClientExportImport(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), tlscache.New(nil), nil)
		first := adapter.NewClientCache(nil, nil)
		dial(t, s.addr, clientConfig(t, version, "localhost", first))
		one, err := first.Export("localhost")
		if err != nil {
			t.Fatal(err)
		}
		all, err := first.ExportAll()
		if err != nil {
			t.Fatal(err)
		}

		second := adapter.NewClientCache(nil, nil)
		if err := second.Import(one); err != nil {
			t.Fatal(err)
		}
		if !dial(t, s.addr, clientConfig(t, version, "localhost", second)).DidResume {
			t.Fatal("imported session did not resume")
		}

		third := adapter.NewClientCache(nil, nil)
		if n, err := third.ImportAll(all); err != nil || n != 1 {
			t.Fatalf("ImportAll = %d, %v", n, err)
		}
		if !dial(t, s.addr, clientConfig(t, version, "localhost", third)).DidResume {
			t.Fatal("session imported with ImportAll did not resume")
		}

		// An expired session is refused by Import and skipped by ImportAll.
		clock := newClock()
		clock.Advance(3 * time.Hour) // the default timeout is 2 h
		late := adapter.NewClientCache(tlscache.New(&tlscache.Options{Mode: tlscache.Client, Now: clock.Now}), nil)
		if err := late.Import(one); !errors.Is(err, adapter.ErrExpired) {
			t.Errorf("Import of an expired session = %v, want ErrExpired", err)
		}
		if n, err := late.ImportAll(all); n != 0 || err != nil {
			t.Errorf("ImportAll of expired sessions = %d, %v; want 0, nil", n, err)
		}

		// Garbage is a clear error and changes nothing.
		fourth := adapter.NewClientCache(nil, nil)
		for _, bad := range [][]byte{nil, {1}, one[:len(one)-1], append(append([]byte{}, one...), 0), all[:7]} {
			if err := fourth.Import(bad); !errors.Is(err, adapter.ErrInvalidExport) {
				t.Errorf("Import(%d bytes) = %v, want ErrInvalidExport", len(bad), err)
			}
			if _, err := fourth.ImportAll(bad); !errors.Is(err, adapter.ErrInvalidExport) {
				t.Errorf("ImportAll(%d bytes) = %v, want ErrInvalidExport", len(bad), err)
			}
		}
		if fourth.Cache().Len() != 0 {
			t.Errorf("garbage imported %d sessions", fourth.Cache().Len())
		}
	})
}

// With single use, parallel connections each use their own ticket, and no
// ticket is offered twice.
func TestClientSingleUse(t *testing.T) {
	p := thePKI(t)
	version := uint16(tls.VersionTLS13)
	s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), tlscache.New(nil), &adapter.ServerOptions{SingleUse: true})
	cc := adapter.NewClientCache(nil, &adapter.ClientOptions{SingleUse: true, TicketsPerKey: 3})
	parallel := func(cache tls.ClientSessionCache) (resumed int) {
		client := clientConfig(t, version, "localhost", cache)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if dial(t, s.addr, client).DidResume {
					mu.Lock()
					resumed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return resumed
	}
	// Three first connections, all looking up before any stores, each leave
	// a ticket (Go servers send one per connection).
	if n := parallel(&barrierCache{ClientSessionCache: cc, waiting: 3, all: make(chan struct{})}); n != 0 {
		t.Fatalf("%d first connections resumed", n)
	}
	if got := cc.Cache().Len(); got != 3 {
		t.Fatalf("kept %d tickets, want 3", got)
	}
	// Three parallel connections each take their own ticket; all resume,
	// because the server (also single use) would refuse a ticket offered
	// twice.
	resumed := parallel(cc)
	if resumed != 3 {
		t.Errorf("%d of 3 parallel connections resumed, want 3", resumed)
	}
}

// barrierCache looks up, then holds every Get until `waiting` of them have
// looked up: no connection can store a ticket before the others looked.
type barrierCache struct {
	tls.ClientSessionCache
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func (b *barrierCache) Get(key string) (*tls.ClientSessionState, bool) {
	cs, ok := b.ClientSessionCache.Get(key)
	b.mu.Lock()
	if b.waiting--; b.waiting == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	<-b.all
	return cs, ok
}

// An http.Handler approves its connection's sessions; the next connections
// resume, also as TLS 1.3 rotates tickets, until a logout revokes the whole
// family.
func TestHTTPHandlerAddsSession(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
		srv := adapter.NewServer(cache, &adapter.ServerOptions{InheritApproval: true})
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			conn := adapter.ConnSessionsFrom(r.Context())
			if conn == nil {
				http.Error(w, "connection not tracked", http.StatusInternalServerError)
				return
			}
			for _, s := range conn.All() {
				cache.Add(s)
			}
			io.WriteString(w, "logged in")
		})
		mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
			for _, s := range adapter.ConnSessionsFrom(r.Context()).All() {
				srv.RevokeFamily(s)
			}
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
		hs := &http.Server{
			Handler:   mux,
			TLSConfig: serverConfig(version, p.leaf(t, "localhost")),
		}
		if err := srv.ConfigureHTTPServer(hs); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go hs.ServeTLS(ln, "", "")
		t.Cleanup(func() { hs.Close() })

		client := &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				DisableKeepAlives: true, // a new connection per request
				TLSClientConfig:   clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4)),
				ForceAttemptHTTP2: true,
			},
		}
		resumed := func(method, path string) bool {
			t.Helper()
			req, _ := http.NewRequest(method, "https://"+ln.Addr().String()+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %s", method, path, resp.Status)
			}
			if version == tls.VersionTLS13 && resp.TLS.NegotiatedProtocol != "h2" {
				t.Errorf("negotiated %q, want h2 (ConfigureHTTPServer sets NextProtos)", resp.TLS.NegotiatedProtocol)
			}
			return resp.TLS.DidResume
		}
		want := func(method, path string, wantResumed bool) {
			t.Helper()
			if got := resumed(method, path); got != wantResumed {
				t.Fatalf("%s %s: resumed %v, want %v", method, path, got, wantResumed)
			}
		}
		want("GET", "/", false)
		want("GET", "/", false) // not logged in: nothing resumes
		want("POST", "/login", false)
		for range 3 {
			want("GET", "/", true) // each resumption's new ticket inherits the approval
		}
		want("POST", "/logout", true)
		want("GET", "/", false)
		want("GET", "/", false)
		if cache.Len() != 0 {
			t.Errorf("%d sessions left after logout", cache.Len())
		}
	})
}

// With single use, a TLS 1.2 resumption's re-issued ticket is a new
// identity: every connection resumes once from the previous one's ticket,
// and the cache does not grow.
func TestSingleUseTLS12Chain(t *testing.T) {
	p := thePKI(t)
	cache := tlscache.New(nil)
	s := startServer(t, serverConfig(tls.VersionTLS12, p.leaf(t, "localhost")), cache, &adapter.ServerOptions{SingleUse: true})
	client := clientConfig(t, tls.VersionTLS12, "localhost", tls.NewLRUClientSessionCache(4))
	dial(t, s.addr, client)
	for i := range 5 {
		if !dial(t, s.addr, client).DidResume {
			t.Fatalf("resumption %d failed", i)
		}
		if cache.Len() != 1 {
			t.Fatalf("cache holds %d sessions, want 1", cache.Len())
		}
	}
	// The ticket just used is spent.
	sticky := &stickyCache{}
	dial(t, s.addr, clientConfig(t, tls.VersionTLS12, "localhost", sticky))
	sticky.freeze()
	if !dial(t, s.addr, clientConfig(t, tls.VersionTLS12, "localhost", sticky)).DidResume {
		t.Fatal("first use of a ticket failed")
	}
	if dial(t, s.addr, clientConfig(t, tls.VersionTLS12, "localhost", sticky)).DidResume {
		t.Fatal("a single-use TLS 1.2 ticket resumed twice")
	}
}
