package adapter

import (
	"crypto/rand"
	"crypto/tls"
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
	// and the session it resumes with its lineage: WrapSession re-issues a
	// TLS 1.2 one, and puts a new TLS 1.3 ticket in its lineage.
	lookups atomic.Int32
	// early: the ClientHello offers early data; unwraps counts the
	// identities crypto/tls asked about (only the first may carry it).
	early   bool
	unwraps atomic.Int32
	mu      sync.Mutex
	resumed *tlscache.Session
	meta    *lineageMeta
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

// takeResumed returns the session this handshake's UnwrapSession found,
// and its lineage, and forgets them: its secret stays reachable no longer
// than the handshake needs it.
func (b *binding) takeResumed() (*tlscache.Session, *lineageMeta) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, m := b.resumed, b.meta
	b.resumed, b.meta = nil, nil
	return s, m
}

// wrap is Config.WrapSession: it stores the session under a fresh random
// identity and returns that identity as the ticket. The session joins the
// lineage of the one its handshake resumed, recorded in its state.
func (b *binding) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	srv := b.st.srv
	resumed, pmeta := b.takeResumed()
	if !cs.DidResume {
		resumed, pmeta = nil, nil
	}
	if b.rec.isRevoked() {
		// Logged out before this (QUIC, post-handshake) ticket: one that
		// resumes nothing. See Revocation.Conn.
		return randomID(), nil
	}
	if resumed != nil && cs.Version < tls.VersionTLS13 && !srv.opts.SingleUse {
		// crypto/tls re-issues the resumed TLS 1.2 session (same secret,
		// same creation time, same Extra): hand out the same identity
		// instead of growing the cache.
		if !resumed.Resumable() {
			// Revoked while this handshake resumed it: a ticket that
			// resumes nothing, rather than the secret under a new name.
			return randomID(), nil
		}
		b.contexts().issued(cs.ServerName) // keeps the name listed
		if b.rec != nil && !b.rec.addIssued(resumed) {
			return randomID(), nil // revoked meanwhile
		}
		return resumed.ID, nil
	}
	id := randomID()
	parent := resumed
	meta := newLineageMeta(pmeta, id, srv.cache.Now().UnixNano(), &cs)
	setMeta(ss, meta)
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	// Bytes leaves up to half its buffer unused; the cache keeps the state
	// for hours, so keep it in a buffer of its size.
	state = append(make([]byte, 0, len(state)), state...)
	ctx := b.contexts().issued(cs.ServerName)
	sess := &tlscache.Session{ID: id, IDContext: ctx, State: state}
	if b.rec != nil {
		// A Value keeps the object itself cached (see tlscache.Session),
		// as ConnSessions promises. Nothing else is kept beside the state:
		// revocation reads the client certificate's fingerprint and
		// subject from the lineage entry, and a parsed chain would keep
		// the whole handshake message it was parsed from alive.
		sess.Value = trackedSession{}
	}
	if cs.DidResume || cs.Version < tls.VersionTLS13 {
		// The client proved it holds a cached session (a resumption), or
		// its Finished was checked before the ticket (TLS 1.2): not a
		// handshake that may never complete (see tlscache's admission).
		srv.cache.Promote(sess)
	}
	if !srv.cache.NewSession(tlscache.Server, sess) && parent != nil && srv.opts.InheritApproval {
		srv.approve(sess, false) // a store error is the fleet tier's to count and log
	}
	if parent != nil {
		for _, old := range srv.lin.issued(meta.lineage, parent.ID, id) {
			if srv.cache.Invalidate(old) {
				srv.evicted.Add(1)
			}
		}
	}
	if b.rec != nil && !b.rec.addIssued(sess) {
		// The connection was revoked while this ticket was made: the
		// client never gets it, and the cache and store forget it.
		srv.cache.Remove(sess)
		return randomID(), nil
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
// parse, a revoked lineage, a fleet whose revocations this server may have
// missed) gives (nil, nil): a full handshake, never an aborted one.
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
	if f := srv.fleet.Load(); f != nil && !f.Trusted() {
		srv.untrusted.Add(1)
		return nil, nil
	}
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
	meta := metaOf(ss)
	if meta == nil {
		meta = &lineageMeta{lineage: sess.ID, born: sess.Created().UnixNano()}
	}
	if srv.revs.revoked(sess, meta) {
		srv.revs.refused.Add(1)
		srv.cache.Invalidate(sess.ID)
		return nil, nil
	}
	srv.early.decide(srv, first, take, sess, ss)
	if b.handshake {
		b.mu.Lock()
		b.resumed, b.meta = sess, meta
		b.mu.Unlock()
	}
	srv.lin.used(meta.lineage, sess.ID)
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

// trackedSession is the Value of a server session issued on a tracked
// connection: it makes the cache keep the object that ConnSessions holds.
type trackedSession struct{}
