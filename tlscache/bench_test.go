package tlscache

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var benchSizes = []int{1_000, 100_000, 1_000_000}

func benchID(i int) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(i)*0x9e3779b97f4a7c15)
}

// filled returns a cache holding n sessions with distinct expiries, and their IDs.
func filled(b *testing.B, n int) (*Cache, [][]byte) {
	b.Helper()
	now := epoch
	c := New(&Options{Size: n, Now: func() time.Time { return now }})
	ids := make([][]byte, n)
	state := make([]byte, 100)
	for i := range n {
		ids[i] = benchID(i)
		s := &Session{ID: ids[i], State: state}
		s.SetCreated(epoch.Add(time.Duration(i) * time.Millisecond))
		c.Add(s)
	}
	return c, ids
}

// BenchmarkAdd adds sessions to a full cache of n sessions, so that each add
// also evicts: the steady state of a busy server.
func BenchmarkAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c, _ := filled(b, n)
			state := make([]byte, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s := &Session{ID: benchID(n + i), State: state}
				s.SetCreated(epoch.Add(time.Duration(n+i) * time.Millisecond))
				c.Add(s)
			}
		})
	}
}

// BenchmarkLookup looks up cached sessions in a cache of n sessions, with keys
// drawn uniformly (every lookup likely a CPU cache miss at large n) or from a
// Zipf distribution (a few clients resume often, as in practice).
func BenchmarkLookup(b *testing.B) {
	for _, dist := range []string{"zipf", "uniform"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", dist, n), func(b *testing.B) {
				c, ids := filled(b, n)
				r := rand.New(rand.NewPCG(1, 2))
				zipf := rand.NewZipf(r, 1.1, 1, uint64(n-1))
				order := make([]int, 1<<16)
				for i := range order {
					if dist == "zipf" {
						order[i] = int(zipf.Uint64())
					} else {
						order[i] = r.IntN(n)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if c.Lookup(ids[order[i%len(order)]], nil) == nil {
						b.Fatal("miss")
					}
				}
			})
		}
	}
}
