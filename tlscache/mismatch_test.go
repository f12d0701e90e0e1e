package tlscache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testlog"
)

// TestMismatchBurstLogged: MismatchBurst-1 context mismatches log nothing;
// the next one logs one Warn, and the rest of the burst nothing; a quiet
// MismatchWindow ends it with one Info (noticed at the next new session);
// a new burst logs one Warn again. Lookups that hit log nothing.
func TestMismatchBurstLogged(t *testing.T) {
	logs := &testlog.Handler{}
	c, clk, _ := newTestCache(t, Options{Logger: slog.New(logs)})
	c.Add(newSessionAt([]byte("s"), []byte("vhost-a"), []byte("state"), epoch, time.Hour))
	mismatch := func(n int) {
		for range n {
			if c.Lookup([]byte("s"), []byte("vhost-b")) != nil {
				t.Fatal("resumed under another IDContext")
			}
			clk.Advance(10 * time.Millisecond)
		}
	}
	want := func(step string, n int) []string { t.Helper(); return logs.Want(t, step, n) }

	mismatch(MismatchBurst - 1)
	want("below the burst", 0)
	mismatch(1)
	lines := want("the burst", 1)
	if !strings.HasPrefix(lines[0], "WARN tlscache: burst of context mismatches") ||
		!strings.Contains(lines[0], fmt.Sprintf("mismatches=%d", MismatchBurst)) || !strings.Contains(lines[0], "hint=servers with different certificates") {
		t.Fatalf("the Warn line: %q", lines[0])
	}
	mismatch(100)
	for range 100 { // hits in a burst
		if c.Lookup([]byte("s"), []byte("vhost-a")) == nil {
			t.Fatal("no hit")
		}
	}
	want("the rest of the burst", 1)

	// Not yet quiet for a whole window: the burst goes on.
	clk.Advance(MismatchWindow - time.Second)
	c.NewSession(Server, newSessionAt([]byte("n1"), []byte("vhost-a"), nil, clk.Now(), time.Hour))
	want("within the window", 1)
	clk.Advance(time.Second)
	c.NewSession(Server, newSessionAt([]byte("n2"), []byte("vhost-a"), nil, clk.Now(), time.Hour))
	c.NewSession(Server, newSessionAt([]byte("n3"), []byte("vhost-a"), nil, clk.Now(), time.Hour))
	mismatch(1)
	lines = want("after a quiet window", 2)
	if !strings.HasPrefix(lines[1], "INFO tlscache: context mismatches stopped") ||
		!strings.Contains(lines[1], fmt.Sprintf("mismatches=%d", MismatchBurst+100)) || !strings.Contains(lines[1], "quiet_for=10.01s") {
		t.Fatalf("the Info line: %q", lines[1])
	}

	// A few mismatches (the one above included) are no burst; then one.
	mismatch(MismatchBurst - 2)
	want("a few mismatches after the burst", 2)
	mismatch(1)
	lines = want("a new burst", 3)
	if !strings.HasPrefix(lines[2], "WARN tlscache: burst of context mismatches") {
		t.Fatalf("the second Warn line: %q", lines[2])
	}

	// Mismatches spread thinner than a burst log nothing, and the burst
	// ends at the first mismatch after a quiet window too.
	clk.Advance(MismatchWindow)
	for range 3 * MismatchBurst {
		mismatch(1)
		clk.Advance(MismatchWindow / (MismatchBurst - 1))
	}
	lines = want("a trickle", 4)
	if !strings.HasPrefix(lines[3], "INFO tlscache: context mismatches stopped") {
		t.Fatalf("the second Info line: %q", lines[3])
	}
	for _, l := range lines {
		t.Log(l)
	}
	if st := c.Stats(); st.ContextMismatches != int64(100+5*MismatchBurst) {
		t.Fatalf("ContextMismatches = %d", st.ContextMismatches)
	}
}

// TestMismatchBurstFromHook: mismatches of sessions the get hook returns
// (servers sharing a store) count toward a burst too, and with no Logger
// nothing is tracked.
func TestMismatchBurstFromHook(t *testing.T) {
	for _, withLog := range []bool{true, false} {
		logs := &testlog.Handler{}
		opts := Options{Mode: Server | NoInternal, GetHook: func(id []byte, take bool) (*Session, error) {
			return newSessionAt(id, []byte("other server"), []byte("state"), epoch, time.Hour), nil
		}}
		if withLog {
			opts.Logger = slog.New(logs)
		}
		c, _, _ := newTestCache(t, opts)
		for range MismatchBurst {
			if c.Lookup([]byte("s"), []byte("vhost")) != nil {
				t.Fatal("resumed under another IDContext")
			}
		}
		if n := len(logs.Lines()); n != map[bool]int{true: 1, false: 0}[withLog] {
			t.Fatalf("Logger set %v: %d lines %q", withLog, n, logs.Lines())
		}
		if c.Stats().ContextMismatches != MismatchBurst {
			t.Fatalf("ContextMismatches = %d", c.Stats().ContextMismatches)
		}
	}
}

// TestMismatchLoggerLookupAllocs: a Logger, even in a burst, adds no
// allocation to a lookup that hits, nor to one that mismatches.
func TestMismatchLoggerLookupAllocs(t *testing.T) {
	allocs := func(logger *slog.Logger) (hit, mismatch float64) {
		c, _, _ := newTestCache(t, Options{Logger: logger})
		c.Add(newSessionAt([]byte("s"), []byte("vhost-a"), []byte("state"), epoch, time.Hour))
		id, a, b := []byte("s"), []byte("vhost-a"), []byte("vhost-b")
		for range MismatchBurst {
			c.Lookup(id, b) // a burst, for the logger
		}
		hit = testing.AllocsPerRun(1000, func() { c.Lookup(id, a) })
		mismatch = testing.AllocsPerRun(1000, func() { c.Lookup(id, b) })
		return hit, mismatch
	}
	hit0, mis0 := allocs(nil)
	hit1, mis1 := allocs(slog.New(&testlog.Handler{}))
	t.Logf("allocations per lookup: hit %v, mismatch %v without a Logger; %v and %v with one", hit0, mis0, hit1, mis1)
	if hit1 > hit0 || mis1 > mis0 {
		t.Fatal("the Logger adds allocations to lookups")
	}
}

// withAndWithoutLogger runs bench on a new cache without a Logger, then
// with one, as two sub-benchmarks.
func withAndWithoutLogger(b *testing.B, bench func(b *testing.B, c *Cache)) {
	for _, withLog := range []bool{false, true} {
		b.Run(fmt.Sprintf("logger=%v", withLog), func(b *testing.B) {
			var opts Options
			if withLog {
				opts.Logger = slog.New(&testlog.Handler{})
			}
			b.ReportAllocs()
			bench(b, New(&opts))
		})
	}
}

func BenchmarkLookupMismatch(b *testing.B) {
	withAndWithoutLogger(b, func(b *testing.B, c *Cache) {
		c.Add(&Session{ID: []byte("s"), IDContext: []byte("vhost-a"), State: []byte("state")})
		id, other := []byte("s"), []byte("vhost-b")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Lookup(id, other)
			}
		})
	})
}

// BenchmarkNewSessionLogger: what a Logger costs a full handshake's
// NewSession outside a burst (its check that a burst ended).
func BenchmarkNewSessionLogger(b *testing.B) {
	withAndWithoutLogger(b, func(b *testing.B, c *Cache) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			id := make([]byte, 16)
			for pb.Next() {
				binary.BigEndian.PutUint64(id, uint64(next.Add(1)))
				c.NewSession(Server, &Session{ID: bytes.Clone(id), State: []byte("state")})
			}
		})
	})
}
