package adapter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

func TestInstallTwiceAndClones(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	if err := srv.Install(server); err != nil {
		t.Fatalf("second Install of the same config: %v", err)
	}
	if err := srv.Install(server.Clone()); !errors.Is(err, ErrBound) {
		t.Errorf("Install of a clone of a bound config = %v, want ErrBound", err)
	}
	if err := NewServer(cache, nil).Install(server); !errors.Is(err, ErrBound) {
		t.Errorf("Install by another Server = %v, want ErrBound", err)
	}
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	pipeHandshake(t, server, client)
	if st := cache.Stats(); st.Accept != 1 || st.AcceptGood != 1 {
		t.Errorf("Accept %d AcceptGood %d after one handshake, want 1 and 1", st.Accept, st.AcceptGood)
	}
}

func TestClientInstallTwice(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
		t.Fatal(err)
	}
	cc := NewClientCache(nil, nil)
	cc.Install(client)
	cc.Install(client)
	cc.Install(client.Clone())
	pipeHandshake(t, server, client)
	if st := cc.Cache().Stats(); st.Connect != 1 || st.ConnectGood != 1 {
		t.Errorf("Connect %d ConnectGood %d after one handshake, want 1 and 1", st.Connect, st.ConnectGood)
	}
}

// A GetConfigForClient that makes a new config per hello costs a clone per
// handshake, never a growing registry.
func TestDerivedConfigsAreBounded(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	base := server.Clone()
	server.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.VerifyConnection = func(tls.ConnectionState) error { _ = c; return nil } // keeps itself alive
		return c, nil
	}
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	const conns = maxDerived + 40
	for range conns {
		pipeHandshake(t, server, client)
	}
	srv.mu.Lock()
	n, order := len(srv.derived), len(srv.order)
	srv.mu.Unlock()
	if n != maxDerived || order != maxDerived {
		t.Errorf("registry holds %d derived configs (%d in order) after %d handshakes, want %d", n, order, conns, maxDerived)
	}
	if st := cache.Stats(); st.Hits != conns-1 {
		t.Errorf("Hits = %d, want %d: fresh configs must still resume", st.Hits, conns-1)
	}
}

// Clients sending junk server names neither fill the name caches nor keep
// revocation by name from working.
func TestJunkServerNames(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	pipeHandshake(t, server, client)
	var real *tlscache.Session
	for s := range cache.All() {
		real = s
	}
	ss, err := tls.ParseSessionState(real.State)
	if err != nil {
		t.Fatal(err)
	}
	wrap := server.WrapSession
	for i := range 4096 {
		if _, err := wrap(tls.ConnectionState{ServerName: fmt.Sprintf("junk%d.invalid", i), Version: tls.VersionTLS13}, ss); err != nil {
			t.Fatal(err)
		}
	}
	st := srv.stateFor(server)
	ctxs := st.contexts()
	ctxs.mu.Lock()
	names := len(ctxs.names)
	ctxs.mu.Unlock()
	if names != 1 {
		t.Errorf("%d server names cached, want only example.com", names)
	}
	if got := srv.Session(real).ServerName; got != "example.com" {
		t.Errorf("ServerName = %q, want example.com", got)
	}
	if n := srv.RevokeServerName("Example.COM"); n != 1 {
		t.Errorf("RevokeServerName removed %d sessions, want 1", n)
	}
	if cache.Peek(real.ID) != nil {
		t.Error("the example.com session is still cached")
	}
}

func TestContextsAreShared(t *testing.T) {
	server, _ := testConfigs(t, tls.VersionTLS13)
	c := newContexts(nil, server, nil, nil)
	if a := c.forName("example.com"); len(c.names) != 0 || string(a) != string(c.issued("example.com")) {
		t.Fatal("a lookup recorded the name, or derived another context than the issue")
	}
	a1 := c.issued("example.com")
	a2 := c.issued("EXAMPLE.com.")
	if &a1[0] != &a2[0] || &c.forName("example.com")[0] != &a1[0] {
		t.Error("contexts of one served name are not shared (or not normalized)")
	}
	other := c.issued("other.example")
	if len(c.names) != 1 || string(other) == string(a1) {
		t.Errorf("an unserved name: %d names kept, same context %v", len(c.names), string(other) == string(a1))
	}
}

func TestValidHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	for name, want := range map[string]bool{
		"example.com": true, "a": true, "xn--bcher-kva.example": true, "_acme.example": true,
		long + ".example": true, long + "a.example": false,
		strings.Repeat(long+".", 3) + strings.Repeat("b", 61): true,  // 253 bytes
		strings.Repeat(long+".", 3) + strings.Repeat("b", 62): false, // 254
		"": false, ".": false, "a..b": false, ".a": false, "a b": false, "a/b": false, "é.example": false, "A.example": false,
	} {
		if got := validHostname(name); got != want {
			t.Errorf("validHostname(%.40q, %d bytes) = %v, want %v", name, len(name), got, want)
		}
	}
}

// The registry of names keeps at most maxRegistryBytes, dropping the names
// least recently issued a session: a flood of valid names under a wildcard
// certificate leaves the names in use listed.
func TestNameRegistryIsBoundedInBytes(t *testing.T) {
	var r nameRegistry
	ctx := func(i int) []byte { return []byte(fmt.Sprintf("context %d", i)) }
	r.record([]byte("real"), "www.example.com")
	long := strings.Repeat("x", 63) + "."
	for i := range 20000 {
		name := fmt.Sprintf("%s%s%s%06d.example.com", long, long, long[:50], i)
		r.record(ctx(i), name)
		if i%1000 == 0 {
			r.record([]byte("real"), "www.example.com") // the real name keeps being issued
		}
	}
	if r.bytes > maxRegistryBytes {
		t.Errorf("registry holds %d bytes, budget %d", r.bytes, maxRegistryBytes)
	}
	if got := r.name([]byte("real")); got != "www.example.com" {
		t.Errorf("the real name is listed as %q after the flood", got)
	}
	if r.name(ctx(0)) != "" {
		t.Error("the oldest junk name is still listed")
	}
	t.Logf("registry after 20000 names of ~200 bytes: %d names, %d bytes", r.order.Len(), r.bytes)
}

// The name caches of all configs of a Server share one byte budget, which
// comes back when a config's contexts are collected.
func TestNameCachesShareABudget(t *testing.T) {
	server, _ := testConfigs(t, tls.VersionTLS13)
	server.Certificates = nil
	server.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	var budget atomic.Int64
	budget.Store(int64(10 * (len("n0000.example") + nameOverhead)))
	c := newContexts(nil, server, nil, &budget)
	for i := range 100 {
		c.issued(fmt.Sprintf("n%04d.example", i))
	}
	if len(c.names) != 10 || budget.Load() != 0 {
		t.Errorf("%d names cached, budget left %d: want 10 and 0", len(c.names), budget.Load())
	}
	c = nil
	for i := 0; i < 50 && budget.Load() == 0; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
	}
	if budget.Load() == 0 {
		t.Error("the budget did not come back when the contexts were collected")
	}
}
