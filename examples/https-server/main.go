// Command https-server is an HTTPS server whose TLS session resumption is
// controlled by tlscache.
//
//	go run ./examples/https-server                 # every session resumes
//	go run ./examples/https-server -policy login   # only after POST /login
//
// It serves https://127.0.0.1:8443 with a self-signed certificate for
// localhost (or -cert/-key), logs one line per connection, and shows each
// connection's TLS state and the cache statistics at GET /.
//
// An admin API (plain HTTP, loopback only unless -admin-public) listens on
// http://127.0.0.1:9443: list, delete and flush sessions, read and change
// the mode, timeout and size, and GET /metrics for Prometheus. Set a bearer
// token with $TLSCACHE_ADMIN_TOKEN (or -admin-token, which ps shows);
// -admin-public refuses to start without one. It answers only to its own
// address or a loopback name in Host, and state-changing requests need
// Content-Type: application/json and no cross-origin browser headers, so
// that no web page can drive it.
//
// Both listeners log the address they listen on, so ports chosen with
// -addr 127.0.0.1:0 -admin 127.0.0.1:0 can be read from the log.
//
// With -redis host:port, servers share their sessions through Redis, sealed
// with the keys of -seal-keys or $TLSCACHE_SEAL_KEYS: a session issued by
// one resumes on all, and a session removed on one (admin DELETE, logout)
// stops resuming on all. -redis takes one address for a standalone Redis,
// several (comma-separated) for a Redis Cluster, or the sentinels'
// addresses with -redis-master NAME (or $TLSCACHE_REDIS_MASTER) for a
// Sentinel set; the server checks at startup that the addresses are what
// it was told, and refuses to start otherwise.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

func main() {
	var (
		addr      = flag.String("addr", "127.0.0.1:8443", "HTTPS listen address")
		certFile  = flag.String("cert", "", "certificate chain (PEM); default: a self-signed one for localhost")
		keyFile   = flag.String("key", "", "private key (PEM) of -cert")
		policy    = flag.String("policy", "all", "which sessions resume: all, login (only after POST /login) or none")
		timeout   = flag.Duration("timeout", tlscache.DefaultTimeout, "session lifetime")
		size      = flag.Int("size", tlscache.DefaultSize, "most sessions cached (0: no limit)")
		singleUse = flag.Bool("single-use", false, "every session resumes at most once")
		mode      = flag.String("mode", "", "extra mode flags, e.g. NoAutoClear|UpdateTime")
		tls12     = flag.Bool("tls12", false, "offer TLS 1.2 only")
		http3     = flag.Bool("http3", false, "serve HTTP/3 too, on the same port over UDP (Alt-Svc advertises it)")
		earlyData = flag.String("early-data", "once", "HTTP/3 early data (0-RTT): once (per ticket), off, or single-use (tickets)")

		adminAddr   = flag.String("admin", "127.0.0.1:9443", "admin API listen address (plain HTTP, loopback only); empty: no admin API")
		adminToken  = flag.String("admin-token", "", "bearer token the admin API requires (default $TLSCACHE_ADMIN_TOKEN; the flag shows in ps)")
		adminPublic = flag.Bool("admin-public", false, "allow -admin on a non-loopback address (needs a token)")
		idle        = flag.Duration("idle-timeout", 2*time.Minute, "close keep-alive connections idle this long")
		stateFile   = flag.String("state", "", "keep the sessions across restarts in this file: loaded and removed at start (a crash loses them, never brings back a revoked one), saved at shutdown (sealed with -seal-keys, or a key kept in FILE.key; without -cert, the self-signed certificate is kept in FILE.cert)")

		redisAddr    = flag.String("redis", "", "share sessions with a fleet through Redis at host:port (several, comma-separated: a cluster's nodes, or with -redis-master the sentinels)")
		redisMaster  = flag.String("redis-master", os.Getenv("TLSCACHE_REDIS_MASTER"), "Sentinel: the name of the master the sentinels of -redis monitor (default $TLSCACHE_REDIS_MASTER)")
		redisPrefix  = flag.String("redis-prefix", redisstore.DefaultPrefix, "Redis key prefix the fleet shares")
		sealKeys     = flag.String("seal-keys", "", "file of base64 sealing keys, newest first (default $TLSCACHE_SEAL_KEYS)")
		storeTimeout = flag.Duration("store-timeout", 0, "deadline of each Redis call made during a handshake (0: adapts to Redis's latency, "+
			fleet.DefaultTimeout.String()+" to "+fleet.DefaultMaxTimeout.String()+")")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *adminToken == "" {
		*adminToken = os.Getenv("TLSCACHE_ADMIN_TOKEN")
	}
	if err := run(log, config{
		addr: *addr, certFile: *certFile, keyFile: *keyFile, policy: *policy,
		timeout: *timeout, size: *size, singleUse: *singleUse, mode: *mode, tls12: *tls12, idle: *idle, state: *stateFile,
		http3: *http3, earlyData: *earlyData,
		adminAddr: *adminAddr, adminToken: *adminToken, adminPublic: *adminPublic,
		fleet: fleetConfig{redis: *redisAddr, master: *redisMaster, prefix: *redisPrefix, keysFile: *sealKeys, timeout: *storeTimeout},
	}); err != nil {
		log.Error("https-server", "err", err)
		os.Exit(1)
	}
}

type config struct {
	addr, certFile, keyFile, policy, mode, state string
	timeout, idle                                time.Duration
	size                                         int
	singleUse, tls12, http3                      bool
	earlyData                                    string

	adminAddr, adminToken string
	adminPublic           bool

	fleet fleetConfig
}

func run(log *slog.Logger, cfg config) error {
	mode, err := policyMode(cfg.policy, cfg.mode)
	if err != nil {
		return err
	}
	early, err := adapter.ParseEarlyDataPolicy(cfg.earlyData)
	if err != nil {
		return err
	}
	if cfg.http3 && cfg.tls12 {
		return errors.New("-http3 needs TLS 1.3: drop -tls12")
	}
	var keepCert string
	if cfg.state != "" {
		keepCert = cfg.state + ".cert"
	}
	cert, err := loadOrGenerate(cfg.certFile, cfg.keyFile, keepCert)
	if err != nil {
		return err
	}
	size := cfg.size
	if size == 0 {
		size = -1 // tlscache.Options: negative means no limit
	}
	opts := tlscache.Options{Mode: mode, Off: mode == tlscache.Off, MaxSessions: size, Timeout: cfg.timeout, Logger: log}
	// Under -policy login, sessions issued on connections resumed from an
	// approved session are approved too: clients rotate tickets.
	srvOpts := adapter.ServerOptions{SingleUse: cfg.singleUse, InheritApproval: true, EarlyData: early}
	var srv *adapter.Server
	var tier *fleet.Tier
	if cfg.fleet.redis != "" {
		if cfg.policy == "none" {
			return errors.New("-redis: -policy none resumes nothing, so there is nothing to share")
		}
		// Only approved sessions join the fleet under -policy login.
		fs, err := openFleet(log, cfg.fleet, cfg.policy == "login", opts, srvOpts)
		if err != nil {
			return err
		}
		defer fs.Close()
		srv, tier = fs.Server.Server, fs.Tier()
	} else {
		srv = adapter.NewServer(tlscache.New(&opts), &srvOpts)
	}
	cache := srv.Cache()
	var saved *state
	if cfg.state != "" {
		if saved, err = openState(log, cfg.state, cfg.fleet.keysFile, cache); err != nil {
			return err
		}
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if cfg.tls12 {
		tlsConfig.MaxVersion = tls.VersionTLS12
	}
	app := &app{cache: cache, srv: srv, policy: cfg.policy, log: log, tier: tier}
	handler := app.routes()
	// HTTP/3 gets its own config: net/http changes the HTTPS one as it
	// starts serving (h2), and the adapter binds each config it is given.
	h3Config := tlsConfig.Clone()
	// Timeouts, so that slow or quiet clients cannot hold connections (and
	// file descriptors) for good: the TLS handshake and the request headers
	// within ReadHeaderTimeout, the whole request within ReadTimeout, the
	// answer within WriteTimeout, and keep-alive connections closed after
	// IdleTimeout.
	hs := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       cfg.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := app.srv.ConfigureHTTPServer(hs); err != nil {
		return err
	}
	app.logConnections(hs)

	// Listen on both before serving either: a bad -admin fails the start.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	servers := []*serving{{name: "https", srv: hs, ln: ln, serve: func() error { return hs.ServeTLS(ln, "", "") }}}
	var quic *h3
	if cfg.http3 {
		if quic, err = startHTTP3(log, app, ln.Addr(), h3Config, handler); err != nil {
			ln.Close()
			return err
		}
		hs.Handler = quic.altSvc(handler)
		servers = append(servers, &serving{name: "http3", serve: quic.serve, shutdown: quic.shutdown})
	}
	if cfg.adminAddr != "" {
		aln, err := listenAdmin(cfg.adminAddr, cfg.adminPublic, cfg.adminToken != "")
		if err != nil {
			ln.Close()
			return err
		}
		api := &admin{cache: cache, srv: app.srv, tier: tier, policy: cfg.policy, log: log, token: hashToken(cfg.adminToken), addr: aln.Addr()}
		if quic != nil {
			api.h3 = quic.qs
		}
		as := &http.Server{
			Handler:           api.routes(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      time.Minute,
			IdleTimeout:       cfg.idle,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, &serving{name: "admin", srv: as, ln: aln, serve: func() error { return as.Serve(aln) }})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve() }()
	}
	log.Info("serving", "addr", ln.Addr().String(), "url", "https://"+ln.Addr().String()+"/",
		"policy", cfg.policy, "mode", mode.String(), "http3", cfg.http3, "early_data", early.String())
	if cfg.adminAddr == "" {
		log.Info("admin API off")
	} else {
		aln := servers[len(servers)-1].ln
		log.Info("admin", "addr", aln.Addr().String(), "url", "http://"+aln.Addr().String()+"/", "token", cfg.adminToken != "")
		if tcp, ok := aln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
			log.Warn("THE ADMIN API IS REACHABLE FROM THE NETWORK over plain HTTP: anyone who sees its traffic learns the token",
				"addr", aln.Addr().String(), "token", cfg.adminToken != "")
		}
	}

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	stop() // a second signal kills the process
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			shutdown := s.shutdown
			if shutdown == nil {
				shutdown = s.srv.Shutdown
			}
			if err := shutdown(shutdownCtx); err != nil {
				errs[i] = fmt.Errorf("shutting down the %s server: %w", s.name, err)
			}
		})
	}
	wg.Wait()
	if saved != nil { // after the last handshake
		errs = append(errs, saved.save(log, cache))
	}
	if err := errors.Join(append(errs, serveErr)...); err != nil {
		return err
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// serving is one of the servers run runs: HTTPS, HTTP/3 or admin.
type serving struct {
	name     string
	srv      *http.Server
	ln       net.Listener
	serve    func() error
	shutdown func(context.Context) error // nil: srv.Shutdown
}

// policyMode returns the cache mode of a resumption policy, with the extra
// flags added.
func policyMode(policy, extra string) (tlscache.Mode, error) {
	var mode tlscache.Mode
	switch policy {
	case "all":
		mode = tlscache.Server
	case "login":
		mode = tlscache.Server | tlscache.NoInternalStore
	case "none":
		mode = tlscache.Off
	default:
		return 0, fmt.Errorf("unknown -policy %q: want all, login or none", policy)
	}
	if extra != "" {
		m, err := tlscache.ParseMode(extra)
		if err != nil {
			return 0, err
		}
		mode |= m
	}
	return mode, nil
}
