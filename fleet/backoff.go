package fleet

import (
	"log/slog"
	"math"
	"sync"
	"time"
)

// A Sharded store keeps its keys on parts that fail one at a time, as the
// masters of a Redis Cluster: Shard names the part that holds key now (a
// node's address; "" for the whole store). The tier then backs off from a
// failing part alone, and a key whose part changes (a replica promoted
// in place of a dead master) is tried again at once. *redisstore.Store is
// one.
type Sharded interface {
	Shard(key string) string
}

// maxShards bounds the back-off states kept; keys of further shards share
// the state of the whole store.
const maxShards = 256

// breaker is the back-off state of one shard. Calls and failures are
// counted over a sliding window of two halves, or over the last
// 2*failures calls when the window holds fewer (little traffic, or calls
// that each wait out a hung store's deadline): the store is skipped when
// these hold at least `failures` failures making at least half of the
// calls, so that a burst of timeouts on a busy host, among many calls that
// succeed, does not stop resumption, while a dead or hung store does.
type breaker struct {
	half        time.Time // start of the current half-window
	calls, errs [2]int    // [0] the current half, [1] the previous one
	recent      []bool    // outcomes of the last 2*failures calls, a ring (true: failed)
	next        int       // where the next outcome goes in recent
	seen        int       // outcomes in recent, up to its length

	down  bool      // backing off
	since time.Time // when the back-off started
	until time.Time // skip until then; then one probe
	last  time.Time // last call allowed or skipped
}

// roll moves the window to now.
func (b *breaker) roll(now time.Time, half time.Duration) {
	switch d := now.Sub(b.half); {
	case d < half:
		return
	case d < 2*half:
		b.calls[1], b.errs[1] = b.calls[0], b.errs[0]
	default:
		b.calls[1], b.errs[1] = 0, 0
	}
	b.calls[0], b.errs[0] = 0, 0
	b.half = now
}

// breakers are the back-off states of a tier, one per shard.
type breakers struct {
	failures int
	window   time.Duration
	backOff  time.Duration
	deadline *deadline
	now      func() time.Time
	log      *slog.Logger

	mu     sync.Mutex
	shards map[string]*breaker
}

func (bs *breakers) get(shard string) *breaker {
	b := bs.shards[shard]
	if b == nil {
		now := bs.now()
		if len(bs.shards) >= maxShards {
			for k, old := range bs.shards { // shards gone (nodes replaced)
				if k != "" && now.Sub(old.last) > time.Minute {
					delete(bs.shards, k)
				}
			}
		}
		if len(bs.shards) >= maxShards {
			shard = ""
			if b = bs.shards[""]; b != nil {
				return b
			}
		}
		b = &breaker{half: now, last: now}
		bs.shards[shard] = b
	}
	return b
}

// allow reports whether a call to shard may go ahead. After a back-off
// ends, one call probes the shard and the others keep skipping until it
// answers.
func (bs *breakers) allow(shard string) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.get(shard)
	now := bs.now()
	b.last = now
	if !b.down {
		return true
	}
	if now.Before(b.until) {
		return false
	}
	b.until = now.Add(bs.deadline.get()) // the probe's own deadline
	return true
}

// record counts the outcome of a call to shard, and starts or ends its
// back-off; the change is logged once, outside the lock.
func (bs *breakers) record(shard string, ok bool) (started bool) {
	bs.mu.Lock()
	b := bs.get(shard)
	now := bs.now()
	b.roll(now, bs.window/2)
	b.calls[0]++
	if !ok {
		b.errs[0]++
	}
	if b.recent == nil {
		b.recent = make([]bool, 2*bs.failures)
	}
	b.recent[b.next] = !ok
	b.next = (b.next + 1) % len(b.recent)
	b.seen = min(b.seen+1, len(b.recent))
	var event string
	var downFor time.Duration
	calls, errs := b.calls[0]+b.calls[1], b.errs[0]+b.errs[1]
	if calls < len(b.recent) { // few calls in the window: the last ones
		calls, errs = b.seen, 0
		for _, failed := range b.recent {
			if failed {
				errs++
			}
		}
	}
	switch {
	case b.down && ok:
		b.down = false
		b.calls, b.errs = [2]int{}, [2]int{} // a fresh window
		clear(b.recent)
		b.seen = 0
		event, downFor = "recovered", now.Sub(b.since)
	case b.down:
		b.until = now.Add(bs.backOff)
	case !ok && errs >= bs.failures && 2*errs >= calls:
		b.down, b.since, b.until = true, now, now.Add(bs.backOff)
		event, started = "down", true
	}
	bs.mu.Unlock()

	if bs.log == nil {
		return started
	}
	name := shard
	if name == "" {
		name = "all"
	}
	switch event {
	case "down":
		bs.log.Warn("fleet: store failing, backing off: full handshakes where it is needed",
			"shard", name, "failed", errs, "calls", calls, "window", bs.window, "back_off", bs.backOff)
	case "recovered":
		bs.log.Info("fleet: store answers again, back-off ended", "shard", name, "down_for", downFor.Round(time.Millisecond))
	}
	return started
}

// backingOff reports whether any shard in use is being skipped now (a
// shard no call asked for in two back-offs is no longer in use: a dead
// node whose slots moved).
func (bs *breakers) backingOff() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	now := bs.now()
	for _, b := range bs.shards {
		if b.down && now.Sub(b.last) < 2*bs.backOff {
			return true
		}
	}
	return false
}

// deadline is the deadline of each store call: fixed (Options.Timeout), or
// adaptive: four times the peak latency of recent calls, the peak decaying by
// half every deadlineHalfLife, between DefaultTimeout and MaxTimeout, and
// MaxTimeout for the first deadlineWarmUp calls, before anything is known.
// A call that times out counts as taking its whole deadline, so the next
// deadline quadruples: a busy host, whose scheduling stalls make round trips
// take tens of milliseconds now and then, gets deadlines that fit them,
// and a store that hangs reaches MaxTimeout in a few calls, by when the
// back-off has started (DefaultFailures calls: 100, 250, 250, 250, 250 ms).
type deadline struct {
	fixed    time.Duration
	min, max time.Duration

	mu   sync.Mutex
	n    int // calls observed, up to deadlineWarmUp
	peak time.Duration
	at   time.Time // of the peak
}

const (
	// deadlineHalfLife is how fast a latency peak is forgotten: slowly,
	// so that a host busy now and then keeps deadlines that fit it.
	deadlineHalfLife = 10 * time.Second
	// deadlineWarmUp is how many calls run under MaxTimeout first.
	deadlineWarmUp = 16
)

func (d *deadline) decayed(now time.Time) time.Duration {
	age := now.Sub(d.at)
	if age <= 0 || d.peak == 0 {
		return d.peak
	}
	halves := float64(age) / float64(deadlineHalfLife)
	if halves > 30 {
		return 0
	}
	return time.Duration(float64(d.peak) / math.Exp2(halves))
}

// get returns the deadline of the next call.
func (d *deadline) get() time.Duration {
	if d.fixed > 0 {
		return d.fixed
	}
	d.mu.Lock()
	p, warm := d.decayed(time.Now()), d.n >= deadlineWarmUp
	d.mu.Unlock()
	if !warm {
		return d.max
	}
	return min(max(4*p, d.min), d.max)
}

// observe counts the latency of a call that returned (timed out or not).
func (d *deadline) observe(took time.Duration) {
	if d.fixed > 0 {
		return
	}
	now := time.Now()
	d.mu.Lock()
	d.n = min(d.n+1, deadlineWarmUp)
	if p := d.decayed(now); took >= p {
		d.peak, d.at = took, now
	}
	d.mu.Unlock()
}
