package main

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/tlscache/tlscache/internal/testcert"
)

// serverName is the name every benchmark server has a certificate for.
const serverName = "bench.example"

// newCert returns a self-signed ECDSA P-256 certificate for serverName (the
// kind most TLS servers serve today) and a pool that trusts it.
func newCert() (tls.Certificate, *x509.CertPool) { return testcert.SelfSigned(serverName) }
