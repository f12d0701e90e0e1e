package adapter

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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
// name, whatever certificate or policy it was issued with.
func (s *Server) RevokeServerName(name string) int {
	name = normalizeName(name)
	return s.cache.RemoveFunc(func(sess *tlscache.Session) bool {
		return s.names.name(sess.IDContext) == name
	})
}

// RevokeFunc removes every cached session for which match returns true, for
// example every session of one client certificate. match runs without
// locks held.
func (s *Server) RevokeFunc(match func(ServerSession) bool) int {
	return s.cache.RemoveFunc(func(sess *tlscache.Session) bool {
		return match(s.Session(sess))
	})
}

// ConfigureHTTPServer prepares srv to serve with the cache: it installs the
// server on srv.TLSConfig (creating one if nil), sets NextProtos to "h2" and
// "http/1.1" if empty (what ServeTLS would add to its own clone), and sets
// srv.ConnContext to track each connection's sessions, calling the
// ConnContext srv had. Call it after setting srv.TLSConfig's certificates.
func (s *Server) ConfigureHTTPServer(srv *http.Server) {
	if srv.TLSConfig == nil {
		srv.TLSConfig = &tls.Config{}
	}
	if len(srv.TLSConfig.NextProtos) == 0 {
		srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
	} else if !slices.Contains(srv.TLSConfig.NextProtos, "http/1.1") {
		srv.TLSConfig.NextProtos = append(srv.TLSConfig.NextProtos, "http/1.1")
	}
	s.Install(srv.TLSConfig)
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		return ConnContext(ctx, c)
	}
}
