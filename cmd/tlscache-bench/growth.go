package main

import (
	"encoding/binary"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// growthCache is a core cache (server mode, as the adapter's) holding n
// sessions with 16-byte random IDs, one IDContext and a 100-byte state,
// expiring in insertion order: the steady state of a busy server.
type growthCache struct {
	cache *tlscache.Cache
	ids   [][]byte // ids[j%n] is the j-th session added, while cached
	next  int      // sessions added so far
	ctx   []byte
	state []byte
	epoch time.Time
	rnd   *mrand.Rand // cheap random IDs: the cost measured is the cache's
}

func newGrowthCache(n int) *growthCache {
	g := &growthCache{
		ids:   make([][]byte, n),
		ctx:   make([]byte, 32),
		state: make([]byte, 100),
		epoch: time.Unix(1_700_000_000, 0),
		rnd:   mrand.New(mrand.NewPCG(5, 6)),
	}
	g.ctx = g.randomID(32)
	g.cache = tlscache.New(noByteBudget(&tlscache.Options{MaxSessions: n, Now: func() time.Time { return g.epoch }}))
	for range n {
		g.add()
	}
	return g
}

// add adds a session that expires after every cached one; when the cache
// is full that evicts the oldest, whose slot in ids it takes.
func (g *growthCache) add() {
	id := g.randomID(16)
	s := &tlscache.Session{ID: id, IDContext: g.ctx, State: g.state}
	s.SetCreated(g.epoch.Add(time.Duration(g.next) * time.Millisecond))
	g.cache.Add(s)
	g.ids[g.next%len(g.ids)] = id
	g.next++
}

func (g *growthCache) benchAdd(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		g.add()
	}
}

// benchLookup looks up cached sessions with Zipf or uniform keys.
func (g *growthCache) benchLookup(zipf bool) func(*testing.B) {
	n := len(g.ids)
	order := zipfOrder(n)
	if !zipf {
		r := mrand.New(mrand.NewPCG(3, 4))
		for i := range order {
			order[i] = r.IntN(n)
		}
	}
	return func(b *testing.B) {
		// The IDs to look up, copied in lookup order into one buffer: a
		// server has the offered ID at hand, so the harness must not add
		// the cache misses of finding it among n.
		probes := make([][]byte, len(order))
		buf := make([]byte, 0, 16*len(order))
		for i, j := range order {
			buf = append(buf, g.ids[j]...)
			probes[i] = buf[len(buf)-16:]
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if g.cache.Lookup(probes[i&(len(probes)-1)], g.ctx) == nil {
				b.Fatal("miss")
			}
		}
	}
}

func (g *growthCache) randomID(n int) []byte {
	id := make([]byte, 0, n)
	for len(id) < n {
		id = binary.LittleEndian.AppendUint64(id, g.rnd.Uint64())
	}
	return id[:n]
}
