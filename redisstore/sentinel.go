package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Sentinel failover client (redis.NewFailoverClient) moves its command
// connections to the new master on +switch-master, but not its pub/sub
// connections: a subscription stays on the old master, which Sentinel
// demotes only once it looks at it again (seconds later), and meanwhile is
// a master of its own that hears none of the new master's publishes. This
// is how a watch lost ~90% of the deletions published in the seconds after
// a SENTINEL FAILOVER. So Watch on a failover client subscribes on the
// master and on each of its replicas (ROLE lists them), every second
// catching up with the set: a replica hears the master's publishes through
// replication, and the replica that gets promoted is already subscribed.
// A deletion heard from several nodes is reported once.

// replicaRefresh is how often the watch of a failover client looks for
// replicas to subscribe on.
const replicaRefresh = time.Second

// isFailover reports whether c is go-redis's Sentinel failover client.
func isFailover(c redis.UniversalClient) (*redis.Client, bool) {
	rc, ok := c.(*redis.Client)
	return rc, ok && rc.Options().Addr == "FailoverClient"
}

// replicaAddrs returns the addresses of the master's replicas, from ROLE.
func replicaAddrs(ctx context.Context, c *redis.Client) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	r, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return nil, err
	}
	if len(r) < 3 || r[0] != "master" {
		return nil, fmt.Errorf("tlscache/redisstore: ROLE of the Sentinel master: %v", r)
	}
	list, _ := r[2].([]any)
	var addrs []string
	for _, e := range list {
		if f, ok := e.([]any); ok && len(f) >= 2 {
			addrs = append(addrs, fmt.Sprintf("%v:%v", f[0], f[1]))
		}
	}
	return addrs, nil
}

// dedup reports each key once within a short span, however many
// subscriptions deliver it.
type dedup struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const (
	dedupSpan = 2 * time.Second
	maxDedup  = 4096 // keys remembered, at most
)

func (d *dedup) first(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if t, ok := d.seen[key]; ok && now.Sub(t) < dedupSpan {
		return false
	}
	if len(d.seen) >= maxDedup {
		for k, t := range d.seen {
			if now.Sub(t) >= dedupSpan {
				delete(d.seen, k)
			}
		}
		if len(d.seen) >= maxDedup { // a flood: forget, at worst a key is reported twice
			clear(d.seen)
		}
	}
	d.seen[key] = now
	return true
}

// watchFailover runs a subscription through the failover client (on the
// master) and one on each replica, until ctx is done.
func (s *Store) watchFailover(ctx context.Context, fc *redis.Client, w watch) error {
	d := &dedup{seen: map[string]time.Time{}}
	once := func(key string) {
		if d.first(key) {
			w.deleted(key)
		}
	}
	var mu sync.Mutex // lost and once run from several subscriptions
	deliver := func(key string) { mu.Lock(); defer mu.Unlock(); once(key) }
	resync := func() {
		if w.synced != nil {
			mu.Lock()
			defer mu.Unlock()
			w.synced()
		}
	}
	sw := watch{hb: w.hb, deleted: deliver, synced: resync, alive: w.alive}

	var wg sync.WaitGroup
	run := func(ctx context.Context, c subscriber) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.subscribe(ctx, c, sw, false)
			}
		}()
	}
	run(ctx, fc)
	// Nodes stay subscribed once seen, also when ROLE no longer lists
	// them: the replica promoted in place of the master is no longer a
	// replica, and its subscription is the one that works.
	nodes := map[string]*redis.Client{}
	defer func() {
		for _, c := range nodes {
			c.Close()
		}
	}()
	for {
		if addrs, err := replicaAddrs(ctx, fc); err == nil {
			for _, a := range addrs {
				if nodes[a] != nil || len(nodes) >= maxNodes {
					continue
				}
				o := *fc.Options()
				o.Addr, o.Dialer = a, nil
				nodes[a] = redis.NewClient(&o)
				run(ctx, nodes[a])
			}
		}
		if err := sleep(ctx, replicaRefresh); err != nil {
			wg.Wait() // before the clients close
			return err
		}
	}
}

// maxNodes bounds the nodes a failover client's watch subscribes on.
const maxNodes = 16
