package integration_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/internal/testclock"
	"github.com/tlscache/tlscache/tlscache"
)

// versions are the TLS versions every scenario runs under.
var versions = []struct {
	name string
	v    uint16
}{{"TLS12", tls.VersionTLS12}, {"TLS13", tls.VersionTLS13}}

// fakeClock drives the caches' expiry in tests.
type fakeClock = testclock.Clock

func newClock() *fakeClock { return testclock.New(time.Now()) }

// pki is a test CA and the leaf certificates it issued.
type pki struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	dir    string // where PEM files are written
}

var (
	testPKIOnce sync.Once
	testPKI     *pki
)

// thePKI returns the CA shared by all tests of this package.
func thePKI(t testing.TB) *pki {
	testPKIOnce.Do(func() {
		testPKI = newCA("tlscache test CA")
		dir, err := os.MkdirTemp("", "tlscache-pki")
		if err != nil {
			panic(err)
		}
		testPKI.dir = dir
		writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", testPKI.caCert.Raw)
	})
	return testPKI
}

// newCA returns a new CA, without files.
func newCA(name string) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &pki{caCert: cert, caKey: key, pool: pool}
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1}

// leaf issues a certificate for the given names (DNS names or IPs), for
// servers and clients alike.
func (p *pki) leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// files writes cert and key as PEM files and returns their paths.
func (p *pki) files(t testing.TB, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(certFile, "CERTIFICATE", cert.Certificate[0])
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writePEM(keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func (p *pki) caFile() string { return filepath.Join(p.dir, "ca.pem") }

func writePEM(path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		panic(err)
	}
}

// server is a TLS server on loopback whose every connection completes a
// handshake, writes one line and closes: enough for a TLS 1.3 client to
// read its ticket.
type server struct {
	addr  string
	cfg   *tls.Config
	srv   *adapter.Server
	cache *tlscache.Cache

	untracked bool // handshakes run without a ConnSessions

	mu    sync.Mutex
	conns []*adapter.ConnSessions // per connection, in accept order
	errs  []error                 // handshake errors
}

// untracked makes a server run handshakes without a ConnSessions, on the
// callbacks shared by all connections.
func untracked(s *server) { s.untracked = true }

// startServer serves cfg with the adapter installed on cache.
func startServer(t testing.TB, cfg *tls.Config, cache *tlscache.Cache, opts *adapter.ServerOptions, options ...func(*server)) *server {
	t.Helper()
	s := &server{cfg: cfg, cache: cache, srv: adapter.NewServer(cache, opts)}
	for _, o := range options {
		o(s)
	}
	if err := s.srv.Install(cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *server) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ctx, rec := adapter.WithConnSessions(context.Background())
	if s.untracked {
		ctx, rec = context.Background(), nil
	}
	s.mu.Lock()
	s.conns = append(s.conns, rec)
	s.mu.Unlock()
	tc := tls.Server(c, s.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		return
	}
	fmt.Fprintf(tc, "resumed=%v\n", tc.ConnectionState().DidResume)
	tc.CloseWrite()
	// Wait for the client to close, so that it reads everything.
	bufio.NewReader(tc).ReadString('\n')
}

// conn returns the record of the i-th connection the server accepted.
func (s *server) conn(t testing.TB, i int) *adapter.ConnSessions {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.conns) {
		t.Fatalf("server saw %d connections, want at least %d", len(s.conns), i+1)
	}
	return s.conns[i]
}

func (s *server) handshakeErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// serverConfig returns a server config for the given certificates at one
// TLS version.
func serverConfig(version uint16, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: certs, MinVersion: version, MaxVersion: version}
}

// clientConfig returns a client config trusting the test CA, for name, at
// one TLS version, with the given session cache.
func clientConfig(t testing.TB, version uint16, name string, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		RootCAs:            thePKI(t).pool,
		ServerName:         name,
		MinVersion:         version,
		MaxVersion:         version,
		ClientSessionCache: cache,
	}
}

// dial runs one connection: handshake, read the server's line (and with it
// any TLS 1.3 ticket), close. It returns the client's view.
func dial(t testing.TB, addr string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	cs, err := tryDial(addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return cs
}

func tryDial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("reading the server's line: %w", err)
	}
	cs := c.ConnectionState()
	if want := fmt.Sprintf("resumed=%v\n", cs.DidResume); line != want {
		return cs, errors.New("client and server disagree on resumption: server said " + line)
	}
	return cs, nil
}

// onlyIssued returns the single session the i-th connection issued.
func (s *server) onlyIssued(t testing.TB, i int) *tlscache.Session {
	t.Helper()
	issued := s.conn(t, i).Issued()
	if len(issued) != 1 {
		t.Fatalf("connection %d issued %d sessions, want 1", i, len(issued))
	}
	return issued[0]
}
