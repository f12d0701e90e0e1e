package tlscache

import (
	"errors"
	"iter"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, as in OpenSSL 3.
const (
	// DefaultSize is SSL_SESSION_CACHE_MAX_SIZE_DEFAULT.
	DefaultSize = 20480
	// DefaultTimeout is OpenSSL's real default session timeout (its man page
	// says 300 s, but the TLS methods set 7200 s).
	DefaultTimeout = 7200 * time.Second
)

// ErrCacheMiss is what a get hook or an external store returns for a session
// it does not hold. It is a miss, not a store error.
var ErrCacheMiss = errors.New("tlscache: cache miss")

// Reason says why a session left the cache; the remove hook receives it.
type Reason int

const (
	Removed     Reason = iota // Remove or RemoveID (also for an ID that was not cached)
	Evicted                   // the cache was full (CacheFull) or shrunk
	Flushed                   // Flush, FlushAll or the automatic sweep
	Expired                   // found expired at lookup (Timeouts)
	Taken                     // handed out once by Take (single use)
	Invalidated               // gone from a shared store, removed by another process (Invalidate)
)

func (r Reason) String() string {
	switch r {
	case Removed:
		return "removed"
	case Evicted:
		return "evicted"
	case Flushed:
		return "flushed"
	case Expired:
		return "expired"
	case Taken:
		return "taken"
	case Invalidated:
		return "invalidated"
	}
	return "unknown"
}

// Options configure a [Cache]. The zero value of each field means its
// default.
type Options struct {
	// Mode is the initial mode; zero means [Server]. [Off] has the value
	// zero, so Mode cannot say it: set Off.
	Mode Mode
	// Off starts the cache in mode [Off] ([Mode] without its [Client] and
	// [Server] bits): no handshake stores a session, and sessions added with
	// [Cache.Add] still resume.
	Off bool
	// MaxSessions is the most sessions the cache holds; zero means
	// [DefaultSize] and a negative value means no limit, as for MaxBytes.
	// ([Cache.SetSize] keeps OpenSSL's meaning, where 0 is no limit: every
	// field of Options means its default at zero.)
	MaxSessions int
	// Timeout is given to sessions added without one; zero means
	// [DefaultTimeout].
	Timeout time.Duration
	// MaxBytes bounds the memory the cache holds in sessions: each costs
	// 3/2 of the length of its ID, IDContext and State (plus 8) and 96
	// bytes more, what its entry, its index place and the arenas' slack
	// take at most ([Cache.Bytes]). A session with a Value and an empty State
	// is charged its ValueSize in place of State's length.
	// When an Add would exceed it, sessions are evicted as when the cache
	// is full. Zero means [DefaultMaxBytes]; a negative value means no limit.
	// Value is not counted.
	MaxBytes int64
	// MaxSessionBytes is the most a single session's ID, IDContext and
	// State may take together: a larger session (a client certificate chain
	// of hundreds of kilobytes, say) is not cached, and counted in
	// [Stats.TooLarge]; the handshake goes on without it. Zero means
	// [DefaultMaxSessionBytes]; a negative value means MaxBytes alone bounds
	// it.
	MaxSessionBytes int

	// NewHook is called with each session a handshake creates, when the
	// mode has that handshake's role, whether or not [NoInternalStore] is set
	// (SSL_CTX_sess_set_new_cb). An error counts in [Stats.StoreErrors].
	NewHook func(s *Session) error
	// GetHook is asked for a session the internal cache did not supply
	// (SSL_CTX_sess_set_get_cb). With take set (single use), it must remove
	// the session atomically as it returns it. It returns (nil, nil) or
	// [ErrCacheMiss] for a miss; any other error counts in [Stats.StoreErrors]
	// and is a miss.
	GetHook func(id []byte, take bool) (*Session, error)
	// RemoveHook is called when a session leaves the cache, and on
	// [Cache.Remove] of an ID that was not cached, so an external cache learns
	// to forget it (SSL_CTX_sess_set_remove_cb). An error counts in
	// [Stats.StoreErrors]. For reason [Taken], an error makes [Cache.Take]
	// miss: [ErrCacheMiss] says that a shared store's atomic take found the
	// session already gone (another server took it first), any other error that
	// the take could not be confirmed. So a ticket resumes at most once across
	// a fleet.
	RemoveHook func(s *Session, why Reason) error

	// Now is the clock; nil means [time.Now]. Tests pass a fake one.
	Now func() time.Time
	// Logger, if set, gets a Warn line when context mismatches come in a
	// burst (MismatchBurst within MismatchWindow: sessions found under
	// another IDContext, a silent miss, as when servers with different
	// certificates, client-auth settings or IDContexts share a store), and
	// an Info line when the burst has ended (a MismatchWindow with no
	// mismatch, noticed at the next mismatch or new session): once per
	// change, never per handshake, never under the cache's lock. Nil means
	// no logs.
	Logger *slog.Logger
}

// Byte limits by default: room for [DefaultSize] sessions with a few
// kilobytes of client certificates each.
const (
	DefaultMaxBytes        = 64 << 20
	DefaultMaxSessionBytes = 64 << 10
)

// A Cache is OpenSSL's SSL_CTX session cache: a bounded, concurrent map from
// session ID to [Session], with a mode, a size limit, a default timeout,
// three hooks and statistics. It is safe for concurrent use. Create one with
// [New].
type Cache struct {
	mode    atomic.Uint32
	timeout atomic.Int64
	stats   counters

	newHook    func(*Session) error
	getHook    func([]byte, bool) (*Session, error)
	removeHook func(*Session, Reason) error
	now        func() time.Time
	mono       bool      // now is time.Now: lookups read the monotonic clock only
	base       time.Time // with mono: the clock reading of New
	baseNano   int64     // base in unix nanoseconds

	maxBytes   int64 // 0: no limit
	maxSession int   // 0: no limit

	mu     sync.Mutex // guards what follows; never held across a hook
	t      table
	locked lockedCounters
	size   int // 0: no limit
	inval  invalidations

	mismatch mismatches // bursts of context mismatches, for Options.Logger
}

// invalidations remember what Invalidate and FlushAll removed recently, so
// that a get-hook result read from a store before such a removal does not
// bring the session back (see lookup). Guarded by Cache.mu.
type invalidations struct {
	gen      uint64 // bumped by each Invalidate and FlushAll
	flushGen uint64 // gen of the last FlushAll
	recent   [64]struct {
		key string
		gen uint64
	} // the latest invalidated IDs, a ring indexed by gen
}

// record notes that key (or everything, for the empty key) was removed.
func (v *invalidations) record(key string, all bool) {
	v.gen++
	if all {
		v.flushGen = v.gen
		return
	}
	e := &v.recent[v.gen%uint64(len(v.recent))]
	e.key, e.gen = key, v.gen
}

// since reports whether key may have been removed after generation g0: it
// was invalidated or everything was flushed since, or too much happened
// since to tell.
func (v *invalidations) since(key string, g0 uint64) bool {
	if v.gen == g0 {
		return false
	}
	if v.flushGen > g0 || v.gen-g0 > uint64(len(v.recent)) {
		return true
	}
	for g := g0 + 1; g <= v.gen; g++ {
		if e := v.recent[g%uint64(len(v.recent))]; e.gen == g && e.key == key {
			return true
		}
	}
	return false
}

// New returns an empty cache configured by opts; nil means all defaults.
func New(opts *Options) *Cache {
	if opts == nil {
		opts = &Options{}
	}
	c := &Cache{
		newHook:    opts.NewHook,
		getHook:    opts.GetHook,
		removeHook: opts.RemoveHook,
		now:        opts.Now,
		size:       DefaultSize,
		maxBytes:   DefaultMaxBytes,
		maxSession: DefaultMaxSessionBytes,
	}
	c.t.init()
	if c.now == nil {
		c.now = time.Now
		c.mono = true
		c.base = time.Now()
		c.baseNano = c.base.UnixNano()
	}
	mode := opts.Mode
	switch {
	case opts.Off:
		mode &^= Both
	case mode == Off:
		mode = Server
	}
	c.mode.Store(uint32(mode))
	switch {
	case opts.MaxSessions > 0:
		c.size = opts.MaxSessions
	case opts.MaxSessions < 0:
		c.size = 0
	}
	switch {
	case opts.MaxBytes > 0:
		c.maxBytes = opts.MaxBytes
	case opts.MaxBytes < 0:
		c.maxBytes = 0
	}
	switch {
	case opts.MaxSessionBytes > 0:
		c.maxSession = opts.MaxSessionBytes
	case opts.MaxSessionBytes < 0:
		c.maxSession = 0
	}
	c.timeout.Store(int64(DefaultTimeout))
	if opts.Timeout > 0 {
		c.timeout.Store(int64(opts.Timeout))
	}
	c.mismatch.log = opts.Logger
	return c
}

// Now returns the time on the cache's clock ([Options.Now]).
func (c *Cache) Now() time.Time { return c.now() }

// nowNano is Now in unix nanoseconds. On the default clock it reads only
// the monotonic clock, which is cheaper than the wall clock; it then drifts
// from the wall clock as little as the system's clock is slewed.
func (c *Cache) nowNano() int64 {
	if c.mono {
		return c.baseNano + int64(time.Since(c.base))
	}
	return unixNano(c.now())
}

// Mode returns the current mode (SSL_CTX_get_session_cache_mode).
func (c *Cache) Mode() Mode { return Mode(c.mode.Load()) }

// SetMode sets the mode and returns the previous one
// (SSL_CTX_set_session_cache_mode).
func (c *Cache) SetMode(m Mode) Mode { return Mode(c.mode.Swap(uint32(m))) }

// Timeout returns the timeout given to sessions added without one
// (SSL_CTX_get_timeout).
func (c *Cache) Timeout() time.Duration { return time.Duration(c.timeout.Load()) }

// SetTimeout sets the timeout for sessions added from now on and returns the
// previous one (SSL_CTX_set_timeout). Sessions already cached keep theirs.
// Zero means [DefaultTimeout], as in [Options.Timeout] and OpenSSL; a
// negative value is ignored.
func (c *Cache) SetTimeout(d time.Duration) time.Duration {
	if d < 0 {
		return c.Timeout()
	}
	if d == 0 {
		d = DefaultTimeout
	}
	return time.Duration(c.timeout.Swap(int64(d)))
}

// Size returns the size limit, 0 meaning none (SSL_CTX_sess_get_cache_size).
func (c *Cache) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// SetSize sets the size limit and returns the previous one
// (SSL_CTX_sess_set_cache_size). Zero means no limit; a negative value is
// ignored. Shrinking below the number of cached sessions evicts the ones
// that expire soonest at once, each counted in [Stats.CacheFull].
func (c *Cache) SetSize(n int) int {
	if n < 0 {
		return c.Size()
	}
	c.mu.Lock()
	prev := c.size
	c.size = n
	var evicted []*Session
	for n > 0 && c.t.n > n {
		evicted = c.evictLocked(c.victimLocked(false, noSlot), evicted)
	}
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return prev
}

// HasHooks reports whether the cache was created with a new, get or remove
// hook: whether anything outside the cache may read a session's State.
func (c *Cache) HasHooks() bool {
	return c.newHook != nil || c.getHook != nil || c.removeHook != nil
}

// HasNewHook reports whether the cache was created with a new hook: whether
// [Cache.NewSession] passes sessions on, in a mode with their role.
func (c *Cache) HasNewHook() bool { return c.newHook != nil }

// Len returns the number of cached sessions (SSL_CTX_sess_number).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.n
}

// Bytes returns what the cached sessions cost against [Options.MaxBytes].
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.bytes
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	st := c.stats.snapshot()
	c.mu.Lock()
	st.Number = c.t.n
	st.Hits += c.locked.hits
	st.InternalHits += c.locked.hits
	st.Misses += c.locked.misses
	c.mu.Unlock()
	return st
}

// Add adds s to the cache (SSL_CTX_add_session) and reports whether it was
// inserted. A session with a new ID is inserted; one whose ID is held by a
// different [*Session] replaces it without calling the remove hook. Adding
// the very session that is cached is a no-op that returns false (with
// [UpdateTime] it still refreshes the creation time). A session with an
// empty ID, one held by another Cache, or one above
// [Options.MaxSessionBytes] (counted in [Stats.TooLarge]) is refused.
//
// An unset creation time becomes now and an unset timeout the cache's. When
// the cache is full (in count or in bytes), the session that expires soonest
// (ties: the oldest insertion) is evicted, never s itself, even if s expires
// first. A session added with Add is established (see [Cache.Promote]): its
// handshake is taken to have completed.
func (c *Cache) Add(s *Session) bool {
	if s == nil || len(s.ID) == 0 {
		return false
	}
	return c.add(s, false, true)
}

// add adds s; probe makes it probationary, keep keeps the object itself
// (else only when it has a Value).
func (c *Cache) add(s *Session, probe, keep bool) bool {
	// A session that another cache holds is refused; ask it before taking
	// this cache's lock, so that two caches never wait for each other.
	o := s.owner.Load()
	if o != nil && o != c && o.holds(s) {
		return false
	}
	refresh := c.Mode()&UpdateTime != 0
	now := c.nowNano()
	probe = probe && !s.established.Load()
	c.mu.Lock()
	ok, evicted := c.addLocked(s, o, now, refresh, probe, keep)
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return ok
}

func (c *Cache) addLocked(s *Session, o *Cache, now int64, refresh, probe, keep bool) (bool, []*Session) {
	t := &c.t
	if o == c && c.holdsLocked(s) {
		if refresh {
			s.created.Store(now)
			s.hasCreated.Store(true)
			t.ents[s.slot].created = now
			t.fixSlot(s.slot)
		}
		return false, nil
	}
	stLen := s.stateCost()
	size := len(s.ID) + len(s.IDContext) + stLen
	if (c.maxSession > 0 && size > c.maxSession) || size > math.MaxInt32/2 ||
		(c.maxBytes > 0 && charge(len(s.ID), len(s.IDContext), stLen) > c.maxBytes) {
		c.stats.tooLarge.Add(1)
		return false, nil
	}
	// Claim the session; another Cache adding it at the same time loses.
	if !s.owner.CompareAndSwap(o, c) {
		return false, nil
	}
	var evicted []*Session
	if old := t.find(s.ID); old != noSlot {
		// A different session with this ID: replaced, no remove hook.
		if os := t.obj(old); os != nil {
			os.owner.Store(nil)
		}
		t.remove(old)
	}
	cost := charge(len(s.ID), len(s.IDContext), stLen)
	for (c.size > 0 && t.n >= c.size) || (c.maxBytes > 0 && t.bytes+cost > c.maxBytes) {
		v := c.victimLocked(probe, noSlot)
		if v == noSlot {
			// Only established sessions are left, and s is probationary.
			c.stats.refused.Add(1)
			s.owner.CompareAndSwap(c, nil)
			return false, evicted
		}
		evicted = c.evictLocked(v, evicted)
	}
	s.fillDefaults(now, c.Timeout(), refresh)
	var obj *Session
	if keep || s.Value != nil {
		obj = s
	}
	s.slot = t.insert(s.ID, s.IDContext, s.State, obj, s.created.Load(), s.timeout.Load(), probe)
	s.gen = t.ents[s.slot].gen
	return true, evicted
}

// holds reports whether s is cached here.
func (c *Cache) holds(s *Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holdsLocked(s)
}

func (c *Cache) holdsLocked(s *Session) bool {
	if s.owner.Load() != c || s.slot < 0 || int(s.slot) >= len(c.t.ents) {
		return false
	}
	e := &c.t.ents[s.slot]
	return e.flags&flagLive != 0 && e.gen == s.gen
}

// Admission. Sessions that NewSession stores for a server handshake are
// probationary: crypto/tls issues a TLS 1.3 ticket before it has read the
// client's Finished, so the handshake may never complete. A probationary
// session becomes established when it is first found by a lookup (the
// client came back with it) or by Promote. When the cache needs room, an
// established session may evict any session, but a probationary one only
// another probationary one: a flood of handshakes that never complete
// churns the probationary sessions and leaves the established ones alone.
// So that new sessions still find room in a cache full of established
// ones, promotions keep the established sessions to 7/8 of Size and of
// MaxBytes, evicting the established sessions that expire soonest.

// reserve returns how many sessions and bytes are kept for probation.
func (c *Cache) reserve() (int, int64) {
	n := 0
	if c.size > 0 {
		n = max(1, c.size/8)
	}
	return n, c.maxBytes / 8
}

// overShareLocked reports whether the established sessions take more than
// their share: by hand-added sessions, a shrunk cache, or in a cache so
// small that the reserve is all of it.
func (c *Cache) overShareLocked() bool {
	t := &c.t
	n, b := c.reserve()
	return (c.size > 0 && t.n-t.nProbe > c.size-n) || (c.maxBytes > 0 && t.bytes-t.probeBytes > c.maxBytes-b)
}

// victimLocked returns the session to evict for room for a session that is
// probationary (probe) or established, never keep; noSlot if none may go.
// A probationary session evicts another probationary one, or an
// established one only while those take more than their share.
func (c *Cache) victimLocked(probe bool, keep int32) int32 {
	t := &c.t
	prob := t.rootExcept(orderProbe, keep)
	prot := t.rootExcept(orderProtect, keep)
	if probe {
		if prot != noSlot && c.overShareLocked() {
			return prot
		}
		return prob
	}
	if prot == noSlot || (prob != noSlot && t.less(prob, prot)) {
		return prob
	}
	return prot
}

// evictLocked removes slot i for room, appending it to evicted when the
// remove hook wants it.
func (c *Cache) evictLocked(i int32, evicted []*Session) []*Session {
	c.stats.cacheFull.Add(1)
	if s := c.unlinkLocked(i, false); s != nil {
		evicted = append(evicted, s)
	}
	return evicted
}

// promoteLocked makes slot i established, keeping the established sessions
// within their share.
func (c *Cache) promoteLocked(i int32, evicted []*Session) []*Session {
	t := &c.t
	if t.ents[i].flags&flagProbe == 0 {
		return evicted
	}
	t.promote(i)
	for c.overShareLocked() {
		v := t.rootExcept(orderProtect, i)
		if v == noSlot {
			break
		}
		evicted = c.evictLocked(v, evicted)
	}
	return evicted
}

// Promote marks s as established: its handshake is known to have
// completed (see the package doc on admission). A cached s is promoted at
// once; one not cached yet is stored established when [Cache.NewSession]
// adds it. It reports whether s is cached. The adapter promotes the sessions
// of TLS 1.2 handshakes and of resumed ones before it calls NewSession; a
// lookup that finds a session promotes it too.
func (c *Cache) Promote(s *Session) bool {
	if s == nil {
		return false
	}
	s.established.Store(true)
	c.mu.Lock()
	ok := c.holdsLocked(s)
	var evicted []*Session
	if ok {
		evicted = c.promoteLocked(s.slot, nil)
	}
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return ok
}

// sessionLocked returns the session in slot i: its object, or a copy of its
// stored bytes that stands for it (Add of the copy is a no-op, SetCreated
// on it moves the cached session).
func (c *Cache) sessionLocked(i int32) *Session {
	if s := c.t.obj(i); s != nil {
		return s
	}
	s := c.copyLocked(i)
	s.slot, s.gen = i, c.t.ents[i].gen
	s.owner.Store(c)
	return s
}

// copyLocked returns a new Session with slot i's ID, context, state and
// times, in one buffer.
func (c *Cache) copyLocked(i int32) *Session {
	t := &c.t
	e := &t.ents[i]
	ctx := t.ctxs.get(e.ctx)
	id, state := t.id(e), t.state(e)
	size := len(id) + len(ctx) + len(state)
	var s *Session
	var buf []byte
	if size <= smallSession {
		// One allocation for the Session and its bytes, as a typical
		// server session (16-byte ID, 32-byte context, ~60-byte state) is.
		sb := new(sessionWithBytes)
		s, buf = &sb.s, sb.b[:size:size]
	} else {
		s, buf = new(Session), make([]byte, size)
	}
	n := copy(buf, id)
	m := n + copy(buf[n:], ctx)
	copy(buf[m:], state)
	s.ID, s.State = buf[:n:n], buf[m:]
	if m > n {
		s.IDContext = buf[n:m:m]
	}
	s.created.Store(e.created)
	s.hasCreated.Store(true)
	s.timeout.Store(e.timeout)
	return s
}

// smallSession is the most bytes a copy keeps in the allocation of its
// Session.
const smallSession = 144

type sessionWithBytes struct {
	s Session
	b [smallSession]byte
}

// unlinkLocked removes slot i and returns its session, marked not
// resumable, when it has an object, when need is set or when there is a
// remove hook to give it to; else nil.
func (c *Cache) unlinkLocked(i int32, need bool) *Session {
	s := c.t.obj(i)
	if s == nil && (need || c.removeHook != nil) {
		s = c.copyLocked(i)
	}
	c.t.remove(i)
	if s != nil {
		s.owner.Store(nil)
		s.notResumable.Store(true)
	}
	return s
}

// Remove removes the session with s's ID (SSL_CTX_remove_session) and
// reports whether one was cached. The remove hook is called with s even
// when nothing was cached, so that an external cache forgets it too; s and
// the removed session are marked not resumable. A session with an empty ID
// is ignored.
func (c *Cache) Remove(s *Session) bool {
	if s == nil || len(s.ID) == 0 {
		return false
	}
	s.notResumable.Store(true)
	c.mu.Lock()
	i := c.t.find(s.ID)
	if i != noSlot {
		c.unlinkLocked(i, false)
	}
	c.mu.Unlock()
	c.callRemove([]*Session{s}, Removed)
	return i != noSlot
}

// RemoveID removes the session with this ID, like [Cache.Remove]. The remove
// hook receives the cached session, or a [Session] holding only the ID when
// none was cached.
func (c *Cache) RemoveID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	c.mu.Lock()
	var s *Session
	if i := c.t.find(id); i != noSlot {
		s = c.unlinkLocked(i, true)
	}
	c.mu.Unlock()
	ok := s != nil
	if !ok {
		s = &Session{ID: append([]byte(nil), id...)}
		s.notResumable.Store(true)
	}
	c.callRemove([]*Session{s}, Removed)
	return ok
}

// Invalidate removes the session with this ID from the internal cache
// because a shared store reports that another process removed it: the
// fleet-wide half of [Cache.Remove]. It reports whether one was cached; the
// remove hook is called with reason [Invalidated] only then, so a store hook
// knows not to propagate the removal again.
//
// A get-hook result read before the invalidation but returned after it is
// not resumed nor copied in: a revocation cannot be undone by a lookup that
// raced with it.
func (c *Cache) Invalidate(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	c.mu.Lock()
	c.inval.record(string(id), false)
	var s *Session
	found := false
	if i := c.t.find(id); i != noSlot {
		s, found = c.unlinkLocked(i, false), true
	}
	c.mu.Unlock()
	if s != nil {
		c.callRemove([]*Session{s}, Invalidated)
	}
	return found
}

// Flush removes every session expired at t (SSL_CTX_flush_sessions): those
// with t > Created+Timeout. The zero time removes all. The remove hook is
// called for each; [Stats.Timeouts] is not counted. It returns how many it
// removed.
func (c *Cache) Flush(t time.Time) int {
	if t.IsZero() {
		return c.FlushAll()
	}
	limit := unixNano(t)
	var flushed []*Session
	n := 0
	c.mu.Lock()
	for w := range c.t.orders {
		for {
			i := c.t.root(w)
			if i == noSlot || c.t.ents[i].exp() >= limit {
				break
			}
			if s := c.unlinkLocked(i, false); s != nil {
				flushed = append(flushed, s)
			}
			n++
		}
	}
	c.mu.Unlock()
	c.callRemove(flushed, Flushed)
	return n
}

// FlushAll removes every session, calling the remove hook for each.
func (c *Cache) FlushAll() int {
	c.mu.Lock()
	var flushed []*Session
	n := c.t.n
	for i := range c.t.ents {
		if c.t.ents[i].flags&flagLive == 0 {
			continue
		}
		s := c.t.obj(int32(i))
		if s == nil && c.removeHook != nil {
			s = c.copyLocked(int32(i))
		}
		if s != nil {
			s.owner.Store(nil)
			s.notResumable.Store(true)
			flushed = append(flushed, s)
		}
	}
	c.t.reset()
	c.inval.record("", true)
	c.mu.Unlock()
	c.callRemove(flushed, Flushed)
	return n
}

// Peek returns the cached session with this ID, or nil. It is not a lookup:
// it checks neither context nor expiry, counts nothing and calls no hook.
// A session added by hand, or with a Value, is returned itself; one that a
// handshake stored ([Cache.NewSession]) without a Value is kept as bytes
// only, and Peek returns a copy that stands for it (see [Session]).
func (c *Cache) Peek(id []byte) *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.t.find(id); i != noSlot {
		return c.sessionLocked(i)
	}
	return nil
}

// All yields the sessions cached when it is called, in no particular order,
// as [Cache.Peek] returns them. The cache is not locked while yielding. Use
// [Session.Info] for the metadata without the secret state.
func (c *Cache) All() iter.Seq[*Session] {
	return func(yield func(*Session) bool) {
		for _, s := range c.snapshot() {
			if !yield(s) {
				return
			}
		}
	}
}

// RemoveFunc removes every cached session for which match returns true, as
// [Cache.Remove] does, and returns how many it removed: revocation by
// predicate. match runs without the cache lock held, on the sessions cached
// when RemoveFunc was called; a session replaced meanwhile is left alone.
func (c *Cache) RemoveFunc(match func(*Session) bool) int {
	var hit []*Session
	for _, s := range c.snapshot() {
		if match(s) {
			hit = append(hit, s)
		}
	}
	removed := hit[:0]
	c.mu.Lock()
	for _, s := range hit {
		if c.holdsLocked(s) {
			c.t.remove(s.slot)
			s.owner.Store(nil)
			s.notResumable.Store(true)
			removed = append(removed, s)
		}
	}
	c.mu.Unlock()
	c.callRemove(removed, Removed)
	return len(removed)
}

func (c *Cache) snapshot() []*Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Session, 0, c.t.n)
	for i := range c.t.ents {
		if c.t.ents[i].flags&flagLive != 0 {
			out = append(out, c.sessionLocked(int32(i)))
		}
	}
	return out
}

// callRemove runs the remove hook, outside the lock, for each session. A
// hook that panics does not keep the others from being called; the first
// panic is raised again once they all were.
func (c *Cache) callRemove(ss []*Session, why Reason) {
	if c.removeHook == nil || len(ss) == 0 {
		return
	}
	var first any
	for _, s := range ss {
		if p := c.removeOne(s, why); p != nil && first == nil {
			first = p
		}
	}
	if first != nil {
		panic(first)
	}
}

func (c *Cache) removeOne(s *Session, why Reason) (panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	if err := c.removeHook(s, why); err != nil {
		c.stats.storeErrors.Add(1)
	}
	return nil
}
