package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/redisstore"
)

// fleetConfig is how -redis joins this server to a fleet.
type fleetConfig struct {
	redis    string // host:port, or several (comma-separated): a cluster's nodes, or with master the sentinels
	master   string // Sentinel: the master's name
	prefix   string
	keysFile string // empty: $TLSCACHE_SEAL_KEYS
	timeout  time.Duration
}

// keysHelp tells how to make a keyring.
const keysHelp = "give every server of the fleet the same sealing keys: -seal-keys FILE or $TLSCACHE_SEAL_KEYS " +
	"(one key: head -c 32 /dev/urandom | base64)"

// openFleet connects to Redis and returns the tier that shares this
// server's sessions, and a function that closes the Redis client.
func openFleet(log *slog.Logger, cfg fleetConfig) (*fleet.Tier, func(), error) {
	keys, err := sealKeys(cfg.keysFile)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("-redis: %s", keysHelp)
	}
	// Redis's own log lines (a dial that failed, a master that moved) go
	// to the debug level; the tier logs what matters once per change.
	redis.SetLogger(redisLog{log})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	client, err := redisstore.Open(ctx, &redis.UniversalOptions{Addrs: strings.Split(cfg.redis, ","), MasterName: cfg.master})
	if err != nil {
		return nil, nil, fmt.Errorf("-redis %s%s: %w%s", cfg.redis, masterFlag(cfg.master), err, redisHint(err))
	}
	topology, _ := redisstore.Check(ctx, client)
	store, err := redisstore.New(client, &redisstore.Options{Prefix: cfg.prefix})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	tier, err := fleet.New(store, &fleet.Options{Keys: keys, Timeout: cfg.timeout, Logger: log})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	timeout := "adaptive"
	if cfg.timeout > 0 {
		timeout = cfg.timeout.String()
	}
	log.Info("fleet", "redis", cfg.redis, "topology", topology, "prefix", cfg.prefix, "seal_key", keys[0].ID(), "keys", len(keys), "store_timeout", timeout)
	return tier, func() { client.Close() }, nil
}

// sealKeys reads the keyring of -seal-keys, or of $TLSCACHE_SEAL_KEYS
// without it; none given is no keys and no error.
func sealKeys(keysFile string) ([]fleet.Key, error) {
	text := os.Getenv("TLSCACHE_SEAL_KEYS")
	if keysFile != "" {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			return nil, fmt.Errorf("-seal-keys: %w", err)
		}
		text = string(b)
	}
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	keys, err := fleet.ParseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("sealing keys: %w", err)
	}
	return keys, nil
}

func masterFlag(master string) string {
	if master == "" {
		return ""
	}
	return " -redis-master " + master
}

// redisHint says which flags to give instead, for the errors of
// redisstore.Check.
func redisHint(err error) string {
	switch {
	case errors.Is(err, redisstore.ErrClusterNode):
		return " (give two or more cluster nodes: -redis host:port,host:port,...)"
	case errors.Is(err, redisstore.ErrSentinel):
		return " (give the master's name: -redis-master NAME or $TLSCACHE_REDIS_MASTER)"
	case errors.Is(err, redisstore.ErrNotCluster):
		return " (one address for a standalone Redis; several mean a cluster, or with -redis-master NAME the sentinels)"
	case errors.Is(err, redisstore.ErrReplica):
		return " (give the master, or the sentinels with -redis-master NAME)"
	}
	return ""
}

// redisLog passes go-redis's log lines to slog at the debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// watchFleet runs the tier's Watch until ctx is done, and waits (a while)
// for it to work before the server accepts connections, so that sessions
// revoked elsewhere are not resumed here.
func watchFleet(ctx context.Context, log *slog.Logger, tier *fleet.Tier, srv *adapter.Server) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tier.Watch(ctx, srv)
	}()
	select {
	case <-tier.Ready():
	case <-time.After(2 * time.Second):
		log.Warn("the fleet's revocation channel is not subscribed yet; serving anyway")
	}
	return func() { <-done }
}

// fleetShare puts into Redis, under -policy login, the sessions this
// server approves by inheritance: tickets issued on a connection that
// resumed an approved session (clients rotate tickets) join the fleet as
// the approved session did at POST /login, once per connection.
type fleetShare struct {
	tier *fleet.Tier
	done sync.Map // *adapter.ConnSessions -> struct{}, until the connection closes
}

func (f *fleetShare) share(ctx context.Context, a *app, cs *adapter.ConnSessions) {
	if _, seen := f.done.LoadOrStore(cs, struct{}{}); seen || cs.Resumed() == nil {
		return
	}
	for _, s := range cs.Issued() {
		if a.cache.Peek(s.ID) == s { // approved here
			f.tier.Put(ctx, s)
		}
	}
}

func (f *fleetShare) forget(cs *adapter.ConnSessions) { f.done.Delete(cs) }
