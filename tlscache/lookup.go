package tlscache

import (
	"bytes"
	"errors"
)

// Lookup finds the session to resume for a connection that offers id under
// idContext: the path of OpenSSL's ssl_get_prev_session.
//
//  1. Unless [NoInternalLookup], the internal cache is searched; not finding
//     the ID counts [Stats.Misses].
//  2. If that gave nothing and a get hook is set, the hook is asked. A
//     result that is not resumable, or is for another ID, is ignored; a
//     resumable one counts [Stats.CbHits] and is copied into the internal
//     cache unless [NoInternalStore] (with [UpdateTime], that refreshes it).
//  3. A session under another IDContext is a silent miss that keeps the
//     entry ([Stats.ContextMismatches]).
//  4. An expired session counts [Stats.Timeouts], is removed (the remove
//     hook fires) and is a miss.
//  5. Otherwise it is a hit ([Stats.Hits], and [Stats.InternalHits] or
//     [Stats.ExternalHits]).
//
// Lookup returns nil on a miss. It runs whatever the mode's role bits: a
// session added by hand resumes even with mode [Off].
func (c *Cache) Lookup(id, idContext []byte) *Session {
	return c.lookup(id, idContext, false)
}

// Take is [Cache.Lookup] for single use (RFC 8446, section 8.1): a session
// it returns has left the internal cache atomically, with the remove hook
// called with reason [Taken], so two connections racing with one ticket
// resume at most once. The get hook is asked with take set, and its result
// is not copied in. When the remove hook answers a take with an error (a
// shared store whose own atomic take lost the race, or could not be asked),
// Take misses.
func (c *Cache) Take(id, idContext []byte) *Session {
	return c.lookup(id, idContext, true)
}

func (c *Cache) lookup(id, idContext []byte, take bool) *Session {
	if len(id) == 0 {
		return nil
	}
	mode := c.Mode()
	if mode&NoInternalLookup == 0 {
		s, found := c.lookupInternal(id, idContext, take)
		if found {
			return s
		}
	}
	if c.getHook == nil {
		return nil
	}
	gen := c.invalidationGen()
	// The hook gets its own copy of id, so that id does not escape: the
	// caller's buffer can live on its stack.
	s, err := c.getHook(bytes.Clone(id), take)
	if err != nil && !errors.Is(err, ErrCacheMiss) {
		c.stats.storeErrors.Add(1)
	}
	if s == nil || err != nil || !s.Resumable() {
		return nil
	}
	if !bytes.Equal(s.ID, id) {
		c.stats.storeErrors.Add(1) // the hook answered for another ID
		return nil
	}
	if !take && !c.admit(s, gen, mode&NoInternalStore == 0) {
		c.stats.misses.Add(1) // removed by another server while the hook ran
		return nil
	}
	c.stats.cbHits.Add(1)
	now := c.nowNano()
	if take || mode&NoInternalStore != 0 {
		s.fillDefaults(now, c.Timeout(), false)
	}
	if !bytes.Equal(s.IDContext, idContext) {
		c.contextMismatch(now)
		return nil
	}
	if now > s.expiry() {
		c.stats.timeouts.Add(1)
		if !take { // a take already removed it from the store
			c.unlinkIfCached(s)
			c.callRemove([]*Session{s}, Expired)
		}
		return nil
	}
	c.stats.hits.Add(1)
	c.stats.externalHits.Add(1)
	return s
}

func (c *Cache) invalidationGen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inval.gen
}

// admit reports whether a get-hook result s, asked for at invalidation
// generation gen, may resume: not if its ID was invalidated (or everything
// flushed) since. With copyIn, an admitted s is also added to the internal
// cache, as Add would (UpdateTime refreshes it, as in OpenSSL), under the
// same lock as the check, so that no invalidation slips in between.
func (c *Cache) admit(s *Session, gen uint64, copyIn bool) bool {
	if !copyIn {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.inval.since(string(s.ID), gen)
	}
	o := s.owner.Load()
	if o != nil && o != c && o.holds(s) {
		o = nil // held by another cache: resumes, but is not copied in
	}
	refresh := c.Mode()&UpdateTime != 0
	now := c.nowNano()
	c.mu.Lock()
	if c.inval.since(string(s.ID), gen) {
		c.mu.Unlock()
		return false
	}
	var evicted []*Session
	if o == nil || o == c {
		_, evicted = c.addLocked(s, o, now, refresh, false, true)
	}
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return true
}

// lookupInternal searches the internal cache. found is false only when the
// ID is not cached; a context mismatch or an expired session is found and
// gives a nil session. A hit makes a probationary session established.
func (c *Cache) lookupInternal(id, idContext []byte, take bool) (s *Session, found bool) {
	now := c.nowNano()
	c.mu.Lock()
	t := &c.t
	i := t.find(id)
	if i == noSlot {
		c.locked.misses++
		c.mu.Unlock()
		return nil, false
	}
	e := &t.ents[i]
	if t.ctxs.get(e.ctx) != string(idContext) {
		c.mu.Unlock()
		c.contextMismatch(now)
		return nil, true
	}
	if now > e.exp() {
		s := c.unlinkLocked(i, false)
		c.mu.Unlock()
		c.stats.timeouts.Add(1)
		if s != nil {
			c.callRemove([]*Session{s}, Expired)
		}
		return nil, true
	}
	var evicted []*Session
	if take {
		s = c.unlinkLocked(i, true)
	} else {
		evicted = c.promoteLocked(i, nil)
		s = c.sessionLocked(i)
		c.locked.hits++ // under the lock: no atomics on the lookup path
	}
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	if !take {
		return s, true
	}
	if c.removeHook != nil {
		// A shared store confirms the take: a miss there means another
		// server took it first, and an error means it could not be
		// confirmed. Either way this connection gets a full handshake.
		if err := c.removeHook(s, Taken); err != nil {
			if errors.Is(err, ErrCacheMiss) {
				c.stats.misses.Add(1)
			} else {
				c.stats.storeErrors.Add(1)
			}
			return nil, true
		}
	}
	c.stats.hits.Add(1)
	c.stats.internalHits.Add(1)
	return s, true
}

// unlinkIfCached takes s out of the cache if it is there and marks it not
// resumable; it reports whether s was cached.
func (c *Cache) unlinkIfCached(s *Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.notResumable.Store(true)
	if !c.holdsLocked(s) {
		return false
	}
	c.unlinkLocked(s.slot, false)
	return true
}

// NewSession records a session that a handshake of the given role ([Client]
// or [Server]) has just created: OpenSSL's ssl_update_cache. When the mode
// has that role, the session is added to the internal cache unless
// [NoInternalStore] is set, and the new hook is called either way. An unset
// creation time and timeout get their defaults in every case, so that the
// hook sees them. It reports whether the session was added.
func (c *Cache) NewSession(role Mode, s *Session) bool {
	c.checkMismatchBurst()
	mode := c.Mode()
	if s == nil || len(s.ID) == 0 || mode&role&Both == 0 {
		return false
	}
	added := false
	if mode&NoInternalStore == 0 {
		// A server session is probationary until its client comes back
		// with it or Promote vouches for it; the object is kept only if
		// it has a Value.
		added = c.add(s, role == Server, false)
	} else {
		s.fillDefaults(c.nowNano(), c.Timeout(), false)
	}
	if c.newHook != nil {
		if err := c.newHook(s); err != nil {
			c.stats.storeErrors.Add(1)
		}
	}
	return added
}

// HandshakeStart counts a handshake of the given role ([Client] or [Server])
// as started: [Stats.Connect] or [Stats.Accept].
func (c *Cache) HandshakeStart(role Mode) {
	switch role {
	case Client:
		c.stats.connect.Add(1)
	case Server:
		c.stats.accept.Add(1)
	}
}

// HandshakeDone counts a handshake of the given role as completed
// ([Stats.ConnectGood] or [Stats.AcceptGood]). Unless [NoAutoClear] is set,
// every 255th completed handshake of a role that the mode has runs
// Flush(now).
func (c *Cache) HandshakeDone(role Mode) {
	var n int64
	switch role {
	case Client:
		n = c.stats.connectGood.Add(1)
	case Server:
		n = c.stats.acceptGood.Add(1)
	default:
		return
	}
	if mode := c.Mode(); n%255 == 0 && mode&role != 0 && mode&NoAutoClear == 0 {
		c.Flush(c.now())
	}
}
