package adapter_test

import (
	"crypto/tls"

	"github.com/tlscache/tlscache/internal/testcert"
)

// exampleConfigs returns a server config with a fresh self-signed
// certificate for example.com, and a client config that trusts it.
func exampleConfigs() (server, client *tls.Config) {
	cert, pool := testcert.SelfSigned("example.com")
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	client = &tls.Config{RootCAs: pool, ServerName: "example.com"}
	return server, client
}
