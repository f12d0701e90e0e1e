package adapter

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"sync/atomic"

	"github.com/tlscache/tlscache/tlscache"
)

// binding holds the crypto/tls callbacks of a config: those Install set
// on the application's config, or those of the clone one handshake runs on
// (handshake set), which also keep that handshake's state.
type binding struct {
	st        *configState
	ctxs      *contexts // nil: st's
	rec       *ConnSessions
	handshake bool
	userVC    func(tls.ConnectionState) error

	// Of one handshake (handshake set): how many identities it looked up,
	// and the TLS 1.2 session it resumes, which WrapSession re-issues.
	lookups atomic.Int32
	// early: the ClientHello offers early data; unwraps counts the
	// identities crypto/tls asked about (only the first may carry it).
	early   bool
	unwraps atomic.Int32
	mu      sync.Mutex
	resumed *tlscache.Session
}

// bind sets cfg's callbacks to b's.
func (b *binding) bind(cfg *tls.Config) {
	cfg.WrapSession = b.wrap
	cfg.UnwrapSession = b.unwrap
	cfg.VerifyConnection = b.verify
}

func (b *binding) contexts() *contexts {
	if b.ctxs != nil {
		return b.ctxs
	}
	return b.st.contexts()
}

// takeResumed returns the TLS 1.2 session this handshake's UnwrapSession
// found, and forgets it: its secret stays reachable no longer than the
// handshake needs it.
func (b *binding) takeResumed() *tlscache.Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.resumed
	b.resumed = nil
	return s
}

// wrap is Config.WrapSession: it stores the session under a fresh random
// identity and returns that identity as the ticket.
func (b *binding) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	srv := b.st.srv
	resumed := b.takeResumed()
	if cs.DidResume && cs.Version < tls.VersionTLS13 && resumed != nil {
		// crypto/tls re-issues the resumed TLS 1.2 session (same secret,
		// same creation time, same Extra): hand out the same identity
		// instead of growing the cache.
		if !resumed.Resumable() {
			// Revoked while this handshake resumed it: a ticket that
			// resumes nothing, rather than the secret under a new name.
			return randomID(), nil
		}
		b.contexts().issued(cs.ServerName) // keeps the name listed
		if b.rec != nil {
			b.rec.addIssued(resumed)
		}
		return resumed.ID, nil
	}
	id := randomID()
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
	ctx := b.contexts().issued(cs.ServerName)
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

func randomID() []byte {
	id := make([]byte, IDLen)
	rand.Read(id)
	return id
}

// unwrap is Config.UnwrapSession. Whatever goes wrong (unknown or malformed
// identity, another context, expiry, a failing store, a state that does not
// parse) gives (nil, nil): a full handshake, never an aborted one.
//
// crypto/tls calls it for each PSK identity of a TLS 1.3 ClientHello (up
// to five). Only identities of IDLen bytes, the only ones a Server issues,
// are looked up, and only the first of them in a handshake: so a hostile
// ClientHello costs at most one store call, like a real one (clients offer
// one ticket).
func (b *binding) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	first := b.early && b.unwraps.Add(1) == 1
	if len(identity) == 0 {
		return nil, nil // a TLS 1.2 client without a ticket: not a miss
	}
	if len(identity) != IDLen || b.handshake && b.lookups.Add(1) > 1 {
		return nil, nil
	}
	srv := b.st.srv
	ctx := b.contexts().forName(cs.ServerName)
	var sess *tlscache.Session
	take := srv.opts.SingleUse || srv.early.takes(first, &srv.opts)
	if take {
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
	srv.early.decide(srv, first, take, sess, ss)
	if cs.Version < tls.VersionTLS13 && !take && b.handshake {
		b.mu.Lock()
		b.resumed = sess
		b.mu.Unlock()
	}
	if b.rec != nil {
		b.rec.setResumed(sess)
	}
	return ss, nil
}

// verify is Config.VerifyConnection: the user's check first, then the
// handshake counts as good.
func (b *binding) verify(cs tls.ConnectionState) error {
	if !cs.DidResume {
		b.takeResumed() // declined by crypto/tls: not re-issued
	}
	if vc := b.userVC; vc != nil {
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
