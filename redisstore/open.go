package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of [Check], each wrapped with the address concerned and what to
// give instead.
var (
	// ErrUnreachable: no Redis answers at the address given.
	ErrUnreachable = errors.New("tlscache/redisstore: Redis does not answer")
	// ErrClusterNode: a node of a Redis Cluster given as a standalone
	// Redis: most keys would answer MOVED.
	ErrClusterNode = errors.New("tlscache/redisstore: a Redis Cluster node given as a standalone Redis")
	// ErrSentinel: a Sentinel given as a Redis, without the name of the
	// master it monitors.
	ErrSentinel = errors.New("tlscache/redisstore: a Redis Sentinel given without a master name")
	// ErrReplica: a replica given as the Redis to write to.
	ErrReplica = errors.New("tlscache/redisstore: a replica given as the Redis to write to")
	// ErrNotCluster: several addresses (a cluster client) of servers that
	// are not Redis Cluster nodes.
	ErrNotCluster = errors.New("tlscache/redisstore: several addresses given, but not of Redis Cluster nodes")
	// ErrClusterDown: the cluster answers but does not serve all its slots.
	ErrClusterDown = errors.New("tlscache/redisstore: the Redis Cluster is not ok")
)

// checkTimeout bounds each probe of Check when ctx has no deadline.
const checkTimeout = 2 * time.Second

// Open returns a client for the Redis deployment opts describes, made for a
// [Store], once [Check] has accepted it: like [redis.NewUniversalClient] (a
// MasterName means Sentinel, two or more Addrs or IsClusterMode a
// cluster, else a standalone Redis), with ContextTimeoutEnabled, a dial
// made once rather than retried and failed commands retried once (not
// three times) with no pause (so that a dead node fails a call at once,
// instead of after go-redis's pauses, which would use up the call's
// deadline), and on a cluster the slot map reloaded every second. Fields set in opts are kept. The caller closes the client.
func Open(ctx context.Context, opts *redis.UniversalOptions) (redis.UniversalClient, error) {
	o := *opts
	o.ContextTimeoutEnabled = true
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	cluster := o.MasterName == "" && (len(o.Addrs) > 1 || o.IsClusterMode)
	if o.MaxRetries == 0 && !cluster {
		// One retry, for a pooled connection that went stale (a
		// restarted Redis); more only use up the pool's dial budget
		// sooner, after which go-redis redials once a second. (A
		// cluster's node clients do not retry: the cluster client does.)
		o.MaxRetries = 1
	}
	if o.MinRetryBackoff == 0 {
		// Retry at once: a retry on a fresh connection after a stale
		// one still works, and a dead node fails fast instead of
		// sleeping through the call's deadline.
		o.MinRetryBackoff = -1
	}
	var c redis.UniversalClient
	switch {
	case o.MasterName != "":
		c = redis.NewFailoverClient(o.Failover())
	case cluster:
		co := o.Cluster()
		co.ClusterStateReloadInterval = time.Second
		c = redis.NewClusterClient(co)
	default:
		c = redis.NewClient(o.Simple())
	}
	if _, err := Check(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Check tells what c is connected to (a line for a log: "standalone",
// "sentinel master NAME at ADDR", "cluster of N masters and M replicas"), or
// why it cannot serve as a store: no Redis answers ([ErrUnreachable]), a
// single Redis Cluster node given as a standalone Redis ([ErrClusterNode]),
// a Sentinel without a master name ([ErrSentinel]), a replica
// ([ErrReplica]), several addresses that are not cluster nodes
// ([ErrNotCluster]), a cluster that does not serve all its slots
// ([ErrClusterDown]). It asks ROLE and CLUSTER INFO. Call it at startup:
// each of these otherwise starts silently, and then every store call fails.
func Check(ctx context.Context, c redis.UniversalClient) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		return checkCluster(ctx, c)
	case *redis.Client:
		if fc, ok := isFailover(c); ok {
			return checkFailover(ctx, fc)
		}
		return checkSingle(ctx, c, c.Options().Addr)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return "unknown", nil
}

// role returns the first field of ROLE: master, slave or sentinel.
func role(ctx context.Context, c *redis.Client) (string, error) {
	r, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(r) == 0 {
		return "", errors.New("tlscache/redisstore: empty ROLE reply")
	}
	s, _ := r[0].(string)
	return s, nil
}

// clusterInfo returns the fields of CLUSTER INFO, or nil where cluster
// support is disabled.
func clusterInfo(ctx context.Context, c redis.Cmdable) (map[string]string, error) {
	text, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		if strings.Contains(err.Error(), "cluster support disabled") {
			return nil, nil
		}
		return nil, err
	}
	info := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

func checkSingle(ctx context.Context, c *redis.Client, addr string) (string, error) {
	if err := c.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("%w at %s: %w (is it running? give host:port of a Redis)", ErrUnreachable, addr, err)
	}
	r, err := role(ctx, c)
	if err != nil {
		return "", fmt.Errorf("tlscache/redisstore: ROLE at %s: %w", addr, err)
	}
	switch r {
	case "sentinel":
		return "", fmt.Errorf("%w: %s is a Sentinel; give the name of the master it monitors (UniversalOptions.MasterName) with the addresses of the sentinels", ErrSentinel, addr)
	case "slave":
		return "", fmt.Errorf("%w: %s is a replica; give the master's address, or the sentinels' addresses and the master's name", ErrReplica, addr)
	}
	info, err := clusterInfo(ctx, c)
	if err != nil {
		return "", fmt.Errorf("tlscache/redisstore: CLUSTER INFO at %s: %w", addr, err)
	}
	if info != nil {
		return "", fmt.Errorf("%w: %s is a node of a Redis Cluster; give two or more of its nodes (or set UniversalOptions.IsClusterMode), so that the cluster client follows the slots", ErrClusterNode, addr)
	}
	return "standalone", nil
}

func checkFailover(ctx context.Context, c *redis.Client) (string, error) {
	// The failover client asks the sentinels for the master when it dials.
	if err := c.Ping(ctx).Err(); err != nil {
		if errors.Is(err, redis.Nil) {
			return "", fmt.Errorf("%w: no sentinel knows a master by that name; give the master's name as in SENTINEL MONITOR", ErrUnreachable)
		}
		return "", fmt.Errorf("%w: no master reached through the sentinels: %w (check the sentinels' addresses and the master's name)", ErrUnreachable, err)
	}
	r, err := role(ctx, c)
	if err != nil {
		return "", fmt.Errorf("tlscache/redisstore: ROLE of the Sentinel master: %w", err)
	}
	if r != "master" {
		return "", fmt.Errorf("%w: the sentinels named a %s", ErrReplica, r)
	}
	return "sentinel master", nil
}

func checkCluster(ctx context.Context, c *redis.ClusterClient) (string, error) {
	// Ask each seed address what it is: a seed that is a Sentinel or a
	// standalone Redis explains failures the cluster client reports only
	// as unknown commands.
	answered := false
	var lastErr error
	for _, addr := range c.Options().Addrs {
		nc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
		r, err := role(ctx, nc)
		var info map[string]string
		if err == nil && r != "sentinel" {
			info, err = clusterInfo(ctx, nc)
		}
		nc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		answered = true
		switch {
		case r == "sentinel":
			return "", fmt.Errorf("%w: %s is a Sentinel; give the name of the master it monitors (UniversalOptions.MasterName) with the addresses of the sentinels", ErrSentinel, addr)
		case info == nil:
			return "", fmt.Errorf("%w: %s is not a cluster node; give one address for a standalone Redis, or the sentinels' addresses with the master's name", ErrNotCluster, addr)
		}
	}
	if !answered {
		return "", fmt.Errorf("%w at %s: %w (are they running? give host:port of two or more cluster nodes)", ErrUnreachable, strings.Join(c.Options().Addrs, ","), lastErr)
	}
	info, err := clusterInfo(ctx, c)
	if err != nil {
		return "", fmt.Errorf("tlscache/redisstore: CLUSTER INFO: %w", err)
	}
	if info["cluster_state"] != "ok" {
		return "", fmt.Errorf("%w: cluster_state:%s, %s of 16384 slots served", ErrClusterDown, info["cluster_state"], info["cluster_slots_ok"])
	}
	var mu sync.Mutex
	var masters, replicas int
	c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		r, err := role(ctx, n)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
		case r == "master":
			masters++
		default:
			replicas++
		}
		return nil
	})
	return fmt.Sprintf("cluster of %d masters and %d replicas", masters, replicas), nil
}
