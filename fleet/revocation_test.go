package fleet_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// TestTrustFollowsTheWatch: a tier with no watch makes no promise (trusted);
// once Watch runs it is trusted only while the watch works, and fails
// closed when it stops: the get hook misses, and a plain cache's internal
// tier is flushed. FailOpen keeps trusting, and resuming.
func TestTrustFollowsTheWatch(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		clk := newClock()
		store := tlscache.NewMemoryStore(0, clk.Now)
		tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now, FailOpen: failOpen})
		cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server, Now: clk.Now}))
		cache.NewSession(tlscache.Server, newSession(clk, "s")) // in both tiers
		if !tier.Trusted() {
			t.Fatal("a tier with no watch is not trusted")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tier.Watch(ctx, cache) }()
		<-tier.Ready()
		if cache.Len() != 0 {
			t.Fatal("a plain cache was not flushed at the first resync")
		}
		cache.Lookup([]byte("s"), []byte("vhost")) // from the store, copied in
		if !tier.Trusted() || cache.Lookup([]byte("s"), []byte("vhost")) == nil || cache.Len() != 1 {
			t.Fatalf("a working watch: trusted %v, Len %d, %+v", tier.Trusted(), cache.Len(), cache.Stats())
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v", err)
		}
		held := cache.Len()
		got := cache.Lookup([]byte("s"), []byte("vhost")) != nil
		if tier.Trusted() != failOpen || got != failOpen || (held == 0) == failOpen {
			t.Fatalf("FailOpen %v: after the watch stopped, trusted %v, resumed %v, internal tier holds %d", failOpen, tier.Trusted(), got, held)
		}
		if st := tier.Stats(); st.Trusted != failOpen {
			t.Fatalf("Stats %+v", st)
		}
	}
}

// After the heartbeat comes back from a silence, the tier trusts its
// watch again only once the quarantine has passed: [fleet.DefaultQuarantine]
// by default, [fleet.Options.Quarantine] when set. Other servers' retried
// revocations land during it.
func TestQuarantine(t *testing.T) {
	for _, tc := range []struct {
		opt, want time.Duration
	}{{0, fleet.DefaultQuarantine}, {250 * time.Millisecond, 250 * time.Millisecond}, {3 * time.Second, 3 * time.Second}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &liveStore{MemoryStore: tlscache.NewMemoryStore(0, nil), resub: make(chan struct{}), held: make(chan struct{})}
				tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Quarantine: tc.opt})
				defer tier.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go tier.Watch(ctx, tlscache.New(tier.Hooks(nil)))
				time.Sleep(100 * time.Millisecond) // heartbeats every 20 ms (fake time)
				if !tier.Trusted() {
					t.Fatalf("not trusted with the heartbeat coming: %+v", tier.Stats())
				}
				store.silent.Store(true)
				time.Sleep(fleet.Silence + 50*time.Millisecond)
				if tier.Trusted() {
					t.Fatal("trusted after a silence longer than Silence")
				}
				store.silent.Store(false)
				time.Sleep(20 * time.Millisecond) // the next heartbeat is heard
				synctest.Wait()
				heard := time.Now()
				time.Sleep(tc.want - 30*time.Millisecond)
				if tier.Trusted() {
					t.Fatalf("trusted %v after the heartbeat came back, before the quarantine of %v", time.Since(heard), tc.want)
				}
				time.Sleep(60 * time.Millisecond)
				if !tier.Trusted() {
					t.Fatalf("not trusted %v after the heartbeat came back (quarantine %v): %+v", time.Since(heard), tc.want, tier.Stats())
				}
				cancel()
				synctest.Wait()
			})
		})
	}
}
