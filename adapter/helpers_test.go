package adapter

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/tlscache/tlscache/internal/testcert"
)

var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool
)

// selfSigned returns a certificate for "example.com", and a pool trusting it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() { testCert, testPool = testcert.SelfSigned("example.com") })
	return testCert, testPool
}

// pipeHandshake runs one TLS connection over an in-memory pipe: the server
// writes one byte after its handshake and the client reads it (and with it
// any TLS 1.3 ticket). It returns the client's connection state.
func pipeHandshake(tb testing.TB, server, client *tls.Config) tls.ConnectionState {
	tb.Helper()
	sc, cc := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		defer sc.Close()
		s := tls.Server(sc, server)
		if err := s.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err := s.Write([]byte{1})
		errc <- err
		io.Copy(io.Discard, s) // until the client closes
	}()
	c := tls.Client(cc, client)
	defer c.Close()
	if err := c.Handshake(); err != nil {
		tb.Fatalf("client handshake: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		tb.Fatalf("client read: %v", err)
	}
	if err := <-errc; err != nil {
		tb.Fatalf("server: %v", err)
	}
	return c.ConnectionState()
}

func testConfigs(tb testing.TB, version uint16) (server, client *tls.Config) {
	cert, pool := selfSigned(tb)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version}
	client = &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: version, MaxVersion: version}
	return server, client
}
