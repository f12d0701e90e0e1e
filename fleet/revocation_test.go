package fleet_test

import (
	"context"
	"errors"
	"testing"

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
