package adapter

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testhello"
	"github.com/tlscache/tlscache/tlscache"
)

// FuzzRawClientHello sends raw bytes, seeded with ClientHellos carrying
// many and large PSK identities and odd server names, to a real TLS server
// on loopback with the adapter installed: the server never panics, every
// connection ends, and none makes more than two store calls (the cache's
// get and new hooks).
func FuzzRawClientHello(f *testing.F) {
	id := make([]byte, IDLen)
	big := make([]byte, 12900)
	f.Add(testhello.Hello{ServerName: "example.com", Identities: [][]byte{id, id, id, id, id}}.Records())
	f.Add(testhello.Hello{ServerName: "example.com", Identities: [][]byte{big, big, big, big, big}}.Records())
	f.Add(testhello.Hello{ServerName: string(make([]byte, 300)), Identities: [][]byte{id}}.Records())
	f.Add(testhello.Hello{ServerName: "EXAMPLE.com"}.Records())
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01})

	var calls atomic.Int64
	count := func() { calls.Add(1) }
	cache := tlscache.New(&tlscache.Options{
		GetHook: func([]byte, bool) (*tlscache.Session, error) { count(); return nil, nil },
		NewHook: func(*tlscache.Session) error { count(); return nil },
	})
	server, _ := testConfigs(f, tls.VersionTLS13)
	server.MinVersion = tls.VersionTLS12
	if err := NewServer(cache, nil).Install(server); err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	done := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			s := tls.Server(c, server)
			s.Handshake()
			c.Close()
			done <- struct{}{}
		}
	}()

	f.Fuzz(func(t *testing.T, hello []byte) {
		calls.Store(0)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(hello)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server's handshake did not end")
		}
		if n := calls.Load(); n > 2 {
			t.Fatalf("one ClientHello made %d store calls", n)
		}
	})
}
