package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// revokedKey is the sorted set of tombstones: members are revoked store
// keys, scores their expiry in Unix milliseconds.
func (s *Store) revokedKey() string { return s.prefix + "revoked" }

// Revoke implements fleet.Revoker: DEL of the key, ZADD of its tombstone
// (expired ones are trimmed), PUBLISH of message, in that order, so that a
// server that subscribes after the message still finds the tombstone. One
// pipeline; on a Cluster, where the tombstones and the key live in
// different slots, the tombstone first, then DEL and PUBLISH on the key's
// master. It returns PUBLISH's count of receivers.
func (s *Store) Revoke(ctx context.Context, key, message string, ttl time.Duration) (int64, error) {
	now := time.Now()
	tomb := func(p redis.Cmdable) {
		p.ZAdd(ctx, s.revokedKey(), redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: key})
		p.ZRemRangeByScore(ctx, s.revokedKey(), "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
	}
	var pub *redis.IntCmd
	if s.cluster != nil {
		if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error { tomb(p); return nil }); err != nil {
			return 0, s.miss(err)
		}
		err := s.pipelined(ctx, s.prefix+key, func(p redis.Pipeliner) error {
			p.Del(ctx, s.prefix+key)
			pub = p.Publish(ctx, s.channel, message)
			return nil
		})
		if err != nil {
			return 0, s.miss(err)
		}
		return pub.Val(), nil
	}
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.prefix+key)
		tomb(p)
		pub = p.Publish(ctx, s.channel, message)
		return nil
	})
	if err != nil {
		return 0, s.miss(err)
	}
	return pub.Val(), nil
}

// Revoked implements fleet.Revoker: the tombstones not yet expired.
func (s *Store) Revoked(ctx context.Context) ([]string, error) {
	keys, err := s.c.ZRangeByScore(ctx, s.revokedKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	return keys, s.miss(err)
}

// Publish implements fleet.Revoker.
func (s *Store) Publish(ctx context.Context, message string) error {
	return s.miss(s.pipelined(ctx, s.channel, func(p redis.Pipeliner) error {
		p.Publish(ctx, s.channel, message)
		return nil
	}))
}
