package adapter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"testing"

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
	for i := range 2 * maxNames {
		if _, err := wrap(tls.ConnectionState{ServerName: fmt.Sprintf("junk%d.invalid", i), Version: tls.VersionTLS13}, ss); err != nil {
			t.Fatal(err)
		}
	}
	st := srv.stateFor(server)
	st.ctxs.mu.Lock()
	names := len(st.ctxs.names)
	st.ctxs.mu.Unlock()
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
	c := newContexts(nil, server, nil)
	a1, served := c.forName("example.com")
	a2, _ := c.forName("EXAMPLE.com.")
	if !served || &a1[0] != &a2[0] {
		t.Error("contexts of one served name are not shared (or not normalized)")
	}
	other, served := c.forName("other.example")
	if served || string(other) == string(a1) {
		t.Errorf("an unserved name: served %v, same context %v", served, string(other) == string(a1))
	}
}

func TestConfigureHTTPServerNeedsCertificates(t *testing.T) {
	srv := NewServer(tlscache.New(nil), nil)
	if err := srv.ConfigureHTTPServer(&http.Server{}); err == nil {
		t.Error("ConfigureHTTPServer without certificates succeeded; ServeTLS's files would not reach tracked connections")
	}
	server, _ := testConfigs(t, tls.VersionTLS13)
	hs := &http.Server{TLSConfig: server}
	if err := srv.ConfigureHTTPServer(hs); err != nil {
		t.Fatal(err)
	}
	if hs.ConnContext == nil || len(hs.TLSConfig.NextProtos) != 2 {
		t.Errorf("ConnContext %v, NextProtos %v", hs.ConnContext != nil, hs.TLSConfig.NextProtos)
	}
}
