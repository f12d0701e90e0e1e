package adapter

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// A revocation travels between the servers of a fleet, and lives in the
// store as a tombstone, as a marker: an ID no session has,
//
//	markerPrefix | kind (1) | revoked at (8, Unix ns) | subject
//
// passed to the fleet (see Server.SetFleet) or, without one, to the cache's
// remove hook; every server's watch hands it back through Invalidate.
var markerPrefix = []byte("tlscache revoke\x00")

// Kinds of revocation.
const (
	revokeID      = 'I' // one session ID, whose lineage was not known
	revokeLineage = 'L' // every session of a lineage
	revokeName    = 'N' // lineages born by then under a server name
	revokeContext = 'C' // lineages born by then under an IDContext
	revokeCert    = 'F' // lineages born by then for a client certificate (SHA-256)
)

func newMarker(kind byte, at time.Time, subject []byte) []byte {
	m := make([]byte, 0, len(markerPrefix)+9+len(subject))
	m = append(m, markerPrefix...)
	m = append(m, kind)
	m = binary.BigEndian.AppendUint64(m, uint64(at.UnixNano()))
	return append(m, subject...)
}

// parseMarker splits a marker; ok is false for any other ID.
func parseMarker(id []byte) (kind byte, at int64, subject []byte, ok bool) {
	rest, ok := bytes.CutPrefix(id, markerPrefix)
	if !ok || len(rest) < 10 {
		return 0, 0, nil, false
	}
	switch rest[0] {
	case revokeID, revokeLineage, revokeName, revokeContext, revokeCert:
	default:
		return 0, 0, nil, false
	}
	return rest[0], int64(binary.BigEndian.Uint64(rest[1:9])), rest[9:], true
}

// maxRevocations bounds the revocations a Server remembers. Beyond it the
// oldest are forgotten (counted in RevocationStats.Dropped); the fleet's
// tombstones still hold them for servers that resync.
const maxRevocations = 1 << 16

// revocations is a Server's set of what may not resume: every revocation
// made here or heard from the fleet, kept for the cache's timeout (no
// session revoked then can outlive it). Lookups check it after the state
// of the session they found is parsed.
type revocations struct {
	n       atomic.Int64 // entries: zero skips the check
	dropped atomic.Int64
	refused atomic.Int64

	mu    sync.RWMutex
	m     map[string]revocation // kind + subject
	order []revocationKey       // insertion order, for expiry and the bound
}

type revocation struct {
	at      int64 // revoked at, Unix ns
	expires int64
}

type revocationKey struct {
	key     string
	expires int64
}

// add records a revocation; it reports whether it was new.
func (r *revocations) add(kind byte, at int64, subject []byte, expires int64, now int64) bool {
	key := string(kind) + string(subject)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]revocation)
	}
	r.expireLocked(now)
	if old, ok := r.m[key]; ok {
		if at > old.at {
			old.at = at
		}
		old.expires = max(old.expires, expires)
		r.m[key] = old
		return false
	}
	for len(r.order) >= maxRevocations {
		r.popLocked()
		r.dropped.Add(1)
	}
	r.m[key] = revocation{at: at, expires: expires}
	r.order = append(r.order, revocationKey{key, expires})
	r.n.Store(int64(len(r.m)))
	return true
}

func (r *revocations) expireLocked(now int64) {
	for len(r.order) > 0 && r.order[0].expires < now {
		r.popLocked()
	}
}

func (r *revocations) popLocked() {
	k := r.order[0]
	r.order = r.order[1:]
	if e, ok := r.m[k.key]; ok && e.expires <= k.expires {
		delete(r.m, k.key)
	}
	r.n.Store(int64(len(r.m)))
}

// revoked reports whether sess, whose metadata is m, is revoked.
func (r *revocations) revoked(sess *tlscache.Session, m *lineageMeta) bool {
	if r.n.Load() == 0 {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var buf [1 + 64]byte
	has := func(kind byte, subject []byte) (revocation, bool) {
		k := append(buf[:0], kind)
		k = append(k, subject...)
		e, ok := r.m[string(k)]
		return e, ok
	}
	if _, ok := has(revokeID, sess.ID); ok {
		return true
	}
	if _, ok := has(revokeLineage, m.lineage); ok {
		return true
	}
	if e, ok := has(revokeName, []byte(m.serverName)); ok && e.at >= m.born {
		return true
	}
	if e, ok := has(revokeContext, sess.IDContext); ok && e.at >= m.born {
		return true
	}
	if m.hasCert {
		if e, ok := has(revokeCert, m.certSHA256[:]); ok && e.at >= m.born {
			return true
		}
	}
	return false
}

// matcher returns a predicate for the sessions a marker revokes.
func matcher(kind byte, at int64, subject []byte) func(*tlscache.Session) bool {
	return func(sess *tlscache.Session) bool {
		if kind == revokeID {
			return bytes.Equal(sess.ID, subject)
		}
		if kind == revokeContext {
			return bytes.Equal(sess.IDContext, subject) && sessionMeta(sess).born <= at
		}
		m := sessionMeta(sess)
		switch kind {
		case revokeLineage:
			return bytes.Equal(m.lineage, subject)
		case revokeName:
			return m.serverName == string(subject) && m.born <= at
		case revokeCert:
			return m.hasCert && bytes.Equal(m.certSHA256[:], subject) && m.born <= at
		}
		return false
	}
}

// A Fleet is how a [Server] reaches the other servers that share its
// store. Package fleet makes one (its Tier.Watch and NewServer call
// [Server.SetFleet]); applications need not. Every field must be set.
type Fleet struct {
	// Trusted reports whether the server hears the fleet's revocations
	// now: while it does not, no session resumes (fail closed; see
	// fleet.Options.FailOpen).
	Trusted func() bool
	// Publish makes a revocation marker durable in the store and tells
	// every server; with wait, it returns once each has applied it.
	Publish func(ctx context.Context, marker []byte, wait bool) error
	// Get reads a session from the store, so that revoking an ID this
	// server does not hold still ends its lineage.
	Get func(id []byte) (*tlscache.Session, error)
	// Put stores a session in the store, so that it resumes on every
	// server: the sessions [Server.Approve] approves, and those that
	// inherit approval ([ServerOptions.InheritApproval]) when the cache's
	// new hook does not store them already.
	Put func(*tlscache.Session) error
}

// SetFleet connects the server to the fleet that shares its store, from
// then on: its revocations become durable and fleet-wide, its approvals
// reach the store, and while f.Trusted reports false nothing resumes.
func (s *Server) SetFleet(f Fleet) {
	s.fleet.Store(&f)
}

// apply records a marker (made here or heard from the fleet) and drops the
// sessions it revokes from the cache: with the remove hook's reason
// Removed when made here (the store deletes them), Invalidated when heard.
func (s *Server) apply(marker []byte, local bool) int {
	kind, at, subject, ok := parseMarker(marker)
	if !ok {
		return 0
	}
	now := s.cache.Now()
	expires := now.Add(s.cache.Timeout()).UnixNano()
	if s.cache.Timeout() <= 0 {
		expires = now.Add(tlscache.DefaultTimeout).UnixNano()
	}
	s.revs.add(kind, at, subject, expires, now.UnixNano())
	if kind == revokeLineage {
		s.lin.forget(subject)
	}
	match := matcher(kind, at, subject)
	if local {
		return s.cache.RemoveFunc(match)
	}
	var ids [][]byte
	for sess := range s.cache.All() {
		if match(sess) {
			ids = append(ids, sess.ID)
		}
	}
	n := 0
	for _, id := range ids {
		if s.cache.Invalidate(id) {
			n++
		}
	}
	return n
}

// publish tells the fleet (or, without one, the remove hook) about marker.
func (s *Server) publish(ctx context.Context, marker []byte, wait bool) error {
	if f := s.fleet.Load(); f != nil {
		return f.Publish(ctx, marker, wait)
	}
	s.cache.RemoveID(marker)
	return nil
}

// revokeMarkers applies markers here and publishes them.
func (s *Server) revokeMarkers(ctx context.Context, markers [][]byte, wait bool) (int, error) {
	n := 0
	for _, m := range markers {
		n += s.apply(m, true)
	}
	var first error
	for _, m := range markers {
		if err := s.publish(ctx, m, wait); err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

// RevocationStats count what a [Server]'s revocation set did.
type RevocationStats struct {
	Revocations int   `json:"revocations"` // revocations remembered now
	Refused     int64 `json:"refused"`     // resumptions refused because they were revoked
	Untrusted   int64 `json:"untrusted"`   // resumptions refused because the fleet's watch could not be trusted
	Dropped     int64 `json:"dropped"`     // revocations forgotten early: more than the bound
	Evicted     int64 `json:"evicted"`     // parents dropped from the cache by the per-lineage ticket limit
}

// RevocationStats returns the server's revocation counters.
func (s *Server) RevocationStats() RevocationStats {
	return RevocationStats{
		Revocations: int(s.revs.n.Load()), Refused: s.revs.refused.Load(), Untrusted: s.untrusted.Load(),
		Dropped: s.revs.dropped.Load(), Evicted: s.evicted.Load(),
	}
}
