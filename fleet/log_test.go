package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/testlog"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

// liveStore is a MemoryStore with a watch whose heartbeat (every 20 ms)
// the test can silence, and whose resync (the tombstones' reload) it can
// hold, as a Redis that stops answering or a subscription that breaks.
type liveStore struct {
	*tlscache.MemoryStore
	silent atomic.Bool   // no heartbeat while set
	resub  chan struct{} // a send makes the watch resubscribe
	hold   atomic.Bool   // Revoked blocks while set (and release is open)
	held   chan struct{} // closed to end a hold
}

var (
	_ fleet.LiveWatcher = (*liveStore)(nil)
	_ fleet.Revoker     = (*liveStore)(nil)
)

func (s *liveStore) WatchLive(ctx context.Context, deleted func(string), synced func(), alive func()) error {
	beats, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-beats.Done():
				return
			case <-tick.C:
				if !s.silent.Load() {
					alive()
				}
			}
		}
	}()
	synced()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.resub:
			synced()
		}
	}
}

func (s *liveStore) Revoke(ctx context.Context, key, message string, ttl time.Duration) (int64, error) {
	return 0, s.Delete(ctx, key)
}

func (s *liveStore) Revoked(ctx context.Context) ([]string, error) {
	if s.hold.Load() {
		select {
		case <-s.held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

func (s *liveStore) Publish(ctx context.Context, message string) error { return nil }

// memberTarget stands for an adapter.Server: a Target that checks trust
// itself (SetFleet), so the tier does not flush it.
type memberTarget struct{ *tlscache.Cache }

func (memberTarget) SetFleet(func() bool, func(context.Context, []byte, bool) error, func([]byte) (*tlscache.Session, error)) {
}

// TestWatchLossLogged: a watch that goes silent (its heartbeat stops), and
// one whose resubscription hangs (its tombstones do not load), are each
// logged once as lost, whatever the handshakes meanwhile, and once as
// resynced when trusted again, with how long it was lost. Fail closed
// with a plain cache; FailOpen with a target that checks trust itself.
func TestWatchLossLogged(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			t.Parallel()
			logs := &testlog.Handler{}
			clk := newClock()
			store := &liveStore{MemoryStore: tlscache.NewMemoryStore(0, clk.Now), resub: make(chan struct{}), held: make(chan struct{})}
			tier, _ := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}, Now: clk.Now,
				FailOpen: failOpen, Logger: slog.New(logs)})
			t.Cleanup(tier.Close)
			cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternal, Now: clk.Now}))
			var target fleet.Target = cache
			if failOpen {
				target = memberTarget{cache}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); tier.Watch(ctx, target) }()
			t.Cleanup(func() { cancel(); <-done })
			testwait.For(t, "the watch to start", 5*time.Second, func() bool {
				select {
				case <-tier.Ready():
					return true
				default:
					return false
				}
			})
			cache.NewSession(tlscache.Server, newSession(clk, "s"))
			// handshakes runs lookups for d (real time: trust is), and
			// returns how many resumed.
			handshakes := func(d time.Duration) (resumed, n int) {
				for start := time.Now(); time.Since(start) < d; n++ {
					if cache.Lookup([]byte("s"), []byte("vhost")) != nil {
						resumed++
					}
					time.Sleep(2 * time.Millisecond)
				}
				return resumed, n
			}
			want := func(step string, n int) []string { t.Helper(); return logs.Want(t, step, n) }
			lines := func(n int) func() bool { return func() bool { return len(logs.Lines()) >= n } }
			lost := "WARN fleet: watch lost: resumptions are full handshakes until it resyncs"
			if failOpen {
				lost = "WARN fleet: watch lost: FailOpen, still resuming: revocations may be missed until it resyncs"
			}
			resynced := "INFO fleet: watch resynced, trusted again lost_for="

			if r, n := handshakes(200 * time.Millisecond); r != n {
				t.Fatalf("%d/%d resumed with the watch working", r, n)
			}
			want("watch working", 0)

			// The heartbeat stops: lost after Silence, logged once.
			store.silent.Store(true)
			began := time.Now()
			testwait.For(t, "the loss to be logged", 5*time.Second, lines(1))
			t.Logf("heartbeat silent: logged lost after %v", time.Since(began))
			if r, n := handshakes(300 * time.Millisecond); (r == n) != failOpen || n == 0 {
				t.Fatalf("FailOpen %v: %d/%d resumed with the watch lost", failOpen, r, n)
			}
			if got := want("while lost", 1); !strings.HasPrefix(got[0], lost) || !strings.Contains(got[0], "reason=heartbeat silent") {
				t.Fatalf("the loss line: %q", got[0])
			}
			// It comes back: trusted after the quarantine, logged once.
			store.silent.Store(false)
			back := time.Now()
			testwait.For(t, "the resync to be logged", 5*time.Second, lines(2))
			t.Logf("heartbeat back: logged resynced after %v", time.Since(back))
			if r, n := handshakes(200 * time.Millisecond); r != n {
				t.Fatalf("%d/%d resumed once resynced", r, n)
			}
			if got := want("resynced", 2); !strings.HasPrefix(got[1], resynced) {
				t.Fatalf("the resync line: %q", got[1])
			}

			// A resubscription whose tombstones do not load: lost while
			// it hangs, resynced once they do.
			store.hold.Store(true)
			store.resub <- struct{}{}
			testwait.For(t, "the second loss to be logged", 5*time.Second, lines(3))
			handshakes(200 * time.Millisecond)
			if got := want("resubscribing", 3); !strings.HasPrefix(got[2], lost) || !strings.Contains(got[2], "reason=not subscribed") {
				t.Fatalf("the second loss line: %q", got[2])
			}
			store.hold.Store(false)
			close(store.held)
			testwait.For(t, "the second resync to be logged", 5*time.Second, lines(4))
			handshakes(200 * time.Millisecond)
			if got := want("resubscribed", 4); !strings.HasPrefix(got[3], resynced) {
				t.Fatalf("the second resync line: %q", got[3])
			}
			for _, l := range logs.Lines() {
				t.Log(l)
			}

			// Stopping the watch is no loss to log.
			cancel()
			<-done
			want("watch stopped", 4)
		})
	}
}
