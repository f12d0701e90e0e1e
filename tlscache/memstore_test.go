package tlscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testclock"
	"github.com/tlscache/tlscache/tlscache"
	"github.com/tlscache/tlscache/tlscache/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	clocks := map[tlscache.Store]*testclock.Clock{}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) tlscache.Store {
			clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			s := tlscache.NewMemoryStore(0, clk.Now)
			clocks[s] = clk
			return s
		},
		Advance: func(t *testing.T, d time.Duration) {
			for _, c := range clocks {
				c.Advance(d)
			}
		},
	})
}

func TestMemoryStoreBounded(t *testing.T) {
	clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := tlscache.NewMemoryStore(3, clk.Now)
	ctx := context.Background()
	for i, k := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, k, []byte(k), time.Duration(10-i)*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the entry expiring soonest ("c") makes room for "d".
	if err := s.Put(ctx, "d", []byte("d"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	if _, err := s.Get(ctx, "c"); err != tlscache.ErrCacheMiss {
		t.Fatalf("Get(c) = %v, want the soonest-expiring entry evicted", err)
	}
	for _, k := range []string{"a", "b", "d"} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Fatalf("Get(%s) = %v", k, err)
		}
	}
	// Replacing a key held does not evict.
	if err := s.Put(ctx, "a", []byte("a2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "b"); err != nil {
		t.Fatalf("Get(b) after replacing a = %v", err)
	}
}
