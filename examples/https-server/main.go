// Command https-server is an HTTPS server whose TLS session resumption is
// controlled by tlscache.
//
//	go run ./examples/https-server                 # every session resumes
//	go run ./examples/https-server -policy login   # only after POST /login
//
// It serves https://127.0.0.1:8443 with a self-signed certificate for
// localhost (or -cert/-key), logs one line per connection, and shows each
// connection's TLS state and the cache statistics at GET /.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tlscache/tlscache/adapter"
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
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, config{
		addr: *addr, certFile: *certFile, keyFile: *keyFile, policy: *policy,
		timeout: *timeout, size: *size, singleUse: *singleUse, mode: *mode, tls12: *tls12,
	}); err != nil {
		log.Error("https-server", "err", err)
		os.Exit(1)
	}
}

type config struct {
	addr, certFile, keyFile, policy, mode string
	timeout                               time.Duration
	size                                  int
	singleUse, tls12                      bool
}

func run(log *slog.Logger, cfg config) error {
	mode, err := policyMode(cfg.policy, cfg.mode)
	if err != nil {
		return err
	}
	cert, err := loadOrGenerate(cfg.certFile, cfg.keyFile)
	if err != nil {
		return err
	}
	size := cfg.size
	if size == 0 {
		size = -1 // tlscache.Options: negative means no limit
	}
	cache := tlscache.New(&tlscache.Options{Mode: mode, Size: size, Timeout: cfg.timeout})
	cache.SetMode(mode) // Options cannot say Off (zero means the default)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if cfg.tls12 {
		tlsConfig.MaxVersion = tls.VersionTLS12
	}
	app := &app{
		cache: cache,
		// Under -policy login, sessions issued on connections resumed from
		// an approved session are approved too: clients rotate tickets.
		srv:    adapter.NewServer(cache, &adapter.ServerOptions{SingleUse: cfg.singleUse, InheritApproval: true}),
		policy: cfg.policy,
		log:    log,
	}
	hs := &http.Server{
		Addr:              cfg.addr,
		Handler:           app.routes(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := app.srv.ConfigureHTTPServer(hs); err != nil {
		return err
	}
	app.logConnections(hs)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServeTLS("", "") }()
	log.Info("serving", "url", "https://"+cfg.addr+"/", "policy", cfg.policy, "mode", mode.String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
