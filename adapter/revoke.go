package adapter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// ServerSession is what listings and revocation predicates see of a cached
// server session: its metadata, never its secret state. All of it travels
// inside the session's state, so a server knows it also of sessions it
// loaded from a shared store. The client's certificate chain is not kept
// parsed (it would keep its whole handshake message alive): predicates
// match its leaf by ClientCertSHA256 or ClientSubject.
type ServerSession struct {
	tlscache.SessionInfo
	// ServerName is the SNI name the session was issued under (normalized:
	// lower case, no final dot), "" if the client sent none.
	ServerName string
	// Lineage is the ID of the first session of the session's lineage: the
	// full handshake that the client's resumptions descend from.
	Lineage []byte
	// LineageBorn is when that first session was issued.
	LineageBorn time.Time
	// ClientCertSHA256 is the SHA-256 of the client's leaf certificate (DER),
	// nil if it sent none; ClientSubject is that certificate's subject.
	ClientCertSHA256 []byte
	ClientSubject    string
}

// Session describes a server session.
func (s *Server) Session(sess *tlscache.Session) ServerSession {
	m := sessionMeta(sess)
	info := ServerSession{
		SessionInfo:   sess.Info(),
		ServerName:    m.serverName,
		Lineage:       m.lineage,
		LineageBorn:   time.Unix(0, m.born),
		ClientSubject: m.subject,
	}
	if info.ServerName == "" {
		info.ServerName = s.names.name(sess.IDContext)
	}
	if m.hasCert {
		info.ClientCertSHA256 = m.certSHA256[:]
	}
	return info
}

// Sessions returns the cached sessions, described.
func (s *Server) Sessions() []ServerSession {
	var out []ServerSession
	for sess := range s.cache.All() {
		out = append(out, s.Session(sess))
	}
	return out
}

// A Revocation says what [Server.RevokeWait] revokes: the sessions matching
// any of its fields. Whatever matches, its whole lineage is revoked, on
// every server of the fleet, and stays revoked for the cache's timeout.
type Revocation struct {
	// ID is one session's identity; its lineage is revoked (read from the
	// store if this server does not hold it; the ID alone if no server
	// does).
	ID []byte
	// Session is a session, such as one of [ConnSessions.All]: its lineage
	// is revoked ([Server.RevokeFamily]).
	Session *tlscache.Session
	// Conn is a connection's record ([ConnSessionsFrom] of a request's
	// context): the lineages of its sessions are revoked, what a logout
	// handler ends, the counterpart of [Server.Approve]. The connection
	// stays revoked: the tickets it issues later (over QUIC, after the
	// handshake) resume nothing, and Approve approves nothing more on it,
	// so a login after the logout takes a new connection. A nil Conn (an
	// untracked connection) revokes nothing.
	Conn *ConnSessions
	// ServerName revokes the lineages started before now under this SNI
	// name (any certificate or policy).
	ServerName string
	// IDContext revokes the lineages started before now under this context.
	IDContext []byte
	// ClientCertificate revokes the lineages started before now by a client
	// that presented this leaf certificate (matched by SHA-256 of its DER).
	ClientCertificate *x509.Certificate
	// Func revokes the lineages of the cached sessions it matches: this
	// server's internal tier only, as it cannot run elsewhere (prefer
	// the fields above, which every server applies to what it loads).
	Func func(ServerSession) bool
}

// RevokeWait revokes what r names, here and on every server sharing the
// store, and waits until the revocation is durable in the store and every
// server watching it has applied it: once it returns nil, no server
// resumes a revoked session. This is the call for a logout handler. It
// returns how many sessions it removed from this server's cache, and an
// error if the store did not take the revocation, if not every watching
// server confirmed it before ctx was done, or if too few of the store's
// replicas acknowledged it (fleet.ErrNotReplicated: a failover could lose
// it); the revocation holds here anyway, and the fleet retries it in the
// background until the store takes it.
//
// The other Revoke functions do the same without waiting: they return
// once the store took the revocation or the attempt failed (then retried
// in the background), within the fleet's store timeout.
func (s *Server) RevokeWait(ctx context.Context, r Revocation) (int, error) {
	return s.revoke(ctx, r, true)
}

func (s *Server) revoke(ctx context.Context, r Revocation, wait bool) (int, error) {
	now := s.cache.Now()
	var markers [][]byte
	n := 0
	if len(r.ID) > 0 {
		sess := s.cache.Peek(r.ID)
		if sess == nil {
			if f := s.fleet.Load(); f != nil {
				sess, _ = f.Get(r.ID)
			}
		}
		if s.cache.RemoveID(r.ID) {
			n++
		}
		if sess != nil {
			markers = append(markers, newMarker(revokeLineage, now, sessionMeta(sess).lineage))
		} else {
			markers = append(markers, newMarker(revokeID, now, r.ID))
		}
	}
	sessions := r.Conn.revoke()
	if r.Session != nil {
		sessions = append(sessions, r.Session)
	}
	lineages := make(map[string]bool, 1)
	for _, sess := range sessions {
		if s.cache.Peek(sess.ID) != sess {
			// Not cached (taken, say, or never approved): still tell the
			// remove hook, so an external store forgets it.
			s.cache.Remove(sess)
		}
		if l := sessionMeta(sess).lineage; !lineages[string(l)] {
			lineages[string(l)] = true
			markers = append(markers, newMarker(revokeLineage, now, l))
		}
	}
	if r.ServerName != "" {
		markers = append(markers, newMarker(revokeName, now, []byte(normalizeName(r.ServerName))))
	}
	if len(r.IDContext) > 0 {
		markers = append(markers, newMarker(revokeContext, now, r.IDContext))
	}
	if r.ClientCertificate != nil {
		sum := sha256.Sum256(r.ClientCertificate.Raw)
		markers = append(markers, newMarker(revokeCert, now, sum[:]))
	}
	if r.Func != nil {
		seen := make(map[string]bool)
		for sess := range s.cache.All() {
			if info := s.Session(sess); r.Func(info) && !seen[string(info.Lineage)] {
				seen[string(info.Lineage)] = true
				markers = append(markers, newMarker(revokeLineage, now, info.Lineage))
			}
		}
	}
	if !wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, revokeTimeout)
		defer cancel()
	}
	m, err := s.revokeMarkers(ctx, markers, wait)
	return n + m, err
}

// revokeTimeout bounds the store calls of the Revoke functions that do not
// take a context (the fleet's own timeout applies within it).
const revokeTimeout = time.Second

// Revoke ends the lineage of the session with this identity, on every
// server of a fleet (see [Server.RevokeWait]). It reports whether a session
// with this identity was cached here; the remove hook fires in any case, so
// an external store forgets it too.
func (s *Server) Revoke(id []byte) bool {
	cached := s.cache.Peek(id) != nil
	s.revoke(context.Background(), Revocation{ID: id}, false)
	return cached
}

// RevokeContext ends every lineage started before now under this IDContext,
// on every server (see [Server.RevokeWait]). It returns how many sessions it
// removed here.
func (s *Server) RevokeContext(idContext []byte) int {
	n, _ := s.revoke(context.Background(), Revocation{IDContext: idContext}, false)
	return n
}

// RevokeServerName ends every lineage started before now under this server
// name, whatever certificate or policy it was issued with, on every server
// (see [Server.RevokeWait]). It returns how many sessions it removed here.
func (s *Server) RevokeServerName(name string) int {
	n, _ := s.revoke(context.Background(), Revocation{ServerName: name}, false)
	return n
}

// RevokeClientCertificate ends every lineage started before now by a client
// that presented this leaf certificate, on every server (see
// [Server.RevokeWait]). It returns how many sessions it removed here.
func (s *Server) RevokeClientCertificate(cert *x509.Certificate) int {
	n, _ := s.revoke(context.Background(), Revocation{ClientCertificate: cert}, false)
	return n
}

// RevokeFamily ends the lineage of sess (its family): the session it
// descends from, those issued on connections resumed from it, from them,
// and so on, on every server (see [Server.RevokeWait]). This is how a logout
// ends resumption for good when clients rotate tickets. It returns how many
// sessions it removed here.
func (s *Server) RevokeFamily(sess *tlscache.Session) int {
	if sess == nil {
		return 0
	}
	n, _ := s.revoke(context.Background(), Revocation{Session: sess}, false)
	return n
}

// Invalidate is what a shared store's watch calls (fleet.Tier.Watch) when
// another server removed id: the session leaves this server's cache
// ([tlscache.Cache.Invalidate]); a revocation marker is remembered and every
// session it revokes that this server holds is dropped.
func (s *Server) Invalidate(id []byte) bool {
	if bytes.HasPrefix(id, markerPrefix) {
		return s.apply(id, false) > 0
	}
	return s.cache.Invalidate(id)
}

// FlushAll empties the cache ([tlscache.Cache.FlushAll]).
func (s *Server) FlushAll() int { return s.cache.FlushAll() }

// RevokeFunc ends the lineage of every cached session for which match
// returns true, on every server (see [Revocation.Func]: it sees this
// server's internal tier only). match runs without locks held. It returns
// how many sessions it removed here.
func (s *Server) RevokeFunc(match func(ServerSession) bool) int {
	n, _ := s.revoke(context.Background(), Revocation{Func: match}, false)
	return n
}
