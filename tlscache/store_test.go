package tlscache

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestInvalidate: a peer's removal drops the session here with reason
// Invalidated, and only when it was cached.
func TestInvalidate(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	s := sess("a", 0, time.Hour)
	c.Add(s)
	if c.Invalidate([]byte("absent")) {
		t.Error("Invalidate(absent) = true")
	}
	if c.Invalidate(nil) {
		t.Error("Invalidate(nil) = true")
	}
	if !c.Invalidate([]byte("a")) {
		t.Fatal("Invalidate(a) = false for a cached session")
	}
	if c.Len() != 0 || s.Resumable() {
		t.Fatalf("after Invalidate: Len %d, resumable %v", c.Len(), s.Resumable())
	}
	if got, want := log.removed(), []string{"a:invalidated"}; !slices.Equal(got, want) {
		t.Fatalf("remove hook calls = %q, want %q", got, want)
	}
}

// TestTakeRefusedByStore: when the remove hook answers a take with
// ErrCacheMiss (a shared store's take lost the race), Take misses; any
// other error is counted and the take stands.
func TestTakeRefusedByStore(t *testing.T) {
	var answer error
	c, _, _ := newTestCache(t, Options{RemoveHook: func(*Session, Reason) error { return answer }})
	ctx := []byte("ctx")
	add := func(id string) {
		c.Add(newSessionAt([]byte(id), ctx, []byte("st"), epoch, time.Hour))
	}

	add("lost")
	answer = ErrCacheMiss
	if s := c.Take([]byte("lost"), ctx); s != nil {
		t.Fatal("Take succeeded although the store said another server took it")
	}
	if c.Len() != 0 {
		t.Fatal("the refused session is still cached")
	}
	st := c.Stats()
	if st.Hits != 0 || st.Misses != 1 {
		t.Fatalf("Hits %d Misses %d, want 0 and 1", st.Hits, st.Misses)
	}

	add("down")
	answer = errors.New("store unreachable")
	if s := c.Take([]byte("down"), ctx); s != nil {
		t.Fatal("Take succeeded although the store could not confirm it")
	}
	if st := c.Stats(); st.Hits != 0 || st.StoreErrors != 1 {
		t.Fatalf("Hits %d StoreErrors %d, want 0 and 1", st.Hits, st.StoreErrors)
	}

	add("ok")
	answer = nil
	if s := c.Take([]byte("ok"), ctx); s == nil {
		t.Fatal("Take failed although the store confirmed it")
	}
}

// TestInvalidateDuringGetHook: a session the get hook read from a store
// before another server removed it, but returned after the removal reached
// this cache, is neither resumed nor copied in.
func TestInvalidateDuringGetHook(t *testing.T) {
	ctx := []byte("ctx")
	var during func(c *Cache) // runs while the hook "waits for the store"
	var c *Cache
	c, _, _ = newTestCache(t, Options{GetHook: func(id []byte, take bool) (*Session, error) {
		s := newSessionAt(id, ctx, []byte("st"), epoch, time.Hour) // read before the removal
		during(c)
		return s, nil
	}})
	for _, tc := range []struct {
		name   string
		during func(c *Cache)
		want   bool // resumes
	}{
		{"nothing", func(*Cache) {}, true},
		{"this ID invalidated", func(c *Cache) { c.Invalidate([]byte("s")) }, false},
		{"another ID invalidated", func(c *Cache) { c.Invalidate([]byte("other")) }, true},
		{"all flushed", func(c *Cache) { c.FlushAll() }, false},
		{"too many invalidations to tell", func(c *Cache) {
			for i := range 100 {
				c.Invalidate([]byte{byte(i), 'x'})
			}
		}, false},
	} {
		c.FlushAll()
		during = tc.during
		got := c.Lookup([]byte("s"), ctx) != nil
		if got != tc.want {
			t.Errorf("%s: resumed %v, want %v", tc.name, got, tc.want)
		}
		if cached := c.Peek([]byte("s")) != nil; cached != tc.want {
			t.Errorf("%s: copied in %v, want %v", tc.name, cached, tc.want)
		}
	}
}
