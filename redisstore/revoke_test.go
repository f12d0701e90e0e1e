package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/fleet"
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

// checkRevokeWaitsForReplica: on a Sentinel set, RevokeDurable returns
// once the replica (the one a failover promotes) holds the tombstone. With
// the replica stopped it reports fleet.ErrNotReplicated, after doing the
// writes and the publish; Revoke (whose callers do not wait) and
// RevokeDurable with Replicas -1 do not wait.
func checkRevokeWaitsForReplica(t *testing.T, st *redistest.Sentinel) {
	opts := &redis.UniversalOptions{Addrs: st.Addrs(), MasterName: st.MasterName}
	prefix := redistest.Prefix(t)
	s := open(t, opts, prefix)
	replica := redistest.Client(t, st.Replica.Addr)
	master := redistest.Client(t, st.Master.Addr)
	type revokeFunc func(context.Context, string, string, time.Duration) (int64, error)
	revoke := func(f revokeFunc, key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := f(ctx, key, key, time.Hour)
		t.Logf("%s: %v after %v", key, err, time.Since(start).Round(time.Millisecond))
		return err
	}
	if err := revoke(s.RevokeDurable, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.ZScore(context.Background(), prefix+"revoked", "k1").Result(); err != nil {
		t.Fatalf("the replica has no tombstone once RevokeDurable returned: %v", err)
	}

	st.Replica.Pause()
	defer st.Replica.Resume()
	if err := revoke(s.RevokeDurable, "k2"); !errors.Is(err, fleet.ErrNotReplicated) {
		t.Fatalf("RevokeDurable with the replica stopped: %v, want fleet.ErrNotReplicated", err)
	}
	if _, err := master.ZScore(context.Background(), prefix+"revoked", "k2").Result(); err != nil {
		t.Errorf("the master has no tombstone after a revocation not replicated: %v", err)
	}
	if err := revoke(s.Revoke, "k3"); err != nil {
		t.Errorf("Revoke with the replica stopped: %v", err)
	}
	c, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unsafe, err := redisstore.New(c, &redisstore.Options{Prefix: prefix, Replicas: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := revoke(unsafe.RevokeDurable, "k4"); err != nil {
		t.Errorf("RevokeDurable with Replicas -1 and the replica stopped: %v", err)
	}

	st.Replica.Resume()
	if err := revoke(s.RevokeDurable, "k5"); err != nil {
		t.Errorf("RevokeDurable once the replica runs again: %v", err)
	}
}
