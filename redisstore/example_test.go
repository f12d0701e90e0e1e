package redisstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/redisstore"
)

// Open makes and checks the client of a fleet's store: here for a Redis
// that is not running, which it refuses at startup rather than letting
// every handshake's store call fail. For a Redis Cluster give two or more
// of its nodes; for Sentinel, the sentinels and MasterName.
func ExampleOpen() {
	ctx := context.Background()
	client, err := redisstore.Open(ctx, &redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})
	if errors.Is(err, redisstore.ErrUnreachable) {
		fmt.Println("refused: nothing answers at 127.0.0.1:1")
		return
	}
	if err != nil {
		panic(err) // a cluster node given alone, sentinels without MasterName, a replica...
	}
	defer client.Close()
	store, err := redisstore.New(client, nil)
	if err != nil {
		panic(err)
	}
	tier, err := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	_ = tier // tier.Hooks(...) for the cache, go tier.Watch(ctx, srv)
	// Output: refused: nothing answers at 127.0.0.1:1
}
