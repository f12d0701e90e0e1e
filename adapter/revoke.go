package adapter

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"

	"github.com/tlscache/tlscache/tlscache"
)

// ServerSession is what listings and revocation predicates see of a cached
// server session: its metadata, never its secret state.
type ServerSession struct {
	tlscache.SessionInfo
	// ServerName is the SNI name the session was issued under, if this
	// server issued it (sessions from other servers of a fleet have "").
	ServerName string
	// PeerCertificates are the client's certificates, when it sent any.
	PeerCertificates []*x509.Certificate
}

// Session describes a server session.
func (s *Server) Session(sess *tlscache.Session) ServerSession {
	info := ServerSession{
		SessionInfo: sess.Info(),
		ServerName:  s.names.name(sess.IDContext),
	}
	if m, ok := sess.Value.(*serverMeta); ok {
		info.PeerCertificates = m.peerCertificates
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

// Revoke removes the session with this identity, as tlscache's RemoveID:
// the remove hook fires, so an external store forgets it too.
func (s *Server) Revoke(id []byte) bool { return s.cache.RemoveID(id) }

// RevokeContext removes every cached session bound to this IDContext.
func (s *Server) RevokeContext(idContext []byte) int {
	return s.cache.RemoveFunc(func(sess *tlscache.Session) bool {
		return bytes.Equal(sess.IDContext, idContext)
	})
}

// RevokeServerName removes every cached session issued under this server
// name by the configs this Server has bound, whatever certificate or policy
// it was issued with.
func (s *Server) RevokeServerName(name string) int {
	contexts := make(map[string]bool)
	for _, st := range s.states() {
		ctx := st.contexts().forName(name)
		contexts[string(ctx)] = true
	}
	return s.cache.RemoveFunc(func(sess *tlscache.Session) bool {
		return contexts[string(sess.IDContext)]
	})
}

// RevokeFamily removes sess and every cached session of its family: those
// issued on connections that resumed from it, from them, and so on (see
// ServerOptions.InheritApproval), and the session it descends from. This
// is how a logout ends resumption for good when clients rotate tickets.
//
// Servers that share a store (package fleet) revoke the family on every
// server: the remove hook is also called for the family's marker,
// FamilyMarker(family), an ID no session has, which the store publishes;
// each server's Invalidate then revokes the members it holds.
func (s *Server) RevokeFamily(sess *tlscache.Session) int {
	if sess == nil {
		return 0
	}
	family := familyOf(sess)
	if s.cache.Peek(sess.ID) != sess {
		// Not cached (taken, say, or never approved): still tell the
		// remove hook, so an external store forgets it.
		s.cache.Remove(sess)
	}
	n := s.revokeFamily(family)
	s.cache.RemoveID(FamilyMarker(family))
	return n
}

func (s *Server) revokeFamily(family []byte) int {
	return s.cache.RemoveFunc(func(other *tlscache.Session) bool {
		return bytes.Equal(familyOf(other), family)
	})
}

// familyMarker starts the IDs that stand for a whole family.
const familyMarker = "tlscache family "

// FamilyMarker returns the ID that stands for the family whose first
// session has ID family: RevokeFamily removes it (it is never cached) so
// that the remove hook can tell other servers.
func FamilyMarker(family []byte) []byte {
	return append([]byte(familyMarker), family...)
}

// Invalidate is what a shared store's watch calls (fleet.Tier.Watch) when
// another server removed id: the session leaves this server's cache
// (tlscache.Cache.Invalidate), and for a FamilyMarker, every session of
// that family this server holds is revoked, as RevokeFamily does here.
func (s *Server) Invalidate(id []byte) bool {
	if family, ok := bytes.CutPrefix(id, []byte(familyMarker)); ok && len(family) > 0 {
		return s.revokeFamily(family) > 0
	}
	return s.cache.Invalidate(id)
}

// FlushAll empties the cache (tlscache.Cache.FlushAll); a shared store's
// watch calls it when it may have missed removals.
func (s *Server) FlushAll() int { return s.cache.FlushAll() }

// RevokeFunc removes every cached session for which match returns true, for
// example every session of one client certificate. match runs without
// locks held.
func (s *Server) RevokeFunc(match func(ServerSession) bool) int {
	return s.cache.RemoveFunc(func(sess *tlscache.Session) bool {
		return match(s.Session(sess))
	})
}

// ConfigureHTTPServer prepares srv to serve with the cache: it installs the
// server on srv.TLSConfig, sets NextProtos to "h2" and "http/1.1" if empty
// (what ServeTLS would add to its own clone), and sets srv.ConnContext to
// track each connection's sessions, calling the ConnContext srv had.
//
// Connections use a clone of srv.TLSConfig made by the adapter, not the
// one ServeTLS makes: put the certificates in srv.TLSConfig (or set
// GetCertificate) before calling it, and serve with ServeTLS(l, "", "") or
// ListenAndServeTLS("", ""). It returns an error if srv.TLSConfig has no
// certificates, and ErrBound if it is bound already.
func (s *Server) ConfigureHTTPServer(srv *http.Server) error {
	cfg := srv.TLSConfig
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		return errors.New("tlscache/adapter: ConfigureHTTPServer needs the certificates in srv.TLSConfig; ServeTLS's certFile and keyFile go to a clone tracked connections do not use")
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	} else if !slices.Contains(cfg.NextProtos, "http/1.1") {
		cfg.NextProtos = append(cfg.NextProtos, "http/1.1")
	}
	if err := s.Install(cfg); err != nil {
		return err
	}
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		return ConnContext(ctx, c)
	}
	return nil
}
