package redisstore_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
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

// blackhole is a TCP relay to Redis whose existing connections can be made
// to go silent, as a NAT or load balancer that drops a connection without
// telling either end; new connections still pass.
type blackhole struct {
	ln   net.Listener
	mu   sync.Mutex
	live []*atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			live := new(atomic.Bool)
			live.Store(true)
			b.mu.Lock()
			b.live = append(b.live, live)
			b.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 4096)
				for {
					n, err := src.Read(buf)
					if err != nil {
						dst.Close()
						return
					}
					if live.Load() {
						dst.Write(buf[:n])
					}
				}
			}
			go pipe(r, c)
			go pipe(c, r)
		}
	}()
	return b
}

// silence makes every connection open now drop what it carries.
func (b *blackhole) silence() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.live {
		l.Store(false)
	}
}

// TestWatchReplacesSilentConnection: when the subscription's connection
// goes silent, Watch notices within a few seconds, subscribes again and
// calls lost, so the caller drops what it may have missed.
func TestWatchReplacesSilentConnection(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix(t)
	hole := newBlackhole(t, addr)
	watcher, err := redisstore.New(redistest.Client(t, hole.ln.Addr().String()), &redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	publisher, err := redisstore.New(redistest.Client(t, addr), &redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := make(chan time.Time, 8)
	deleted := make(chan string, 8)
	go watcher.Watch(ctx, func(k string) { deleted <- k }, func() { lost <- time.Now() })
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not start")
	}
	if err := publisher.Delete(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	if k := <-deleted; k != "before" {
		t.Fatalf("deleted %q", k)
	}

	hole.silence()
	start := time.Now()
	if err := publisher.Delete(ctx, "missed"); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-lost:
		t.Logf("silent subscription replaced, lost called %v after it went silent", at.Sub(start))
	case k := <-deleted:
		t.Fatalf("a silenced connection delivered %q", k)
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not notice its connection went silent")
	}
	if err := publisher.Delete(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-deleted:
		if k != "after" {
			t.Fatalf("deleted %q, want after", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no deletion reported on the new subscription")
	}
}
