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
// Options.Logger. A mismatch (a miss: a full handshake follows) takes mu;
// a hit touches nothing here. The lines are logged after mu is released,
// and no lock of the cache is held then.
type mismatches struct {
	log    *slog.Logger // nil: nothing is tracked
	active atomic.Bool  // burst, readable without mu: NewSession's check

	mu         sync.Mutex
	start      int64 // the counting window's opening (unix nanoseconds): its first mismatch
	n          int64 // mismatches counted in that window
	last       int64 // the last mismatch
	burst      bool  // a burst was reported and has not ended
	burstStart int64 // when the burst's window opened
	burstFirst int64 // ContextMismatches before the burst's window
}

// A burstEnd is what the Info line of a burst's end says.
type burstEnd struct {
	mismatches       int64
	lasted, quietFor time.Duration
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
	m.mu.Lock()
	end := m.endLocked(now, total-1) // a quiet window ended the last burst before this one
	if now-m.start >= int64(MismatchWindow) {
		m.start, m.n = now, 0
	}
	m.last = now
	m.n++
	started := !m.burst && m.n >= MismatchBurst
	if started {
		m.burst, m.burstStart, m.burstFirst = true, m.start, total-m.n
		m.active.Store(true)
	}
	n := m.n
	m.mu.Unlock()
	m.logEnd(end)
	if started {
		m.log.Warn("tlscache: burst of context mismatches: sessions found under another IDContext, full handshakes",
			"mismatches", n, "within", MismatchWindow, "hint", mismatchHint)
	}
}

// checkMismatchBurst ends a burst that has gone MismatchWindow without a
// mismatch: an Info line, once. NewSession (a full handshake) calls it, so
// that the end is reported even when no mismatch follows; outside a burst
// it loads one atomic and takes no lock.
func (c *Cache) checkMismatchBurst() {
	m := &c.mismatch
	if m.log == nil || !m.active.Load() {
		return
	}
	now := c.nowNano()
	m.mu.Lock()
	end := m.endLocked(now, c.stats.contextMismatches.Load())
	m.mu.Unlock()
	m.logEnd(end)
}

// endLocked ends the burst if it has gone MismatchWindow without a
// mismatch at now, total mismatches having been counted by then.
func (m *mismatches) endLocked(now, total int64) *burstEnd {
	if !m.burst || now-m.last < int64(MismatchWindow) {
		return nil
	}
	m.burst = false
	m.active.Store(false)
	m.start, m.n = now, 0
	return &burstEnd{
		mismatches: total - m.burstFirst,
		lasted:     time.Duration(m.last - m.burstStart).Round(time.Millisecond),
		quietFor:   time.Duration(now - m.last).Round(time.Millisecond),
	}
}

func (m *mismatches) logEnd(e *burstEnd) {
	if e != nil {
		m.log.Info("tlscache: context mismatches stopped, burst ended",
			"mismatches", e.mismatches, "lasted", e.lasted, "quiet_for", e.quietFor)
	}
}
