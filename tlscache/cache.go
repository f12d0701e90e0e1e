package tlscache

import (
	"errors"
	"iter"
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

// Options configure a Cache. The zero value of each field means its default.
type Options struct {
	// Mode is the initial mode; zero means Server. Off, whose value is zero,
	// is set with SetMode(Off) after New.
	Mode Mode
	// Size is the most sessions the cache holds; zero means DefaultSize and
	// a negative value means no limit.
	Size int
	// Timeout is given to sessions added without one; zero means
	// DefaultTimeout.
	Timeout time.Duration

	// NewHook is called with each session a handshake creates, when the
	// mode has that handshake's role, whether or not NoInternalStore is set
	// (SSL_CTX_sess_set_new_cb). An error counts in StoreErrors.
	NewHook func(s *Session) error
	// GetHook is asked for a session the internal cache did not supply
	// (SSL_CTX_sess_set_get_cb). With take set (single use), it must remove
	// the session atomically as it returns it. It returns (nil, nil) or
	// ErrCacheMiss for a miss; any other error counts in StoreErrors and is a
	// miss.
	GetHook func(id []byte, take bool) (*Session, error)
	// RemoveHook is called when a session leaves the cache, and on Remove of
	// an ID that was not cached, so an external cache learns to forget it
	// (SSL_CTX_sess_set_remove_cb). An error counts in StoreErrors. For
	// reason Taken, an error makes Take miss: ErrCacheMiss says that a
	// shared store's atomic take found the session already gone (another
	// server took it first), any other error that the take could not be
	// confirmed. So a ticket resumes at most once across a fleet.
	RemoveHook func(s *Session, why Reason) error

	// Now is the clock; nil means time.Now. Tests pass a fake one.
	Now func() time.Time
}

// A Cache is OpenSSL's SSL_CTX session cache: a bounded, concurrent map from
// session ID to Session, with a mode, a size limit, a default timeout, three
// hooks and statistics. It is safe for concurrent use. Create one with New.
type Cache struct {
	mode    atomic.Uint32
	timeout atomic.Int64
	_       [64]byte // keep the counters off the mode's cache line
	stats   counters

	newHook    func(*Session) error
	getHook    func([]byte, bool) (*Session, error)
	removeHook func(*Session, Reason) error
	now        func() time.Time

	mu    rwLock // a sync.RWMutex whose readers on different cores do not collide
	m     map[string]*Session
	heap  expiryHeap
	size  int    // 0: no limit
	seq   uint64 // insertion counter
	inval invalidations
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
		m:          make(map[string]*Session),
		size:       DefaultSize,
	}
	if c.now == nil {
		c.now = time.Now
	}
	mode := opts.Mode
	if mode == Off {
		mode = Server
	}
	c.mode.Store(uint32(mode))
	switch {
	case opts.Size > 0:
		c.size = opts.Size
	case opts.Size < 0:
		c.size = 0
	}
	c.timeout.Store(int64(DefaultTimeout))
	if opts.Timeout > 0 {
		c.timeout.Store(int64(opts.Timeout))
	}
	return c
}

// Now returns the time on the cache's clock (Options.Now).
func (c *Cache) Now() time.Time { return c.now() }

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
// Zero means DefaultTimeout, as in Options.Timeout and OpenSSL; a negative
// value is ignored.
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
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.size
}

// SetSize sets the size limit and returns the previous one
// (SSL_CTX_sess_set_cache_size). Zero means no limit; a negative value is
// ignored. Shrinking below the number of cached sessions evicts the ones
// that expire soonest at once, each counted in CacheFull.
func (c *Cache) SetSize(n int) int {
	c.mu.Lock()
	prev := c.size
	if n < 0 {
		c.mu.Unlock()
		return prev
	}
	c.size = n
	var evicted []*Session
	for n > 0 && len(c.m) > n {
		evicted = append(evicted, c.evictLocked())
	}
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return prev
}

// Len returns the number of cached sessions (SSL_CTX_sess_number).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	st := c.stats.snapshot()
	st.Number = c.Len()
	return st
}

// Add adds s to the cache (SSL_CTX_add_session) and reports whether it was
// inserted. A session with a new ID is inserted; one whose ID is held by a
// different *Session replaces it without calling the remove hook. Adding
// the very session that is cached is a no-op that returns false (with
// UpdateTime it still refreshes the creation time). A session with an empty
// ID, or one held by another Cache, is refused.
//
// An unset creation time becomes now and an unset timeout the cache's. When
// the cache is full, the session that expires soonest (ties: the oldest
// insertion) is evicted, never s itself, even if s expires first.
func (c *Cache) Add(s *Session) bool {
	if s == nil || len(s.ID) == 0 {
		return false
	}
	refresh := c.Mode()&UpdateTime != 0
	now := unixNano(c.now())
	c.mu.Lock()
	ok, evicted := c.addLocked(s, now, refresh)
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return ok
}

func (c *Cache) addLocked(s *Session, now int64, refresh bool) (bool, []*Session) {
	if s.owner.Load() == c {
		if refresh {
			s.created.Store(now)
			s.hasCreated.Store(true)
			s.exp = s.expiry()
			c.heap.fix(s.idx)
		}
		return false, nil
	}
	// Claim the session; another Cache adding it at the same time loses.
	if !s.owner.CompareAndSwap(nil, c) {
		return false, nil
	}
	key := string(s.ID)
	var evicted []*Session
	if old := c.m[key]; old != nil {
		c.unlinkLocked(old)
	} else {
		for c.size > 0 && len(c.m) >= c.size {
			evicted = append(evicted, c.evictLocked())
		}
	}
	s.fillDefaults(now, c.Timeout(), refresh)
	s.exp = s.expiry()
	c.seq++
	s.seq = c.seq
	c.m[key] = s
	c.heap.push(s)
	return true, evicted
}

// evictLocked removes the session that expires soonest.
func (c *Cache) evictLocked() *Session {
	s := c.heap[0]
	c.unlinkLocked(s)
	s.notResumable.Store(true)
	c.stats.cacheFull.Add(1)
	return s
}

// unlinkLocked takes s out of the map and heap.
func (c *Cache) unlinkLocked(s *Session) {
	delete(c.m, string(s.ID))
	c.heap.remove(s.idx)
	s.owner.Store(nil)
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
	ok := c.removeID(s.ID, s) != nil
	c.callRemove([]*Session{s}, Removed)
	return ok
}

// RemoveID removes the session with this ID, like Remove. The remove hook
// receives the cached session, or a Session holding only the ID when none
// was cached.
func (c *Cache) RemoveID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	s := c.removeID(id, nil)
	ok := s != nil
	if !ok {
		s = &Session{ID: append([]byte(nil), id...)}
		s.notResumable.Store(true)
	}
	c.callRemove([]*Session{s}, Removed)
	return ok
}

func (c *Cache) removeID(id []byte, arg *Session) *Session {
	if arg != nil {
		arg.notResumable.Store(true)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.m[string(id)]
	if s != nil {
		c.unlinkLocked(s)
		s.notResumable.Store(true)
	}
	return s
}

// Invalidate removes the session with this ID from the internal cache
// because a shared store reports that another process removed it: the
// fleet-wide half of Remove. It reports whether one was cached; the remove
// hook is called with reason Invalidated only then, so a store hook knows
// not to propagate the removal again.
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
	s := c.m[string(id)]
	if s != nil {
		c.unlinkLocked(s)
		s.notResumable.Store(true)
	}
	c.mu.Unlock()
	if s == nil {
		return false
	}
	c.callRemove([]*Session{s}, Invalidated)
	return true
}

// Flush removes every session expired at t (SSL_CTX_flush_sessions): those
// with t > Created+Timeout. The zero time removes all. The remove hook is
// called for each; Timeouts is not counted. It returns how many it removed.
func (c *Cache) Flush(t time.Time) int {
	if t.IsZero() {
		return c.FlushAll()
	}
	limit := unixNano(t)
	var flushed []*Session
	c.mu.Lock()
	for len(c.heap) > 0 && c.heap[0].exp < limit {
		s := c.heap[0]
		c.unlinkLocked(s)
		s.notResumable.Store(true)
		flushed = append(flushed, s)
	}
	c.compactLocked()
	c.mu.Unlock()
	c.callRemove(flushed, Flushed)
	return len(flushed)
}

// FlushAll removes every session, calling the remove hook for each.
func (c *Cache) FlushAll() int {
	c.mu.Lock()
	flushed := []*Session(c.heap)
	for _, s := range flushed {
		s.owner.Store(nil)
		s.notResumable.Store(true)
	}
	c.m = make(map[string]*Session)
	c.heap = nil
	c.inval.record("", true)
	c.mu.Unlock()
	c.callRemove(flushed, Flushed)
	return len(flushed)
}

// compactLocked gives back the heap's memory after a large flush.
func (c *Cache) compactLocked() {
	if n := len(c.heap); cap(c.heap) > 1024 && n < cap(c.heap)/4 {
		c.heap = append(make(expiryHeap, 0, 2*n), c.heap...)
	}
}

// Peek returns the cached session with this ID, or nil. It is not a lookup:
// it checks neither context nor expiry, counts nothing and calls no hook.
func (c *Cache) Peek(id []byte) *Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[string(id)]
}

// All yields the sessions cached when it is called, in no particular order.
// The cache is not locked while yielding. Use (*Session).Info for the
// metadata without the secret state.
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
// Remove does, and returns how many it removed: revocation by predicate.
// match runs without the cache lock held, on the sessions cached when
// RemoveFunc was called; a session replaced meanwhile is left alone.
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
		if s.owner.Load() == c {
			c.unlinkLocked(s)
			s.notResumable.Store(true)
			removed = append(removed, s)
		}
	}
	c.compactLocked()
	c.mu.Unlock()
	c.callRemove(removed, Removed)
	return len(removed)
}

func (c *Cache) snapshot() []*Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*Session(nil), c.heap...)
}

// callRemove runs the remove hook, outside the lock.
func (c *Cache) callRemove(ss []*Session, why Reason) {
	if c.removeHook == nil {
		return
	}
	for _, s := range ss {
		if err := c.removeHook(s, why); err != nil {
			c.stats.storeErrors.Add(1)
		}
	}
}
