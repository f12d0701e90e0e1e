package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// Revocation timing. A server trusts its watch while it has heard its own
// heartbeat (published through the store and received on its subscription)
// within [Silence]; after it stopped trusting it, or after a resubscription,
// it trusts it again a quarantine ([Options.Quarantine],
// [DefaultQuarantine]) after the heartbeat (and the tombstone reload) came
// back, so that removals other servers could not make during the fault
// land first: each server retries its pending removals as soon as its own
// heartbeat comes back, and every [RetryMax] at most.
const (
	// Silence is how long a watch may go without hearing its heartbeat
	// before the tier stops trusting it: with the default heartbeat
	// (redisstore, 100 ms) a revocation missed is refused within about
	// Silence, within the fleet's promise of one second, and a busy host's
	// scheduling stalls rarely reach it.
	Silence = 700 * time.Millisecond
	// DefaultQuarantine is how long trust waits after a fault ended, unless
	// [Options.Quarantine] says otherwise: longer than another server,
	// whose revocation failed during the fault, may take to land it once
	// the store is back. That is its store client's reconnection plus a
	// retry: go-redis, once its dials failed PoolSize times, dials only
	// from a probe that runs once a second; measured after an 8 s Redis
	// outage on loopback, the revoking server landed its revocation 0.6 s
	// after Redis was back, while the others heard their heartbeats again
	// from 0.34 s on (a quarantine of 300 ms, the earlier default, let them
	// trust their watches 15 ms before it landed).
	DefaultQuarantine = 1500 * time.Millisecond
	// RetryMin and RetryMax bound the back-off between retries of failed
	// removals and revocations.
	RetryMin = 50 * time.Millisecond
	RetryMax = 200 * time.Millisecond
	// reloadTimeout bounds the read of the tombstones at a resync.
	reloadTimeout = time.Second
)

var (
	// ErrUntrusted is the error of a get hook call made while the tier
	// does not trust its watch: fail closed, a full handshake.
	ErrUntrusted = errors.New("tlscache/fleet: not resuming: revocations may be missed (watch not trusted)")
	// ErrNotConfirmed is wrapped by a waiting revocation that not every
	// watching server confirmed in time.
	ErrNotConfirmed = errors.New("tlscache/fleet: revocation not confirmed by every watching server")
	// ErrNotReplicated is wrapped by a [DurableRevoker]'s error when the
	// store took the revocation but not as many replicas acknowledged it
	// as it asks for (redisstore.Options.Replicas): a failover now could
	// lose it. The servers that heard it apply it anyway;
	// [adapter.Server.RevokeWait] reports it.
	ErrNotReplicated = errors.New("tlscache/fleet: revocation not acknowledged by enough replicas")
)

// A Revoker is a store that keeps revocations durable and confirms them:
// redisstore.Store is one. Without it a [Tier] deletes and publishes through
// [tlscache.Store.Delete], and [adapter.Server.RevokeWait] cannot wait for
// the other servers.
type Revoker interface {
	// Revoke deletes key, records it as revoked for ttl (a tombstone), and
	// publishes message to every watcher, in that order; it returns how
	// many watchers received the message.
	Revoke(ctx context.Context, key, message string, ttl time.Duration) (receivers int64, err error)
	// Revoked returns the keys of the tombstones not yet expired.
	Revoked(ctx context.Context) ([]string, error)
	// Publish sends message to every watcher.
	Publish(ctx context.Context, message string) error
}

// A DurableRevoker is a [Revoker] that can also wait until the store's
// replicas hold a revocation, so that a failover cannot lose it:
// [adapter.Server.RevokeWait] revokes through it, and returns nil only
// then. The other removals and revocations use Revoke, which does not
// wait: nobody would read the answer. redisstore.Store is one.
type DurableRevoker interface {
	Revoker
	// RevokeDurable is Revoke, then waits for the replicas: too few give an
	// error wrapping [ErrNotReplicated], with the writes and the publish
	// done and receivers counted.
	RevokeDurable(ctx context.Context, key, message string, ttl time.Duration) (receivers int64, err error)
}

// A LiveWatcher is a [tlscache.Watcher] that also proves its subscription
// works: alive is called each time it receives a heartbeat it published
// through the store, at least every [Silence]/4 while all is well.
type LiveWatcher interface {
	WatchLive(ctx context.Context, deleted func(message string), synced func(), alive func()) error
}

// Messages on the watch: a key (hex), a key and a nonce ("key nonce": a
// revocation whose sender waits for confirmations), or an ack ("!ack nonce
// sender").
const ackPrefix = "!ack "

// revState is the revocation half of a Tier.
type revState struct {
	id         string    // this tier's, in its acks
	base       time.Time // monotonic origin of the times below
	failOpen   bool
	lifetime   time.Duration
	quarantine int64 // nanoseconds
	live       bool
	watching   atomic.Bool
	synced     atomic.Bool
	everSynced atomic.Bool
	alive      atomic.Int64 // since base, of the last heartbeat; 0: none yet
	trustFrom  atomic.Int64 // since base
	distrusts  atomic.Int64
	log        *slog.Logger
	lostAt     atomic.Int64 // since base, when the loss of trust was logged; 0: not lost
	closed     chan struct{}
	closeOnce  sync.Once
	kick       chan struct{} // retry now

	mu      sync.Mutex
	waiters map[string]*ackWaiter // by nonce
}

// An ackWaiter counts the confirmations of one waiting revocation.
type ackWaiter struct {
	n    atomic.Int64
	more chan struct{} // signalled after each
}

func (r *revState) init(opts *Options) {
	b := make([]byte, 8)
	rand.Read(b)
	r.id = hex.EncodeToString(b)
	r.base = time.Now()
	r.failOpen = opts.FailOpen
	r.log = opts.Logger
	r.lifetime = opts.Lifetime
	if r.lifetime <= 0 {
		r.lifetime = tlscache.DefaultTimeout
	}
	r.quarantine = int64(opts.Quarantine)
	if r.quarantine <= 0 {
		r.quarantine = int64(DefaultQuarantine)
	}
	r.closed = make(chan struct{})
	r.kick = make(chan struct{}, 1)
	r.waiters = make(map[string]*ackWaiter)
}

func (r *revState) mono() int64 { return int64(time.Since(r.base)) }

// Trusted reports whether the tier can be sure it hears the fleet's
// revocations: true until [Tier.Watch] is first called (a tier with no watch
// makes no promise), then only while the watch is subscribed, has loaded
// the store's tombstones since, and (for a [LiveWatcher] such as
// redisstore's) has heard its heartbeat within [Silence]. While it is false
// the get hook misses and an [adapter.Server] watched by this tier resumes
// nothing: fail closed. [Options.FailOpen] makes it always true.
func (t *Tier) Trusted() bool {
	return t.rev.failOpen || t.rev.why() == ""
}

// whySilent is why a LiveWatcher's watch is not trusted after Silence.
const whySilent = "heartbeat silent"

// why says why the watch is not trusted now, FailOpen aside; "" if it
// is.
func (r *revState) why() string {
	if !r.watching.Load() {
		return ""
	}
	if !r.synced.Load() {
		return "not subscribed, resubscribing"
	}
	now := r.mono()
	if r.live && now-r.alive.Load() > int64(Silence) {
		return whySilent
	}
	if now < r.trustFrom.Load() {
		return "quarantine after a fault"
	}
	return ""
}

// Close stops the tier's background retries. Removals still pending are
// dropped.
func (t *Tier) Close() { t.rev.closeOnce.Do(func() { close(t.rev.closed) }) }

// A Target is what [Tier.Watch] keeps in step with the store: a
// [*tlscache.Cache], or an [*adapter.Server], which also applies the
// revocations of lineages, server names, contexts and client certificates
// that other servers make.
type Target interface {
	Invalidate(id []byte) bool
	FlushAll() int
}

var _ Target = (*tlscache.Cache)(nil)

var _ Target = (*adapter.Server)(nil)

// link is what connects an adapter.Server to the fleet (its SetFleet).
func (t *Tier) link() adapter.Fleet {
	return adapter.Fleet{
		Trusted: t.Trusted,
		Publish: t.publishMarker,
		Get:     func(id []byte) (*tlscache.Session, error) { return t.get(id, false) },
		Put:     t.NewHook,
	}
}

// Watch keeps target in step with the store until ctx is done: a session
// or revocation that another server removes is passed to
// target.Invalidate. Each time the watch (re)subscribes, the store's
// tombstones are read again and passed to Invalidate, so that what was
// published meanwhile is not missed; a plain Cache target, which cannot
// apply revocations of whole lineages, is also flushed then. Removals that
// failed are retried. Watch also makes the tier fail closed (see
// [Tier.Trusted]) and connects an [adapter.Server] target to the fleet (its
// SetFleet), so that all its revocations are durable, fleet-wide and can be
// waited for. Run it in its own goroutine for the life of the cache, and
// wait for [Tier.Ready] before accepting connections. It returns ctx.Err(),
// or [ErrNoWatch] if the store is not a [tlscache.Watcher].
func (t *Tier) Watch(ctx context.Context, target Target) error {
	w, ok := t.store.(tlscache.Watcher)
	lw, live := t.store.(LiveWatcher)
	if !ok && !live {
		return ErrNoWatch
	}
	t.rev.live = live
	t.rev.watching.Store(true)
	m, member := target.(*adapter.Server)
	if member {
		m.SetFleet(t.link())
	}
	deleted := func(msg string) { t.onMessage(target, msg) }
	synced := func() {
		t.stats.resyncs.Add(1)
		if t.rev.synced.Swap(false) {
			t.rev.distrusts.Add(1)
		}
		if !member {
			target.FlushAll()
		}
		if !t.reload(ctx, target) {
			return
		}
		now := t.rev.mono()
		if t.rev.everSynced.Swap(true) && t.rev.live && now-t.rev.alive.Load() > int64(Silence) {
			// Back after a silence: others' revocations may be pending.
			// (A resubscription while the heartbeat kept coming, such as
			// another Sentinel node's, only needed the reload.)
			t.rev.trustFrom.Store(now + t.rev.quarantine)
		}
		t.rev.synced.Store(true)
		t.startRetry()
		t.checkReady()
	}
	if !member || t.rev.log != nil {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { defer close(done); t.guard(ctx, target, !member, stop) }()
		defer func() { close(stop); <-done }()
	}
	// Whatever ends the watch, nothing is heard from then on (this runs
	// before the flush above).
	defer t.rev.synced.Store(false)
	if live {
		return lw.WatchLive(ctx, deleted, synced, t.onAlive)
	}
	return w.Watch(ctx, deleted, synced)
}

// Ready is closed once a [Tier.Watch] has started working (subscribed,
// tombstones loaded, heartbeat heard): from then on, removals by other
// servers reach the cache. A server that must not resume a revoked session
// waits for it before accepting connections.
func (t *Tier) Ready() <-chan struct{} { return t.ready }

// guardInterval is how often the watch's trust is checked, for a plain
// target and for Options.Logger.
const guardInterval = 50 * time.Millisecond

// guard checks the watch's trust every guardInterval while the watch of
// ctx runs, and logs its changes (logTrust). With flush it also flushes a
// target that cannot check trust itself (a plain Cache) each time the tier
// stops trusting its watch, so that its internal tier fails closed too:
// what it holds afterwards was issued or read while the watch was trusted
// again.
func (t *Tier) guard(ctx context.Context, target Target, flush bool, stop <-chan struct{}) {
	tick := time.NewTicker(guardInterval)
	defer tick.Stop()
	was := t.Trusted()
	armed := false // the watch was trusted once: a loss from then on is logged
	for {
		select {
		case <-stop:
			if flush && !t.rev.failOpen {
				target.FlushAll()
			}
			return
		case <-tick.C:
		}
		why := t.rev.why()
		now := t.rev.failOpen || why == "" // Trusted
		if flush && was && !now {
			target.FlushAll()
		}
		was = now
		armed = armed || why == ""
		if armed && ctx.Err() == nil { // not the watch being stopped
			t.logTrust(why)
		}
	}
}

// logTrust logs a change of the watch's trust, once: a Warn when it is
// lost (why says why), an Info when it is back, with how long it was lost.
func (t *Tier) logTrust(why string) {
	r := &t.rev
	if r.log == nil {
		return
	}
	now := max(r.mono(), 1)
	if why != "" {
		if !r.lostAt.CompareAndSwap(0, now) {
			return // already logged
		}
		args := []any{"reason", why}
		if alive := r.alive.Load(); why == whySilent && alive > 0 {
			args = append(args, "silent_for", time.Duration(now-alive).Round(time.Millisecond))
		}
		if r.failOpen {
			r.log.Warn("fleet: watch lost: FailOpen, still resuming: revocations may be missed until it resyncs", args...)
		} else {
			r.log.Warn("fleet: watch lost: resumptions are full handshakes until it resyncs", args...)
		}
		return
	}
	lost := r.lostAt.Load()
	if lost == 0 || !r.lostAt.CompareAndSwap(lost, 0) {
		return
	}
	r.log.Info("fleet: watch resynced, trusted again", "lost_for", time.Duration(now-lost).Round(time.Millisecond))
}

func (t *Tier) checkReady() {
	if t.rev.synced.Load() && (!t.rev.live || t.rev.alive.Load() > 0) {
		t.readyOnce.Do(func() { close(t.ready) })
	}
}

func (t *Tier) onAlive() {
	now := t.rev.mono()
	prev := t.rev.alive.Swap(now)
	if prev > 0 && now-prev > int64(Silence) {
		// Heard again after a silence: trust only after the quarantine,
		// and retry what is pending at once.
		t.rev.distrusts.Add(1)
		t.rev.trustFrom.Store(now + t.rev.quarantine)
		select {
		case t.rev.kick <- struct{}{}:
		default:
		}
	}
	t.checkReady()
}

// reload passes the store's tombstones to target, retrying until it works
// or ctx is done.
func (t *Tier) reload(ctx context.Context, target Target) bool {
	r, ok := t.store.(Revoker)
	if !ok {
		return true
	}
	delay := RetryMin
	for {
		rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
		keys, err := r.Revoked(rctx)
		cancel()
		if err == nil {
			for _, k := range keys {
				if id, err := hex.DecodeString(k); err == nil {
					target.Invalidate(id)
				}
			}
			return true
		}
		if !sleep(ctx, t.rev.closed, delay) {
			return false
		}
		delay = min(2*delay, time.Second)
	}
}

func (t *Tier) onMessage(target Target, msg string) {
	if rest, ok := strings.CutPrefix(msg, ackPrefix); ok {
		nonce, _, _ := strings.Cut(rest, " ")
		t.rev.mu.Lock()
		w := t.rev.waiters[nonce]
		t.rev.mu.Unlock()
		if w != nil {
			w.n.Add(1)
			select {
			case w.more <- struct{}{}:
			default:
			}
		}
		return
	}
	key, nonce, _ := strings.Cut(msg, " ")
	if id, err := hex.DecodeString(key); err == nil && len(id) > 0 {
		t.stats.invalidations.Add(1)
		target.Invalidate(id)
	}
	if r, ok := t.store.(Revoker); ok && nonce != "" {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r.Publish(ctx, ackPrefix+nonce+" "+t.rev.id) // distinct per server: a watch may drop repeated messages
		}()
	}
}

// revokeKey deletes key, leaving a tombstone, and publishes message.
func (t *Tier) revokeKey(ctx context.Context, key, message string) error {
	if r, ok := t.store.(Revoker); ok {
		_, err := r.Revoke(ctx, key, message, t.rev.lifetime)
		return err
	}
	return t.store.Delete(ctx, key)
}

// publishMarker is what an adapter.Server revokes through (its SetFleet):
// the marker is made durable and published; with wait, until every server
// that received it confirms it applied it, retrying the store until ctx is
// done.
func (t *Tier) publishMarker(ctx context.Context, marker []byte, wait bool) error {
	key := storeKey(marker)
	r, ok := t.store.(Revoker)
	if !wait || !ok {
		err := t.do(ctx, key, func(ctx context.Context) error { return t.revokeKey(ctx, key, key) })
		if err != nil {
			t.addPending(key, pendingOp{revoke: true})
			return fmt.Errorf("tlscache/fleet: revocation not stored, retried in the background: %w", err)
		}
		if wait {
			return fmt.Errorf("%w: the store cannot confirm (not a fleet.Revoker)", ErrNotConfirmed)
		}
		return nil
	}
	b := make([]byte, 12)
	rand.Read(b)
	nonce := hex.EncodeToString(b)
	acks := &ackWaiter{more: make(chan struct{}, 1)}
	t.rev.mu.Lock()
	t.rev.waiters[nonce] = acks
	t.rev.mu.Unlock()
	defer func() {
		t.rev.mu.Lock()
		delete(t.rev.waiters, nonce)
		t.rev.mu.Unlock()
	}()
	revoke := r.Revoke
	if d, ok := r.(DurableRevoker); ok {
		revoke = d.RevokeDurable
	}
	var receivers int64
	var notReplicated error // a revocation stored, not yet on enough replicas: not retried
	delay := RetryMin
	for {
		cctx, cancel := context.WithTimeout(ctx, max(t.dl.get(), 250*time.Millisecond))
		n, err := revoke(cctx, key, key+" "+nonce, t.rev.lifetime)
		cancel()
		if err == nil || errors.Is(err, ErrNotReplicated) {
			receivers, notReplicated = n, err
			break
		}
		if !sleep(ctx, t.rev.closed, delay) {
			t.addPending(key, pendingOp{revoke: true})
			return fmt.Errorf("tlscache/fleet: revocation not stored, retried in the background: %w", errors.Join(err, ctx.Err()))
		}
		delay = min(2*delay, RetryMax)
	}
	for acks.n.Load() < receivers {
		select {
		case <-acks.more:
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d: %w", ErrNotConfirmed, acks.n.Load(), receivers, ctx.Err())
		}
	}
	return notReplicated
}

// A pendingOp is a removal to retry: a revocation with its tombstone, or a
// plain delete.
type pendingOp struct{ revoke bool }

func (t *Tier) addPending(key string, op pendingOp) {
	t.mu.Lock()
	if len(t.pending) < maxPending {
		t.pending[key] = op
	} else {
		t.stats.dropped.Add(1)
	}
	t.mu.Unlock()
	t.startRetry()
}

// startRetry starts retryLoop, unless nothing is pending or it runs.
func (t *Tier) startRetry() {
	t.mu.Lock()
	start := len(t.pending) > 0 && !t.retrying
	t.retrying = t.retrying || start
	t.mu.Unlock()
	if start {
		go t.retryLoop()
	}
}

// retryLoop retries the pending removals on a timer, with back-off from
// RetryMin to RetryMax, whatever the traffic, until none is left or the
// tier is closed.
func (t *Tier) retryLoop() {
	delay := RetryMin
	for {
		tm := time.NewTimer(delay)
		select {
		case <-tm.C:
		case <-t.rev.kick:
			tm.Stop()
		case <-t.rev.closed:
			tm.Stop()
			t.mu.Lock()
			t.retrying = false
			t.mu.Unlock()
			return
		}
		t.mu.Lock()
		if len(t.pending) == 0 {
			t.retrying = false
			t.mu.Unlock()
			return
		}
		keys := make([]string, 0, len(t.pending))
		ops := make([]pendingOp, 0, len(t.pending))
		for k, op := range t.pending {
			keys, ops = append(keys, k), append(ops, op)
		}
		t.mu.Unlock()
		failed := false
		for i, k := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), t.dl.get())
			var err error
			if ops[i].revoke {
				err = t.revokeKey(ctx, k, k)
			} else {
				err = t.store.Delete(ctx, k)
			}
			cancel()
			if err != nil {
				failed = true
				break
			}
			t.stats.retried.Add(1)
			t.mu.Lock()
			delete(t.pending, k)
			t.mu.Unlock()
		}
		if failed {
			delay = min(2*delay, RetryMax)
		} else {
			delay = RetryMin
		}
	}
}

// sleep waits d; false if ctx is done or closed is closed first.
func sleep(ctx context.Context, closed <-chan struct{}, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	case <-closed:
		return false
	}
}
