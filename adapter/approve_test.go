package adapter

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"

	"github.com/tlscache/tlscache/internal/loopback"
	"github.com/tlscache/tlscache/tlscache"
)

// firstTicket is a client session cache that keeps the first ticket it is
// given and offers it forever: a client that replays a used ticket.
type firstTicket struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (f *firstTicket) Get(string) (*tls.ClientSessionState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cs, f.cs != nil
}

func (f *firstTicket) Put(_ string, cs *tls.ClientSessionState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cs == nil && cs != nil {
		f.cs = cs
	}
}

// trackedHandshake runs one connection whose handshake is tracked, and
// returns its record and whether it resumed.
func trackedHandshake(t *testing.T, server, client *tls.Config) (*ConnSessions, bool) {
	t.Helper()
	ctx, cs := WithConnSessions(context.Background())
	return cs, loopback.ConnectContext(t, ctx, server, client).DidResume
}

// Approving a connection that resumed a single-use ticket approves what it
// issued, not the ticket the resumption used up: a client that offers that
// ticket again gets a full handshake.
func TestApproveSingleUseDoesNotReviveTicket(t *testing.T) {
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	srv := NewServer(cache, &ServerOptions{SingleUse: true})
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	replayer := &firstTicket{}
	client.ClientSessionCache = replayer

	cs, resumed := trackedHandshake(t, server, client)
	if resumed {
		t.Fatal("the first handshake resumed")
	}
	srv.Approve(cs) // login: the first ticket becomes resumable
	cs, resumed = trackedHandshake(t, server, client)
	if !resumed {
		t.Fatal("the approved ticket did not resume")
	}
	srv.Approve(cs) // a second login, on the resumed connection
	if cache.Peek(cs.Resumed().ID) != nil {
		t.Fatal("Approve put the used-up single-use ticket back into the cache")
	}
	if len(cs.Issued()) == 0 || cache.Peek(cs.Issued()[0].ID) == nil {
		t.Fatal("Approve did not approve the ticket the resumed connection issued")
	}
	if _, resumed = trackedHandshake(t, server, client); resumed {
		t.Fatal("the used-up single-use ticket resumed again after Approve")
	}
}

// Approve on an untracked connection approves nothing and does not panic.
func TestApproveNil(t *testing.T) {
	cache := tlscache.New(nil)
	NewServer(cache, nil).Approve(ConnSessionsFrom(context.Background()))
	if cache.Len() != 0 {
		t.Fatal("Approve(nil) added sessions")
	}
}
