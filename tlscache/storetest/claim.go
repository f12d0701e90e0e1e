package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

func claimer(t *testing.T, s tlscache.Store) tlscache.Claimer {
	t.Helper()
	c, ok := s.(tlscache.Claimer)
	if !ok {
		t.Skipf("%T is not a tlscache.Claimer", s)
	}
	return c
}

func mustClaim(t *testing.T, c tlscache.Claimer, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := c.Claim(ctx(t), key, ttl)
	if err != nil {
		t.Fatalf("Claim(%q) = %v", key, err)
	}
	if got != want {
		t.Fatalf("Claim(%q) = %v, want %v", key, got, want)
	}
}

// testClaim checks that a key is claimed once, that a value blocks a
// claim, and that a claim with no ttl records nothing.
func testClaim(t *testing.T, h Harness) {
	s := h.New(t)
	c := claimer(t, s)
	mustClaim(t, c, "k", ttl, true)
	mustClaim(t, c, "k", ttl, false)
	mustClaim(t, claimer(t, h.Peer(t, s)), "k", ttl, false)
	if got, err := s.Get(ctx(t), "k"); err != nil || len(got) != 0 {
		t.Fatalf("Get of a claimed key = %x, %v; want an empty value", got, err)
	}
	mustPut(t, s, "v", []byte("value"), ttl)
	mustClaim(t, c, "v", ttl, false)
	got, err := s.Get(ctx(t), "v")
	wantValue(t, "Get after a lost Claim", got, err, []byte("value"))
	for _, d := range []time.Duration{0, -time.Second} {
		mustClaim(t, c, "none", d, false)
	}
	mustClaim(t, c, "none", ttl, true)
}

// testClaimRace claims one key from many goroutines, half of them through
// a peer handle: exactly one wins.
func testClaimRace(t *testing.T, h Harness) {
	s := h.New(t)
	cs := []tlscache.Claimer{claimer(t, s), claimer(t, h.Peer(t, s))}
	for round := range 20 {
		key := fmt.Sprintf("claim-%d", round)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 8 {
			c := cs[i%2]
			wg.Go(func() {
				<-start
				ok, err := c.Claim(ctx(t), key, ttl)
				if err != nil {
					t.Errorf("Claim(%s) = %v", key, err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent Claims of one key won, want 1", round, n)
		}
	}
}

func testClaimExpiry(t *testing.T, h Harness) {
	s := h.New(t)
	c := claimer(t, s)
	mustClaim(t, c, "short", 300*time.Millisecond, true)
	mustClaim(t, c, "long", ttl, true)
	h.Advance(t, 600*time.Millisecond)
	mustClaim(t, c, "short", ttl, true)
	mustClaim(t, c, "long", ttl, false)
	if _, err := s.Get(ctx(t), "absent"); !errors.Is(err, tlscache.ErrCacheMiss) {
		t.Fatalf("Get(absent) = %v", err)
	}
}
