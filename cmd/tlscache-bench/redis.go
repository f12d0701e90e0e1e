package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

// redisEnv names the Redis the Redis rows run on (host:port). Unset, the
// rows are omitted.
const redisEnv = "TLSCACHE_REDIS"

func init() {
	// Store only: every resumption is a Redis round trip (what a fleet
	// member sees for a session another server issued), every new session
	// another. Two tiers: new sessions are written to Redis, resumptions
	// hit the internal tier first.
	backends = append(backends,
		backend{name: "redis store-only", newCache: func() (*tlscache.Cache, string) {
			return redisCache(tlscache.Server | tlscache.NoInternal)
		}},
		backend{name: "redis two-tier", newCache: func() (*tlscache.Cache, string) {
			return redisCache(tlscache.Server)
		}},
	)
}

// redisKeys are the sealing keys of this run's fleet.
var redisKeys = []fleet.Key{fleet.GenerateKey()}

// redisCache returns a cache in mode on a fleet tier on the Redis named by
// TLSCACHE_REDIS, under a key prefix of its own that is deleted at exit.
func redisCache(mode tlscache.Mode) (*tlscache.Cache, string) {
	addr := os.Getenv(redisEnv)
	if addr == "" {
		return nil, "set " + redisEnv + "=host:port to run it"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return nil, fmt.Sprintf("%s=%s does not answer: %v", redisEnv, addr, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "tlscache-bench:" + hex.EncodeToString(b) + ":"
	store, err := redisstore.New(c, &redisstore.Options{Prefix: prefix})
	if err != nil {
		return nil, err.Error()
	}
	tier, err := fleet.New(store, &fleet.Options{Keys: redisKeys})
	if err != nil {
		return nil, err.Error()
	}
	atExit = append(atExit, func() { deletePrefix(c, prefix); c.Close() })
	// Sessions live ten minutes: what the run leaves behind expires soon.
	return tlscache.New(tier.Hooks(&tlscache.Options{Mode: mode, Timeout: 10 * time.Minute})), ""
}

func deletePrefix(c *redis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}
