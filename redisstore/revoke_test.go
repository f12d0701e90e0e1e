package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

// TestRevokeKeepsTombstones: Revoke deletes the key, keeps a tombstone
// until its TTL, and publishes the message to every watcher, counting them.
func TestRevokeKeepsTombstones(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix(t)
	open := func() *redisstore.Store {
		s, err := redisstore.New(redistest.Client(t, addr), &redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, watcher := open(), open()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	synced := make(chan struct{}, 8)
	msgs := make(chan string, 8)
	var beats atomic.Int64
	go watcher.WatchLive(ctx, func(m string) { msgs <- m }, func() { synced <- struct{}{} }, func() { beats.Add(1) })
	select {
	case <-synced:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not start")
	}
	if err := s.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	n, err := s.Revoke(ctx, "k", "k nonce", time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Revoke = %d, %v; want 1 receiver", n, err)
	}
	if m := <-msgs; m != "k nonce" {
		t.Fatalf("watcher got %q", m)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tlscache.ErrCacheMiss) {
		t.Fatalf("Get after Revoke: %v", err)
	}
	if _, err := s.Revoke(ctx, "gone", "gone", -time.Second); err != nil { // already expired
		t.Fatal(err)
	}
	<-msgs
	keys, err := s.Revoked(ctx)
	if err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("Revoked = %q, %v; want [k]", keys, err)
	}
	if err := s.Publish(ctx, "!ack x"); err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; m != "!ack x" {
		t.Fatalf("watcher got %q", m)
	}
	// The heartbeat: HeartbeatInterval apart, while the subscription works.
	start := time.Now()
	for beats.Load() < 5 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d heartbeats in 5 s", beats.Load())
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("5 heartbeats heard after %v (interval %v)", time.Since(start), redisstore.HeartbeatInterval)
}
