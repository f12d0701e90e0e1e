package adapter

import (
	"context"
	"net"
	"slices"
	"sync"

	"github.com/tlscache/tlscache/tlscache"
)

// ConnSessions records the sessions of one server connection: the session
// it resumed from, if any, and the sessions its handshake issued. It is how
// a [net/http.Handler] reaches the sessions behind its request, to Add them
// to the cache (approve) or Remove them (revoke): controlled resumption.
//
// A connection is tracked when its handshake runs under a context made by
// [ConnContext] or [WithConnSessions]; the [Server] then binds that
// handshake to the record. Its methods are safe for concurrent use, and on a
// nil *ConnSessions (a connection that is not tracked) they return nothing,
// so that ConnSessionsFrom(ctx).All() never panics.
type ConnSessions struct {
	mu        sync.Mutex
	resumed   *tlscache.Session
	issued    []*tlscache.Session
	approvers []func(*tlscache.Session) // see Approve
	revoked   bool                      // see Server.RevokeWait with Revocation.Conn
}

type connKey struct{}

// WithConnSessions returns a context carrying a new [ConnSessions], for a
// handshake started with [crypto/tls.Conn.HandshakeContext].
func WithConnSessions(ctx context.Context) (context.Context, *ConnSessions) {
	cs := new(ConnSessions)
	return context.WithValue(ctx, connKey{}, cs), cs
}

// ConnContext is a [net/http.Server.ConnContext] that tracks each
// connection's sessions; handlers read them with
// ConnSessionsFrom(r.Context()). It works because [net/http] runs the TLS
// handshake under the connection's context.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	ctx, _ = WithConnSessions(ctx)
	return ctx
}

// ConnSessionsFrom returns the record of the connection ctx belongs to, or
// nil if the connection is not tracked.
func ConnSessionsFrom(ctx context.Context) *ConnSessions {
	cs, _ := ctx.Value(connKey{}).(*ConnSessions)
	return cs
}

// Resumed returns the session the connection resumed from, or nil for a
// full handshake.
func (c *ConnSessions) Resumed() *tlscache.Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumed
}

// Issued returns the sessions the connection's handshake issued: one per
// TLS 1.3 handshake, and for TLS 1.2 the new session of a full handshake or
// the resumed one again (crypto/tls re-issues it).
func (c *ConnSessions) Issued() []*tlscache.Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.issued)
}

// All returns the resumed session (if any) followed by the issued ones,
// each once.
func (c *ConnSessions) All() []*tlscache.Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allLocked()
}

func (c *ConnSessions) allLocked() []*tlscache.Session {
	var all []*tlscache.Session
	if c.resumed != nil {
		all = append(all, c.resumed)
	}
	for _, s := range c.issued {
		if s != c.resumed {
			all = append(all, s)
		}
	}
	return all
}

func (c *ConnSessions) setResumed(s *tlscache.Session) {
	c.mu.Lock()
	c.resumed = s
	c.mu.Unlock()
}

// addIssued records a session the connection issued and runs the
// approvers with it. It reports false, recording nothing, once the
// connection was revoked: its ticket must then resume nothing.
func (c *ConnSessions) addIssued(s *tlscache.Session) bool {
	c.mu.Lock()
	if c.revoked {
		c.mu.Unlock()
		return false
	}
	c.issued = append(c.issued, s)
	var approvers []func(*tlscache.Session)
	if s != c.resumed { // a TLS 1.2 re-issue: approved with the resumed one
		approvers = slices.Clone(c.approvers)
	}
	c.mu.Unlock()
	for _, approve := range approvers {
		approve(s)
	}
	return true
}

// revoke marks the connection revoked (a logout): it approves nothing more
// and its later tickets resume nothing. It returns its sessions so far.
func (c *ConnSessions) revoke() []*tlscache.Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked, c.approvers = true, nil
	return c.allLocked()
}

// isRevoked reports whether the connection was revoked.
func (c *ConnSessions) isRevoked() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revoked
}

// handshakeDone settles the record once crypto/tls has decided: a session
// unwrapped but then not used (crypto/tls checks more after UnwrapSession)
// is not the one resumed from.
func (c *ConnSessions) handshakeDone(didResume bool) {
	if !didResume {
		c.setResumed(nil)
	}
}
