package fleet

import (
	"context"
	"log/slog"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// ServerOptions configure [NewServer]. Keys is required; the zero value of
// every other field means its default.
type ServerOptions struct {
	// Keys seal and open the stored sessions, as [Options.Keys]: the same
	// keyring on every server of the fleet ([ParseKeys] reads one).
	Keys []Key
	// ApprovedOnly makes only the sessions the application approves
	// resumable, on every server: controlled resumption across the fleet
	// (OpenSSL's SSL_CTX_add_session use case). Handshakes store nothing
	// (the cache's mode gets [tlscache.NoInternalStore] and the tier's new hook
	// is not set); [adapter.Server.Approve] puts a connection's sessions into
	// the cache and the store, and the sessions issued on connections
	// resumed from them inherit the approval
	// ([adapter.ServerOptions.InheritApproval] is set). Without it every
	// session resumes on every server.
	ApprovedOnly bool
	// Logger, if set, gets the tier's and the cache's lines (see
	// [Options.Logger]): once per change, never per handshake.
	Logger *slog.Logger
	// Tier holds the tier's other options; its Keys and Logger are those
	// above, and a nil Now is the cache's clock.
	Tier Options
	// Cache configures the server's cache; its hooks are the tier's.
	Cache tlscache.Options
	// Server configures the adapter; a nil EarlyDataClaims is the tier, so
	// that early data is accepted once across the fleet.
	Server adapter.ServerOptions
}

// A Server is an [adapter.Server] whose sessions are shared, through a
// [Tier], with every server of the fleet that uses the same store and keys:
// sessions resume on any of them, approvals ([adapter.Server.Approve])
// and revocations ([adapter.Server.RevokeFamily] and the rest) hold on all,
// and while the server cannot be sure it hears the fleet's revocations it
// resumes nothing (fail closed; see the package doc). Its methods are the
// adapter.Server's: ConfigureHTTPServer, ListenAndServeTLS, Install,
// Approve, RevokeWait...
type Server struct {
	*adapter.Server
	tier *Tier
	stop context.CancelFunc
	done chan struct{}
}

// NewServer assembles a fleet server on store (a redisstore.Store, or any
// [tlscache.Store] that is a [tlscache.Watcher]): the tier, the cache with
// the tier's hooks, the [adapter.Server], and the watch that applies what
// other servers revoke, running until [Server.Close]. It does not wait for
// the watch: until it works ([Server.Ready]) the server resumes nothing, so
// that a session revoked elsewhere meanwhile does not resume here. It
// returns [ErrNoWatch] for a store that cannot report deletions.
func NewServer(store tlscache.Store, opts *ServerOptions) (*Server, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	_, w := store.(tlscache.Watcher)
	_, lw := store.(LiveWatcher)
	if !w && !lw {
		return nil, ErrNoWatch
	}
	to := opts.Tier
	if len(opts.Keys) > 0 {
		to.Keys = opts.Keys
	}
	if opts.Logger != nil {
		to.Logger = opts.Logger
	}
	if to.Now == nil {
		to.Now = opts.Cache.Now
	}
	tier, err := New(store, &to)
	if err != nil {
		return nil, err
	}
	co := tier.Hooks(&opts.Cache)
	if co.Logger == nil {
		co.Logger = opts.Logger
	}
	so := opts.Server
	if opts.ApprovedOnly {
		co.Mode |= tlscache.Server | tlscache.NoInternalStore
		co.Off = false
		co.NewHook = nil
		so.InheritApproval = true
	}
	if so.EarlyDataClaims == nil {
		so.EarlyDataClaims = tier
	}
	srv := adapter.NewServer(tlscache.New(co), &so)
	srv.SetFleet(tier.link()) // at once: an approval made before the watch runs reaches the store
	// Distrusted from now, not from when the goroutine starts the watch:
	// nothing resumes before the watch first works.
	tier.rev.watching.Store(true)
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{Server: srv, tier: tier, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tier.Watch(ctx, srv)
	}()
	return s, nil
}

// Tier returns the server's tier: its [Tier.Stats], [Tier.Trusted],
// [Tier.Claim].
func (s *Server) Tier() *Tier { return s.tier }

// Ready is closed once the watch works and the server resumes sessions.
func (s *Server) Ready() <-chan struct{} { return s.tier.Ready() }

// Close stops the watch and the tier's retries, and waits for them. The
// server then resumes nothing (its watch is gone); the store, and the
// Redis client under it, are the caller's to close.
func (s *Server) Close() error {
	s.stop()
	<-s.done
	s.tier.Close()
	return nil
}
