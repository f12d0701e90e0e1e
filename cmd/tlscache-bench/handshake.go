package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// A backend is a cache the adapter rows run on. newCache returns the
// *tlscache.Cache a server keeps its sessions in; a non-empty skip omits
// the backend's rows and is printed as the reason.
type backend struct {
	name     string
	newCache func() (cache *tlscache.Cache, skip string)
}

// backends are the caches the adapter's handshake rows run on.
var backends = []backend{
	{name: "memory", newCache: func() (*tlscache.Cache, string) { return tlscache.New(nil), "" }},
}

// handshakeKind is one way of running handshakes: a server config and a
// client config, and whether every handshake must resume.
type handshakeKind struct {
	name   string
	resume bool
	setup  func(version uint16) (srv, cli *tls.Config, skip string)
}

var (
	benchCert tls.Certificate
	benchPool *x509.CertPool
)

func baseConfigs(version uint16) (srv, cli *tls.Config) {
	srv = &tls.Config{Certificates: []tls.Certificate{benchCert}, MinVersion: version, MaxVersion: version}
	cli = &tls.Config{RootCAs: benchPool, ServerName: serverName, MinVersion: version, MaxVersion: version}
	return srv, cli
}

func handshakeKinds() []handshakeKind {
	kinds := []handshakeKind{
		{name: "full handshake", setup: func(v uint16) (*tls.Config, *tls.Config, string) {
			srv, cli := baseConfigs(v)
			return srv, cli, "" // the client has no session cache
		}},
		{name: "stdlib tickets", resume: true, setup: func(v uint16) (*tls.Config, *tls.Config, string) {
			srv, cli := baseConfigs(v)
			cli.ClientSessionCache = tls.NewLRUClientSessionCache(0)
			return srv, cli, ""
		}},
	}
	for _, be := range backends {
		kinds = append(kinds, handshakeKind{name: "adapter " + be.name, resume: true,
			setup: func(v uint16) (*tls.Config, *tls.Config, string) {
				cache, skip := be.newCache()
				if skip != "" {
					return nil, nil, skip
				}
				srv, cli := baseConfigs(v)
				if err := adapter.NewServer(cache, nil).Install(srv); err != nil {
					panic(err)
				}
				adapter.NewClientCache(nil, nil).Install(cli)
				return srv, cli, ""
			}})
	}
	return kinds
}

// handshake runs one connection over an in-memory pipe: both handshakes,
// then the server writes a byte that the client reads (with it any TLS 1.3
// ticket, which crypto/tls stores when the application reads). It reports
// whether the client resumed.
func handshake(srv, cli *tls.Config) (bool, error) {
	cc, sc := pipe()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(sc, srv)
		err := s.Handshake()
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		sc.Close()
		errc <- err
	}()
	c := tls.Client(cc, cli)
	err := c.Handshake()
	resumed := c.ConnectionState().DidResume
	if err == nil {
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
	}
	cc.Close()
	return resumed, errors.Join(err, <-errc)
}

// handshakeParallelism is how many client/server pairs run per GOMAXPROCS:
// a server has handshakes waiting while one waits on a store (Redis).
const handshakeParallelism = 4

// benchHandshakes runs handshakes in parallel client/server pairs.
// With resume, a handshake that does not resume is an error.
func benchHandshakes(srv, cli *tls.Config, resume bool) func(b *testing.B) {
	return func(b *testing.B) {
		if _, err := handshake(srv, cli); err != nil { // a session to resume from
			b.Fatal(err)
		}
		var bad atomic.Int64
		var firstErr atomic.Pointer[error]
		b.ReportAllocs()
		b.SetParallelism(handshakeParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resumed, err := handshake(srv, cli)
				if err == nil && resumed != resume {
					err = fmt.Errorf("resumed=%v, want %v", resumed, resume)
				}
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
		if n := bad.Load(); n > 0 {
			b.Errorf("%d of %d handshakes went wrong, first: %v", n, b.N, *firstErr.Load())
		}
	}
}
