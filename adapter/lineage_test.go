package adapter

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testclock"
	"github.com/tlscache/tlscache/tlscache"
)

// sessions returns the cached sessions, oldest first.
func sessions(c *tlscache.Cache) []*tlscache.Session {
	var all []*tlscache.Session
	for s := range c.All() {
		all = append(all, s)
	}
	return all
}

// TestLineageOfUntrackedConnections: sessions issued on resumed handshakes
// of connections no ConnSessions tracks join the first session's lineage,
// recorded in their state with the server name and client certificate.
func TestLineageOfUntrackedConnections(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tlscache.New(nil)
		srv := NewServer(cache, nil)
		server, client := testConfigs(t, version)
		cert, pool := selfSigned(t)
		server.ClientAuth, server.ClientCAs = tls.RequireAnyClientCert, pool
		client.Certificates = []tls.Certificate{cert}
		client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		if err := srv.Install(server); err != nil {
			t.Fatal(err)
		}
		if pipeHandshake(t, server, client).DidResume {
			t.Fatal("the first handshake resumed")
		}
		first := sessions(cache)[0]
		for i := range 3 {
			if !pipeHandshake(t, server, client).DidResume {
				t.Fatalf("version %x: resumption %d did not resume", version, i+1)
			}
		}
		all := sessions(cache)
		want := 1 // TLS 1.2 re-issues the resumed session
		if version == tls.VersionTLS13 {
			want = 4
		}
		if len(all) != want {
			t.Fatalf("version %x: %d sessions cached, want %d", version, len(all), want)
		}
		for _, s := range all {
			info := srv.Session(s)
			if !bytes.Equal(info.Lineage, first.ID) {
				t.Errorf("version %x: session %x has lineage %x, want %x", version, s.ID, info.Lineage, first.ID)
			}
			if info.ServerName != "example.com" || info.ClientSubject != cert.Leaf.Subject.String() || len(info.ClientCertSHA256) != 32 {
				t.Errorf("version %x: metadata %q %q %x", version, info.ServerName, info.ClientSubject, info.ClientCertSHA256)
			}
			ss, err := tls.ParseSessionState(s.State)
			if err != nil {
				t.Fatal(err)
			}
			if full, fast := metaOf(ss), metaFromState(s.State); full == nil || fast == nil || string(full.append(nil)) != string(fast.append(nil)) {
				t.Errorf("version %x: metadata parsed from the state %+v, read fast %+v", version, full, fast)
			}
		}
	}
}

// TestLineageTicketLimit: a client that keeps offering one ticket keeps it,
// however many children its resumptions issue; a rotating client's oldest
// tickets leave the cache.
func TestLineageTicketLimit(t *testing.T) {
	cache := tlscache.New(nil)
	srv := NewServer(cache, &ServerOptions{LineageTickets: 2})
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	sticky := &onceCache{}
	client.ClientSessionCache = sticky
	pipeHandshake(t, server, client)
	ticket := sessions(cache)[0]
	sticky.frozen = true
	for i := range 10 {
		if !pipeHandshake(t, server, client).DidResume {
			t.Fatalf("resumption %d of one ticket did not resume", i+1)
		}
	}
	if cache.Peek(ticket.ID) == nil || cache.Len() != 2 {
		t.Fatalf("Len %d, offered ticket cached: %v; want 2 and true", cache.Len(), cache.Peek(ticket.ID) != nil)
	}
	if st := srv.RevocationStats(); st.Evicted != 9 {
		t.Fatalf("Evicted %d, want 9 (every child but the newest)", st.Evicted)
	}
	sticky.frozen = false
	for i := range 5 {
		if !pipeHandshake(t, server, client).DidResume {
			t.Fatalf("rotation %d did not resume", i+1)
		}
	}
	if cache.Len() != 2 {
		t.Fatalf("Len %d after rotating, want 2", cache.Len())
	}
}

// onceCache keeps one client session, and stops taking new ones once frozen.
type onceCache struct {
	cs     *tls.ClientSessionState
	frozen bool
}

func (c *onceCache) Get(string) (*tls.ClientSessionState, bool) { return c.cs, c.cs != nil }
func (c *onceCache) Put(_ string, cs *tls.ClientSessionState) {
	if !c.frozen && cs != nil {
		c.cs = cs
	}
}

// TestRevocationRules: what each kind of revocation refuses.
func TestRevocationRules(t *testing.T) {
	clock := testclock.New(time.Unix(1_000_000, 0))
	cache := tlscache.New(&tlscache.Options{Now: clock.Now})
	srv := NewServer(cache, nil)
	t0 := clock.Now()
	old := &lineageMeta{lineage: []byte("lineage-1"), born: t0.UnixNano(), serverName: "a.example", hasCert: true}
	old.certSHA256[0] = 7
	young := *old
	young.lineage, young.born = []byte("lineage-2"), t0.Add(time.Second).UnixNano()
	sess := &tlscache.Session{ID: []byte("id-1"), IDContext: []byte("ctx")}
	revoked := func(m *lineageMeta) bool { return srv.revs.revoked(sess, m) }
	if revoked(old) {
		t.Fatal("revoked before any revocation")
	}
	for _, c := range []struct {
		name   string
		marker []byte
		old    bool // the lineage born at t0 is refused
		young  bool // the lineage born after the revocation is refused
	}{
		{"name", newMarker(revokeName, t0, []byte("a.example")), true, false},
		{"context", newMarker(revokeContext, t0, []byte("ctx")), true, false},
		{"cert", newMarker(revokeCert, t0, old.certSHA256[:]), true, false},
		{"lineage", newMarker(revokeLineage, t0, []byte("lineage-1")), true, false},
		{"id", newMarker(revokeID, t0, []byte("id-1")), true, true},
	} {
		srv = NewServer(cache, nil)
		srv.Invalidate(c.marker)
		if got := revoked(old); got != c.old {
			t.Errorf("%s: old lineage refused %v, want %v", c.name, got, c.old)
		}
		if got := revoked(&young); got != c.young {
			t.Errorf("%s: young lineage refused %v, want %v", c.name, got, c.young)
		}
	}
	// Revocations expire with the cache's timeout.
	clock.Advance(cache.Timeout() + time.Second)
	srv.revs.add(revokeName, t0.UnixNano(), []byte("b.example"), clock.Now().Add(time.Hour).UnixNano(), clock.Now().UnixNano())
	if revoked(old) || srv.RevocationStats().Revocations != 1 {
		t.Fatalf("a revocation outlived the timeout: %+v", srv.RevocationStats())
	}
}

func TestMarkers(t *testing.T) {
	at := time.Unix(1234, 5678)
	m := newMarker(revokeName, at, []byte("x.example"))
	kind, got, subject, ok := parseMarker(m)
	if !ok || kind != revokeName || got != at.UnixNano() || string(subject) != "x.example" {
		t.Fatalf("parseMarker = %c %d %q %v", kind, got, subject, ok)
	}
	for _, junk := range [][]byte{nil, []byte("tlscache revoke\x00"), append([]byte("tlscache revoke\x00Z"), make([]byte, 9)...), make([]byte, 40)} {
		if _, _, _, ok := parseMarker(junk); ok {
			t.Errorf("parseMarker(%q) ok", junk)
		}
	}
}

// FuzzLineageMeta: any bytes, as an Extra entry or as a whole state, parse
// without panic, and what parses re-encodes to the same bytes.
func FuzzLineageMeta(f *testing.F) {
	m := &lineageMeta{lineage: []byte("0123456789abcdef"), born: 42, serverName: "a.example", hasCert: true, subject: "CN=x"}
	f.Add(m.append(nil))
	f.Add([]byte("tlscache lineage\x00\x01a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := parseMeta(b); ok && !bytes.Equal(m.append(nil), b) {
			t.Fatalf("%q parsed and re-encoded as %q", b, m.append(nil))
		}
		metaFromState(b)
	})
}
