package adapter

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"sync"

	"github.com/tlscache/tlscache/tlscache"
)

// binding holds the crypto/tls callbacks of a config, for all its untracked
// connections (rec nil) or for one tracked connection.
type binding struct {
	st  *configState
	rec *ConnSessions
}

// bind sets cfg's callbacks to b's.
func (b *binding) bind(cfg *tls.Config) {
	cfg.WrapSession = b.wrap
	cfg.UnwrapSession = b.unwrap
	cfg.VerifyConnection = b.verify
}

// wrap is Config.WrapSession: it stores the session under a fresh random
// identity and returns that identity as the ticket.
func (b *binding) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	srv := b.st.srv
	if cs.DidResume && cs.Version < tls.VersionTLS13 && !srv.opts.SingleUse {
		// crypto/tls re-issues the resumed TLS 1.2 session (same secret,
		// same creation time, same Extra): hand out the same identity
		// instead of growing the cache.
		state, err := ss.Bytes()
		if err != nil {
			return nil, err
		}
		if sess := srv.reissue.take(state); sess != nil {
			if b.rec != nil {
				b.rec.addIssued(sess)
			}
			return sess.ID, nil
		}
	}
	id := make([]byte, IDLen)
	rand.Read(id)
	var parent *tlscache.Session
	if b.rec != nil && cs.DidResume {
		parent = b.rec.Resumed()
	}
	family := id
	if parent != nil {
		// The family travels in the state, so that every server sharing
		// a store knows it (see RevokeFamily).
		family = familyOf(parent)
		setFamily(ss, family)
	}
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	// Bytes leaves up to half its buffer unused; the cache keeps the state
	// for hours, so keep it in a buffer of its size.
	state = append(make([]byte, 0, len(state)), state...)
	ctx, _ := b.st.ctxs.forName(cs.ServerName)
	sess := &tlscache.Session{ID: id, IDContext: ctx, State: state}
	if b.rec != nil || len(cs.PeerCertificates) > 0 {
		sess.Value = &serverMeta{peerCertificates: cs.PeerCertificates, family: family}
	}
	if cs.DidResume || cs.Version < tls.VersionTLS13 {
		// The client proved it holds a cached session (a resumption), or
		// its Finished was checked before the ticket (TLS 1.2): not a
		// handshake that may never complete (see tlscache's admission).
		srv.cache.Promote(sess)
	}
	if !srv.cache.NewSession(tlscache.Server, sess) && parent != nil && srv.opts.InheritApproval {
		srv.cache.Add(sess)
	}
	if b.rec != nil {
		b.rec.addIssued(sess)
	}
	return id, nil
}

// unwrap is Config.UnwrapSession. Whatever goes wrong (unknown or malformed
// identity, another context, expiry, a failing store, a state that does not
// parse) gives (nil, nil): a full handshake, never an aborted one.
func (b *binding) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if len(identity) == 0 {
		return nil, nil // a TLS 1.2 client without a ticket: not a miss
	}
	srv := b.st.srv
	ctx, _ := b.st.ctxs.forName(cs.ServerName)
	var sess *tlscache.Session
	if srv.opts.SingleUse {
		sess = srv.cache.Take(identity, ctx)
	} else {
		sess = srv.cache.Lookup(identity, ctx)
	}
	if sess == nil {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(sess.State)
	if err != nil {
		return nil, nil
	}
	if cs.Version < tls.VersionTLS13 && !srv.opts.SingleUse {
		srv.reissue.put(sess)
	}
	if b.rec != nil {
		b.rec.setResumed(sess)
	}
	return ss, nil
}

// verify is Config.VerifyConnection: the user's check first, then the
// handshake counts as good.
func (b *binding) verify(cs tls.ConnectionState) error {
	if vc := b.st.userVC; vc != nil {
		if err := vc(cs); err != nil {
			return err
		}
	}
	if b.rec != nil {
		b.rec.handshakeDone(cs.DidResume)
	}
	b.st.srv.cache.HandshakeDone(tlscache.Server)
	return nil
}

// serverMeta is the Value of a server session issued on a tracked
// connection or to a client that presented certificates.
type serverMeta struct {
	peerCertificates []*x509.Certificate
	family           []byte // the ID of the session that started the family
}

// familyOf returns the ID of the first session of sess's family: sess
// itself unless it was issued on a connection resumed from another. A
// session another server issued (read from a shared store) carries its
// family in its state.
func familyOf(sess *tlscache.Session) []byte {
	if m, ok := sess.Value.(*serverMeta); ok && m.family != nil {
		return m.family
	}
	if f := familyFromState(sess.State); f != nil {
		return f
	}
	return sess.ID
}

// familyTag starts the SessionState.Extra entry that names a session's
// family, when it is not the session itself.
var familyTag = []byte("tlscache family\x00")

// setFamily records family in ss.Extra, replacing any family there.
func setFamily(ss *tls.SessionState, family []byte) {
	extra := ss.Extra[:0:0]
	for _, e := range ss.Extra {
		if !bytes.HasPrefix(e, familyTag) {
			extra = append(extra, e)
		}
	}
	ss.Extra = append(extra, append(append([]byte(nil), familyTag...), family...))
}

// familyFromState returns the family recorded in a serialized state, or
// nil. Most states have none, and are not parsed.
func familyFromState(state []byte) []byte {
	if !bytes.Contains(state, familyTag) {
		return nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil
	}
	for _, e := range ss.Extra {
		if f, ok := bytes.CutPrefix(e, familyTag); ok && len(f) > 0 {
			return f
		}
	}
	return nil
}

// reissues maps the state of a TLS 1.2 session being resumed to its cached
// session, from UnwrapSession to the WrapSession that re-issues it, a few
// microseconds later in the same handshake. Entries whose handshake ends
// in between (crypto/tls declined the session, or the client left) are
// pushed out, oldest first, once maxReissues are pending.
type reissues struct {
	mu    sync.Mutex
	m     map[[32]byte]reissue
	order []reissueKey // oldest first; may name entries already taken
	seq   uint64
}

type reissue struct {
	sess *tlscache.Session
	n    int    // connections resuming it now
	seq  uint64 // of the latest put
}

type reissueKey struct {
	key [32]byte // SHA-256 of the state
	seq uint64
}

const maxReissues = 1024

func (r *reissues) put(sess *tlscache.Session) {
	key := sha256.Sum256(sess.State)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[[32]byte]reissue)
	}
	for len(r.order) >= maxReissues {
		old := r.order[0]
		r.order = r.order[1:]
		if e, ok := r.m[old.key]; ok && e.seq == old.seq {
			delete(r.m, old.key)
		}
	}
	r.seq++
	e := r.m[key]
	e.sess, e.seq = sess, r.seq
	e.n++
	r.m[key] = e
	r.order = append(r.order, reissueKey{key, r.seq})
}

func (r *reissues) take(state []byte) *tlscache.Session {
	key := sha256.Sum256(state)
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[key]
	if !ok {
		return nil
	}
	if e.n--; e.n == 0 {
		delete(r.m, key)
	} else {
		r.m[key] = e
	}
	return e.sess
}
