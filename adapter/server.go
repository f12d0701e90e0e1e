package adapter

import (
	"crypto/tls"
	"errors"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/tlscache/tlscache/tlscache"
)

// IDLen is the length of the session identities (tickets) the server
// issues: random bytes from [crypto/rand].
const IDLen = 16

// maxDerived bounds the configs returned by GetConfigForClient whose
// contexts a Server keeps.
const maxDerived = 256

// ServerOptions configure a [Server]. The zero value means the defaults.
type ServerOptions struct {
	// IDContext is the application's part of every session's context, as
	// OpenSSL's SSL_CTX_set_session_id_context: servers with different
	// IDContexts never resume each other's sessions, even sharing a store.
	// Change it to invalidate every session at once.
	IDContext []byte
	// SingleUse makes every session resume at most once, atomically
	// (RFC 8446, section 8.1): the lookup takes it out of the cache. A TLS
	// 1.2 resumption, which re-issues the same secret, stores it under a
	// new identity, usable once again.
	SingleUse bool
	// InheritApproval approves every session issued on a connection that
	// resumed from a cached session, also under [tlscache.NoInternalStore]: it
	// goes to the cache and, on a server of a fleet, to the store, as
	// [Server.Approve] does (unless the cache's new hook stores it
	// already). Clients offer the newest ticket they got, and a TLS 1.3
	// resumption issues a new one: without this, an approved session
	// resumes once and its successor is a stranger. The successors join
	// the approved session's lineage (its family), which
	// [Server.RevokeFamily] ends at once, on every server.
	InheritApproval bool
	// EarlyData is the early-data (0-RTT) policy; the zero value,
	// [EarlyDataOnce], accepts a ticket's early data at most once.
	EarlyData EarlyDataPolicy
	// EarlyDataClaims records which tickets' early data was accepted. Nil
	// means claims in this process; servers sharing a store pass the
	// fleet.Tier of that store, so that early data is accepted once across
	// the fleet.
	EarlyDataClaims tlscache.Claimer
	// LineageTickets is how many sessions of one lineage this server keeps
	// in its cache, most recently used or issued first: when a resumption
	// issues a new ticket, the lineage's older ones beyond this number
	// leave the internal tier (not the store), so that the cache's
	// capacity counts clients rather than connections. A client that keeps
	// offering one ticket keeps it. Zero means [DefaultLineageTickets];
	// negative means no limit.
	LineageTickets int
}

// Server binds a [tlscache.Cache] to [crypto/tls] servers: [Server.Install]
// sets a [*tls.Config]'s WrapSession and UnwrapSession so that every session
// ticket is a random identity looked up in the cache.
type Server struct {
	cache *tlscache.Cache
	opts  ServerOptions

	names      nameRegistry
	nameBudget atomic.Int64 // bytes left for the configs' name caches
	early      earlyData

	revs      revocations
	lin       *lineages
	fleet     atomic.Pointer[Fleet]
	untrusted atomic.Int64 // resumptions refused: the fleet's watch not trusted
	evicted   atomic.Int64 // sessions dropped by the per-lineage limit

	httpServers sync.Map // weak.Pointer[http.Server] -> struct{}: ConfigureHTTPServer done
	ticketsOff  sync.Map // weak.Pointer[tls.Config] -> struct{}: tickets ConfigureHTTPServer disabled

	mu        sync.Mutex
	installed map[weak.Pointer[tls.Config]]weak.Pointer[configState] // configs Install bound
	derived   map[*tls.Config]*configState                           // GetConfigForClient results
	order     []*tls.Config                                          // derived, oldest first
}

// NewServer returns a [Server] that keeps sessions in cache. A nil opts
// means the defaults.
//
// A cache whose mode has the Client bit and not the Server bit (one made
// for a [ClientCache]) would store no server session: NewServer adds the
// Server bit to its mode, since a cache handed to a Server is for server
// sessions, as [NewClientCache] does the other way. A cache in mode
// [tlscache.Off] keeps its mode: no session resumes but those added with
// [tlscache.Cache.Add].
func NewServer(cache *tlscache.Cache, opts *ServerOptions) *Server {
	if m := cache.Mode(); m&tlscache.Client != 0 && m&tlscache.Server == 0 {
		cache.SetMode(m | tlscache.Server)
	}
	s := &Server{
		cache:     cache,
		installed: make(map[weak.Pointer[tls.Config]]weak.Pointer[configState]),
		derived:   make(map[*tls.Config]*configState),
	}
	s.nameBudget.Store(maxNameCacheBytes)
	if opts != nil {
		s.opts = *opts
		s.opts.IDContext = append([]byte(nil), opts.IDContext...)
	}
	s.early.init(cache, &s.opts)
	limit := s.opts.LineageTickets
	if limit == 0 {
		limit = DefaultLineageTickets
	}
	s.lin = newLineages(limit, max(cache.Size(), 1024))
	return s
}

// Cache returns the cache the server keeps its sessions in.
func (s *Server) Cache() *tlscache.Cache { return s.cache }

// ErrBound is returned by [Server.Install] for a config whose callbacks are
// already a [Server]'s, such as a Clone of a bound config.
var ErrBound = errors.New("tlscache/adapter: config already bound to a Server (bind configs before cloning them)")

// Install binds cfg to the cache. It sets WrapSession and UnwrapSession, and
// wraps GetConfigForClient and VerifyConnection, calling the ones cfg had:
// ClientHellos count as [tlscache.Stats.Accept], verified handshakes as
// [tlscache.Stats.AcceptGood] (and drive the automatic flush), and the
// configs GetConfigForClient returns are bound too. Call Install after
// setting cfg's fields and before serving with it. Installing the same
// config again does nothing; a Clone of a bound config shares its binding,
// and Install refuses it with [ErrBound].
//
// Every handshake runs on a clone of cfg (or of the config cfg's
// GetConfigForClient returned) made for it, whose callbacks hold that
// handshake's state: its [ConnSessions], if its context carries one (see
// [ConnContext]), and its limit of one store lookup. The clone is made from
// the config as it is at that ClientHello, so a change the application
// makes to a config (a new ClientCAs, say) applies from the next
// handshake on, as it would without the adapter; a change of certificates
// or ClientAuth also changes the sessions' context. (crypto/tls still
// forbids modifying a config in use: replace it, or synchronize, as for a
// config without the adapter.) So that the clone has everything the
// connection needs: net/http's ServeTLS loads certificate files and adds
// "h2" to NextProtos on a clone of its own, which the adapter does not
// see; [Server.ConfigureHTTPServer] checks for this.
func (s *Server) Install(cfg *tls.Config) error {
	key := weak.Make(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installed[key].Value() != nil {
		return nil
	}
	if isBound(cfg) {
		return ErrBound
	}
	st := s.newConfigState(cfg, false)
	s.installed[key] = weak.Make(st)
	runtime.AddCleanup(cfg, s.forget, key)
	st.shared.bind(cfg)
	cfg.GetConfigForClient = st.getConfigForClient
	return nil
}

// unwrapCode identifies the code of every binding's UnwrapSession: method
// values of one method share it.
var unwrapCode = reflect.ValueOf((&binding{}).unwrap).Pointer()

// isBound reports whether cfg's callbacks are a binding's, of any Server.
func isBound(cfg *tls.Config) bool {
	return cfg.UnwrapSession != nil && reflect.ValueOf(cfg.UnwrapSession).Pointer() == unwrapCode
}

func (s *Server) forget(key weak.Pointer[tls.Config]) {
	s.mu.Lock()
	delete(s.installed, key)
	s.mu.Unlock()
}

// configState is what the server knows of one *tls.Config: one Install
// bound, or one that a GetConfigForClient returned (derived).
type configState struct {
	srv      *Server
	cfg      *tls.Config // the application's config; each handshake runs on a clone
	derived  bool
	ctxs     atomic.Pointer[contexts] // of cfg's certificates and policy, as last seen
	userGCFC func(*tls.ClientHelloInfo) (*tls.Config, error)
	userVC   func(tls.ConnectionState) error // the VerifyConnection Install found
	shared   *binding                        // the callbacks Install set on cfg
}

func (s *Server) newConfigState(cfg *tls.Config, derived bool) *configState {
	st := &configState{srv: s, cfg: cfg, derived: derived}
	st.ctxs.Store(newContexts(s.opts.IDContext, cfg, &s.names, &s.nameBudget))
	if !derived {
		st.userGCFC = cfg.GetConfigForClient
		st.userVC = cfg.VerifyConnection
		st.shared = &binding{st: st, userVC: st.userVC}
	}
	return st
}

// contexts returns the contexts of the config as last seen.
func (st *configState) contexts() *contexts { return st.ctxs.Load() }

// contextsFor returns the contexts of c, a clone of st.cfg made for one
// handshake: those of st unless the application changed the certificates
// or the client-auth policy since they were derived.
func (st *configState) contextsFor(c *tls.Config) *contexts {
	cur := st.ctxs.Load()
	if cur.shape.equal(shapeOf(c)) {
		return cur
	}
	fresh := newContexts(st.srv.opts.IDContext, c, &st.srv.names, &st.srv.nameBudget)
	st.ctxs.Store(fresh)
	return fresh
}

// stateFor returns the state of a config that GetConfigForClient
// returned: the installed one if Install bound it. The states of the last
// maxDerived other configs are kept, so a callback that returns the same
// few configs derives their contexts once, and one that makes a new config
// per hello costs that per handshake but no memory.
func (s *Server) stateFor(cfg *tls.Config) *configState {
	s.mu.Lock()
	if st := s.installed[weak.Make(cfg)].Value(); st != nil {
		s.mu.Unlock()
		return st
	}
	if st := s.derived[cfg]; st != nil {
		s.mu.Unlock()
		return st
	}
	s.mu.Unlock()

	st := s.newConfigState(cfg, true)

	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.derived[cfg]; prev != nil {
		return prev
	}
	if len(s.order) >= maxDerived {
		delete(s.derived, s.order[0])
		s.order[0] = nil
		s.order = s.order[1:]
	}
	s.derived[cfg] = st
	s.order = append(s.order, cfg)
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
	return use.forHandshake(ConnSessionsFrom(chi.Context()), offersEarlyData(chi)), nil
}

// forHandshake returns a clone of the config, as it is now, whose
// callbacks hold one handshake's state, recording into rec if not nil;
// early says that the ClientHello offers early data.
func (st *configState) forHandshake(rec *ConnSessions, early bool) *tls.Config {
	c := st.cfg.Clone()
	c.GetConfigForClient = nil
	b := &binding{st: st, rec: rec, ctxs: st.contextsFor(c), handshake: true, userVC: st.userVC, early: early}
	if st.derived {
		b.userVC = c.VerifyConnection // the application's, as it is now
	}
	b.bind(c)
	return c
}
