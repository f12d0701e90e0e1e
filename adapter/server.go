package adapter

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"runtime"
	"sync"
	"weak"

	"github.com/tlscache/tlscache/tlscache"
)

// IDLen is the length of the session identities (tickets) the server
// issues: random bytes from crypto/rand.
const IDLen = 16

// ServerOptions configure a Server. The zero value means the defaults.
type ServerOptions struct {
	// IDContext is the application's part of every session's context, as
	// OpenSSL's SSL_CTX_set_session_id_context: servers with different
	// IDContexts never resume each other's sessions, even sharing a store.
	// Change it to invalidate every session at once.
	IDContext []byte
	// SingleUse makes every session resume at most once, atomically
	// (RFC 8446, section 8.1): the lookup takes it out of the cache. A TLS
	// 1.2 resumption re-issues the same session, which then misses.
	SingleUse bool
}

// Server binds a tlscache.Cache to crypto/tls servers: Install sets a
// *tls.Config's WrapSession and UnwrapSession so that every session ticket
// is a random identity looked up in the cache.
type Server struct {
	cache *tlscache.Cache
	opts  ServerOptions

	reissue reissues
	names   nameRegistry

	mu        sync.Mutex
	installed map[weak.Pointer[tls.Config]]weak.Pointer[configState] // configs Install bound
	derived   map[weak.Pointer[tls.Config]]*configState              // GetConfigForClient results, bound on clones
}

// NewServer returns a Server that keeps sessions in cache. A nil opts means
// the defaults.
func NewServer(cache *tlscache.Cache, opts *ServerOptions) *Server {
	s := &Server{
		cache:     cache,
		installed: make(map[weak.Pointer[tls.Config]]weak.Pointer[configState]),
		derived:   make(map[weak.Pointer[tls.Config]]*configState),
	}
	if opts != nil {
		s.opts = *opts
		s.opts.IDContext = append([]byte(nil), opts.IDContext...)
	}
	return s
}

// Cache returns the cache the server keeps its sessions in.
func (s *Server) Cache() *tlscache.Cache { return s.cache }

// Install binds cfg to the cache. It sets WrapSession and UnwrapSession, and
// wraps GetConfigForClient and VerifyConnection, calling the ones cfg had:
// ClientHellos count as Accept, verified handshakes as AcceptGood (and drive
// the automatic flush), and the configs GetConfigForClient returns are bound
// too, on clones. Call Install once per config, after setting its fields and
// before serving with it; a second call is a no-op.
//
// A handshake whose context carries a ConnSessions (see ConnContext) is
// bound to it through a per-connection clone of the config. net/http's
// ServeTLS clones its TLSConfig and adds "h2" and "http/1.1" to NextProtos,
// but the per-connection clone is made from the config Install saw, so set
// NextProtos on it yourself (or use ConfigureHTTPServer).
func (s *Server) Install(cfg *tls.Config) {
	key := weak.Make(cfg)
	s.mu.Lock()
	if st := s.installed[key].Value(); st != nil {
		s.mu.Unlock()
		return
	}
	st := s.newConfigState(cfg)
	s.installed[key] = weak.Make(st)
	s.mu.Unlock()
	runtime.AddCleanup(cfg, s.forget, key)

	cfg.WrapSession = st.shared.wrap
	cfg.UnwrapSession = st.shared.unwrap
	cfg.VerifyConnection = st.shared.verify
	cfg.GetConfigForClient = st.getConfigForClient
}

func (s *Server) forget(key weak.Pointer[tls.Config]) {
	s.mu.Lock()
	delete(s.installed, key)
	delete(s.derived, key)
	s.mu.Unlock()
}

// configState is what the server knows of one *tls.Config it bound.
type configState struct {
	srv      *Server
	cfg      *tls.Config // the config crypto/tls uses: the user's, or a bound clone
	ctxs     *contexts
	userGCFC func(*tls.ClientHelloInfo) (*tls.Config, error)
	userVC   func(tls.ConnectionState) error
	shared   *binding // the callbacks of untracked connections
}

func (s *Server) newConfigState(cfg *tls.Config) *configState {
	st := &configState{
		srv:      s,
		cfg:      cfg,
		ctxs:     newContexts(s.opts.IDContext, cfg),
		userGCFC: cfg.GetConfigForClient,
		userVC:   cfg.VerifyConnection,
	}
	st.shared = &binding{st: st}
	return st
}

// stateFor returns the bound state of a config that GetConfigForClient
// returned: the config itself if Install bound it, else a bound clone made
// once per config.
func (s *Server) stateFor(cfg *tls.Config) *configState {
	key := weak.Make(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.installed[key].Value(); st != nil {
		return st
	}
	if st := s.derived[key]; st != nil {
		return st
	}
	clone := cfg.Clone()
	clone.GetConfigForClient = nil
	st := s.newConfigState(clone)
	clone.WrapSession = st.shared.wrap
	clone.UnwrapSession = st.shared.unwrap
	clone.VerifyConnection = st.shared.verify
	s.derived[key] = st
	runtime.AddCleanup(cfg, s.forget, key)
	return st
}

func (st *configState) getConfigForClient(chi *tls.ClientHelloInfo) (*tls.Config, error) {
	st.srv.cache.HandshakeStart(tlscache.Server)
	use := st
	if st.userGCFC != nil {
		cfg, err := st.userGCFC(chi)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			use = st.srv.stateFor(cfg)
		}
	}
	if rec := ConnSessionsFrom(chi.Context()); rec != nil {
		return use.perConn(rec), nil
	}
	if use == st {
		return nil, nil
	}
	return use.cfg, nil
}

// perConn returns a clone of the config whose callbacks record into rec.
func (st *configState) perConn(rec *ConnSessions) *tls.Config {
	b := &binding{st: st, rec: rec}
	c := st.cfg.Clone()
	c.GetConfigForClient = nil
	c.WrapSession = b.wrap
	c.UnwrapSession = b.unwrap
	c.VerifyConnection = b.verify
	return c
}

// binding holds the crypto/tls callbacks of a config, for all its untracked
// connections (rec nil) or for one tracked connection.
type binding struct {
	st  *configState
	rec *ConnSessions
}

// wrap is Config.WrapSession: it stores the session under a fresh random
// identity and returns that identity as the ticket.
func (b *binding) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	srv := b.st.srv
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	if cs.DidResume && cs.Version < tls.VersionTLS13 {
		// crypto/tls re-issues the resumed TLS 1.2 session (same secret,
		// same creation time): hand out the same identity instead of
		// growing the cache.
		if sess := srv.reissue.take(state); sess != nil {
			if b.rec != nil {
				b.rec.addIssued(sess)
			}
			return sess.ID, nil
		}
	}
	id := make([]byte, IDLen)
	rand.Read(id)
	ctx := b.st.ctxs.forName(cs.ServerName)
	srv.names.record(ctx, cs.ServerName)
	sess := &tlscache.Session{ID: id, IDContext: ctx, State: state}
	if len(cs.PeerCertificates) > 0 {
		sess.Value = &serverMeta{peerCertificates: cs.PeerCertificates}
	}
	srv.cache.NewSession(tlscache.Server, sess)
	if b.rec != nil {
		b.rec.addIssued(sess)
	}
	return id, nil
}

// unwrap is Config.UnwrapSession. Whatever goes wrong (unknown or malformed
// identity, another context, expiry, a failing store, a state that does not
// parse) gives (nil, nil): a full handshake, never an aborted one.
func (b *binding) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if len(identity) == 0 {
		return nil, nil // a TLS 1.2 client without a ticket: not a miss
	}
	srv := b.st.srv
	ctx := b.st.ctxs.forName(cs.ServerName)
	var sess *tlscache.Session
	if srv.opts.SingleUse {
		sess = srv.cache.Take(identity, ctx)
	} else {
		sess = srv.cache.Lookup(identity, ctx)
	}
	if sess == nil {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(sess.State)
	if err != nil {
		return nil, nil
	}
	if cs.Version < tls.VersionTLS13 {
		srv.reissue.put(sess)
	}
	if b.rec != nil {
		b.rec.setResumed(sess)
	}
	return ss, nil
}

// verify is Config.VerifyConnection: the user's check first, then the
// handshake counts as good.
func (b *binding) verify(cs tls.ConnectionState) error {
	if vc := b.st.userVC; vc != nil {
		if err := vc(cs); err != nil {
			return err
		}
	}
	if b.rec != nil {
		b.rec.handshakeDone(cs.DidResume)
	}
	b.st.srv.cache.HandshakeDone(tlscache.Server)
	return nil
}

// serverMeta is the Value of a server session issued to a client that
// presented certificates, for revocation by certificate.
type serverMeta struct {
	peerCertificates []*x509.Certificate
}

// reissues maps the state of a TLS 1.2 session being resumed to its cached
// session, from UnwrapSession to the WrapSession that re-issues it. Entries
// whose handshake fails in between are dropped when the map is full.
type reissues struct {
	mu sync.Mutex
	m  map[string]reissue
}

type reissue struct {
	sess *tlscache.Session
	n    int // connections resuming it now
}

const maxReissues = 1024

func (r *reissues) put(sess *tlscache.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxReissues {
		r.m = make(map[string]reissue)
	}
	e := r.m[string(sess.State)]
	e.sess = sess
	e.n++
	r.m[string(sess.State)] = e
}

func (r *reissues) take(state []byte) *tlscache.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[string(state)]
	if !ok {
		return nil
	}
	if e.n--; e.n == 0 {
		delete(r.m, string(state))
	} else {
		r.m[string(state)] = e
	}
	return e.sess
}
