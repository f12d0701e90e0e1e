package integration_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

// revocationPromise is the fleet's promise: no server resumes a revoked
// session later than this after the revoke returned, under any single
// fault.
const revocationPromise = time.Second

// mtlsConfig is a server config at one version that requires a client
// certificate from the test CA.
func mtlsConfig(t *testing.T, version uint16, cert tls.Certificate) *tls.Config {
	cfg := serverConfig(version, cert)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = thePKI(t).pool
	return cfg
}

// onlySession returns the one session m holds in its internal tier.
func onlySession(t *testing.T, m *fleetMember) *tlscache.Session {
	t.Helper()
	var all []*tlscache.Session
	for s := range m.cache.All() {
		all = append(all, s)
	}
	if len(all) != 1 {
		t.Fatalf("server holds %d sessions, want 1", len(all))
	}
	return all[0]
}

// refusedWithin polls m with client until a handshake is full, within the
// promise, and returns how long it took.
func refusedWithin(t *testing.T, name string, m *fleetMember, client *tls.Config) time.Duration {
	t.Helper()
	return testwait.For(t, name+" to refuse the revoked session", revocationPromise, func() bool {
		return !dial(t, m.addr, client).DidResume
	})
}

// TestRevokeAfterRotation: A issues a session, the client resumes on B (in
// TLS 1.3 it now holds the ticket B issued), and the original is revoked on
// A (by ID, server name, client certificate, predicate) or on C, which never
// saw a handshake (by ID, C reads the session's lineage from Redis; by client
// certificate): the client's next connection is
// full on every server, tracked connections or not. New sessions made after
// a revocation by name or certificate still resume.
func TestRevokeAfterRotation(t *testing.T) {
	addr := redistest.Addr(t)
	p := thePKI(t)
	cert := p.leaf(t, "localhost")
	alice := p.leaf(t, "alice")
	routes := []struct {
		name   string
		revoke func(a, c *fleetMember, orig *tlscache.Session)
	}{
		{"ID", func(a, _ *fleetMember, orig *tlscache.Session) { a.srv.Revoke(orig.ID) }},
		{"IDOnC", func(_, c *fleetMember, orig *tlscache.Session) { c.srv.Revoke(orig.ID) }}, // read from Redis
		{"ServerName", func(a, _ *fleetMember, _ *tlscache.Session) { a.srv.RevokeServerName("LocalHost.") }},
		{"ClientCertificate", func(a, _ *fleetMember, _ *tlscache.Session) { a.srv.RevokeClientCertificate(alice.Leaf) }},
		{"ClientCertificateOnC", func(_, c *fleetMember, _ *tlscache.Session) { c.srv.RevokeClientCertificate(alice.Leaf) }},
		{"Func", func(a, _ *fleetMember, _ *tlscache.Session) {
			a.srv.RevokeFunc(func(s adapter.ServerSession) bool { return strings.Contains(s.ClientSubject, "CN=alice") })
		}},
	}
	forEachVersion(t, func(t *testing.T, version uint16) {
		forEachTracking(t, func(t *testing.T, tracked bool, _ ...func(*server)) {
			for _, route := range routes {
				t.Run(route.name, func(t *testing.T) {
					o := newFleetOptions(t, addr)
					o.untracked = !tracked
					a := startMember(t, mtlsConfig(t, version, cert), o)
					b := startMember(t, mtlsConfig(t, version, cert), o)
					c := startMember(t, mtlsConfig(t, version, cert), o)

					tickets := &stickyCache{}
					client := clientConfig(t, version, "localhost", tickets)
					client.Certificates = []tls.Certificate{alice}
					if dial(t, a.addr, client).DidResume {
						t.Fatal("a client with no ticket resumed")
					}
					orig := onlySession(t, a)
					if !dial(t, b.addr, client).DidResume {
						t.Fatal("A's session did not resume on B")
					}
					tickets.freeze() // the newest ticket: B's in TLS 1.3
					var rotated bool
					for _, s := range b.srv.Sessions() {
						if !bytes.Equal(s.ID, orig.ID) {
							if !bytes.Equal(s.Lineage, orig.ID) {
								t.Fatalf("B issued %x in lineage %x, want A's session's lineage %x", s.ID, s.Lineage, orig.ID)
							}
							if s.ServerName != "localhost" || !strings.Contains(s.ClientSubject, "CN=alice") || len(s.ClientCertSHA256) != 32 {
								t.Fatalf("B's session metadata: name %q subject %q fingerprint %x", s.ServerName, s.ClientSubject, s.ClientCertSHA256)
							}
							rotated = true
						}
					}
					if rotated != (version == tls.VersionTLS13) {
						t.Fatalf("B issued a new ticket: %v, want %v (TLS 1.3 rotates, 1.2 re-issues)", rotated, version == tls.VersionTLS13)
					}

					route.revoke(a, c, orig)
					var delays []string
					for _, m := range []struct {
						name string
						m    *fleetMember
					}{{"A", a}, {"B", b}, {"C", c}} {
						delays = append(delays, fmt.Sprintf("%s %v", m.name, refusedWithin(t, m.name, m.m, client)))
					}
					t.Logf("refused after: %s", strings.Join(delays, ", "))

					fresh := clientConfig(t, version, "localhost", &stickyCache{})
					fresh.Certificates = []tls.Certificate{alice}
					dial(t, a.addr, fresh)
					if !dial(t, b.addr, fresh).DidResume {
						t.Fatal("a session made after the revocation did not resume on B")
					}
				})
			}
		})
	})
}

// threeMembers starts a fleet of A and B (two tiers) and C (Redis alone),
// and returns them with the options of a further member (Redis alone).
func threeMembers(t *testing.T, addr string, version uint16, cert tls.Certificate) (a, b, c *fleetMember, o fleetOptions) {
	o = newFleetOptions(t, addr)
	a = startMember(t, serverConfig(version, cert), o)
	b = startMember(t, serverConfig(version, cert), o)
	o.mode = tlscache.Server | tlscache.NoInternal
	c = startMember(t, serverConfig(version, cert), o)
	return a, b, c, o
}

// storedValues returns the session values in Redis under prefix.
func storedValues(t *testing.T, addr, prefix string) map[string][]byte {
	t.Helper()
	rc := redistest.Client(t, addr)
	ctx := context.Background()
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, k := range keys {
		if _, err := hex.DecodeString(strings.TrimPrefix(k, prefix)); err != nil || len(k)-len(prefix) != 2*adapter.IDLen {
			continue // the tombstones
		}
		v, err := rc.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// TestRevokedValueWrittenBack: the sealed values of a revoked lineage (the
// original, deleted, and in TLS 1.3 the ticket B issued from it, which stays
// in Redis until its TTL but no server resumes),
// written back into Redis by someone with write access, are refused by a
// server that holds nothing locally (C, Redis alone) and by one that joins
// after the revocation (D, which learns it from the tombstones).
func TestRevokedValueWrittenBack(t *testing.T) {
	addr := redistest.Addr(t)
	cert := thePKI(t).leaf(t, "localhost")
	forEachVersion(t, func(t *testing.T, version uint16) {
		a, b, c, o := threeMembers(t, addr, version, cert)

		tickets := &stickyCache{}
		client := clientConfig(t, version, "localhost", tickets)
		dial(t, a.addr, client)
		orig := onlySession(t, a)
		if !dial(t, b.addr, client).DidResume {
			t.Fatal("setup: B did not resume A's session")
		}
		tickets.freeze()
		saved := storedValues(t, addr, o.prefix)
		if len(saved) == 0 {
			t.Fatal("setup: nothing in Redis")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := a.srv.RevokeWait(ctx, adapter.Revocation{ID: orig.ID}); err != nil {
			t.Fatalf("RevokeWait: %v", err)
		}
		if _, ok := storedValues(t, addr, o.prefix)[o.prefix+hex.EncodeToString(orig.ID)]; ok {
			t.Fatal("the revoked session is still in Redis")
		}
		rc := redistest.Client(t, addr)
		for k, v := range saved {
			if err := rc.Set(ctx, k, v, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}
		d := startMember(t, serverConfig(version, cert), o) // joins after the revocation
		for name, m := range map[string]*fleetMember{"C": c, "D": d} {
			if dial(t, m.addr, client).DidResume {
				t.Fatalf("%s resumed a revoked session written back into Redis", name)
			}
			if st := m.srv.RevocationStats(); st.Refused == 0 {
				t.Fatalf("%s: %+v, want the resumption refused as revoked (not a miss)", name, st)
			}
		}
	})
}

// TestRevokeWaitConfirmed: once RevokeWait on A returns, B (which holds the
// session in its internal tier) and C (Redis alone) refuse it at once, with
// no polling.
func TestRevokeWaitConfirmed(t *testing.T) {
	addr := redistest.Addr(t)
	cert := thePKI(t).leaf(t, "localhost")
	forEachVersion(t, func(t *testing.T, version uint16) {
		a, b, c, _ := threeMembers(t, addr, version, cert)
		var waits []time.Duration
		for round := range 10 {
			client := ticketFrom(t, version, a.addr)
			orig := onlySession(t, a)
			if !dial(t, b.addr, client).DidResume || !dial(t, c.addr, client).DidResume {
				t.Fatalf("round %d: setup: the session did not resume on B and C", round)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			_, err := a.srv.RevokeWait(ctx, adapter.Revocation{Session: orig})
			waits = append(waits, time.Since(start))
			cancel()
			if err != nil {
				t.Fatalf("round %d: RevokeWait: %v", round, err)
			}
			for name, m := range map[string]*fleetMember{"B": b, "C": c} {
				if dial(t, m.addr, client).DidResume {
					t.Fatalf("round %d: %s resumed right after RevokeWait returned", round, name)
				}
			}
			a.cache.FlushAll()
		}
		slices.Sort(waits)
		t.Logf("RevokeWait took min %v median %v max %v", waits[0], waits[len(waits)/2], waits[len(waits)-1])
	})
}

// TestRotationFlood: with Size 5000, a client that keeps offering one TLS
// 1.3 ticket resumes every time, more than Size times, and rotating clients
// occupy at most LineageTickets entries each.
func TestRotationFlood(t *testing.T) {
	const size = 5000
	cache := tlscache.New(&tlscache.Options{MaxSessions: size})
	s := startServer(t, serverConfig(tls.VersionTLS13, thePKI(t).leaf(t, "localhost")), cache, nil, untracked)
	client := ticketFrom(t, tls.VersionTLS13, s.addr)
	client.CurvePreferences = []tls.CurveID{tls.X25519} // cheaper handshakes: the cache is under test
	const total, workers = size + 500, 4
	var mu sync.Mutex
	resumed, maxLen := 0, 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				cs, err := tryDial(s.addr, client)
				mu.Lock()
				if err == nil && cs.DidResume {
					resumed++
				}
				maxLen = max(maxLen, cache.Len())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("one ticket offered %d times by %d connections at a time: %d resumed; Len at most %d, at the end %d (Size %d)",
		total, workers, resumed, maxLen, cache.Len(), size)
	if resumed != total {
		t.Fatalf("%d of %d resumptions of one ticket resumed", resumed, total)
	}
	// A child is cached before its lineage's list drops the oldest: each
	// handshake in flight may hold one more for a moment.
	if maxLen > adapter.DefaultLineageTickets+workers || cache.Len() > adapter.DefaultLineageTickets {
		t.Fatalf("Len reached %d and ended at %d, want at most %d (one lineage, %d handshakes in flight) and %d",
			maxLen, cache.Len(), adapter.DefaultLineageTickets+workers, workers, adapter.DefaultLineageTickets)
	}

	const clients, rounds = 40, 8
	rot := make([]*tls.Config, clients)
	for i := range rot {
		rot[i] = clientConfig(t, tls.VersionTLS13, "localhost", &stickyCache{})
		rot[i].CurvePreferences = []tls.CurveID{tls.X25519}
	}
	resumed = 0
	for r := range rounds {
		for _, c := range rot {
			if dial(t, s.addr, c).DidResume {
				resumed++
			} else if r > 0 {
				t.Fatalf("round %d: a rotating client did not resume", r)
			}
		}
	}
	bound := (clients + 1) * adapter.DefaultLineageTickets
	t.Logf("%d clients rotating tickets for %d rounds: %d resumed, Len %d (bound %d)", clients, rounds, resumed, cache.Len(), bound)
	if cache.Len() > bound {
		t.Fatalf("Len %d after rotation, want at most %d", cache.Len(), bound)
	}
	if st := s.srv.RevocationStats(); st.Evicted == 0 {
		t.Fatalf("%+v: no parent left the cache", st)
	}
}
