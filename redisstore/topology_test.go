package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
	"github.com/tlscache/tlscache/tlscache/storetest"
)

// open returns a store on a client Open made for opts.
func open(t *testing.T, opts *redis.UniversalOptions, prefix string) *redisstore.Store {
	t.Helper()
	c, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := redisstore.New(c, &redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// conformance runs the store suite on clients that Open makes for opts.
func conformance(t *testing.T, opts *redis.UniversalOptions) {
	prefixes := map[tlscache.Store]string{}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) tlscache.Store {
			p := redistest.Prefix(t)
			s := open(t, opts, p)
			prefixes[s] = p
			return s
		},
		Peer:    func(t *testing.T, s tlscache.Store) tlscache.Store { return open(t, opts, prefixes[s]) },
		Advance: func(t *testing.T, d time.Duration) { time.Sleep(d) },
	})
}

// TestTopologies: the store passes the suite on a Redis Cluster and on a
// Sentinel set, through Open, and Check names each; misconfigurations are
// refused (one cluster and one Sentinel set for both: they take seconds to
// form).
func TestTopologies(t *testing.T) {
	cluster := redistest.StartCluster(t)
	sentinel := redistest.StartSentinel(t)
	t.Run("misconfigurations", func(t *testing.T) { checkRefusesMisconfigurations(t, cluster, sentinel) })
	for _, tc := range []struct {
		name string
		opts *redis.UniversalOptions
		want string
	}{
		{"standalone", &redis.UniversalOptions{Addrs: []string{redistest.Addr(t)}}, "standalone"},
		{"cluster", &redis.UniversalOptions{Addrs: cluster.Addrs()}, "cluster of 3 masters and 3 replicas"},
		{"sentinel", &redis.UniversalOptions{Addrs: sentinel.Addrs(), MasterName: sentinel.MasterName}, "sentinel master"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redisstore.Open(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := redisstore.Check(context.Background(), c)
			if err != nil || got != tc.want {
				t.Fatalf("Check = %q, %v; want %q", got, err, tc.want)
			}
			// A cluster's shards are its masters; elsewhere one shard.
			shard := open(t, tc.opts, redistest.Prefix(t)).Shard("a1b2")
			if isCluster := tc.name == "cluster"; isCluster != slices.Contains(cluster.Addrs(), shard) || !isCluster && shard != "" {
				t.Fatalf("Shard = %q", shard)
			}
			conformance(t, tc.opts)
		})
	}
	t.Run("sentinel revocations wait for the replica", func(t *testing.T) { checkRevokeWaitsForReplica(t, sentinel) })
}

// checkRefusesMisconfigurations: each way of pointing the store at the
// wrong thing is refused at startup, with an error that names the address
// and what to give instead.
func checkRefusesMisconfigurations(t *testing.T, cluster *redistest.Cluster, sentinel *redistest.Sentinel) {
	standalone := redistest.Start(t)
	for _, tc := range []struct {
		name string
		opts *redis.UniversalOptions
		want error
		hint string
	}{
		{"one cluster node as standalone", &redis.UniversalOptions{Addrs: cluster.Addrs()[:1]}, redisstore.ErrClusterNode, "two or more of its nodes"},
		{"one sentinel, no master name", &redis.UniversalOptions{Addrs: sentinel.Addrs()[:1]}, redisstore.ErrSentinel, "MasterName"},
		{"three sentinels, no master name", &redis.UniversalOptions{Addrs: sentinel.Addrs()}, redisstore.ErrSentinel, "MasterName"},
		{"a replica", &redis.UniversalOptions{Addrs: []string{sentinel.Replica.Addr}}, redisstore.ErrReplica, "master's address"},
		{"standalone servers as a cluster", &redis.UniversalOptions{Addrs: []string{standalone.Addr, sentinel.Master.Addr}}, redisstore.ErrNotCluster, "one address"},
		{"unreachable", &redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}}, redisstore.ErrUnreachable, "127.0.0.1:1"},
		{"unreachable cluster", &redis.UniversalOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, redisstore.ErrUnreachable, "127.0.0.1:1,127.0.0.1:2"},
		{"unknown master name", &redis.UniversalOptions{Addrs: sentinel.Addrs(), MasterName: "nosuch"}, redisstore.ErrUnreachable, "master's name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := redisstore.Open(context.Background(), tc.opts)
			if err == nil {
				c.Close()
				t.Fatal("Open accepted it")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("Open: %v\nwant %v, with %q", err, tc.want, tc.hint)
			}
			t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// Open's error for an address nobody listens on keeps the cause in its
// chain, after ErrUnreachable.
func TestOpenUnreachableKeepsCause(t *testing.T) {
	_, err := redisstore.Open(context.Background(), &redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})
	if !errors.Is(err, redisstore.ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Open: %v; want ErrUnreachable and ECONNREFUSED in its chain", err)
	}
}
