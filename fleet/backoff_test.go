package fleet_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// shardedStore is a store of two shards, by the first byte of the key's
// ID ("a..." and "b..."), either of which can be down.
type shardedStore struct {
	*tlscache.MemoryStore
	downA, downB atomic.Bool
	callsA       atomic.Int32
	callsB       atomic.Int32
}

var _ fleet.Sharded = (*shardedStore)(nil)

// Shard is the hex of the ID's first byte: "61" for a, "62" for b.
func (s *shardedStore) Shard(key string) string { return key[:2] }

func (s *shardedStore) fail(key string) error {
	down, calls := &s.downA, &s.callsA
	if s.Shard(key) == "62" {
		down, calls = &s.downB, &s.callsB
	}
	calls.Add(1)
	if down.Load() {
		return errDown
	}
	return nil
}

func (s *shardedStore) Get(ctx context.Context, k string) ([]byte, error) {
	if err := s.fail(k); err != nil {
		return nil, err
	}
	return s.MemoryStore.Get(ctx, k)
}

func (s *shardedStore) Put(ctx context.Context, k string, d []byte, ttl time.Duration) error {
	if err := s.fail(k); err != nil {
		return err
	}
	return s.MemoryStore.Put(ctx, k, d, ttl)
}

// TestFleetBackOffPerShard: one shard of a Sharded store down, the tier
// backs off from it alone and the other shard's sessions keep resuming;
// the changes are logged once each, not per call.
func TestFleetBackOffPerShard(t *testing.T) {
	clk := newClock()
	store := &shardedStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now, Logger: log})
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
	cache.NewSession(tlscache.Server, newSession(clk, "a1"))
	cache.NewSession(tlscache.Server, newSession(clk, "b1"))

	store.downA.Store(true)
	for i := range 50 {
		if cache.Lookup([]byte("a1"), []byte("vhost")) != nil {
			t.Fatal("resumed from a shard that is down")
		}
		if cache.Lookup([]byte("b1"), []byte("vhost")) == nil {
			t.Fatalf("lookup %d: the shard that answers did not resume", i)
		}
	}
	if n := store.callsA.Load(); n != 1+fleet.DefaultFailures {
		t.Fatalf("shard a called %d times, want 1 put and %d failing gets, then skipped", n, fleet.DefaultFailures)
	}
	if st := tier.Stats(); st.BackOffs != 1 || !st.BackingOff || st.Skipped != 50-fleet.DefaultFailures {
		t.Fatalf("stats %+v", st)
	}
	store.downA.Store(false)
	clk.Advance(fleet.DefaultBackOff)
	for range 10 {
		if cache.Lookup([]byte("a1"), []byte("vhost")) == nil {
			t.Fatal("no resumption after the shard came back")
		}
	}
	out := logs.String()
	t.Logf("logs:\n%s", out)
	if strings.Count(out, "backing off") != 1 || strings.Count(out, "back-off ended") != 1 || strings.Count(out, "\n") != 2 {
		t.Fatal("want one line when the back-off started and one when it ended")
	}
	if !strings.Contains(out, "shard=61") {
		t.Fatal("the lines do not name the shard")
	}
}

// TestFleetBurstDoesNotBackOff: timeouts in a burst among calls that
// succeed (a busy host) fail those calls only; the store is not skipped
// unless failures make half of the window's calls.
func TestFleetBurstDoesNotBackOff(t *testing.T) {
	clk := newClock()
	store := &flakyStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now})
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
	cache.NewSession(tlscache.Server, newSession(clk, "s"))
	for range 20 { // the calls before the burst
		cache.Lookup([]byte("s"), []byte("vhost"))
	}
	resumed := 0
	for round := range 20 {
		for i := range 20 {
			store.down.Store(i < 8) // 8 of every 20 calls fail, in a row
			if cache.Lookup([]byte("s"), []byte("vhost")) != nil {
				resumed++
			}
			clk.Advance(time.Millisecond)
		}
		if tier.Stats().BackOffs != 0 {
			t.Fatalf("round %d: backed off at a 40%% failure rate", round)
		}
	}
	if resumed != 20*12 {
		t.Fatalf("%d resumed, want every call that did not fail (%d)", resumed, 20*12)
	}
	// The store stops answering: within a window, failures are the
	// majority.
	store.down.Store(true)
	calls := 0
	for tier.Stats().BackOffs == 0 {
		if calls++; calls > 2000 {
			t.Fatal("no back-off from a store that stopped answering")
		}
		cache.Lookup([]byte("s"), []byte("vhost"))
		clk.Advance(time.Millisecond)
	}
	t.Logf("backed off after %d failed calls, %v", calls, time.Duration(calls)*time.Millisecond)
}

// hungStore is a store whose Get, while hung, waits for its context's
// deadline, as a hung Redis; it records the deadline each call was given.
type hungStore struct {
	*tlscache.MemoryStore
	hung  atomic.Bool
	mu    sync.Mutex
	given []time.Duration
}

func (h *hungStore) Get(ctx context.Context, k string) ([]byte, error) {
	d, _ := ctx.Deadline()
	h.mu.Lock()
	h.given = append(h.given, time.Until(d))
	h.mu.Unlock()
	if !h.hung.Load() {
		return h.MemoryStore.Get(ctx, k)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestFleetAdaptiveDeadline: the default deadline is DefaultMaxTimeout
// until calls have been seen, then fits a fast store (DefaultTimeout);
// against a store that then hangs it doubles up to DefaultMaxTimeout, and
// the back-off starts after DefaultFailures calls: what a hung store costs
// a handshake is bounded.
func TestFleetAdaptiveDeadline(t *testing.T) {
	clk := newClock() // of the failure window; deadlines are real time
	store := &hungStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now})
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
	lookup := func() { cache.Lookup([]byte("s"), []byte("vhost")) }
	if d := tier.Stats().Deadline; d != fleet.DefaultMaxTimeout {
		t.Fatalf("first deadline %v, want DefaultMaxTimeout", d)
	}
	for range 100 {
		lookup()
	}
	if d := tier.Stats().Deadline; d != fleet.DefaultTimeout {
		t.Fatalf("deadline %v after fast calls, want DefaultTimeout", d)
	}
	store.mu.Lock()
	store.given = nil
	store.mu.Unlock()
	clk.Advance(fleet.DefaultWindow) // the fast calls leave the window
	store.hung.Store(true)
	for range 2 * fleet.DefaultFailures {
		lookup()
	}
	t.Logf("deadlines given once the store hung: %v", store.given)
	if len(store.given) != fleet.DefaultFailures {
		t.Fatalf("%d calls made, want %d then the back-off", len(store.given), fleet.DefaultFailures)
	}
	for i, d := range store.given {
		if d > fleet.DefaultMaxTimeout {
			t.Fatalf("call %d given %v, over DefaultMaxTimeout", i, d)
		}
		if i > 0 && d <= store.given[i-1] && d < fleet.DefaultMaxTimeout*9/10 {
			t.Fatalf("call %d given %v after %v: the deadline did not grow", i, d, store.given[i-1])
		}
	}
	if st := tier.Stats(); !st.BackingOff || st.Deadline != fleet.DefaultMaxTimeout {
		t.Fatalf("stats %+v: want backing off at DefaultMaxTimeout", st)
	}
}

// TestFleetBackOffFewCalls: calls too few for the window to hold the
// failures (each waits out a hung store's deadline, one handshake at a
// time) still start the back-off: the last 2*Failures calls count then.
func TestFleetBackOffFewCalls(t *testing.T) {
	clk := newClock()
	store := &flakyStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now})
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
	cache.NewSession(tlscache.Server, newSession(clk, "s"))
	for range 50 {
		cache.Lookup([]byte("s"), []byte("vhost"))
	}
	store.down.Store(true)
	failed := 0
	for tier.Stats().BackOffs == 0 {
		if failed++; failed > 20 {
			t.Fatal("no back-off from a store that fails every call, three calls a second")
		}
		clk.Advance(300 * time.Millisecond) // the window holds three calls at most
		cache.Lookup([]byte("s"), []byte("vhost"))
	}
	if failed != fleet.DefaultFailures {
		t.Fatalf("backed off after %d failed calls, want %d", failed, fleet.DefaultFailures)
	}
}
