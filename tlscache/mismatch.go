package tlscache

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Bursts of context mismatches, as Options.Logger reports them.
const (
	// MismatchBurst is how many context mismatches within MismatchWindow
	// make a burst: a few are a client that moved between virtual hosts,
	// a burst is servers with different certificates, client-auth
	// settings or IDContexts sharing a store, whose sessions never resume
	// on each other.
	MismatchBurst = 10
	// MismatchWindow is the span over which mismatches are counted (from
	// the first one after a quiet window), and how long a burst must go
	// without a mismatch to have ended.
	MismatchWindow = 10 * time.Second
)

// mismatchHint is the Warn line's hint.
const mismatchHint = "servers with different certificates, client-auth settings or IDContext share a store? their sessions do not resume here"

// mismatches watches for bursts of context mismatches, for
// Options.Logger. In a burst a mismatch costs two atomic loads (last,
// burst), and a store of last once a millisecond; outside one, a store
// and two more (the window's count). Lookups that hit touch nothing here.
// The transitions, rare, are decided under mu and logged after it is
// released; no lock of the cache is held then.
type mismatches struct {
	log   *slog.Logger // nil: nothing is tracked
	last  atomic.Int64 // unix nanoseconds of the last mismatch; 0: none yet
	burst atomic.Bool  // a burst was reported and has not ended
	start atomic.Int64 // of the counting window (outside a burst)
	n     atomic.Int64 // mismatches counted in that window

	mu         sync.Mutex
	burstStart int64 // when the burst's window opened: its first mismatch
	burstFirst int64 // ContextMismatches then, less the burst's mismatches
}

// contextMismatch counts a session found under another IDContext at now
// (the cache's clock, unix nanoseconds). It must not be called with c.mu
// held: it may log.
func (c *Cache) contextMismatch(now int64) {
	total := c.stats.contextMismatches.Add(1)
	m := &c.mismatch
	if m.log == nil {
		return
	}
	prev := m.last.Load()
	if m.burst.Load() {
		if now-prev < int64(MismatchWindow) {
			// The burst goes on. last is written once a millisecond at
			// most: many cores mismatching at once mostly only read it.
			if now-prev >= int64(time.Millisecond) {
				m.last.Store(now)
			}
			return
		}
		m.end(now, prev, total-1) // a quiet window: the burst ended before this one
	}
	m.last.Store(now)
	if start := m.start.Load(); now-start >= int64(MismatchWindow) {
		m.mu.Lock()
		if start == m.start.Load() { // no other mismatch opened the window first
			m.start.Store(now)
			m.n.Store(0)
		}
		m.mu.Unlock()
	}
	if n := m.n.Add(1); n >= MismatchBurst && !m.burst.Load() {
		m.mu.Lock()
		started := !m.burst.Load()
		if started {
			m.burst.Store(true)
			m.burstStart, m.burstFirst = m.start.Load(), total-n
		}
		m.mu.Unlock()
		if started {
			m.log.Warn("tlscache: burst of context mismatches: sessions found under another IDContext, full handshakes",
				"mismatches", n, "within", MismatchWindow, "hint", mismatchHint)
		}
	}
}

// checkMismatchBurst ends a burst that has gone MismatchWindow without a
// mismatch: an Info line, once. NewSession (a full handshake) calls it, so
// that the end is reported even when no mismatch follows; an atomic load
// unless a burst is on.
func (c *Cache) checkMismatchBurst() {
	m := &c.mismatch
	if m.log == nil || !m.burst.Load() {
		return
	}
	now := c.nowNano()
	if last := m.last.Load(); now-last >= int64(MismatchWindow) {
		m.end(now, last, c.stats.contextMismatches.Load())
	}
}

// end reports the burst's end, once, at now: its last mismatch was at
// last, and total mismatches had been counted by then.
func (m *mismatches) end(now, last, total int64) {
	m.mu.Lock()
	ended := m.burst.Load()
	start, first := m.burstStart, m.burstFirst
	if ended {
		m.burst.Store(false)
		m.start.Store(now)
		m.n.Store(0)
	}
	m.mu.Unlock()
	if ended {
		m.log.Info("tlscache: context mismatches stopped, burst ended",
			"mismatches", total-first, "lasted", time.Duration(last-start).Round(time.Millisecond),
			"quiet_for", time.Duration(now-last).Round(time.Millisecond))
	}
}
