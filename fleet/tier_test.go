package fleet_test

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/testclock"
	"github.com/tlscache/tlscache/tlscache"
)

type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) }

// server is one member of a fleet: a cache in front of a shared store.
type server struct {
	cache *tlscache.Cache
	tier  *fleet.Tier
}

// newServer joins a fleet on store, with its Watch running until the test
// ends.
func newServer(t *testing.T, store tlscache.Store, clk *clock, keys []fleet.Key, mode tlscache.Mode) *server {
	t.Helper()
	tier, err := fleet.New(store, &fleet.Options{Keys: keys, Now: clk.Now, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: mode, Now: clk.Now}))
	if _, ok := store.(tlscache.Watcher); ok {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			tier.Watch(ctx, cache)
		}()
		select {
		case <-tier.Ready():
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not start")
		}
		t.Cleanup(func() { cancel(); <-done })
	}
	return &server{cache: cache, tier: tier}
}

func newSession(clk *clock, id string) *tlscache.Session {
	s := &tlscache.Session{ID: []byte(id), IDContext: []byte("vhost"), State: []byte("state " + id)}
	s.SetCreated(clk.Now())
	return s
}

func TestFleetResumesAcrossServers(t *testing.T) {
	clk := newClock()
	store := tlscache.NewMemoryStore(0, clk.Now)
	keys := []fleet.Key{fleet.GenerateKey()}
	a := newServer(t, store, clk, keys, tlscache.Server)
	b := newServer(t, store, clk, keys, tlscache.Server)

	a.cache.NewSession(tlscache.Server, newSession(clk, "s1"))
	got := b.cache.Lookup([]byte("s1"), []byte("vhost"))
	if got == nil || string(got.State) != "state s1" {
		t.Fatalf("B's lookup of A's session = %v", got)
	}
	if st := b.cache.Stats(); st.ExternalHits != 1 || st.CbHits != 1 {
		t.Fatalf("B: ExternalHits %d CbHits %d, want 1 and 1", st.ExternalHits, st.CbHits)
	}
	// B copied it into its internal tier: the next lookup stays local.
	if b.cache.Lookup([]byte("s1"), []byte("vhost")) == nil || b.cache.Stats().InternalHits != 1 {
		t.Fatal("B's second lookup did not hit its internal tier")
	}
	// The store's TTL is the session's remaining lifetime.
	clk.Advance(tlscache.DefaultTimeout + time.Second)
	if _, err := store.Get(context.Background(), "7331"); !errors.Is(err, tlscache.ErrCacheMiss) {
		t.Fatal("the store kept a value past its session's expiry")
	}
}

// TestFleetRevocation: A removes a session that B holds in its internal
// tier; B refuses it at once (MemoryStore reports synchronously; the Redis
// test measures the delay).
func TestFleetRevocation(t *testing.T) {
	clk := newClock()
	store := tlscache.NewMemoryStore(0, clk.Now)
	keys := []fleet.Key{fleet.GenerateKey()}
	a := newServer(t, store, clk, keys, tlscache.Server)
	b := newServer(t, store, clk, keys, tlscache.Server)
	c := newServer(t, store, clk, keys, tlscache.Server)

	for _, id := range []string{"keep", "revoke", "by-pred"} {
		a.cache.NewSession(tlscache.Server, newSession(clk, id))
		for _, s := range []*server{b, c} {
			if s.cache.Lookup([]byte(id), []byte("vhost")) == nil {
				t.Fatalf("setup: %s does not resume on a peer", id)
			}
		}
	}
	if b.cache.Len() != 3 || c.cache.Len() != 3 {
		t.Fatalf("setup: internal tiers hold %d and %d sessions, want 3", b.cache.Len(), c.cache.Len())
	}
	a.cache.RemoveID([]byte("revoke"))
	// Revocation by predicate on another server than the one that issued it.
	c.cache.RemoveFunc(func(s *tlscache.Session) bool { return string(s.ID) == "by-pred" })
	for name, s := range map[string]*server{"A": a, "B": b, "C": c} {
		for _, id := range []string{"revoke", "by-pred"} {
			if s.cache.Lookup([]byte(id), []byte("vhost")) != nil {
				t.Errorf("server %s still resumes %s after its revocation", name, id)
			}
		}
		if s.cache.Lookup([]byte("keep"), []byte("vhost")) == nil {
			t.Errorf("server %s lost the session nobody revoked", name)
		}
	}
}

// TestFleetSingleUse: one ticket offered to every server at once resumes at
// most once, whether a server holds it in its internal tier or not.
func TestFleetSingleUse(t *testing.T) {
	clk := newClock()
	store := tlscache.NewMemoryStore(0, clk.Now)
	keys := []fleet.Key{fleet.GenerateKey()}
	var fleetServers []*server
	for range 4 {
		fleetServers = append(fleetServers, newServer(t, store, clk, keys, tlscache.Server))
	}
	for round := range 50 {
		id := []byte{byte(round), 'x'}
		fleetServers[round%4].cache.NewSession(tlscache.Server, newSession(clk, string(id)))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, s := range fleetServers {
			wg.Go(func() {
				if s.cache.Take(id, []byte("vhost")) != nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: the ticket resumed %d times, want once", round, n)
		}
	}
}

// TestFleetBadValues: values that do not open are misses, counted.
func TestFleetBadValues(t *testing.T) {
	clk := newClock()
	store := tlscache.NewMemoryStore(0, clk.Now)
	a := newServer(t, store, clk, []fleet.Key{fleet.GenerateKey()}, tlscache.Server)
	b := newServer(t, store, clk, []fleet.Key{fleet.GenerateKey()}, tlscache.Server) // another keyring

	a.cache.NewSession(tlscache.Server, newSession(clk, "foreign"))
	if b.cache.Lookup([]byte("foreign"), []byte("vhost")) != nil {
		t.Fatal("a value sealed under another key resumed")
	}
	ctx := context.Background()
	store.Put(ctx, "6f74686572", []byte("other bytes"), time.Hour) // "other" in hex
	if a.cache.Lookup([]byte("other"), []byte("vhost")) != nil {
		t.Fatal("a value that is not sealed resumed")
	}
	if a.tier.Stats().BadValues != 1 || b.tier.Stats().BadValues != 1 {
		t.Fatalf("BadValues A %d B %d, want 1 each", a.tier.Stats().BadValues, b.tier.Stats().BadValues)
	}
	if a.cache.Stats().StoreErrors != 1 || b.cache.Stats().StoreErrors != 1 {
		t.Fatal("a bad value is not counted in StoreErrors")
	}
}

// flakyStore is a MemoryStore that can be made to fail every call, counting
// the calls that reach it.
type flakyStore struct {
	*tlscache.MemoryStore
	down  atomic.Bool
	calls atomic.Int32
}

var errDown = errors.New("store down")

func (f *flakyStore) fail() error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *flakyStore) Get(ctx context.Context, k string) ([]byte, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.MemoryStore.Get(ctx, k)
}

func (f *flakyStore) Put(ctx context.Context, k string, d []byte, ttl time.Duration) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.MemoryStore.Put(ctx, k, d, ttl)
}

func (f *flakyStore) Delete(ctx context.Context, k string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.MemoryStore.Delete(ctx, k)
}

// TestFleetBackOff: after DefaultFailures failures in a row the store is
// not called until the back-off passes; then one probe, and a store that
// answers again is used again.
func TestFleetBackOff(t *testing.T) {
	clk := newClock()
	store := &flakyStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now})
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
	lookup := func() *tlscache.Session { return cache.Lookup([]byte("s"), []byte("vhost")) }

	cache.NewSession(tlscache.Server, newSession(clk, "s"))
	store.down.Store(true)
	for range 10 {
		if lookup() != nil {
			t.Fatal("resumed from a store that is down")
		}
	}
	if n := store.calls.Load(); n != 1+fleet.DefaultFailures {
		t.Fatalf("store called %d times, want 1 put and %d failing gets, then skipped", n, fleet.DefaultFailures)
	}
	st := tier.Stats()
	if st.Skipped != 10-fleet.DefaultFailures || !st.BackingOff || cache.Stats().StoreErrors != 10 {
		t.Fatalf("Skipped %d BackingOff %v StoreErrors %d", st.Skipped, st.BackingOff, cache.Stats().StoreErrors)
	}
	// The back-off ends: one probe, still failing, starts another.
	clk.Advance(fleet.DefaultBackOff)
	lookup()
	lookup()
	if n := store.calls.Load(); n != 2+fleet.DefaultFailures {
		t.Fatalf("after the back-off the store was called %d more times, want one probe", n-1-fleet.DefaultFailures)
	}
	// The store comes back: the next probe finds it and resumption returns.
	store.down.Store(false)
	clk.Advance(fleet.DefaultBackOff)
	if lookup() == nil {
		t.Fatal("no resumption after the store came back")
	}
	if lookup() == nil || tier.Stats().BackingOff {
		t.Fatal("the tier still backs off from a store that answers")
	}
}

// TestFleetRemovalRetried: a revocation made while the store fails is
// retried on the tier's timer once the store answers again, with no other
// call to the tier (an idle server).
func TestFleetRemovalRetried(t *testing.T) {
	clk := newClock()
	store := &flakyStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now)}
	tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now})
	t.Cleanup(tier.Close)
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Now: clk.Now}))
	inStore := func(id string) bool {
		_, err := store.MemoryStore.Get(context.Background(), hex.EncodeToString([]byte(id)))
		return err == nil
	}
	cache.NewSession(tlscache.Server, newSession(clk, "a"))
	store.down.Store(true)
	cache.RemoveID([]byte("a"))
	if p := tier.Stats().Pending; p != 1 || !inStore("a") {
		t.Fatalf("Pending = %d, in store %v: want the failed removal kept", p, inStore("a"))
	}
	// Still down: the timer keeps trying, with back-off.
	calls := store.calls.Load()
	deadline := time.Now().Add(5 * time.Second)
	for store.calls.Load() < calls+2 {
		if time.Now().After(deadline) {
			t.Fatal("no retry within 5 s while the store is down")
		}
		time.Sleep(time.Millisecond)
	}
	store.down.Store(false)
	deadline = time.Now().Add(5 * time.Second)
	for tier.Stats().Pending != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%+v: the removal was not retried within 5 s", tier.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if inStore("a") || tier.Stats().Retried != 1 {
		t.Fatalf("%+v, in store %v: want the session deleted by one retry", tier.Stats(), inStore("a"))
	}
}

func TestNewNeedsKeys(t *testing.T) {
	if _, err := fleet.New(tlscache.NewMemoryStore(0, nil), &fleet.Options{}); err == nil {
		t.Fatal("New without keys succeeded")
	}
}
