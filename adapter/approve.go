package adapter

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tlscache/tlscache/tlscache"
)

// Approve calls approve with every session of the connection: the one it
// resumed from and those it issued, at once, and each session the
// connection issues later, as it is issued. Over QUIC the server issues its
// ticket after the handshake, which may be after the handler of a request
// (a 0-RTT one, or a 1-RTT one that raced the ticket) ran: a login that
// approves with Approve rather than [ConnSessions.All] still approves that
// ticket. approve runs without the record's lock, possibly in a handshake's
// goroutine; it sees each session once. [Server.Approve] is the usual
// approve: it adds each session to the cache and, across a fleet, to the
// store. On a nil record (an untracked connection), or one revoked with
// [Revocation.Conn] (a logout), it approves nothing.
func (c *ConnSessions) Approve(approve func(*tlscache.Session)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.revoked {
		c.mu.Unlock()
		return
	}
	c.approvers = append(c.approvers, approve)
	now := c.allLocked() // under the same lock: each session once
	c.mu.Unlock()
	for _, s := range now {
		approve(s)
	}
}

// Approve makes the sessions of the connection cs resumable, on this
// server and, once it is connected to a fleet ([Server.SetFleet], which
// fleet.NewServer and fleet.Tier.Watch call), on every server of it: the
// session cs resumed from and those it issued, now and as they are issued
// ([ConnSessions.Approve]). Each goes to the cache with [tlscache.Cache.Add]
// (OpenSSL's SSL_CTX_add_session, which a mode with
// [tlscache.NoInternalStore] allows) and to the fleet's store. With
// [ServerOptions.InheritApproval], the sessions later issued on connections
// resumed from them are approved the same way, on whichever server they are
// issued; a revocation of their lineage ([Server.RevokeFamily], at logout)
// ends them all, everywhere.
//
// Under [ServerOptions.SingleUse] the session cs resumed from was used up
// by that resumption, and is not approved again. It returns how many
// sessions it added to the cache now (those issued later are not counted)
// and, on a server of a fleet, an error if the store did not take one of
// them: the approval then holds on this server alone (a login may say so,
// or ask the client to log in again later). The store errors of sessions
// issued later are the fleet tier's to count and log. On a nil cs (a
// connection that is not tracked) it approves nothing.
//
//	func login(w http.ResponseWriter, r *http.Request) {
//		// ... check the user's credentials ...
//		srv.Approve(adapter.ConnSessionsFrom(r.Context()))
//	}
func (s *Server) Approve(cs *ConnSessions) (int, error) {
	if cs == nil {
		return 0, nil
	}
	resumed := cs.Resumed()
	usedUp := s.opts.SingleUse && resumed != nil
	var (
		mu       sync.Mutex
		added    int
		errs     []error
		returned bool
	)
	cs.Approve(func(sess *tlscache.Session) {
		if usedUp && sess == resumed {
			return
		}
		isNew, err := s.approve(sess, true)
		mu.Lock()
		defer mu.Unlock()
		if returned {
			return
		}
		if isNew {
			added++
		}
		if err != nil {
			errs = append(errs, err)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	returned = true
	if len(errs) > 0 {
		return added, fmt.Errorf("tlscache/adapter: approved on this server only, the fleet's store did not take it: %w", errors.Join(errs...))
	}
	return added, nil
}

// approve adds sess to the cache and, on a server of a fleet, to the store:
// always with share, else only if the cache's new hook did not store it.
// It reports whether sess was new to the cache, and the store's error.
func (s *Server) approve(sess *tlscache.Session, share bool) (bool, error) {
	added := s.cache.Add(sess)
	f := s.fleet.Load()
	if f == nil || !share && s.cache.HasNewHook() && s.cache.Mode()&tlscache.Server != 0 {
		return added, nil // without a fleet, or NewSession passed it to the new hook, which stores it
	}
	return added, f.Put(sess)
}
