package tlscache

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentInvariants runs adds, lookups, takes, removals, flushes and
// resizes from many goroutines (run it with -race), then checks that the
// cache's size and counters add up.
func TestConcurrentInvariants(t *testing.T) {
	const (
		workers = 8
		ops     = 3000
		size    = 64
	)
	clock := newClock()
	var removedByHook [5]atomic.Int64 // per Reason
	c := New(&Options{
		MaxSessions: size,
		Now:         clock.Now,
		RemoveHook: func(s *Session, why Reason) error {
			removedByHook[why].Add(1)
			return nil
		},
	})
	var (
		addsTrue, removesTrue, lookups, takes atomic.Int64
		wg                                    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var recent [16][]byte // IDs this worker added lately
			for i := range ops {
				id := recent[(i*7)%len(recent)]
				if id == nil {
					id = []byte("none")
				}
				ctx := []byte{byte(w % 2)}
				if i%13 == 0 {
					ctx = []byte("other") // a context mismatch when found
				}
				switch i % 10 {
				case 0, 1, 2, 3:
					s := &Session{ID: fmt.Appendf(nil, "w%d-%d", w, i), IDContext: []byte{byte(w % 2)}}
					s.SetTimeout(time.Duration(1+i%7) * time.Second)
					if c.Add(s) {
						addsTrue.Add(1)
					}
					recent[i%len(recent)] = s.ID
				case 4, 5:
					lookups.Add(1)
					c.Lookup(id, ctx)
				case 6:
					takes.Add(1)
					c.Take(id, ctx)
				case 7:
					if c.RemoveID(id) {
						removesTrue.Add(1)
					}
				case 8:
					if i%50 == 8 {
						c.Flush(clock.Now())
					} else {
						clock.Advance(500 * time.Millisecond)
					}
				case 9:
					if i%100 == 9 {
						c.SetSize(size/2 + i%size)
					}
					if n := c.Len(); n > size*2 {
						t.Errorf("Len %d above any size set", n)
					}
				}
			}
		}()
	}
	wg.Wait()

	st := c.Stats()
	if st.Number > c.Size() {
		t.Errorf("Len %d > Size %d", st.Number, c.Size())
	}
	// Every session added either is still cached or left through exactly one
	// counted way out. IDs are unique per add, so nothing was replaced.
	left := removesTrue.Load() + removedByHook[Evicted].Load() + removedByHook[Flushed].Load() +
		removedByHook[Expired].Load() + removedByHook[Taken].Load()
	if got, want := int64(st.Number), addsTrue.Load()-left; got != want {
		t.Errorf("Number = %d, want adds %d - removals %d = %d", got, addsTrue.Load(), left, want)
	}
	if got := removedByHook[Evicted].Load(); got != st.CacheFull {
		t.Errorf("evictions seen by the hook %d != CacheFull %d", got, st.CacheFull)
	}
	// A session found expired may be flushed or evicted by another goroutine
	// before the lookup removes it: then that removal's hook fires instead.
	if got := removedByHook[Expired].Load(); got > st.Timeouts || got == 0 {
		t.Errorf("expired seen by the hook %d, Timeouts %d", got, st.Timeouts)
	}
	if st.Hits != st.InternalHits+st.ExternalHits {
		t.Errorf("Hits %d != InternalHits %d + ExternalHits %d", st.Hits, st.InternalHits, st.ExternalHits)
	}
	// Each lookup and take ends in exactly one of hit, miss, timeout or
	// context mismatch (there is no get hook).
	if got, want := st.Hits+st.Misses+st.Timeouts+st.ContextMismatches, lookups.Load()+takes.Load(); got != want {
		t.Errorf("hits+misses+timeouts+mismatches = %d, want lookups+takes = %d", got, want)
	}
	if addsTrue.Load() == 0 || st.Hits == 0 || st.CacheFull == 0 || st.Timeouts == 0 || st.ContextMismatches == 0 ||
		removedByHook[Flushed].Load() == 0 || removedByHook[Taken].Load() == 0 {
		t.Errorf("the workload did not exercise every path: %+v", st)
	}
	// The index, the entries, the heaps and the arenas agree.
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}

// One session added to two caches at once lands in exactly one, and
// SetCreated racing with Add leaves the expiry order right.
func TestConcurrentAddAcrossCaches(t *testing.T) {
	for range 200 {
		a, b := New(nil), New(nil)
		s := &Session{ID: []byte("shared")}
		var wg sync.WaitGroup
		var added atomic.Int32
		for _, c := range []*Cache{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c.Add(s) {
					added.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.SetCreated(epoch.Add(time.Hour))
		}()
		wg.Wait()
		if added.Load() != 1 || a.Len()+b.Len() != 1 {
			t.Fatalf("added to %d caches (Len %d and %d), want exactly 1", added.Load(), a.Len(), b.Len())
		}
		owner := a
		if b.Len() == 1 {
			owner = b
		}
		owner.mu.Lock()
		exp := owner.t.ents[owner.t.root(orderProtect)].exp()
		owner.mu.Unlock()
		if exp != s.expiry() {
			t.Fatalf("heap holds expiry %d, session says %d", exp, s.expiry())
		}
	}
}
