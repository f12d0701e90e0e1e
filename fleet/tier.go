package fleet

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// Defaults of [Options].
const (
	// DefaultTimeout is the shortest deadline of a store call made from a
	// TLS hook, when [Options.Timeout] is zero (the deadline adapts to the
	// store's latency, up to [Options.MaxTimeout]). A round trip is three
	// wake-ups (the client's write, Redis, the client's read), each of
	// which a busy host's scheduler may delay by its latency target (6 to
	// 24 ms on Linux) or more: 20 ms, the earlier fixed default, lost
	// resumption on a host merely busy.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMaxTimeout is the longest adaptive deadline: what a hung
	// store adds, at most, to each of a handshake's two store calls.
	DefaultMaxTimeout = 250 * time.Millisecond
	// DefaultFailures is how many store calls must fail within
	// [DefaultWindow], and make at least half of its calls, before the store
	// is skipped.
	DefaultFailures = 5
	// DefaultWindow is the span over which failures are counted.
	DefaultWindow = time.Second
	// DefaultBackOff is how long the store is skipped after that, before
	// one call probes it again: short, since a store that comes back (a
	// Sentinel failover, a restart) may refuse a probe or two while its
	// client reconnects (go-redis redials a pool whose dials failed once
	// a second).
	DefaultBackOff = 500 * time.Millisecond
	// maxPending bounds the removals kept to retry after an outage.
	maxPending = 4096
)

var (
	// ErrSkipped is the error of a store call not made because the store
	// is backing off after repeated failures.
	ErrSkipped = errors.New("tlscache/fleet: store skipped after repeated failures")
	// ErrNoWatch is returned by [Tier.Watch] for a store that is not a
	// [tlscache.Watcher].
	ErrNoWatch = errors.New("tlscache/fleet: store does not report deletions (not a tlscache.Watcher)")
)

// Options configure a [Tier]. The zero value of each field but Keys means
// its default.
type Options struct {
	// Keys seal and open the stored sessions: Keys[0] seals, any of them
	// opens. Required; [New] refuses a weak key (the zero [Key]) and a key
	// given twice.
	Keys []Key
	// Timeout, if set, is the deadline of each store call made from a
	// hook. Zero means a deadline that adapts to the store's recent
	// latency: four times its recent peak, between [DefaultTimeout] and
	// MaxTimeout, so that a busy host's slow round trips still make it.
	Timeout time.Duration
	// MaxTimeout caps the adaptive deadline; zero means
	// [DefaultMaxTimeout].
	MaxTimeout time.Duration
	// Failures is how many failed store calls within Window (or among
	// the last 2*Failures calls, if the window holds fewer), making at
	// least half of the calls, start a back-off; zero means
	// [DefaultFailures]. With a [Sharded] store (a Redis Cluster), failures
	// and back-off are per shard.
	Failures int
	// Window is the span over which failures are counted; zero means
	// [DefaultWindow].
	Window time.Duration
	// BackOff is how long the store is then skipped before one call probes
	// it again; zero means [DefaultBackOff].
	BackOff time.Duration
	// Now is the clock of the back-off and of the stored values' TTLs; nil
	// means [time.Now]. Give it the cache's clock.
	Now func() time.Time
	// Logger, if set, gets a line when the store (or a shard) starts
	// failing and the back-off starts, and when it answers again and the
	// back-off ends; and, while Watch runs, a line when the tier stops
	// trusting its watch (see Tier.Trusted) and one when it trusts it
	// again (resynced): once per change, never per handshake. Give the
	// cache the same Logger (tlscache.Options.Logger).
	Logger *slog.Logger
	// Lifetime is how long a revocation is kept in the store as a
	// tombstone: the longest session timeout of the fleet. Zero means
	// [tlscache.DefaultTimeout].
	Lifetime time.Duration
	// FailOpen keeps resuming sessions while the watch cannot be trusted
	// (see [Tier.Trusted]). Its cost: a server that misses a revocation
	// (its subscription broken, the store paused or unreachable) resumes
	// the revoked sessions it holds, and those it can still read, until it
	// resyncs, however long that takes. The default, fail closed, turns
	// those resumptions into full handshakes instead.
	FailOpen bool
	// Quarantine is how long the tier waits, after a fault of its watch
	// ended (its heartbeat heard again, the tombstones reloaded), before it
	// trusts the watch again; zero means [DefaultQuarantine]. It must be
	// longer than the slowest server of the fleet may take to land, once
	// the store is back, a revocation it could not make during the fault:
	// its store client's reconnection plus [RetryMax]. Shorter, a server
	// may resume a session revoked during the fault until that revocation
	// lands; longer, each server makes full handshakes for longer after
	// each fault.
	Quarantine time.Duration
}

// A Tier is a [tlscache.Store] seen as the external tier of a
// [tlscache.Cache]: its hooks seal sessions into the store, open them back,
// and propagate removals; [Tier.Watch] drops from the internal tier what
// other servers removed. Create one with [New].
type Tier struct {
	store   tlscache.Store
	sharded Sharded // nil unless the store is one
	keys    []Key
	dl      deadline
	now     func() time.Time
	brk     breakers

	ready     chan struct{} // closed when a Watch first works
	readyOnce sync.Once

	mu       sync.Mutex
	pending  map[string]pendingOp
	retrying bool // a retryLoop runs

	rev revState

	stats struct {
		calls, errors, skipped, backOffs, badValues atomic.Int64
		invalidations, resyncs, retried, dropped    atomic.Int64
	}
}

// New returns the tier of store, configured by opts.
func New(store tlscache.Store, opts *Options) (*Tier, error) {
	if opts == nil || len(opts.Keys) == 0 {
		return nil, errors.New("tlscache/fleet: Options.Keys needs at least one key")
	}
	if err := checkKeyring(opts.Keys); err != nil {
		return nil, err
	}
	t := &Tier{
		store:   store,
		keys:    append([]Key(nil), opts.Keys...),
		dl:      deadline{fixed: opts.Timeout, min: DefaultTimeout, max: opts.MaxTimeout},
		now:     opts.Now,
		pending: make(map[string]pendingOp),
		ready:   make(chan struct{}),
	}
	t.rev.init(opts)
	t.sharded, _ = store.(Sharded)
	if t.dl.max <= 0 {
		t.dl.max = DefaultMaxTimeout
	}
	t.dl.max = max(t.dl.max, t.dl.min)
	if t.now == nil {
		t.now = time.Now
	}
	t.brk = breakers{failures: opts.Failures, window: opts.Window, backOff: opts.BackOff,
		deadline: &t.dl, now: t.now, log: opts.Logger, shards: map[string]*breaker{}}
	if t.brk.failures <= 0 {
		t.brk.failures = DefaultFailures
	}
	if t.brk.window <= 0 {
		t.brk.window = DefaultWindow
	}
	if t.brk.backOff <= 0 {
		t.brk.backOff = DefaultBackOff
	}
	return t, nil
}

// Hooks returns a copy of opts (nil means the defaults) with the tier's
// three hooks set, replacing any there.
func (t *Tier) Hooks(opts *tlscache.Options) *tlscache.Options {
	var o tlscache.Options
	if opts != nil {
		o = *opts
	}
	o.NewHook, o.GetHook, o.RemoveHook = t.NewHook, t.GetHook, t.RemoveHook
	return &o
}

// NewHook is a tlscache new hook: it stores the sealed session for the rest
// of its lifetime.
func (t *Tier) NewHook(s *tlscache.Session) error {
	return t.Put(context.Background(), s)
}

// Put stores s, sealed, for the rest of its lifetime: what the new hook
// does, for an application that approves sessions itself (mode
// [tlscache.NoInternalStore], then [tlscache.Cache.Add] and Put on login).
// An expired session is not stored.
func (t *Tier) Put(ctx context.Context, s *tlscache.Session) error {
	ttl := s.Expires().Sub(t.now())
	if ttl <= 0 || len(s.ID) == 0 {
		return nil
	}
	blob, err := seal(t.keys[0], s)
	if err != nil {
		return err
	}
	key := storeKey(s.ID)
	return t.do(ctx, key, func(ctx context.Context) error {
		return t.store.Put(ctx, key, blob, ttl)
	})
}

// GetHook is a tlscache get hook: it reads (or, with take, atomically takes)
// the session from the store and opens it. A value that does not open is
// [ErrUnsealed].
func (t *Tier) GetHook(id []byte, take bool) (*tlscache.Session, error) {
	if !t.Trusted() {
		return nil, ErrUntrusted
	}
	return t.get(id, take)
}

// get reads a session from the store, trusted or not.
func (t *Tier) get(id []byte, take bool) (*tlscache.Session, error) {
	key := storeKey(id)
	var blob []byte
	err := t.do(context.Background(), key, func(ctx context.Context) (err error) {
		if take {
			blob, err = t.store.Take(ctx, key)
		} else {
			blob, err = t.store.Get(ctx, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s, err := open(t.keys, key, blob)
	if err != nil {
		t.stats.badValues.Add(1)
		return nil, err
	}
	return s, nil
}

// RemoveHook is a tlscache remove hook. A session removed by hand (Remove,
// RemoveID, RemoveFunc: revocation) is deleted from the store, so every
// server stops resuming it; one taken for single use is taken from the
// store too, and [tlscache.ErrCacheMiss] tells the cache that another server
// took it first. A removal also leaves a tombstone in the store (a
// [Revoker]) for [Options.Lifetime]. Evictions, flushes and expiry are local
// housekeeping that the store's own TTL and size handle: they are not
// propagated. A removal that fails is kept and retried on a timer, with
// back-off, until the store takes it.
func (t *Tier) RemoveHook(s *tlscache.Session, why tlscache.Reason) error {
	key := storeKey(s.ID)
	switch why {
	case tlscache.Removed:
		err := t.do(context.Background(), key, func(ctx context.Context) error {
			return t.revokeKey(ctx, key, key)
		})
		if err != nil {
			t.addPending(key, pendingOp{revoke: true})
		}
		return err
	case tlscache.Taken:
		err := t.do(context.Background(), key, func(ctx context.Context) error {
			_, err := t.store.Take(ctx, key)
			return err
		})
		if err != nil && !errors.Is(err, tlscache.ErrCacheMiss) {
			t.addPending(key, pendingOp{})
		}
		return err
	}
	return nil
}

// do runs op on the store key under the deadline, unless the store (or
// the key's shard) is backing off, and counts the outcome. A miss is a
// success.
func (t *Tier) do(ctx context.Context, key string, op func(context.Context) error) error {
	shard := ""
	if t.sharded != nil {
		shard = t.sharded.Shard(key)
	}
	if !t.brk.allow(shard) {
		t.stats.skipped.Add(1)
		return ErrSkipped
	}
	t.stats.calls.Add(1)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, t.dl.get())
	err := op(ctx)
	cancel()
	t.dl.observe(time.Since(start))
	ok := err == nil || errors.Is(err, tlscache.ErrCacheMiss)
	if t.brk.record(shard, ok) {
		t.stats.backOffs.Add(1)
	}
	if !ok {
		t.stats.errors.Add(1)
	} else {
		t.startRetry()
	}
	return err
}

// Stats are a tier's counters. The cache's own [tlscache.Stats] count the
// same failures as StoreErrors and the resumptions from the store as
// ExternalHits.
type Stats struct {
	Calls         int64 `json:"calls"`         // store calls made
	Errors        int64 `json:"errors"`        // calls that failed (timeouts included; misses are not failures)
	Skipped       int64 `json:"skipped"`       // calls not made while backing off
	BackOffs      int64 `json:"back_offs"`     // times the store started being skipped
	BadValues     int64 `json:"bad_values"`    // stored values that did not open (ErrUnsealed)
	Invalidations int64 `json:"invalidations"` // removals by other servers reported by Watch
	Resyncs       int64 `json:"resyncs"`       // times Watch (re)subscribed and reloaded the tombstones
	Retried       int64 `json:"retried"`       // failed removals later done
	Dropped       int64 `json:"dropped"`       // failed removals not kept: too many pending
	Pending       int   `json:"pending"`       // failed removals waiting for the store to come back
	BackingOff    bool  `json:"backing_off"`   // the store, or a shard of it, is being skipped now
	// Deadline is the deadline of the next store call (see [Options.Timeout]).
	Deadline time.Duration `json:"deadline"`
	// Trusted: the watch hears revocations now (see [Tier.Trusted]).
	Trusted bool `json:"trusted"`
	// Untrusted counts the times the tier stopped trusting its watch.
	Untrusted int64 `json:"untrusted"`
}

// Stats returns a snapshot of the tier's counters.
func (t *Tier) Stats() Stats {
	t.mu.Lock()
	pending := len(t.pending)
	t.mu.Unlock()
	backing := t.brk.backingOff()
	return Stats{
		Calls: t.stats.calls.Load(), Errors: t.stats.errors.Load(), Skipped: t.stats.skipped.Load(),
		BackOffs: t.stats.backOffs.Load(), BadValues: t.stats.badValues.Load(),
		Invalidations: t.stats.invalidations.Load(), Resyncs: t.stats.resyncs.Load(),
		Retried: t.stats.retried.Load(), Dropped: t.stats.dropped.Load(), Pending: pending, BackingOff: backing,
		Deadline: t.dl.get(), Trusted: t.Trusted(), Untrusted: t.rev.distrusts.Load(),
	}
}
