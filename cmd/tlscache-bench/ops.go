package main

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// zipfOrder returns 1<<16 indexes below n drawn from a Zipf distribution
// (s = 1.1: a few keys are hot, as real clients and servers see).
func zipfOrder(n int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, uint64(n-1))
	order := make([]int, 1<<16)
	for i := range order {
		order[i] = int(z.Uint64())
	}
	return order
}

// captured holds real session states, taken from handshakes.
type captured struct {
	client *tls.ClientSessionState // a TLS 1.3 client session
	server *tls.SessionState       // a TLS 1.3 server session
}

// capture runs one TLS 1.3 handshake and keeps both sides' sessions.
func capture() captured {
	var c captured
	srv, cli := baseConfigs(tls.VersionTLS13)
	srv.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		c.server = ss
		return srv.EncryptTicket(cs, ss)
	}
	cli.ClientSessionCache = clientCapture{&c}
	if _, err := handshake(srv, cli); err != nil {
		panic(err)
	}
	if c.client == nil || c.server == nil {
		panic("no session captured")
	}
	return c
}

type clientCapture struct{ c *captured }

func (clientCapture) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (k clientCapture) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		k.c.client = cs
	}
}

// opsPerIteration is how many operations the cache rows run per iteration
// of b.RunParallel; the table divides by it. testing.PB.Next writes to its
// PB, and two workers' PBs (32 bytes each) often share a cache line: at one
// operation per iteration that false sharing, not the cache, set the
// parallel rows' cost in about half the runs.
const opsPerIteration = 16

// clientKeys is how many servers the client caches know.
const clientKeys = 1000

// clientOps benchmarks a tls.ClientSessionCache holding clientKeys
// sessions, with Zipf keys: putEvery 0 only Gets, 1 only Puts, 10 a 90/10
// mix of Gets and Puts.
func clientOps(newCache func() tls.ClientSessionCache, cs *tls.ClientSessionState, putEvery int) func(*testing.B) {
	keys := make([]string, clientKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("host%d.example", i)
	}
	order := zipfOrder(clientKeys)
	return func(b *testing.B) {
		cache := newCache()
		for _, k := range keys {
			cache.Put(k, cs)
		}
		var misses atomic.Int64
		var seed atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				for range opsPerIteration {
					key := keys[order[i&(len(order)-1)]]
					i++
					if putEvery > 0 && i%putEvery == 0 {
						cache.Put(key, cs)
					} else if _, ok := cache.Get(key); !ok {
						misses.Add(1)
					}
				}
			}
		})
		if n := misses.Load(); n > 0 {
			b.Errorf("%d misses", n)
		}
	}
}

func newLRU() tls.ClientSessionCache { return tls.NewLRUClientSessionCache(clientKeys) }

func newClientAdapter() tls.ClientSessionCache { return adapter.NewClientCache(nil, nil) }

// serverKeys is how many sessions the server lookup benchmarks hold.
const serverKeys = 10_000

// serverLookup benchmarks the path a resumption takes on the server, from
// the identity a client offers to the *tls.SessionState handed to
// crypto/tls: the adapter's UnwrapSession (context, cache lookup,
// ParseSessionState) or the standard library's DecryptTicket.
func serverLookup(ss *tls.SessionState, useAdapter bool) func(*testing.B) {
	cs := tls.ConnectionState{Version: tls.VersionTLS13, ServerName: serverName}
	order := zipfOrder(serverKeys)
	return func(b *testing.B) {
		cfg, _ := baseConfigs(tls.VersionTLS13)
		issue, unwrap := cfg.EncryptTicket, cfg.DecryptTicket
		if useAdapter {
			if err := adapter.NewServer(tlscache.New(nil), nil).Install(cfg); err != nil {
				b.Fatal(err)
			}
			issue, unwrap = cfg.WrapSession, cfg.UnwrapSession
		}
		ids := make([][]byte, serverKeys)
		for i := range ids {
			id, err := issue(cs, ss)
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = id
		}
		var misses atomic.Int64
		var seed atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919))
			for pb.Next() {
				for range opsPerIteration {
					got, err := unwrap(ids[order[i&(len(order)-1)]], cs)
					i++
					if got == nil || err != nil {
						misses.Add(1)
					}
				}
			}
		})
		if n := misses.Load(); n > 0 {
			b.Errorf("%d misses", n)
		}
	}
}
