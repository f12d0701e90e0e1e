package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/fleet"
)

// revokedKey is the sorted set of tombstones: members are revoked store
// keys, scores their expiry in Unix milliseconds.
func (s *Store) revokedKey() string { return s.prefix + "revoked" }

// tombKeys returns the sorted sets the tombstones are kept in on a
// Cluster: two, whose hash tags put them on different masters when the
// cluster has two (chosen once, from the slot map then), so that the
// tombstones stay readable while one master is down and its replica not
// yet promoted: a resync needs them before it trusts its watch again.
func (s *Store) tombKeys() []string {
	s.tombOnce.Do(func() {
		key := func(i int) string { return s.prefix + "revoked{" + strconv.Itoa(i) + "}" }
		s.tombs = []string{key(0), key(1)}
		first := s.cluster.shard(key(0))
		if first == "" {
			return
		}
		for i := 1; i < 64; i++ {
			if m := s.cluster.shard(key(i)); m != "" && m != first {
				s.tombs[1] = key(i)
				return
			}
		}
	})
	return s.tombs
}

// Revoke implements fleet.Revoker: DEL of the key, ZADD of its tombstone
// (expired ones are trimmed), PUBLISH of message, in that order, so that a
// server that subscribes after the message still finds the tombstone. One
// pipeline; on a Cluster, where the tombstones and the key live in
// different slots, the tombstone first, then DEL and PUBLISH on the key's
// master. It returns PUBLISH's count of receivers.
func (s *Store) Revoke(ctx context.Context, key, message string, ttl time.Duration) (int64, error) {
	return s.revoke(ctx, key, message, ttl, false)
}

// RevokeDurable implements fleet.DurableRevoker: [Store.Revoke], then, on
// the same connection (WAIT waits for that connection's writes), WAIT for
// [Options.Replicas] replicas; too few give an error wrapping
// [fleet.ErrNotReplicated]. WAIT's timeout is half what is left of ctx's
// deadline, within 10 ms and 1 s (Redis checks it every 100 ms). On a
// Cluster, or with no replicas asked for, it is Revoke.
func (s *Store) RevokeDurable(ctx context.Context, key, message string, ttl time.Duration) (int64, error) {
	return s.revoke(ctx, key, message, ttl, true)
}

func (s *Store) revoke(ctx context.Context, key, message string, ttl time.Duration, durable bool) (int64, error) {
	now := time.Now()
	tomb := func(p redis.Cmdable, set string) {
		p.ZAdd(ctx, set, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: key})
		p.ZRemRangeByScore(ctx, set, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	}
	var pub *redis.IntCmd
	if s.cluster != nil {
		// Durable once one copy took it: with one master down, the
		// other copy holds it.
		stored, err := 0, error(nil)
		for _, set := range s.tombKeys() {
			if _, e := s.c.Pipelined(ctx, func(p redis.Pipeliner) error { tomb(p, set); return nil }); e != nil {
				err = e
			} else {
				stored++
			}
		}
		if stored == 0 {
			return 0, s.miss(err)
		}
		err = s.pipelined(ctx, s.prefix+key, func(p redis.Pipeliner) error {
			p.Del(ctx, s.prefix+key)
			pub = p.Publish(ctx, s.channel, message)
			return nil
		})
		if err != nil {
			return 0, s.miss(err)
		}
		return pub.Val(), nil
	}
	var wait *redis.Cmd
	timeout := waitTimeout(ctx)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.prefix+key)
		tomb(p, s.revokedKey())
		pub = p.Publish(ctx, s.channel, message)
		if durable && s.replicas > 0 {
			// On the connection of the writes: WAIT waits for its writes.
			wait = p.Do(ctx, "WAIT", s.replicas, timeout.Milliseconds())
		}
		return nil
	})
	if err != nil {
		return 0, s.miss(err)
	}
	if wait != nil {
		if acked, _ := wait.Int64(); acked < int64(s.replicas) {
			return pub.Val(), fmt.Errorf("%w: %d of %d acknowledged it within %v", fleet.ErrNotReplicated, acked, s.replicas, timeout.Round(time.Millisecond))
		}
	}
	return pub.Val(), nil
}

// waitTimeout is WAIT's timeout under ctx: half what is left of its
// deadline (so that the reply arrives before it), within [10ms, 1s].
func waitTimeout(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Second
	}
	return min(max(time.Until(d)/2, 10*time.Millisecond), time.Second)
}

// Revoked implements fleet.Revoker: the tombstones not yet expired. On a
// Cluster, those of every copy that answers (an error if none does).
func (s *Store) Revoked(ctx context.Context) ([]string, error) {
	sets := []string{s.revokedKey()}
	if s.cluster != nil {
		sets = s.tombKeys()
	}
	by := &redis.ZRangeBy{Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}
	var out []string
	var err error
	read := 0
	for _, set := range sets {
		keys, e := s.c.ZRangeByScore(ctx, set, by).Result()
		if e != nil {
			err = e
			continue
		}
		read++
		out = append(out, keys...)
	}
	if read == 0 {
		return nil, s.miss(err)
	}
	return out, nil
}

// Publish implements fleet.Revoker.
func (s *Store) Publish(ctx context.Context, message string) error {
	return s.miss(s.pipelined(ctx, s.channel, func(p redis.Pipeliner) error {
		p.Publish(ctx, s.channel, message)
		return nil
	}))
}
