package adapter

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// EarlyDataPolicy says when a [Server] lets a resumption carry early data
// (0-RTT). crypto/tls accepts early data only over QUIC, for the first
// identity a client offers, when the ticket's [tls.SessionState.EarlyData]
// is set (quic-go sets it when quic.Config.Allow0RTT is), and it checks no
// ticket age: early data can be replayed by whoever recorded it, and RFC
// 8446 section 8.1 leaves replay protection to the server. The policies are
// that protection. Resumptions that do not offer early data (every TCP one)
// are not affected by any of them.
type EarlyDataPolicy int

const (
	// EarlyDataOnce, the default, accepts a ticket's early data at most
	// once, atomically across every server sharing
	// [ServerOptions.EarlyDataClaims]: the first resumption that offers it
	// claims the ticket's early data, and any later one (a replay, or a
	// second client holding the same ticket) resumes without early data,
	// so its requests wait for the handshake. A claim that cannot be made
	// (store down, full) refuses the early data: fail closed.
	EarlyDataOnce EarlyDataPolicy = iota
	// EarlyDataOff never accepts early data; tickets still resume.
	EarlyDataOff
	// EarlyDataSingleUse takes the ticket ([tlscache.Cache.Take]) of every
	// resumption that offers early data: the ticket resumes once, with its
	// early data, and never again, which also stops a replay from resuming
	// at all. [ServerOptions.SingleUse] makes every resumption single use
	// (TCP too), and implies this for early data.
	EarlyDataSingleUse
)

var policyNames = []string{"once", "off", "single-use"}

func (p EarlyDataPolicy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("EarlyDataPolicy(%d)", int(p))
}

// ParseEarlyDataPolicy returns the policy named s: once, off or single-use.
func ParseEarlyDataPolicy(s string) (EarlyDataPolicy, error) {
	if i := slices.Index(policyNames, s); i >= 0 {
		return EarlyDataPolicy(i), nil
	}
	return 0, fmt.Errorf("tlscache/adapter: unknown early-data policy %q (want once, off or single-use)", s)
}

// EarlyDataStats are a [Server]'s early-data counters.
type EarlyDataStats struct {
	// Offered counts resumptions whose client offered early data with a
	// ticket that allows it.
	Offered int64 `json:"offered"`
	// Accepted counts those the policy let through. crypto/tls and quic-go
	// may still refuse the early data (ALPN, cipher suite, transport
	// parameters, HTTP/3 SETTINGS).
	Accepted int64 `json:"accepted"`
	// Replays counts those refused because the ticket's early data was
	// claimed already: a replay, or another client with the same ticket.
	Replays int64 `json:"replays"`
	// Refused counts those refused otherwise: [EarlyDataOff], or a claim
	// that could not be made.
	Refused int64 `json:"refused"`
}

// EarlyDataStats returns a snapshot of the server's early-data counters.
func (s *Server) EarlyDataStats() EarlyDataStats {
	e := &s.early
	return EarlyDataStats{
		Offered: e.offered.Load(), Accepted: e.accepted.Load(),
		Replays: e.replays.Load(), Refused: e.refused.Load(),
	}
}

// claimTimeout bounds a claim when EarlyDataClaims is a bare store; a
// fleet.Tier bounds it with its own, shorter, deadline.
const claimTimeout = 250 * time.Millisecond

// maxTicketLifetime is crypto/tls's limit on a TLS 1.3 ticket's age: no
// ticket resumes later than this after it was issued.
const maxTicketLifetime = 7 * 24 * time.Hour

// earlyData is a Server's early-data state.
type earlyData struct {
	claims                              tlscache.Claimer
	offered, accepted, replays, refused atomic.Int64
}

func (e *earlyData) init(cache *tlscache.Cache, opts *ServerOptions) {
	e.claims = opts.EarlyDataClaims
	if e.claims == nil {
		// Claims of their own, so that nothing evicts them; a full store
		// refuses early data until claims expire.
		e.claims = tlscache.NewMemoryStore(max(cache.Size(), tlscache.DefaultSize), nil)
	}
}

// offersEarlyData reports whether a ClientHello carries the early_data
// extension.
func offersEarlyData(chi *tls.ClientHelloInfo) bool {
	return slices.Contains(chi.Extensions, 42)
}

// takes reports whether a lookup must take the ticket: EarlyDataSingleUse,
// for the identity that may carry early data.
func (e *earlyData) takes(first bool, opts *ServerOptions) bool {
	return first && opts.EarlyData == EarlyDataSingleUse
}

// decide applies the policy to a session found for a ClientHello: it
// leaves ss.EarlyData set only if the early data may be accepted. took
// says that the lookup took the session (single use), which is a claim of
// its own.
func (e *earlyData) decide(srv *Server, first, took bool, sess *tlscache.Session, ss *tls.SessionState) {
	if !ss.EarlyData {
		return
	}
	if !first {
		ss.EarlyData = false // crypto/tls would not use it; keep it so
		return
	}
	e.offered.Add(1)
	switch {
	case srv.opts.EarlyData == EarlyDataOff:
		ss.EarlyData = false
		e.refused.Add(1)
		return
	case took:
		e.accepted.Add(1)
		return
	}
	ttl := time.Until(sess.Expires())
	if srv.cache.Mode()&tlscache.UpdateTime != 0 {
		ttl = maxTicketLifetime // a lookup may extend the session's life
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	won, err := e.claims.Claim(ctx, claimKey(sess.ID), max(ttl, time.Second))
	cancel()
	switch {
	case err != nil:
		ss.EarlyData = false
		e.refused.Add(1)
	case !won:
		ss.EarlyData = false
		e.replays.Add(1)
	default:
		e.accepted.Add(1)
	}
}

// claimKey is the store key of a ticket's early-data claim; it cannot be
// a session's key (hex digits only).
func claimKey(id []byte) string { return "early/" + hex.EncodeToString(id) }
