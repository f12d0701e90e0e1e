package adapter

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// writeKeyPair writes the test certificate and its key as PEM files.
func writeKeyPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	cert, _ := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// httpClient returns a client that trusts the test certificate, keeps its
// TLS sessions and opens a new connection for every request.
func httpClient(t *testing.T) *http.Client {
	_, pool := selfSigned(t)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "example.com", ClientSessionCache: tls.NewLRUClientSessionCache(8)},
		DisableKeepAlives: true,
	}}
}

// serveFiles serves h with certificate files through Server.ServeTLS.
func serveFiles(t *testing.T, srv *Server, h http.Handler) (url string) {
	t.Helper()
	certFile, keyFile := writeKeyPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(hs, ln, certFile, keyFile) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

func get(t *testing.T, c *http.Client, method, url string) string {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Certificate files given to ServeTLS reach tracked connections: they
// resume, and their handlers see their sessions (login approves them).
// http.Server's own ServeTLS would load the files into a clone of the
// config that the adapter does not see.
func TestServeTLSCertificateFiles(t *testing.T) {
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	srv := NewServer(cache, &ServerOptions{InheritApproval: true})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		cs := ConnSessionsFrom(r.Context())
		fmt.Fprintf(w, "tracked=%v resumed=%v", cs != nil, r.TLS.DidResume)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { srv.Approve(ConnSessionsFrom(r.Context())) })
	url := serveFiles(t, srv, mux)
	c := httpClient(t)

	if got := get(t, c, "GET", url); got != "tracked=true resumed=false" {
		t.Fatalf("first request: %s", got)
	}
	if got := get(t, c, "GET", url); got != "tracked=true resumed=false" {
		t.Fatalf("before login: %s (a session resumed that nobody approved)", got)
	}
	get(t, c, "POST", url+"/login")
	for i := range 3 { // each resumption issues the ticket the next one offers
		if got := get(t, c, "GET", url); got != "tracked=true resumed=true" {
			t.Fatalf("request %d after login: %s", i, got)
		}
	}
}

func TestListenAndServeTLSBadFiles(t *testing.T) {
	srv := NewServer(tlscache.New(nil), nil)
	dir := t.TempDir()
	hs := &http.Server{Addr: "127.0.0.1:0"}
	err := srv.ListenAndServeTLS(hs, filepath.Join(dir, "no.pem"), filepath.Join(dir, "no.key"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "tlscache/adapter: ") {
		t.Errorf("ListenAndServeTLS with missing files: %v", err)
	}
}

func TestConfigureHTTPServerNeedsCertificates(t *testing.T) {
	srv := NewServer(tlscache.New(nil), nil)
	if err := srv.ConfigureHTTPServer(&http.Server{}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("ConfigureHTTPServer without certificates: %v, want ErrNoCertificate", err)
	}
	server, _ := testConfigs(t, tls.VersionTLS13)
	hs := &http.Server{TLSConfig: server}
	if err := srv.ConfigureHTTPServer(hs); err != nil {
		t.Fatal(err)
	}
	if hs.ConnContext == nil || len(hs.TLSConfig.NextProtos) != 2 {
		t.Errorf("ConnContext %v, NextProtos %v", hs.ConnContext != nil, hs.TLSConfig.NextProtos)
	}
	first := reflect.ValueOf(hs.ConnContext).Pointer()
	if err := srv.ConfigureHTTPServer(hs); err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(hs.ConnContext).Pointer() != first {
		t.Error("a second ConfigureHTTPServer wrapped ConnContext again")
	}
}

// A server whose ConfigureHTTPServer error (no certificate) is ignored, and
// which is then served with http.Server's own ServeTLS and files, resumes
// nothing (without the fix it resumed every session with crypto/tls's
// tickets, under a login-only cache that approved none). With the
// certificates in place, ConfigureHTTPServer enables tickets again.
func TestConfigureHTTPServerIgnoredErrorFailsClosed(t *testing.T) {
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	srv := NewServer(cache, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "resumed=%v", r.TLS.DidResume) })
	hs := &http.Server{Handler: mux}
	if err := srv.ConfigureHTTPServer(hs); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("ConfigureHTTPServer without certificates: %v", err)
	}
	certFile, keyFile := writeKeyPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() { hs.Close(); <-done })
	c := httpClient(t)
	for i := range 3 {
		if got := get(t, c, "GET", "https://"+ln.Addr().String()); got != "resumed=false" {
			t.Fatalf("request %d: %s, a session resumed that the cache never approved", i, got)
		}
	}

	server, _ := testConfigs(t, tls.VersionTLS13)
	later := &http.Server{TLSConfig: server}
	certs := server.Certificates
	server.Certificates = nil
	srv.ConfigureHTTPServer(later)
	if !server.SessionTicketsDisabled {
		t.Fatal("tickets left on a config without certificates")
	}
	server.Certificates = certs
	if err := srv.ConfigureHTTPServer(later); err != nil || server.SessionTicketsDisabled {
		t.Fatalf("with the certificates: %v, tickets disabled %v", err, server.SessionTicketsDisabled)
	}
}
