package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
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

// fleetServer is this server as a member of the fleet, and its Redis
// client.
type fleetServer struct {
	*fleet.Server
	client redis.UniversalClient
}

// Close stops the fleet's watch, then closes the Redis client.
func (f *fleetServer) Close() {
	f.Server.Close()
	f.client.Close()
}

// openFleet connects to Redis and makes this server a member of the fleet
// (fleet.NewServer): its sessions, approvals (only those, with
// approvedOnly) and revocations hold on every server. It waits (a while)
// for the fleet's watch before the server accepts connections: until it
// works, nothing resumes.
func openFleet(log *slog.Logger, cfg fleetConfig, approvedOnly bool, cache tlscache.Options, srv adapter.ServerOptions) (*fleetServer, error) {
	keys, err := sealKeys(cfg.keysFile)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-redis: %s", keysHelp)
	}
	// Redis's own log lines (a dial that failed, a master that moved) go
	// to the debug level; the fleet logs what matters once per change.
	redis.SetLogger(redisLog{log})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	client, err := redisstore.Open(ctx, &redis.UniversalOptions{Addrs: strings.Split(cfg.redis, ","), MasterName: cfg.master})
	if err != nil {
		return nil, fmt.Errorf("-redis %s%s: %w%s", cfg.redis, masterFlag(cfg.master), err, redisHint(err))
	}
	topology, _ := redisstore.Check(ctx, client)
	store, err := redisstore.New(client, &redisstore.Options{Prefix: cfg.prefix})
	if err != nil {
		client.Close()
		return nil, err
	}
	fs, err := fleet.NewServer(store, &fleet.ServerOptions{
		Keys: keys, ApprovedOnly: approvedOnly, Logger: log,
		Tier: fleet.Options{Timeout: cfg.timeout}, Cache: cache, Server: srv,
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	timeout := "adaptive"
	if cfg.timeout > 0 {
		timeout = cfg.timeout.String()
	}
	log.Info("fleet", "redis", cfg.redis, "topology", topology, "prefix", cfg.prefix, "seal_key", keys[0].ID(), "keys", len(keys),
		"store_timeout", timeout, "approved_only", approvedOnly)
	select {
	case <-fs.Ready():
	case <-time.After(2 * time.Second):
		log.Warn("the fleet's revocation channel is not subscribed yet: serving anyway, with full handshakes until it is")
	}
	return &fleetServer{Server: fs, client: client}, nil
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
