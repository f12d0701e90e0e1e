package tlscache

import (
	"math"
	"sync/atomic"
	"time"
)

// A Session is one resumable TLS session: OpenSSL's SSL_SESSION.
//
// ID, IDContext, State and Value are set before the session is first added
// to a cache and must not be modified afterwards (like the fields of a
// [crypto/tls.Config] in use). The creation time and timeout are read and
// changed through methods, because changing them while the session is cached
// moves it in the cache's expiry order.
//
// Identity matters: [Cache.Add] of the very same *Session twice is a no-op,
// while a different *Session with the same ID replaces the cached one. A
// cache keeps the *Session itself when it was added with Add or has a Value;
// a session that a handshake stored ([Cache.NewSession]) without a Value is
// kept as bytes only, out of the garbage collector's way, and the cache
// hands out copies of it ([Cache.Lookup], [Cache.Peek], [Cache.All], the
// hooks). Such a copy stands for the cached session: Add of it is a no-op,
// [Session.SetCreated] and [Session.SetTimeout] move the cached session, and
// it is Resumable while that session is cached. The cache finds and removes
// a session by the ID it had when it was added.
type Session struct {
	// ID is the key the session is found by. Server side: the ticket
	// identity handed to the client. Client side: the session key [crypto/tls]
	// passes to its ClientSessionCache (the server name). Must not be empty.
	ID []byte
	// IDContext says which virtual host or policy the session belongs to.
	// A lookup under another context misses (OpenSSL's sid_ctx).
	IDContext []byte
	// State is the serialized session (for crypto/tls: SessionState.Bytes).
	// It holds the resumption secret.
	State []byte
	// Value carries in-process data next to State, for example the parsed
	// crypto/tls state. It is never serialized.
	Value any
	// ValueSize is, for a session with a Value and an empty State, an
	// estimate of the bytes its State would take: it is charged against
	// [Options.MaxBytes] and MaxSessionBytes in place of State's length, so
	// that a session kept only as a Value (the State encoded when something
	// asks for it) still costs what it holds. It is ignored otherwise, and
	// never serialized.
	ValueSize int

	created      atomic.Int64 // unix nanoseconds, valid when hasCreated
	timeout      atomic.Int64 // nanoseconds; 0 means not set yet
	owner        atomic.Pointer[Cache]
	hasCreated   atomic.Bool
	notResumable atomic.Bool
	established  atomic.Bool // Promote vouched for it before it was cached

	// Where the cached session is in owner's table, guarded by owner.mu.
	slot int32
	gen  uint32
}

// Created returns the creation time (OpenSSL's SSL_SESSION_get_time), or the
// zero time if it was never set. [Cache.Add] sets an unset creation time to
// now.
func (s *Session) Created() time.Time {
	if !s.hasCreated.Load() {
		return time.Time{}
	}
	return time.Unix(0, s.created.Load())
}

// SetCreated sets the creation time (SSL_SESSION_set_time). A cached session
// moves to its new place in the expiry order at once. The zero time unsets
// it, so that the next [Cache.Add] sets it to now.
func (s *Session) SetCreated(t time.Time) {
	if t.IsZero() {
		s.hasCreated.Store(false)
		s.created.Store(0)
	} else {
		s.created.Store(unixNano(t))
		s.hasCreated.Store(true)
	}
	s.reorder()
}

// Timeout returns how long after its creation the session stays valid
// (SSL_SESSION_get_timeout), or 0 if it was never set. [Cache.Add] sets an
// unset timeout to the cache's timeout.
func (s *Session) Timeout() time.Duration { return time.Duration(s.timeout.Load()) }

// SetTimeout sets the session's lifetime (SSL_SESSION_set_timeout); zero or
// negative unsets it. A cached session moves in the expiry order at once.
func (s *Session) SetTimeout(d time.Duration) {
	s.timeout.Store(int64(max(d, 0)))
	s.reorder()
}

// Expires returns Created()+Timeout(): the last instant at which the session
// is still valid. It is expired at any later time.
func (s *Session) Expires() time.Time { return time.Unix(0, s.expiry()) }

// ExpiredAt reports whether the session is expired at t: t > Created+Timeout
// (strict: a session is still valid at exactly its expiry time).
func (s *Session) ExpiredAt(t time.Time) bool { return unixNano(t) > s.expiry() }

// Resumable reports whether the session may still be resumed
// (SSL_SESSION_is_resumable). A session becomes not resumable when it leaves
// a cache: removed, flushed, evicted, expired or taken. A get hook that
// returns a session that is not resumable is ignored.
func (s *Session) Resumable() bool {
	if s.notResumable.Load() {
		return false
	}
	// A copy of a session stored as bytes (see Cache.Peek) is resumable
	// while that session is cached.
	c := s.owner.Load()
	return c == nil || c.holds(s)
}

// Info returns the session's metadata, without the secret state.
func (s *Session) Info() SessionInfo {
	return SessionInfo{
		ID:        s.ID,
		IDContext: s.IDContext,
		Created:   s.Created(),
		Timeout:   s.Timeout(),
		Expires:   s.Expires(),
	}
}

// SessionInfo is a session's metadata: everything but the secret state.
// The byte slices are shared with the session and must not be modified.
type SessionInfo struct {
	ID        []byte
	IDContext []byte
	Created   time.Time
	Timeout   time.Duration
	Expires   time.Time
}

// stateCost is the state length the cache charges for s: State's, or for
// a session kept as a Value alone, ValueSize.
func (s *Session) stateCost() int {
	if len(s.State) == 0 && s.Value != nil {
		return max(s.ValueSize, 0)
	}
	return len(s.State)
}

func (s *Session) expiry() int64 {
	return satAdd(s.created.Load(), s.timeout.Load())
}

// fillDefaults gives an unset creation time and timeout their defaults; with
// refresh the creation time is set to now whatever it was.
func (s *Session) fillDefaults(now int64, timeout time.Duration, refresh bool) {
	if refresh || !s.hasCreated.Load() {
		s.created.Store(now)
		s.hasCreated.Store(true)
	}
	if s.timeout.Load() == 0 {
		s.timeout.Store(int64(timeout))
	}
}

// reorder moves a cached session to its new place after its expiry changed.
func (s *Session) reorder() {
	c := s.owner.Load()
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.holdsLocked(s) {
		e := &c.t.ents[s.slot]
		e.created, e.timeout = s.created.Load(), s.timeout.Load()
		c.t.fixSlot(s.slot)
	}
	c.mu.Unlock()
}

func unixNano(t time.Time) int64 {
	// UnixNano is undefined outside the years 1678 to 2262; clamp instead.
	const lo, hi = -9223372036, 9223372035
	if sec := t.Unix(); sec < lo {
		return math.MinInt64
	} else if sec > hi {
		return math.MaxInt64
	}
	return t.UnixNano()
}

func satAdd(a, b int64) int64 {
	c := a + b
	if b > 0 && c < a {
		return math.MaxInt64
	}
	if b < 0 && c > a {
		return math.MinInt64
	}
	return c
}
