// Package storetest is the conformance suite for [tlscache.Store]
// implementations: every store runs the same cases, so the in-memory store
// and a shared one (Redis) are interchangeable behind the cache's hooks.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{New: ..., Advance: ...})
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// Harness tells [Run] how to reach the store under test.
type Harness struct {
	// New returns an empty store for one test case.
	New func(t *testing.T) tlscache.Store
	// Peer returns a second handle on the store s that New returned, as
	// another process of the fleet would open it (a new client on the same
	// Redis and prefix). Nil means s itself.
	Peer func(t *testing.T, s tlscache.Store) tlscache.Store
	// Advance makes d pass on the store's clock: a fake clock moves, a
	// real store is waited for.
	Advance func(t *testing.T, d time.Duration)
}

// Run runs the conformance cases against the store of h.
func Run(t *testing.T, h Harness) {
	if h.Peer == nil {
		h.Peer = func(_ *testing.T, s tlscache.Store) tlscache.Store { return s }
	}
	cases := []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"Miss", testMiss},
		{"PutGet", testPutGet},
		{"PutReplaces", testPutReplaces},
		{"PutNoTTL", testPutNoTTL},
		{"ValuesAreCopies", testCopies},
		{"Delete", testDelete},
		{"Take", testTake},
		{"TakeRace", testTakeRace},
		{"Expiry", testExpiry},
		{"CanceledContext", testCanceled},
		{"PeerSeesWrites", testPeer},
		{"Watch", testWatch},
		{"Claim", testClaim},
		{"ClaimRace", testClaimRace},
		{"ClaimExpiry", testClaimExpiry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.f(t, h) })
	}
}

const ttl = time.Minute

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, s tlscache.Store, key string, data []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Put(ctx(t), key, data, ttl); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, what string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v, want %x", what, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s = %x, want %x", what, got, want)
	}
}

func wantMiss(t *testing.T, what string, got []byte, err error) {
	t.Helper()
	if !errors.Is(err, tlscache.ErrCacheMiss) {
		t.Fatalf("%s = %x, %v; want ErrCacheMiss", what, got, err)
	}
	if got != nil {
		t.Fatalf("%s returned %x with a miss", what, got)
	}
}

func testMiss(t *testing.T, h Harness) {
	s := h.New(t)
	got, err := s.Get(ctx(t), "absent")
	wantMiss(t, "Get(absent)", got, err)
	got, err = s.Take(ctx(t), "absent")
	wantMiss(t, "Take(absent)", got, err)
	if err := s.Delete(ctx(t), "absent"); err != nil {
		t.Fatalf("Delete(absent) = %v, want nil", err)
	}
}

func testPutGet(t *testing.T, h Harness) {
	s := h.New(t)
	// Binary values and keys with any bytes.
	values := map[string][]byte{
		"0a1b2c":          {0, 1, 2, 0xff, 0},
		"":                []byte("empty key"),
		"key with\x00nul": bytes.Repeat([]byte{0xa5}, 64<<10),
		"ünïcode":         {},
	}
	for k, v := range values {
		mustPut(t, s, k, v, ttl)
	}
	for k, v := range values {
		got, err := s.Get(ctx(t), k)
		if len(v) == 0 && err == nil && len(got) == 0 {
			continue // an empty value may come back nil
		}
		wantValue(t, fmt.Sprintf("Get(%q)", k), got, err, v)
	}
}

func testPutReplaces(t *testing.T, h Harness) {
	s := h.New(t)
	mustPut(t, s, "k", []byte("one"), ttl)
	mustPut(t, s, "k", []byte("two"), ttl)
	got, err := s.Get(ctx(t), "k")
	wantValue(t, "Get after two Puts", got, err, []byte("two"))
}

func testPutNoTTL(t *testing.T, h Harness) {
	s := h.New(t)
	for _, d := range []time.Duration{0, -time.Second} {
		mustPut(t, s, "k", []byte("v"), d)
		got, err := s.Get(ctx(t), "k")
		wantMiss(t, fmt.Sprintf("Get after Put with ttl %v", d), got, err)
	}
}

func testCopies(t *testing.T, h Harness) {
	s := h.New(t)
	in := []byte("value")
	mustPut(t, s, "k", in, ttl)
	in[0] = 'X'
	got, err := s.Get(ctx(t), "k")
	wantValue(t, "Get after the caller changed its slice", got, err, []byte("value"))
	got[0] = 'Y'
	got, err = s.Get(ctx(t), "k")
	wantValue(t, "Get after the caller changed a result", got, err, []byte("value"))
}

func testDelete(t *testing.T, h Harness) {
	s := h.New(t)
	mustPut(t, s, "a", []byte("1"), ttl)
	mustPut(t, s, "b", []byte("2"), ttl)
	if err := s.Delete(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx(t), "a")
	wantMiss(t, "Get(a) after Delete(a)", got, err)
	got, err = s.Get(ctx(t), "b")
	wantValue(t, "Get(b) after Delete(a)", got, err, []byte("2"))
}

func testTake(t *testing.T, h Harness) {
	s := h.New(t)
	mustPut(t, s, "k", []byte("once"), ttl)
	got, err := s.Take(ctx(t), "k")
	wantValue(t, "first Take", got, err, []byte("once"))
	got, err = s.Take(ctx(t), "k")
	wantMiss(t, "second Take", got, err)
	got, err = s.Get(ctx(t), "k")
	wantMiss(t, "Get after Take", got, err)
}

// testTakeRace takes one key from many goroutines, half of them through a
// peer handle: exactly one wins.
func testTakeRace(t *testing.T, h Harness) {
	s := h.New(t)
	p := h.Peer(t, s)
	for round := range 20 {
		key := fmt.Sprintf("race-%d", round)
		mustPut(t, s, key, []byte(key), ttl)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 8 {
			st := s
			if i%2 == 1 {
				st = p
			}
			wg.Go(func() {
				<-start
				got, err := st.Take(ctx(t), key)
				switch {
				case err == nil && bytes.Equal(got, []byte(key)):
					wins.Add(1)
				case errors.Is(err, tlscache.ErrCacheMiss):
				default:
					t.Errorf("Take(%s) = %q, %v", key, got, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d concurrent Takes of one key succeeded, want 1", round, n)
		}
	}
}

func testExpiry(t *testing.T, h Harness) {
	s := h.New(t)
	mustPut(t, s, "short", []byte("s"), 300*time.Millisecond)
	mustPut(t, s, "long", []byte("l"), ttl)
	got, err := s.Get(ctx(t), "short")
	wantValue(t, "Get before expiry", got, err, []byte("s"))
	h.Advance(t, 600*time.Millisecond)
	got, err = s.Get(ctx(t), "short")
	wantMiss(t, "Get after expiry", got, err)
	got, err = s.Take(ctx(t), "short")
	wantMiss(t, "Take after expiry", got, err)
	got, err = s.Get(ctx(t), "long")
	wantValue(t, "Get of a live key", got, err, []byte("l"))
}

func testCanceled(t *testing.T, h Harness) {
	s := h.New(t)
	mustPut(t, s, "k", []byte("v"), ttl)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := s.Get(c, "k"); err == nil || errors.Is(err, tlscache.ErrCacheMiss) {
		t.Errorf("Get with a canceled context = %q, %v; want a context error", got, err)
	}
	if got, err := s.Take(c, "k"); err == nil || errors.Is(err, tlscache.ErrCacheMiss) {
		t.Errorf("Take with a canceled context = %q, %v; want a context error", got, err)
	}
	if err := s.Put(c, "k2", []byte("v"), ttl); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	got, err := s.Get(ctx(t), "k")
	wantValue(t, "Get after the canceled calls", got, err, []byte("v"))
}

func testPeer(t *testing.T, h Harness) {
	s := h.New(t)
	p := h.Peer(t, s)
	mustPut(t, s, "k", []byte("from s"), ttl)
	got, err := p.Get(ctx(t), "k")
	wantValue(t, "peer Get", got, err, []byte("from s"))
	if err := p.Delete(ctx(t), "k"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx(t), "k")
	wantMiss(t, "Get after the peer deleted", got, err)
}

// testWatch checks that a peer's watch reports Delete and successful
// Takes, and not failed Takes. It does not ask for an order: a Redis
// Cluster publishes each removal on its key's master, and messages from
// different masters may arrive in any order.
func testWatch(t *testing.T, h Harness) {
	s := h.New(t)
	w, ok := h.Peer(t, s).(tlscache.Watcher)
	if !ok {
		t.Skipf("%T is not a tlscache.Watcher", s)
	}
	wctx, cancel := context.WithCancel(context.Background())
	keys := make(chan string, 16)
	ready := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(wctx, func(k string) { keys <- k }, func() {
			select {
			case ready <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not call lost when it started")
	}
	mustPut(t, s, "taken", []byte("v"), ttl)
	if err := s.Delete(ctx(t), "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx(t), "taken"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx(t), "absent"); !errors.Is(err, tlscache.ErrCacheMiss) {
		t.Fatalf("Take(absent) = %v", err)
	}
	if err := s.Delete(ctx(t), "last"); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"deleted": true, "taken": true, "last": true}
	for len(want) > 0 {
		select {
		case got := <-keys:
			if !want[got] {
				t.Fatalf("watch reported %q, want one of %v", got, want)
			}
			delete(want, got)
		case <-time.After(time.Second):
			t.Fatalf("watch did not report %v within a second", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v after cancel, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context was canceled")
	}
}
