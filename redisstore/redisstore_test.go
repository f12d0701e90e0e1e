package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
	"github.com/tlscache/tlscache/tlscache/storetest"
)

// TestConformance runs the suite every store passes against a real Redis.
func TestConformance(t *testing.T) {
	addr := redistest.Addr(t)
	prefixes := map[tlscache.Store]string{}
	open := func(t *testing.T, prefix string) *redisstore.Store {
		s, err := redisstore.New(redistest.Client(t, addr), &redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		prefixes[s] = prefix
		return s
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) tlscache.Store { return open(t, redistest.Prefix(t)) },
		Peer: func(t *testing.T, s tlscache.Store) tlscache.Store {
			return open(t, prefixes[s])
		},
		// Redis keeps its own time: wait for the TTL to pass.
		Advance: func(t *testing.T, d time.Duration) { time.Sleep(d) },
	})
}

func TestNewRefusesClientWithoutContextTimeouts(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisstore.New(c, nil); !errors.Is(err, redisstore.ErrNoContextTimeout) {
		t.Fatalf("New = %v, want ErrNoContextTimeout", err)
	}
}
