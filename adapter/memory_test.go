package adapter

import (
	"crypto/tls"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// A session whose client sent a certificate keeps nothing beside its state
// (no parsed chain, which would keep its handshake message alive), and
// revocation still sees the certificate's subject and fingerprint.
func TestClientCertificateNotKeptParsed(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		server, client := testConfigs(t, version)
		server.ClientAuth = tls.RequireAnyClientCert
		cert, _ := selfSigned(t)
		client.Certificates = []tls.Certificate{cert}
		client.ClientSessionCache = tls.NewLRUClientSessionCache(1) // a TLS 1.2 ticket is asked for
		cache := tlscache.New(nil)
		srv := NewServer(cache, nil)
		if err := srv.Install(server); err != nil {
			t.Fatal(err)
		}
		pipeHandshake(t, server, client)
		n := 0
		for s := range cache.All() {
			n++
			if s.Value != nil {
				t.Errorf("%s: the cached session keeps a %T", tls.VersionName(version), s.Value)
			}
			if ss := srv.Session(s); ss.ClientSubject != "CN=example.com" || len(ss.ClientCertSHA256) != 32 {
				t.Errorf("%s: subject %q, fingerprint %x", tls.VersionName(version), ss.ClientSubject, ss.ClientCertSHA256)
			}
		}
		if n == 0 {
			t.Fatalf("%s: nothing cached", tls.VersionName(version))
		}
	}
}
