// Package redisstore is a tlscache.Store on Redis, shared by the servers of
// a fleet: standalone, Sentinel or Cluster, through go-redis's
// UniversalClient. Put it behind a fleet.Tier, which seals what is stored,
// bounds every call with a deadline and backs off from a failing Redis.
//
// Keys are Options.Prefix followed by the session's store key; a value's TTL
// is the session's remaining lifetime, so Redis expires sessions by itself.
// Take is GETDEL (Redis 6.2 or later): atomic across the fleet. Delete and
// a successful Take publish the key on Options.Channel, and Watch
// subscribes to it, so a removal on one server reaches the internal tier of
// every other server within a round trip.
//
// The client must have ContextTimeoutEnabled set, so that the deadline of
// each call is honoured: without it a dead Redis would hold every handshake
// for the client's ReadTimeout (seconds). New refuses such a client when it
// is a *redis.Client (standalone or Sentinel), *redis.ClusterClient or
// *redis.Ring; it cannot look inside other implementations.
package redisstore

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/tlscache"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "tlscache:"

// Options configure a Store; the zero value means the defaults.
type Options struct {
	// Prefix starts every key; empty means DefaultPrefix. Servers that
	// share sessions use the same prefix (and the same sealing keys).
	Prefix string
	// Channel is where deletions are published; empty means Prefix
	// followed by "deleted".
	Channel string
}

// Store is a tlscache.Store and tlscache.Watcher on Redis.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	channel string
}

var (
	_ tlscache.Store   = (*Store)(nil)
	_ tlscache.Watcher = (*Store)(nil)
)

// ErrNoContextTimeout is New's error for a client that ignores context
// deadlines.
var ErrNoContextTimeout = errors.New("redisstore: the client must set ContextTimeoutEnabled, or a dead Redis stalls handshakes for its ReadTimeout")

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
	if opts != nil && opts.Prefix != "" {
		s.prefix = opts.Prefix
	}
	s.channel = s.prefix + "deleted"
	if opts != nil && opts.Channel != "" {
		s.channel = opts.Channel
	}
	return s, nil
}

// Get implements tlscache.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.prefix+key).Bytes()
	return b, miss(err)
}

// Put implements tlscache.Store with SET PX.
func (s *Store) Put(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil // SET with no expiry would keep it forever
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	return s.c.Set(ctx, s.prefix+key, data, ttl).Err()
}

// Delete implements tlscache.Store: DEL, and the key published on the
// channel (even when Redis no longer had it, since other servers may still
// hold the session in their internal tier).
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.prefix+key)
		p.Publish(ctx, s.channel, key)
		return nil
	})
	return err
}

// Take implements tlscache.Store with GETDEL, and publishes the key when it
// took something.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.GetDel(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, miss(err)
	}
	// The take stands even if the publish fails: it only hurries other
	// servers' internal tiers, and a server that holds the session there
	// confirms its own take with GETDEL, which now misses.
	s.c.Publish(ctx, s.channel, key)
	return b, nil
}

func miss(err error) error {
	if errors.Is(err, redis.Nil) {
		return tlscache.ErrCacheMiss
	}
	return err
}

// healthInterval is how long Watch waits on a quiet subscription before
// it pings, and then for the answer, before it takes the connection for
// dead (silently dropped by a NAT, a load balancer or a partition) and
// subscribes again.
const healthInterval = time.Second

// errSilent ends a subscription that stopped answering pings.
var errSilent = errors.New("redisstore: the subscription stopped answering")

// Watch implements tlscache.Watcher with SUBSCRIBE on the channel. go-redis
// reconnects and subscribes again after a broken connection; a connection
// that goes silent is found by pinging it after a quiet second, and
// replaced. Each confirmed subscription calls lost. While Redis is
// unreachable Watch retries with a growing pause, up to a second.
func (s *Store) Watch(ctx context.Context, deleted func(key string), lost func()) error {
	for {
		s.subscribe(ctx, deleted, lost)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// subscribe runs one subscription until ctx is done or it goes silent.
func (s *Store) subscribe(ctx context.Context, deleted func(key string), lost func()) error {
	ps := s.c.Subscribe(ctx, s.channel)
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	pause := 10 * time.Millisecond
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if pinged {
				return errSilent
			}
			if ps.Ping(ctx) != nil {
				return errSilent
			}
			pinged = true
			continue
		case err != nil:
			pinged = false
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			pause = min(2*pause, time.Second)
			continue
		}
		pause, pinged = 10*time.Millisecond, false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				lost()
			}
		case *redis.Message:
			if m.Channel == s.channel {
				deleted(m.Payload)
			}
		}
	}
}
