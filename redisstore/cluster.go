package redisstore

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// What a Store does on a Redis Cluster beyond what go-redis's ClusterClient
// does by itself. The ClusterClient reloads its slot map after a MOVED or
// ASK reply and, lazily, every ClusterStateReloadInterval; it does not after
// a node stops answering, so when a master dies it keeps routing that
// master's slots to it, also after a replica took them over, until the next
// periodic reload (60 s by default). So:
//
//   - a call that fails for any reason but a miss asks for a reload
//     (ReloadState: asynchronous, and go-redis runs at most one at a time,
//     200 ms apart), and while calls keep failing, Shard asks again at most
//     every reloadEvery: the slot map follows a promotion within about a
//     reload of it;
//   - Shard names the master that holds a key, so that a fleet.Tier backs
//     off from one failing node and goes on using the others (fleet.Sharded);
//   - Delete and Take publish on the master they just wrote to: a keyless
//     PUBLISH would go to any master, maybe the dead one, and the revocation
//     would fail although the key is gone. Redis Cluster relays a PUBLISH to
//     every node;
//   - Watch subscribes on one node at a time, any node (masters and
//     replicas hear every PUBLISH): first the master of the channel's slot,
//     as go-redis would, but when that node fails or goes silent, another,
//     where go-redis would keep dialling the dead master until a reload.
type cluster struct {
	c *redis.ClusterClient

	lastErr    atomic.Int64 // unix nanoseconds of the last failed call
	lastReload atomic.Int64 // unix nanoseconds of the last reload asked for
}

// reloadEvery is how often a Store on a cluster asks for a reload of the
// slot map while calls fail; go-redis spaces reloads 200 ms apart anyway.
const reloadEvery = 250 * time.Millisecond

// failing is how long after a failed call the cluster counts as failing,
// so that Shard keeps the slot map fresh although the tier, backing off
// from the failed node, makes no call that could fail.
const failing = 10 * time.Second

// failed notes a failed call and asks for a reload of the slot map.
func (cl *cluster) failed() {
	now := time.Now().UnixNano()
	cl.lastErr.Store(now)
	cl.reload(now)
}

func (cl *cluster) reload(now int64) {
	last := cl.lastReload.Load()
	if now-last < int64(reloadEvery) || !cl.lastReload.CompareAndSwap(last, now) {
		return
	}
	cl.c.ReloadState(context.Background())
}

// shard returns the address of the master that holds key in the current
// slot map, or "" if there is none yet.
func (cl *cluster) shard(key string) string {
	now := time.Now().UnixNano()
	if now-cl.lastErr.Load() < int64(failing) {
		cl.reload(now)
	}
	// With a slot map this does not wait; without one (a client that never
	// reached the cluster) it tries to load one, briefly.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	node, err := cl.c.MasterForKey(ctx, key)
	if err != nil {
		return ""
	}
	return node.Options().Addr
}

// pipelinedOn runs the pipeline fn on the master that holds key, so that a
// PUBLISH goes to a node known to answer.
func (cl *cluster) pipelinedOn(ctx context.Context, key string, fn func(redis.Pipeliner) error) error {
	node, err := cl.c.MasterForKey(ctx, key)
	if err != nil {
		return err
	}
	_, err = node.Pipelined(ctx, fn)
	return err
}

// nodes returns a client for every node of the cluster, from a slot map
// loaded now if possible: first the master of channel's slot (where
// go-redis would subscribe), then the other masters, then the replicas,
// each group in random order.
func (cl *cluster) nodes(ctx context.Context, channel string) []*redis.Client {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	first := ""
	if c, err := cl.c.MasterForKey(ctx, channel); err == nil {
		first = c.Options().Addr
	}
	var mu sync.Mutex
	var masters, replicas []*redis.Client
	cl.c.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		// Any node hears every PUBLISH; masters first keeps the
		// watch off replicas that may be resyncing.
		master := isMaster(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		if master {
			masters = append(masters, c)
		} else {
			replicas = append(replicas, c)
		}
		return nil
	})
	shuffle := func(s []*redis.Client) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
	shuffle(masters)
	shuffle(replicas)
	for i, c := range masters {
		if c.Options().Addr == first {
			masters[0], masters[i] = masters[i], masters[0]
		}
	}
	return append(masters, replicas...)
}

func isMaster(ctx context.Context, c *redis.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	role, err := c.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// watchCluster runs subscriptions on the nodes of the cluster, one at a
// time, until ctx is done: when a node fails or goes silent, the next.
func (s *Store) watchCluster(ctx context.Context, w watch) error {
	pause := 10 * time.Millisecond
	for {
		nodes := s.cluster.nodes(ctx, s.channel)
		for _, n := range nodes {
			if s.subscribe(ctx, n, w, true) {
				pause = 10 * time.Millisecond // it worked for a while
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			s.cluster.failed()
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(2*pause, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
