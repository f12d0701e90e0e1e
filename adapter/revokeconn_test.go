package adapter

import (
	"context"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// A logout ([Revocation.Conn]) that runs before the connection issued its
// ticket, as an HTTP/3 handler can (QUIC sends the ticket after the
// handshake), ends that ticket too: the client's next connection does a
// full handshake, whether the login on the same connection registered an
// approval for it (controlled resumption) or every session is stored.
// Without the logout the same ticket resumes, so the test can tell.
func TestRevokeConnBeforeTicket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  tlscache.Mode
		login bool
	}{
		{"login then logout, controlled", tlscache.Server | tlscache.NoInternalStore, true},
		{"logout, every session stored", tlscache.Server, false},
	} {
		for _, logout := range []bool{false, true} {
			name := tc.name
			if !logout {
				name += ", no logout"
			}
			t.Run(name, func(t *testing.T) {
				cache := tlscache.New(&tlscache.Options{Mode: tc.mode})
				srv := NewServer(cache, nil)
				server, client := quicConfigs(t, srv)
				cfg, _ := client()
				serverCtx, rec := WithConnSessions(t.Context())
				var revokeErr error
				r := quicHandshakeWith(t.Context(), serverCtx, server, cfg, false, func() {
					if tc.login {
						srv.Approve(rec)
					}
					if logout {
						_, revokeErr = srv.RevokeWait(context.Background(), Revocation{Conn: rec})
					}
				})
				if r.err != nil || r.resumed {
					t.Fatalf("first handshake: resumed %v, %v", r.resumed, r.err)
				}
				if revokeErr != nil {
					t.Fatal(revokeErr)
				}
				if n := len(rec.Issued()); n != 0 && logout {
					t.Errorf("the revoked connection recorded %d sessions issued after its logout", n)
				}
				if got := cache.Len(); logout && got != 0 {
					t.Errorf("the cache holds %d sessions after the logout, want 0", got)
				}
				r = quicHandshake(t.Context(), server, cfg, false)
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.resumed != !logout {
					t.Errorf("the connection's ticket resumed = %v, want %v", r.resumed, !logout)
				}
			})
		}
	}
}

// Approve on a connection revoked before approves nothing: a login after a
// logout takes a new connection, whose sessions are not of the revoked
// lineage.
func TestApproveAfterRevokeConn(t *testing.T) {
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	srv := NewServer(cache, nil)
	server, client := quicConfigs(t, srv)
	cfg, _ := client()
	serverCtx, rec := WithConnSessions(t.Context())
	r := quicHandshakeWith(t.Context(), serverCtx, server, cfg, false, func() {
		if _, err := srv.RevokeWait(context.Background(), Revocation{Conn: rec}); err != nil {
			t.Error(err)
		}
		if n, _ := srv.Approve(rec); n != 0 {
			t.Errorf("Approve on a revoked connection added %d sessions", n)
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n := cache.Len(); n != 0 {
		t.Errorf("the cache holds %d sessions, want 0", n)
	}
	if r = quicHandshake(t.Context(), server, cfg, false); r.err != nil || r.resumed {
		t.Errorf("the revoked connection's ticket: resumed %v, %v", r.resumed, r.err)
	}
}
