// Package redisstore is a [tlscache.Store] on Redis, shared by the servers
// of a fleet: standalone, Sentinel or Cluster, through go-redis's
// [redis.UniversalClient]. Put it behind a fleet.Tier, which seals what is
// stored, bounds every call with a deadline and backs off from a failing
// Redis.
//
// Keys are [Options.Prefix] followed by the session's store key; a value's
// TTL is the session's remaining lifetime, so Redis expires sessions by
// itself. [Store.Take] is GETDEL (Redis 6.2 or later): atomic across the
// fleet. Delete and a successful Take publish the key on [Options.Channel],
// and [Store.Watch] subscribes to it, so a removal on one server reaches the
// internal tier of every other server within a round trip.
//
// For fleet.Tier's revocations the [Store] is a fleet.Revoker and a
// fleet.LiveWatcher: [Store.Revoke] deletes a key, keeps it as a tombstone
// in a sorted set (prefix + "revoked"; on a Cluster two copies on different
// masters) and publishes it, in one pipeline; [Store.Revoked] lists the
// tombstones for a resync; [Store.WatchLive] publishes a heartbeat every
// [HeartbeatInterval] on a channel of its own and reports hearing it, which
// is how a tier knows its watch works (revoke.go, watch.go).
//
// The client must have ContextTimeoutEnabled set, so that the deadline of
// each call is honoured: without it a dead Redis would hold every handshake
// for the client's ReadTimeout (seconds). [New] refuses such a client when
// it is a [*redis.Client] (standalone or Sentinel), [*redis.ClusterClient]
// or [*redis.Ring]; it cannot look inside other implementations.
//
// [Open] makes a client for a standalone Redis, a Sentinel set (MasterName)
// or a Redis Cluster (several Addrs) as a store needs it, and checks it
// with [Check], which refuses at startup what would otherwise fail on every
// call: a single cluster node given as a standalone Redis, sentinels
// without a master name, a replica, nothing that answers.
//
// # Failover
//
// On a Redis Cluster, a failed call has the slot map reloaded (go-redis
// reloads it only after MOVED replies, or every minute), [Store.Shard] names
// the master of a key so that a fleet.Tier backs off from one dead master
// alone, Delete and Take publish on the master they wrote to, and Watch
// subscribes on one node at a time, moving to another when it fails
// (cluster.go). Through a Sentinel failover client, Watch subscribes on the
// master and its replicas, since go-redis leaves pub/sub connections on
// the old master after a failover (sentinel.go). Run a cluster with
// cluster-require-full-coverage no, or every node refuses every key while
// one shard has no master.
package redisstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// DefaultPrefix is the key prefix when [Options.Prefix] is empty.
const DefaultPrefix = "tlscache:"

// Options configure a [Store]; the zero value means the defaults.
type Options struct {
	// Prefix starts every key; empty means [DefaultPrefix]. Servers that
	// share sessions use the same prefix (and the same sealing keys).
	Prefix string
	// Channel is where deletions are published; empty means Prefix
	// followed by "deleted".
	Channel string
	// Replicas is how many replicas must acknowledge a revocation (Redis
	// WAIT, after its writes) before [Store.RevokeDurable] reports it
	// durable; with fewer it returns an error wrapping
	// [fleet.ErrNotReplicated], which adapter.Server.RevokeWait returns.
	// (The other revocations do not wait: nobody reads their answer.) Redis replicates
	// asynchronously: a failover right after a revocation can promote a
	// replica that never got its tombstone, and a server that then
	// resyncs (a restart, a lost watch) would resume the revoked session.
	// Zero means 1 on a Sentinel failover client and none elsewhere (a
	// standalone Redis has no failover to lose it in; on a Cluster the
	// tombstones are written to two masters); negative means none.
	Replicas int
}

// Store is a [tlscache.Store] and [tlscache.Watcher] on Redis.
type Store struct {
	c       redis.UniversalClient
	cluster *cluster // nil unless c is a *redis.ClusterClient

	tombOnce sync.Once
	tombs    []string // see tombKeys
	prefix   string
	channel  string
	replicas int // see Options.Replicas
}

var (
	_ tlscache.Store       = (*Store)(nil)
	_ tlscache.Watcher     = (*Store)(nil)
	_ tlscache.Claimer     = (*Store)(nil)
	_ fleet.DurableRevoker = (*Store)(nil)
)

// ErrNoContextTimeout is [New]'s error for a client that ignores context
// deadlines.
var ErrNoContextTimeout = errors.New("tlscache/redisstore: the client must set ContextTimeoutEnabled, or a dead Redis stalls handshakes for its ReadTimeout")

// New returns a store on client c.
func New(c redis.UniversalClient, opts *Options) (*Store, error) {
	switch c := c.(type) {
	case *redis.Client:
		if !c.Options().ContextTimeoutEnabled {
			return nil, ErrNoContextTimeout
		}
	case *redis.ClusterClient:
		if !c.Options().ContextTimeoutEnabled {
			return nil, ErrNoContextTimeout
		}
	case *redis.Ring:
		if !c.Options().ContextTimeoutEnabled {
			return nil, ErrNoContextTimeout
		}
	}
	s := &Store{c: c, prefix: DefaultPrefix}
	if cc, ok := c.(*redis.ClusterClient); ok {
		s.cluster = &cluster{c: cc}
	}
	if opts != nil && opts.Prefix != "" {
		s.prefix = opts.Prefix
	}
	s.channel = s.prefix + "deleted"
	if opts != nil && opts.Channel != "" {
		s.channel = opts.Channel
	}
	if _, failover := isFailover(c); failover {
		s.replicas = 1
	}
	if opts != nil && opts.Replicas != 0 {
		s.replicas = max(opts.Replicas, 0)
	}
	return s, nil
}

// Get implements [tlscache.Store].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.prefix+key).Bytes()
	return b, s.miss(err)
}

// Put implements [tlscache.Store] with SET PX.
func (s *Store) Put(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil // SET with no expiry would keep it forever
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	return s.miss(s.c.Set(ctx, s.prefix+key, data, ttl).Err())
}

// Delete implements [tlscache.Store]: DEL, and the key published on the
// channel (even when Redis no longer had it, since other servers may still
// hold the session in their internal tier).
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.miss(s.pipelined(ctx, s.prefix+key, func(p redis.Pipeliner) error {
		p.Del(ctx, s.prefix+key)
		p.Publish(ctx, s.channel, key)
		return nil
	}))
}

// pipelined runs fn in a pipeline: on a cluster, on the master of key, so
// that its PUBLISH goes to a node that answers.
func (s *Store) pipelined(ctx context.Context, key string, fn func(redis.Pipeliner) error) error {
	if s.cluster != nil {
		return s.cluster.pipelinedOn(ctx, key, fn)
	}
	_, err := s.c.Pipelined(ctx, fn)
	return err
}

// Shard implements fleet.Sharded: on a Redis Cluster, the address of the
// master that holds key now, so that the tier backs off from a failing
// node alone; elsewhere "", the whole store.
func (s *Store) Shard(key string) string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.shard(s.prefix + key)
}

// Take implements [tlscache.Store] with GETDEL, and publishes the key when
// it took something.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.GetDel(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, s.miss(err)
	}
	// The take stands even if the publish fails: it only hurries other
	// servers' internal tiers, and a server that holds the session there
	// confirms its own take with GETDEL, which now misses.
	s.miss(s.pipelined(ctx, s.prefix+key, func(p redis.Pipeliner) error {
		p.Publish(ctx, s.channel, key)
		return nil
	}))
	return b, nil
}

// Claim implements [tlscache.Claimer] with SET NX PX. A claim that Redis
// evicts under maxmemory lets its ticket's early data be accepted once
// more: run the fleet's Redis with maxmemory-policy noeviction (sessions
// and claims expire by their TTLs).
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, nil
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	won, err := s.c.SetNX(ctx, s.prefix+key, "", ttl).Result()
	return won, s.miss(err)
}

// miss maps redis.Nil to tlscache.ErrCacheMiss, and on a cluster has the
// slot map reloaded after any other error.
func (s *Store) miss(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return tlscache.ErrCacheMiss
	}
	if s.cluster != nil {
		s.cluster.failed()
	}
	return err
}
