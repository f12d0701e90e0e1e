package adapter

import (
	"crypto/tls"
	"runtime"
	"testing"
	"weak"

	"github.com/tlscache/tlscache/tlscache"
)

// A TLS 1.2 session that crypto/tls found but declined is not kept for a
// re-issue: once revoked, its secret is unreachable from the Server.
func TestDeclinedTLS12SessionIsNotKept(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS12)
	server.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	client.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	pipeHandshake(t, server, client)
	var first *tlscache.Session
	for s := range cache.All() {
		first = s
	}
	id := first.ID
	w := weak.Make(first)
	first = nil

	// The server no longer offers the session's suite: UnwrapSession finds
	// it, crypto/tls declines it and runs a full handshake.
	server.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	if pipeHandshake(t, server, client).DidResume {
		t.Fatal("resumed with a suite the server no longer offers")
	}
	if st := cache.Stats(); st.Hits != 1 {
		t.Fatalf("Hits = %d: UnwrapSession did not find the session", st.Hits)
	}
	if !srv.Revoke(id) {
		t.Fatal("the first session was not cached")
	}
	for range 3 {
		runtime.GC()
	}
	if w.Value() != nil {
		t.Error("a revoked session, declined by crypto/tls, is still reachable")
	}
	runtime.KeepAlive(srv) // the Server and its config stay, with all they hold
	runtime.KeepAlive(server)
}

// A TLS 1.2 session revoked while a handshake resumes it (here by the
// application's VerifyConnection, which runs before the ticket is
// re-issued) is not handed out again: the client gets a ticket that
// resumes nothing.
func TestRevokedDuringTLS12ResumptionIsNotReissued(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS12)
	client.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	cache := tlscache.New(nil)
	srv := NewServer(cache, nil)
	revoke := false
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		if revoke && cs.DidResume {
			srv.RevokeFunc(func(ServerSession) bool { return true })
		}
		return nil
	}
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	pipeHandshake(t, server, client)
	revoke = true
	if !pipeHandshake(t, server, client).DidResume {
		t.Fatal("the second handshake did not resume")
	}
	revoke = false
	if pipeHandshake(t, server, client).DidResume {
		t.Error("the ticket re-issued for a session revoked during its resumption resumed")
	}
}
