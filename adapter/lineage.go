package adapter

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"sync"

	"github.com/tlscache/tlscache/tlscache"
)

// A lineage is the chain of sessions that one full handshake started: a
// session issued on a handshake resumed from another (a TLS 1.3 ticket, a
// TLS 1.2 re-issue, a single-use replacement) joins the lineage of the
// session it resumed from. A client that rotates tickets stays in one
// lineage, so revoking any member ends all of them (see Server.Revoke).
//
// What revocation needs of a session travels in its state, as one entry of
// tls.SessionState.Extra, so that a server that loads the session from a
// shared store (package fleet) knows it without having seen the handshake:
//
//	metaTag | lineage length (1) | lineage | born (8, Unix ns) |
//	server name length (1) | server name | has cert (1) | cert SHA-256 (32, if any) |
//	subject length (2) | subject
//
// born is when the lineage's first session was issued: revocations by
// server name, context or certificate end the lineages born before them.
type lineageMeta struct {
	lineage    []byte // the ID of the lineage's first session
	born       int64  // Unix nanoseconds
	serverName string // normalized
	hasCert    bool
	certSHA256 [32]byte // of the client's leaf certificate (DER)
	subject    string   // of the client's leaf certificate, at most maxSubject bytes
}

// metaTag starts the Extra entry that holds a session's lineageMeta.
var metaTag = []byte("tlscache lineage\x00")

const (
	maxLineageID = 64
	maxMetaName  = 255
	maxSubject   = 1024
)

// newLineageMeta returns the metadata of a session issued on a connection:
// its parent's lineage (parent nil: a new lineage, named id, born now), the
// connection's server name and client certificate.
func newLineageMeta(parent *lineageMeta, id []byte, now int64, cs *tls.ConnectionState) *lineageMeta {
	m := &lineageMeta{lineage: id, born: now, serverName: normalizeName(cs.ServerName)}
	if parent != nil {
		m.lineage, m.born = parent.lineage, parent.born
	}
	if len(m.serverName) > maxMetaName {
		m.serverName = m.serverName[:maxMetaName]
	}
	if len(cs.PeerCertificates) > 0 {
		m.setCert(cs.PeerCertificates[0])
	}
	return m
}

func (m *lineageMeta) setCert(c *x509.Certificate) {
	m.hasCert = true
	m.certSHA256 = sha256.Sum256(c.Raw)
	m.subject = c.Subject.String()
	if len(m.subject) > maxSubject {
		m.subject = m.subject[:maxSubject]
	}
}

// append appends the Extra entry of m to b.
func (m *lineageMeta) append(b []byte) []byte {
	b = append(b, metaTag...)
	b = append(b, byte(len(m.lineage)))
	b = append(b, m.lineage...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.born))
	b = append(b, byte(len(m.serverName)))
	b = append(b, m.serverName...)
	if m.hasCert {
		b = append(b, 1)
		b = append(b, m.certSHA256[:]...)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.subject)))
	return append(b, m.subject...)
}

// parseMeta reads an Extra entry made by append; ok is false for anything
// else, whatever its bytes.
func parseMeta(e []byte) (m *lineageMeta, ok bool) {
	e, ok = bytes.CutPrefix(e, metaTag)
	if !ok {
		return nil, false
	}
	m = new(lineageMeta)
	take := func(n int) []byte {
		if !ok || n > len(e) {
			ok = false
			return nil
		}
		v := e[:n:n]
		e = e[n:]
		return v
	}
	n := take(1)
	if !ok || n[0] == 0 || n[0] > maxLineageID {
		return nil, false
	}
	m.lineage = take(int(n[0]))
	if born := take(8); ok {
		m.born = int64(binary.BigEndian.Uint64(born))
	}
	if n := take(1); ok {
		m.serverName = string(take(int(n[0])))
	}
	if c := take(1); ok && c[0] == 1 {
		m.hasCert = true
		copy(m.certSHA256[:], take(32))
	} else if ok && c[0] != 0 {
		return nil, false
	}
	if n := take(2); ok {
		m.subject = string(take(int(binary.BigEndian.Uint16(n))))
	}
	if !ok || len(e) != 0 || len(m.subject) > maxSubject {
		return nil, false
	}
	return m, true
}

// setMeta records m in ss.Extra, replacing any lineage entry there.
func setMeta(ss *tls.SessionState, m *lineageMeta) {
	extra := ss.Extra[:0:0]
	for _, e := range ss.Extra {
		if !bytes.HasPrefix(e, metaTag) {
			extra = append(extra, e)
		}
	}
	ss.Extra = append(extra, m.append(nil))
}

// metaOf returns the lineage metadata in a parsed state, or nil.
func metaOf(ss *tls.SessionState) *lineageMeta {
	for _, e := range ss.Extra {
		if m, ok := parseMeta(e); ok {
			return m
		}
	}
	return nil
}

// sessionMeta returns the metadata of a cached session, read from its
// state; a session with none (made by hand, or by an older version) is a
// lineage of its own, born at its creation.
func sessionMeta(sess *tlscache.Session) *lineageMeta {
	if m := metaFromState(sess.State); m != nil {
		return m
	}
	return &lineageMeta{lineage: sess.ID, born: sess.Created().UnixNano()}
}

// metaFromState finds the lineage entry in a serialized tls.SessionState
// without parsing all of it (certificates come after Extra): version (2),
// type (1), cipher suite (2), creation time (8), secret (8-bit length),
// then Extra, a 24-bit-length list of 24-bit-length entries. It returns nil
// for anything else.
func metaFromState(state []byte) *lineageMeta {
	const fixed = 2 + 1 + 2 + 8
	if len(state) < fixed+1 {
		return nil
	}
	rest := state[fixed:]
	n := int(rest[0])
	if len(rest) < 1+n+3 {
		return nil
	}
	rest = rest[1+n:]
	total := int(rest[0])<<16 | int(rest[1])<<8 | int(rest[2])
	rest = rest[3:]
	if total > len(rest) {
		return nil
	}
	list := rest[:total]
	for len(list) >= 3 {
		n := int(list[0])<<16 | int(list[1])<<8 | int(list[2])
		if n > len(list)-3 {
			return nil
		}
		if m, ok := parseMeta(list[3 : 3+n]); ok {
			return m
		}
		list = list[3+n:]
	}
	return nil
}

// DefaultLineageTickets is the default of [ServerOptions.LineageTickets].
const DefaultLineageTickets = 4

// lineages keeps, per lineage with more than one session, the IDs of its
// most recently used or issued sessions, so that a client rotating tickets
// occupies LineageTickets entries of the cache, not one per resumption: a
// parent that falls out of its lineage's list leaves this server's
// internal tier (Cache.Invalidate: locally only, the store keeps it until
// its TTL). A client that keeps offering one ticket keeps it at the front.
// The table is bounded: the least recently active lineages are forgotten
// (their sessions stay cached, as without the table).
type lineages struct {
	mu    sync.Mutex
	limit int // tickets per lineage
	max   int // lineages
	m     map[string]*list.Element
	lru   list.List // of *lineageEntry, most recent first
}

type lineageEntry struct {
	key string
	ids [][]byte // most recent first
}

func newLineages(limit, max int) *lineages {
	return &lineages{limit: limit, max: max, m: make(map[string]*list.Element)}
}

// used moves id to the front of lineage's list, if the lineage is tracked.
func (l *lineages) used(lineage, id []byte) {
	if l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.m[string(lineage)]; ok {
		e := el.Value.(*lineageEntry)
		e.front(id)
		l.lru.MoveToFront(el)
	}
}

// issued records child, issued on a connection resumed from parent, and
// returns the IDs that fell out of the lineage's list.
func (l *lineages) issued(lineage, parent, child []byte) (out [][]byte) {
	if l.limit <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[string(lineage)]
	if !ok {
		if l.lru.Len() >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*lineageEntry).key)
		}
		el = l.lru.PushFront(&lineageEntry{key: string(lineage), ids: [][]byte{parent}})
		l.m[string(lineage)] = el
	}
	e := el.Value.(*lineageEntry)
	l.lru.MoveToFront(el)
	e.front(parent) // the ticket being offered stays, however many resume it at once
	e.front(child)
	if len(e.ids) > l.limit {
		out = append(out, e.ids[l.limit:]...)
		clear(e.ids[l.limit:])
		e.ids = e.ids[:l.limit]
	}
	return out
}

// forget drops a revoked lineage.
func (l *lineages) forget(lineage []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.m[string(lineage)]; ok {
		l.lru.Remove(el)
		delete(l.m, string(lineage))
	}
}

// front puts id first in e.ids.
func (e *lineageEntry) front(id []byte) {
	for i, x := range e.ids {
		if bytes.Equal(x, id) {
			copy(e.ids[1:i+1], e.ids[:i])
			e.ids[0] = x
			return
		}
	}
	e.ids = append(e.ids, nil)
	copy(e.ids[1:], e.ids)
	e.ids[0] = id
}
