package tlscache

import (
	"bytes"
	"errors"
)

// Lookup finds the session to resume for a connection that offers id under
// idContext: the path of OpenSSL's ssl_get_prev_session.
//
//  1. Unless NoInternalLookup, the internal cache is searched; not finding
//     the ID counts Misses.
//  2. If that gave nothing and a get hook is set, the hook is asked. A
//     result that is not resumable, or is for another ID, is ignored; a
//     resumable one counts CbHits and is copied into the internal cache
//     unless NoInternalStore (with UpdateTime, that refreshes it).
//  3. A session under another IDContext is a silent miss that keeps the
//     entry (ContextMismatches).
//  4. An expired session counts Timeouts, is removed (the remove hook
//     fires) and is a miss.
//  5. Otherwise it is a hit (Hits, and InternalHits or ExternalHits).
//
// Lookup returns nil on a miss. It runs whatever the mode's role bits: a
// session added by hand resumes even with mode Off.
func (c *Cache) Lookup(id, idContext []byte) *Session {
	return c.lookup(id, idContext, false)
}

// Take is Lookup for single use (RFC 8446, section 8.1): a session it returns
// has left the internal cache atomically, with the remove hook called with
// reason Taken, so two connections racing with one ticket resume at most
// once. The get hook is asked with take set, and its result is not copied in.
// When the remove hook answers a take with an error (a shared store whose
// own atomic take lost the race, or could not be asked), Take misses.
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
		c.stats.misses.Add(1)
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
	if take || mode&NoInternalStore != 0 {
		s.fillDefaults(unixNano(c.now()), c.Timeout(), false)
	}
	if !bytes.Equal(s.IDContext, idContext) {
		c.stats.contextMismatches.Add(1)
		return nil
	}
	if s.ExpiredAt(c.now()) {
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
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.inval.gen
}

// admit reports whether a get-hook result s, asked for at invalidation
// generation gen, may resume: not if its ID was invalidated (or everything
// flushed) since. With copyIn, an admitted s is also added to the internal
// cache, as Add would (UpdateTime refreshes it, as in OpenSSL), under the
// same lock as the check, so that no invalidation slips in between.
func (c *Cache) admit(s *Session, gen uint64, copyIn bool) bool {
	if !copyIn {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return !c.inval.since(string(s.ID), gen)
	}
	refresh := c.Mode()&UpdateTime != 0
	now := unixNano(c.now())
	c.mu.Lock()
	if c.inval.since(string(s.ID), gen) {
		c.mu.Unlock()
		return false
	}
	_, evicted := c.addLocked(s, now, refresh)
	c.mu.Unlock()
	c.callRemove(evicted, Evicted)
	return true
}

// lookupInternal searches the internal cache. found is false only when the
// ID is not cached; a context mismatch or an expired session is found and
// gives a nil session.
func (c *Cache) lookupInternal(id, idContext []byte, take bool) (s *Session, found bool) {
	now := unixNano(c.now())
	if take {
		c.mu.Lock()
	} else {
		c.mu.RLock()
	}
	s = c.m[string(id)]
	if s == nil {
		c.unlock(take)
		return nil, false
	}
	if !bytes.Equal(s.IDContext, idContext) {
		c.unlock(take)
		c.stats.contextMismatches.Add(1)
		return nil, true
	}
	if now > s.exp {
		c.unlock(take)
		c.stats.timeouts.Add(1)
		c.removeExpired(s)
		return nil, true
	}
	if take {
		c.unlinkLocked(s)
		s.notResumable.Store(true)
	}
	c.unlock(take)
	if take && c.removeHook != nil {
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

func (c *Cache) unlock(write bool) {
	if write {
		c.mu.Unlock()
	} else {
		c.mu.RUnlock()
	}
}

// removeExpired removes s, found expired in the internal cache, if no one
// else removed it meanwhile.
func (c *Cache) removeExpired(s *Session) {
	if c.unlinkIfCached(s) {
		c.callRemove([]*Session{s}, Expired)
	}
}

// unlinkIfCached takes s out of the cache if it is there and marks it not
// resumable; it reports whether s was cached.
func (c *Cache) unlinkIfCached(s *Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.notResumable.Store(true)
	if s.owner.Load() != c {
		return false
	}
	c.unlinkLocked(s)
	return true
}

// NewSession records a session that a handshake of the given role (Client
// or Server) has just created: OpenSSL's ssl_update_cache. When the mode has
// that role, the session is added to the internal cache unless
// NoInternalStore is set, and the new hook is called either way. An unset
// creation time and timeout get their defaults in every case, so that the
// hook sees them. It reports whether the session was added.
func (c *Cache) NewSession(role Mode, s *Session) bool {
	mode := c.Mode()
	if s == nil || len(s.ID) == 0 || mode&role&Both == 0 {
		return false
	}
	added := false
	if mode&NoInternalStore == 0 {
		added = c.Add(s)
	} else {
		s.fillDefaults(unixNano(c.now()), c.Timeout(), false)
	}
	if c.newHook != nil {
		if err := c.newHook(s); err != nil {
			c.stats.storeErrors.Add(1)
		}
	}
	return added
}

// HandshakeStart counts a handshake of the given role (Client or Server) as
// started: Connect or Accept.
func (c *Cache) HandshakeStart(role Mode) {
	switch role {
	case Client:
		c.stats.connect.Add(1)
	case Server:
		c.stats.accept.Add(1)
	}
}

// HandshakeDone counts a handshake of the given role as completed
// (ConnectGood or AcceptGood). Unless NoAutoClear is set, every 255th
// completed handshake of a role that the mode has runs Flush(now).
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
