// Package loopback makes real TLS connections over loopback TCP for tests.
package loopback

import (
	"context"
	"crypto/tls"
	"io"
	"testing"
)

// Connect makes one TLS connection to a server on serverConfig listening
// on a free loopback port: the server writes one byte after its handshake
// and the client reads it (and with it any TLS 1.3 ticket). It returns the
// client's connection state.
func Connect(tb testing.TB, serverConfig, clientConfig *tls.Config) tls.ConnectionState {
	tb.Helper()
	return ConnectContext(tb, context.Background(), serverConfig, clientConfig)
}

// ConnectContext is Connect with the server's handshake run under ctx, as
// net/http runs it under a connection's context (one made by
// adapter.WithConnSessions, say).
func ConnectContext(tb testing.TB, ctx context.Context, serverConfig, clientConfig *tls.Config) tls.ConnectionState {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConfig)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if c.(*tls.Conn).HandshakeContext(ctx) != nil {
			return
		}
		c.Write([]byte{1})
		io.Copy(io.Discard, c) // until the client closes
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), clientConfig)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		tb.Fatal(err)
	}
	return c.ConnectionState()
}
