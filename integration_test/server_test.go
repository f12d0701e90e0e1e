package integration_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// forEachVersion runs f once per TLS version.
func forEachVersion(t *testing.T, f func(t *testing.T, version uint16)) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) { f(t, v.v) })
	}
}

func TestDefaultResumption(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		forEachTracking(t, func(t *testing.T, track bool, opts ...func(*server)) {
			p := thePKI(t)
			cache := tlscache.New(nil)
			s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil, opts...)
			client := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))

			if dial(t, s.addr, client).DidResume {
				t.Fatal("first connection resumed")
			}
			if !dial(t, s.addr, client).DidResume {
				t.Fatal("second connection did not resume")
			}
			want := tlscache.Stats{Number: 1, Accept: 2, AcceptGood: 2, Hits: 1, InternalHits: 1}
			if version == tls.VersionTLS13 {
				want.Number = 2 // every TLS 1.3 handshake issues a new ticket
			}
			if diff := cmp.Diff(want, cache.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if track {
				first := s.onlyIssued(t, 0)
				if got := s.conn(t, 1).Resumed(); got != first {
					t.Errorf("second connection resumed from %x, want the first's session %x", id(got), first.ID)
				}
				if s.conn(t, 0).Resumed() != nil {
					t.Error("first connection has a resumed-from session")
				}
			}
		})
	})
}

// forEachTracking runs f with connections tracked (through a per-connection
// config) and untracked (the shared callbacks); opts start the server so.
func forEachTracking(t *testing.T, f func(t *testing.T, tracked bool, opts ...func(*server))) {
	t.Run("tracked", func(t *testing.T) { f(t, true) })
	t.Run("untracked", func(t *testing.T) { f(t, false, untracked) })
}

func id(s *tlscache.Session) []byte {
	if s == nil {
		return nil
	}
	return s.ID
}

// With NoInternalStore, a session resumes only once the application added it.
func TestNoInternalStoreControlledResumption(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		var issued []string
		var mu sync.Mutex
		cache := tlscache.New(&tlscache.Options{
			Mode: tlscache.Server | tlscache.NoInternalStore,
			NewHook: func(s *tlscache.Session) error {
				mu.Lock()
				issued = append(issued, string(s.ID))
				mu.Unlock()
				return nil
			},
		})
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		client := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))

		dial(t, s.addr, client)
		if dial(t, s.addr, client).DidResume {
			t.Fatal("resumed a session the application did not add")
		}
		if cache.Len() != 0 {
			t.Fatalf("handshakes stored %d sessions under NoInternalStore", cache.Len())
		}
		// The application approves the second connection's session.
		approved := s.onlyIssued(t, 1)
		if !cache.Add(approved) {
			t.Fatal("Add = false")
		}
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("did not resume the added session")
		}
		mu.Lock()
		defer mu.Unlock()
		// The new hook saw every issued session (TLS 1.2 re-issues the resumed one).
		wantIssued := 3
		if version == tls.VersionTLS12 {
			wantIssued = 2
		}
		if len(issued) != wantIssued {
			t.Errorf("new hook called %d times, want %d", len(issued), wantIssued)
		}
	})
}

// With NoInternalLookup, lookups go to the get hook.
func TestNoInternalLookupWithGetHook(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		var (
			mu       sync.Mutex
			external = map[string][]byte{}
		)
		cache := tlscache.New(&tlscache.Options{
			Mode: tlscache.Server | tlscache.NoInternal,
			NewHook: func(s *tlscache.Session) error {
				b, err := s.MarshalBinary()
				mu.Lock()
				external[string(s.ID)] = b
				mu.Unlock()
				return err
			},
			GetHook: func(id []byte, take bool) (*tlscache.Session, error) {
				mu.Lock()
				b, ok := external[string(id)]
				mu.Unlock()
				if !ok {
					return nil, tlscache.ErrCacheMiss
				}
				s := new(tlscache.Session)
				return s, s.UnmarshalBinary(b)
			},
		})
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		client := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))
		dial(t, s.addr, client)
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("did not resume through the get hook")
		}
		st := cache.Stats()
		if st.Hits != 1 || st.CbHits != 1 || st.ExternalHits != 1 || st.Misses != 0 || st.Number != 0 {
			t.Errorf("stats = %+v; want Hits 1, CbHits 1, ExternalHits 1, Misses 0, nothing cached", st)
		}
	})
}

func TestRemoveMakesFullHandshake(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		client := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))
		dial(t, s.addr, client)
		if !s.srv.Revoke(s.onlyIssued(t, 0).ID) {
			t.Fatal("Revoke = false")
		}
		if dial(t, s.addr, client).DidResume {
			t.Fatal("resumed a removed session")
		}
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("the session issued after the removal does not resume")
		}
	})
}

func TestExpiryWithFakeClock(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		clock := newClock()
		cache := tlscache.New(&tlscache.Options{Timeout: time.Minute, Now: clock.Now})
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		client := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))
		dial(t, s.addr, client)
		clock.Advance(time.Minute) // valid at exactly its expiry
		if !dial(t, s.addr, client).DidResume {
			t.Fatal("did not resume at exactly the expiry time")
		}
		clock.Advance(2 * time.Minute)
		if dial(t, s.addr, client).DidResume {
			t.Fatal("resumed an expired session")
		}
		if st := cache.Stats(); st.Timeouts != 1 {
			t.Errorf("Timeouts = %d, want 1", st.Timeouts)
		}
	})
}

// A session issued for a.example must not resume on b.example, served by
// another certificate, even when a client offers it there.
func TestVirtualHostBinding(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		certA, certB := p.leaf(t, "a.example"), p.leaf(t, "b.example")
		s := startServer(t, serverConfig(version, certA, certB), cache, nil)

		shared := &stickyCache{} // offers the one session it has to any server
		clientA := clientConfig(t, version, "a.example", shared)
		clientB := clientConfig(t, version, "b.example", shared)
		// crypto/tls clients check the session's certificate against the
		// server name; an attacker's client does not.
		clientA.InsecureSkipVerify, clientB.InsecureSkipVerify = true, true

		dial(t, s.addr, clientA)
		if !dial(t, s.addr, clientA).DidResume {
			t.Fatal("did not resume on a.example")
		}
		shared.freeze()
		cs := dial(t, s.addr, clientB)
		if cs.DidResume {
			t.Fatal("a.example's session resumed on b.example")
		}
		if got := cs.PeerCertificates[0].Subject.CommonName; got != "b.example" {
			t.Errorf("b.example served by %q", got)
		}
		if st := cache.Stats(); st.ContextMismatches != 1 {
			t.Errorf("ContextMismatches = %d, want 1", st.ContextMismatches)
		}
		if !dial(t, s.addr, clientA).DidResume {
			t.Fatal("the session no longer resumes on a.example")
		}
	})
}

// A server with another certificate for the same name does not resume
// sessions of the first, even sharing its cache.
func TestCertificateBinding(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		s1 := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		s2 := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		s3 := startServer(t, serverConfig(version, s1.cfg.Certificates[0]), cache, nil)
		client := clientConfig(t, version, "localhost", &stickyCache{})
		dial(t, s1.addr, client)
		client.ClientSessionCache.(*stickyCache).freeze()
		if dial(t, s2.addr, client).DidResume {
			t.Fatal("resumed on a server with another certificate")
		}
		if !dial(t, s3.addr, client).DidResume {
			t.Fatal("did not resume on a server with the same certificate and cache")
		}
	})
}

// stickyCache is a client session cache that keeps one session and offers
// it for every server name: a careless or hostile client.
type stickyCache struct {
	mu     sync.Mutex
	cs     *tls.ClientSessionState
	frozen bool
}

func (c *stickyCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *stickyCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen && cs != nil {
		c.cs = cs
	}
}

// freeze keeps the current session whatever comes next.
func (c *stickyCache) freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

func TestSingleUseUnderRace(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, &adapter.ServerOptions{SingleUse: true})
		for round := range 5 {
			sticky := &stickyCache{}
			dial(t, s.addr, clientConfig(t, version, "localhost", sticky))
			sticky.freeze()
			const racers = 4
			var wg sync.WaitGroup
			results := make(chan bool, racers)
			for range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cs, err := tryDial(s.addr, clientConfig(t, version, "localhost", sticky))
					if err != nil {
						t.Errorf("racer: %v", err)
						return
					}
					results <- cs.DidResume
				}()
			}
			wg.Wait()
			close(results)
			resumed := 0
			for r := range results {
				if r {
					resumed++
				}
			}
			if resumed != 1 {
				t.Fatalf("round %d: %d of %d connections resumed one single-use ticket, want exactly 1", round, resumed, racers)
			}
		}
	})
}

func TestGarbageIdentityIsFullHandshake(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		s := startServer(t, serverConfig(version, p.leaf(t, "localhost")), cache, nil)
		sticky := &stickyCache{}
		dial(t, s.addr, clientConfig(t, version, "localhost", sticky))
		_, state, err := sticky.cs.ResumptionState()
		if err != nil {
			t.Fatal(err)
		}
		for _, ticket := range [][]byte{{0}, []byte("not a ticket at all"), make([]byte, 16), make([]byte, 4000)} {
			forged, err := tls.NewResumptionState(ticket, state)
			if err != nil {
				t.Fatal(err)
			}
			bad := &stickyCache{cs: forged, frozen: true}
			cs, err := tryDial(s.addr, clientConfig(t, version, "localhost", bad))
			if err != nil {
				t.Fatalf("ticket of %d bytes: handshake failed: %v", len(ticket), err)
			}
			if cs.DidResume {
				t.Fatalf("ticket of %d bytes resumed", len(ticket))
			}
		}
		if errs := s.handshakeErrors(); len(errs) != 0 {
			t.Errorf("server handshake errors: %v", errs)
		}
	})
}

// TLS 1.2 resumptions re-issue the resumed session under the same identity:
// the cache does not grow.
func TestTLS12ResumptionsDoNotGrowCache(t *testing.T) {
	forEachTracking(t, func(t *testing.T, _ bool, opts ...func(*server)) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		s := startServer(t, serverConfig(tls.VersionTLS12, p.leaf(t, "localhost")), cache, nil, opts...)
		client := clientConfig(t, tls.VersionTLS12, "localhost", tls.NewLRUClientSessionCache(4))
		dial(t, s.addr, client)
		before := cache.Len()
		for i := range 200 {
			if !dial(t, s.addr, client).DidResume {
				t.Fatalf("resumption %d failed", i)
			}
		}
		if after := cache.Len(); after != before {
			t.Errorf("cache grew from %d to %d sessions over 200 resumptions", before, after)
		}
		if st := cache.Stats(); st.Hits != 200 {
			t.Errorf("Hits = %d, want 200", st.Hits)
		}
	})
}

// Configs returned by GetConfigForClient are bound too.
func TestGetConfigForClient(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		perHost := map[string]*tls.Config{
			"a.example": serverConfig(version, p.leaf(t, "a.example")),
			"b.example": serverConfig(version, p.leaf(t, "b.example")),
		}
		base := serverConfig(version, p.leaf(t, "localhost"))
		base.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			return perHost[chi.ServerName], nil
		}
		s := startServer(t, base, cache, nil)
		for _, name := range []string{"a.example", "b.example", "localhost"} {
			client := clientConfig(t, version, name, tls.NewLRUClientSessionCache(4))
			cs := dial(t, s.addr, client)
			if got := cs.PeerCertificates[0].Subject.CommonName; got != name {
				t.Fatalf("%s served by %s", name, got)
			}
			if !dial(t, s.addr, client).DidResume {
				t.Fatalf("%s: no resumption", name)
			}
		}
		if st := cache.Stats(); st.Accept != 6 || st.AcceptGood != 6 || st.Hits != 3 {
			t.Errorf("stats = %+v, want Accept 6, AcceptGood 6, Hits 3", st)
		}
		// The contexts differ per host and name the host.
		names := map[string]bool{}
		for _, ss := range s.srv.Sessions() {
			names[ss.ServerName] = true
		}
		want := map[string]bool{"a.example": true, "b.example": true, "localhost": true}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("server names of the sessions (-want +got):\n%s", diff)
		}
		if n := s.srv.RevokeServerName("A.example."); n == 0 {
			t.Error("RevokeServerName(A.example.) removed nothing")
		}
		client := clientConfig(t, version, "a.example", tls.NewLRUClientSessionCache(4))
		dial(t, s.addr, client)
		s.srv.RevokeServerName("a.example")
		if dial(t, s.addr, client).DidResume {
			t.Error("resumed after RevokeServerName")
		}
	})
}

// The user's VerifyConnection still runs, and a handshake it rejects does
// not count as good.
func TestVerifyConnectionChained(t *testing.T) {
	p := thePKI(t)
	cache := tlscache.New(nil)
	cfg := serverConfig(tls.VersionTLS13, p.leaf(t, "localhost"))
	var calls int
	var mu sync.Mutex
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 2 {
			return fmt.Errorf("rejected by the application")
		}
		return nil
	}
	s := startServer(t, cfg, cache, nil)
	client := clientConfig(t, tls.VersionTLS13, "localhost", tls.NewLRUClientSessionCache(4))
	dial(t, s.addr, client)
	if _, err := tryDial(s.addr, client); err == nil {
		t.Error("the application's VerifyConnection did not reject the second handshake")
	}
	dial(t, s.addr, client)
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("user VerifyConnection called %d times, want 3", calls)
	}
	if st := cache.Stats(); st.Accept != 3 || st.AcceptGood != 2 {
		t.Errorf("Accept %d AcceptGood %d, want 3 and 2", st.Accept, st.AcceptGood)
	}
}

// Client certificates: sessions remember them and can be revoked by them.
func TestRevokeByClientCertificate(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p := thePKI(t)
		cache := tlscache.New(nil)
		cfg := serverConfig(version, p.leaf(t, "localhost"))
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.pool
		s := startServer(t, cfg, cache, nil)
		alice, bob := p.leaf(t, "alice"), p.leaf(t, "bob")
		clients := map[string]*tls.Config{}
		for name, cert := range map[string]tls.Certificate{"alice": alice, "bob": bob} {
			c := clientConfig(t, version, "localhost", tls.NewLRUClientSessionCache(4))
			c.Certificates = []tls.Certificate{cert}
			clients[name] = c
			dial(t, s.addr, c)
		}
		n := s.srv.RevokeFunc(func(ss adapter.ServerSession) bool {
			return ss.ClientSubject == "CN=alice"
		})
		if n != 1 {
			t.Fatalf("revoked %d sessions, want alice's 1", n)
		}
		if dial(t, s.addr, clients["alice"]).DidResume {
			t.Error("alice resumed after revocation")
		}
		if !dial(t, s.addr, clients["bob"]).DidResume {
			t.Error("bob did not resume")
		}
		var subjects []string
		for _, ss := range s.srv.Sessions() {
			subjects = append(subjects, strings.TrimPrefix(ss.ClientSubject, "CN="))
		}
		wantSubjects := []string{"alice", "bob"} // alice's new session, bob's
		if version == tls.VersionTLS13 {
			wantSubjects = []string{"alice", "bob", "bob"} // TLS 1.3 issues one per handshake
		}
		if diff := cmp.Diff(wantSubjects, subjects, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}
