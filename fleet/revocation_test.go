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
// closed when it stops: the get hook misses then. FailOpen keeps trusting.
func TestTrustFollowsTheWatch(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		clk := newClock()
		store := tlscache.NewMemoryStore(0, clk.Now)
		tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now, FailOpen: failOpen})
		cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
		cache.NewSession(tlscache.Server, newSession(clk, "s"))
		if !tier.Trusted() {
			t.Fatal("a tier with no watch is not trusted")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tier.Watch(ctx, cache) }()
		<-tier.Ready()
		if !tier.Trusted() || cache.Lookup([]byte("s"), []byte("vhost")) == nil {
			t.Fatal("a working watch: not trusted, or no resumption")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v", err)
		}
		got := cache.Lookup([]byte("s"), []byte("vhost")) != nil
		if tier.Trusted() != failOpen || got != failOpen {
			t.Fatalf("FailOpen %v: after the watch stopped, trusted %v and resumed %v", failOpen, tier.Trusted(), got)
		}
		if st := tier.Stats(); st.Trusted != failOpen {
			t.Fatalf("Stats %+v", st)
		}
	}
}
