package adapter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"weak"
)

// ErrNoCertificate is returned by [Server.ConfigureHTTPServer] for a server
// whose TLSConfig has no certificate: the files given to [http.Server]'s own
// ServeTLS or ListenAndServeTLS go to a clone of the config that the
// adapter never sees. Serve with [Server.ListenAndServeTLS] or
// [Server.ServeTLS], which take the files.
var ErrNoCertificate = errors.New("tlscache/adapter: no certificate in http.Server.TLSConfig: pass the files to Server.ListenAndServeTLS or Server.ServeTLS (not to http.Server's, whose clone of the config the adapter does not see), or set TLSConfig.Certificates")

// ConfigureHTTPServer prepares srv to serve with the cache: it installs the
// server on srv.TLSConfig, sets NextProtos to "h2" and "http/1.1" if empty
// (what ServeTLS would add to its own clone), and sets srv.ConnContext to
// track each connection's sessions, calling the ConnContext srv had.
// Configuring the same srv again does nothing.
//
// Connections use a clone of srv.TLSConfig made by the adapter, not the
// one [http.Server.ServeTLS] makes: put the certificates in srv.TLSConfig
// (or set GetCertificate) and serve with srv.ServeTLS(l, "", "") or
// srv.ListenAndServeTLS("", ""), or serve with [Server.ListenAndServeTLS]
// or [Server.ServeTLS], which take certificate files and call
// ConfigureHTTPServer. It returns [ErrNoCertificate] if srv.TLSConfig has no
// certificates, and [ErrBound] if its config is a clone of a bound one.
//
// Without certificates it also disables session tickets on srv.TLSConfig
// (made if nil): served anyway, with the files given to http.Server's own
// ServeTLS, srv would resume with crypto/tls's tickets, which no policy of
// the cache controls, and so resumes nothing instead (fail closed). A
// later call with the certificates in place enables them again.
func (s *Server) ConfigureHTTPServer(srv *http.Server) error {
	cfg := srv.TLSConfig
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		if cfg == nil {
			cfg = &tls.Config{}
			srv.TLSConfig = cfg
		}
		if !cfg.SessionTicketsDisabled {
			cfg.SessionTicketsDisabled = true
			key := weak.Make(cfg)
			s.ticketsOff.Store(key, struct{}{})
			runtime.AddCleanup(cfg, func(key weak.Pointer[tls.Config]) { s.ticketsOff.Delete(key) }, key)
		}
		return ErrNoCertificate
	}
	if _, off := s.ticketsOff.LoadAndDelete(weak.Make(cfg)); off {
		cfg.SessionTicketsDisabled = false
	}
	key := weak.Make(srv)
	if _, done := s.httpServers.Load(key); done {
		return nil
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
	s.httpServers.Store(key, struct{}{})
	runtime.AddCleanup(srv, func(key weak.Pointer[http.Server]) { s.httpServers.Delete(key) }, key)
	return nil
}

// ListenAndServeTLS listens on srv.Addr (":https" if empty) and calls
// [Server.ServeTLS]: it is srv.ListenAndServeTLS(certFile, keyFile) with
// the server's sessions.
func (s *Server) ListenAndServeTLS(srv *http.Server, certFile, keyFile string) error {
	addr := srv.Addr
	if addr == "" {
		addr = ":https"
	}
	if err := s.loadCertificate(srv, certFile, keyFile); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	return s.ServeTLS(srv, ln, "", "")
}

// ServeTLS is srv.ServeTLS(l, certFile, keyFile) with the server's
// sessions: it loads the certificate and key files, as [http.Server] does,
// into srv.TLSConfig (made if nil, its Certificates replaced), calls
// [Server.ConfigureHTTPServer] and serves. With empty file names the
// certificates must be in srv.TLSConfig already. Like http.Server's, it
// returns [http.ErrServerClosed] after srv.Shutdown or srv.Close.
func (s *Server) ServeTLS(srv *http.Server, l net.Listener, certFile, keyFile string) error {
	if err := s.loadCertificate(srv, certFile, keyFile); err != nil {
		return err
	}
	if err := s.ConfigureHTTPServer(srv); err != nil {
		return err
	}
	return srv.ServeTLS(l, "", "")
}

func (s *Server) loadCertificate(srv *http.Server, certFile, keyFile string) error {
	if certFile == "" && keyFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("tlscache/adapter: %w", err)
	}
	if srv.TLSConfig == nil {
		srv.TLSConfig = &tls.Config{}
	}
	srv.TLSConfig.Certificates = []tls.Certificate{cert}
	return nil
}
