package adapter

import (
	"crypto/tls"
	"runtime"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

func TestInstallTwiceIsNoOp(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	srv.Install(server)
	srv.Install(server)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	pipeHandshake(t, server, client)
	if st := cache.Stats(); st.Accept != 1 || st.AcceptGood != 1 {
		t.Errorf("Accept %d AcceptGood %d after one handshake, want 1 and 1", st.Accept, st.AcceptGood)
	}
}

// Configs that GetConfigForClient makes afresh for each hello are bound on
// clones that go away with them: the server's registry does not grow.
func TestDerivedConfigsAreForgotten(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	base := server.Clone()
	server.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return base.Clone(), nil
	}
	srv := NewServer(tlscache.New(nil), nil)
	srv.Install(server)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	const conns = 50
	for range conns {
		pipeHandshake(t, server, client)
	}
	derived := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.derived)
	}
	if n := derived(); n == 0 || n > conns {
		t.Fatalf("registry holds %d derived configs after %d handshakes", n, conns)
	}
	// Cleanups run after collection; give the runtime a bounded number of
	// cycles to run them.
	for i := 0; i < 100 && derived() > 1; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := derived(); n > 1 {
		t.Errorf("registry still holds %d derived configs after GC", n)
	}
}

func TestContextsAreBoundedAndShared(t *testing.T) {
	server, _ := testConfigs(t, tls.VersionTLS13)
	c := newContexts(nil, server)
	a1, a2 := c.forName("example.com"), c.forName("EXAMPLE.com.")
	if &a1[0] != &a2[0] {
		t.Error("contexts of one name are not shared (and not normalized)")
	}
	for i := range 2 * maxNames {
		c.forName(string(rune('a'+i%26)) + string(rune(i)))
	}
	if len(c.names) > maxNames {
		t.Errorf("%d names cached, bound is %d", len(c.names), maxNames)
	}
	if string(c.forName("other.example")) == string(a1) {
		t.Error("two names share a context")
	}
}
