package fleet_test

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/loopback"
	"github.com/tlscache/tlscache/internal/testcert"
	"github.com/tlscache/tlscache/tlscache"
)

// countingStore counts the Puts that reach a memory store; while failPuts
// is set they fail.
type countingStore struct {
	*tlscache.MemoryStore
	puts     atomic.Int64
	failPuts atomic.Bool
}

var errPut = errors.New("put refused")

func (c *countingStore) Put(ctx context.Context, k string, d []byte, ttl time.Duration) error {
	c.puts.Add(1)
	if c.failPuts.Load() {
		return errPut
	}
	return c.MemoryStore.Put(ctx, k, d, ttl)
}

// member is one fleet server with a TLS config bound to it.
type member struct {
	srv *fleet.Server
	cfg *tls.Config
}

func newMember(t *testing.T, store tlscache.Store, keys []fleet.Key, cert tls.Certificate, opts fleet.ServerOptions) *member {
	t.Helper()
	opts.Keys = keys
	srv, err := fleet.NewServer(store, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if err := srv.Install(cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not start")
	}
	return &member{srv: srv, cfg: cfg}
}

// handshake runs one tracked connection to m and returns its record and
// whether it resumed.
func (m *member) handshake(t *testing.T, client *tls.Config) (*adapter.ConnSessions, bool) {
	t.Helper()
	ctx, cs := adapter.WithConnSessions(context.Background())
	return cs, loopback.ConnectContext(t, ctx, m.cfg, client).DidResume
}

// ApprovedOnly: handshakes store nothing; Approve on A stores the
// connection's sessions, which resume on B; the tickets issued on B's
// resumptions inherit the approval and resume on A; a revocation of the
// connection on B ends them on A.
func TestNewServerApprovedOnly(t *testing.T) {
	store := &countingStore{MemoryStore: tlscache.NewMemoryStore(0, nil)}
	keys := []fleet.Key{fleet.GenerateKey()}
	cert, roots := testcert.SelfSigned("example.com")
	a := newMember(t, store, keys, cert, fleet.ServerOptions{ApprovedOnly: true})
	b := newMember(t, store, keys, cert, fleet.ServerOptions{ApprovedOnly: true})
	client := &tls.Config{RootCAs: roots, ServerName: "example.com", ClientSessionCache: tls.NewLRUClientSessionCache(0)}

	cs, _ := a.handshake(t, client)
	if _, resumed := b.handshake(t, client); resumed {
		t.Fatal("a session nobody approved resumed on B")
	}
	if n := store.puts.Load(); n != 0 {
		t.Fatalf("handshakes stored %d sessions under ApprovedOnly", n)
	}
	cs, _ = a.handshake(t, client) // the login's connection
	a.srv.Approve(cs)
	if n := store.puts.Load(); n != int64(len(cs.All())) {
		t.Fatalf("Approve stored %d sessions, the connection has %d", n, len(cs.All()))
	}
	var last *adapter.ConnSessions
	for i, m := range []*member{b, a, b, a} {
		before := store.puts.Load()
		got, resumed := m.handshake(t, client)
		if !resumed {
			t.Fatalf("handshake %d after the approval did not resume", i)
		}
		if store.puts.Load() != before+int64(len(got.Issued())) {
			t.Fatalf("handshake %d: %d Puts for %d inherited tickets", i, store.puts.Load()-before, len(got.Issued()))
		}
		last = got
	}
	// RevokeWait would wait for the other servers' confirmations, which a
	// memory store cannot give (integration_test does it on Redis).
	b.srv.RevokeFamily(last.Resumed())
	for i, m := range []*member{a, b} {
		if _, resumed := m.handshake(t, client); resumed {
			t.Fatalf("server %d resumed after the logout", i)
		}
	}
}

// A login whose sessions the store does not take is told so (Approve's
// error wraps the store's), and resumes on its server only; once the store
// takes them, Approve returns nil and they resume on the other server.
func TestApproveStoreFails(t *testing.T) {
	store := &countingStore{MemoryStore: tlscache.NewMemoryStore(0, nil)}
	keys := []fleet.Key{fleet.GenerateKey()}
	cert, roots := testcert.SelfSigned("example.com")
	a := newMember(t, store, keys, cert, fleet.ServerOptions{ApprovedOnly: true})
	b := newMember(t, store, keys, cert, fleet.ServerOptions{ApprovedOnly: true})
	client := func() *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "example.com", ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	}

	store.failPuts.Store(true)
	c1 := client()
	cs, _ := a.handshake(t, c1)
	n, err := a.srv.Approve(cs)
	if !errors.Is(err, errPut) || n != len(cs.All()) {
		t.Fatalf("Approve with the store refusing: %d, %v; want %d sessions added here and the store's error", n, err, len(cs.All()))
	}
	t.Logf("Approve with the store refusing: %v", err)
	if _, resumed := b.handshake(t, c1); resumed {
		t.Fatal("a session the store refused resumed on B")
	}
	c1 = client()
	cs, _ = a.handshake(t, c1)
	a.srv.Approve(cs)
	if _, resumed := a.handshake(t, c1); !resumed {
		t.Fatal("a session the store refused did not resume on the server that approved it")
	}

	store.failPuts.Store(false)
	c2 := client()
	cs, _ = a.handshake(t, c2)
	if _, err := a.srv.Approve(cs); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if _, resumed := b.handshake(t, c2); !resumed {
		t.Fatal("an approved session did not resume on B")
	}
}

// Without ApprovedOnly every session is shared, once: the new hook stores
// it, and an inherited approval does not store it again.
func TestNewServerSharesAll(t *testing.T) {
	store := &countingStore{MemoryStore: tlscache.NewMemoryStore(0, nil)}
	keys := []fleet.Key{fleet.GenerateKey()}
	cert, roots := testcert.SelfSigned("example.com")
	opts := fleet.ServerOptions{Server: adapter.ServerOptions{InheritApproval: true}}
	a := newMember(t, store, keys, cert, opts)
	b := newMember(t, store, keys, cert, opts)
	client := &tls.Config{RootCAs: roots, ServerName: "example.com", ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	cs, _ := a.handshake(t, client)
	for i, m := range []*member{b, a} {
		before := store.puts.Load()
		got, resumed := m.handshake(t, client)
		if !resumed {
			t.Fatalf("handshake %d did not resume", i)
		}
		if store.puts.Load()-before != int64(len(got.Issued())) {
			t.Fatalf("handshake %d: %d Puts for %d new tickets", i, store.puts.Load()-before, len(got.Issued()))
		}
	}
	if len(cs.Issued()) == 0 {
		t.Fatal("no session issued")
	}
}

type noWatch struct{ tlscache.Store }

func TestNewServerNeedsWatch(t *testing.T) {
	_, err := fleet.NewServer(noWatch{tlscache.NewMemoryStore(0, nil)}, &fleet.ServerOptions{Keys: []fleet.Key{fleet.GenerateKey()}})
	if !errors.Is(err, fleet.ErrNoWatch) {
		t.Fatalf("NewServer on a store without Watch: %v", err)
	}
	if _, err := fleet.NewServer(tlscache.NewMemoryStore(0, nil), nil); err == nil {
		t.Fatal("NewServer without keys succeeded")
	}
}

// Close stops the watch: the server no longer trusts it, and resumes
// nothing.
func TestNewServerClose(t *testing.T) {
	srv, err := fleet.NewServer(tlscache.NewMemoryStore(0, nil), &fleet.ServerOptions{Keys: []fleet.Key{fleet.GenerateKey()}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Ready():
		t.Log("the watch was ready before NewServer's caller looked")
	default:
		if srv.Tier().Trusted() {
			t.Fatal("trusted before the watch works: a session revoked meanwhile could resume")
		}
	}
	<-srv.Ready()
	if !srv.Tier().Trusted() {
		t.Fatal("not trusted once ready")
	}
	srv.Close()
	if srv.Tier().Trusted() {
		t.Fatal("still trusted after Close")
	}
}
