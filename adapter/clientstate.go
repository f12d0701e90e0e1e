package adapter

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tlscache/tlscache/tlscache"
)

// ErrInvalidExport is wrapped by every error [ClientCache.Import] and
// [ClientCache.ImportAll] return for bytes that are not a valid export.
var ErrInvalidExport = errors.New("tlscache/adapter: invalid client session export")

// ErrExpired is wrapped by the error [ClientCache.Import] returns for an
// expired session.
var ErrExpired = errors.New("tlscache/adapter: imported session expired")

const (
	clientStateVersion = 1 // first byte of a client session's State
	exportAllVersion   = 1 // first byte of ExportAll's output
	maxExportSessions  = 1 << 20
)

// clientStateAllowance is what clientValueSize adds to the ticket for the
// rest of an encoded client state: version and lengths, the secret, the
// times and, above all, the server's certificate chain, which crypto/tls
// keeps in the session and does not show before encoding (a leaf and an
// intermediate take about 2 KiB).
const clientStateAllowance = 2048

// clientValueSize estimates the length of the State of a session whose
// ticket is ticket, for a session kept as a Value alone.
func clientValueSize(ticket []byte) int { return 3 + len(ticket) + clientStateAllowance }

// clientTicket returns cs's ticket, refusing what encodeClientState would.
func clientTicket(cs *tls.ClientSessionState) ([]byte, error) {
	ticket, ss, err := cs.ResumptionState()
	if err != nil {
		return nil, err
	}
	if ss == nil || len(ticket) == 0 || len(ticket) > 0xffff {
		return nil, fmt.Errorf("tlscache/adapter: client session without a usable ticket")
	}
	return ticket, nil
}

// marshalClient is s.MarshalBinary, encoding the State first from the
// Value of a session that Put kept without one.
func marshalClient(s *tlscache.Session) ([]byte, error) {
	cs, ok := s.Value.(*tls.ClientSessionState)
	if len(s.State) != 0 || !ok {
		return s.MarshalBinary()
	}
	state, err := encodeClientState(cs)
	if err != nil {
		return nil, err
	}
	// A cached session's fields are not modified: encode a copy.
	e := &tlscache.Session{ID: s.ID, IDContext: s.IDContext, State: state}
	if t := s.Created(); !t.IsZero() {
		e.SetCreated(t)
	}
	e.SetTimeout(s.Timeout())
	return e.MarshalBinary()
}

// encodeClientState is a client session's tlscache State: a version byte,
// the ticket (two-byte length) and crypto/tls's SessionState encoding.
func encodeClientState(cs *tls.ClientSessionState) ([]byte, error) {
	ticket, err := clientTicket(cs)
	if err != nil {
		return nil, err
	}
	_, ss, _ := cs.ResumptionState()
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 3+len(ticket)+len(state))
	b = append(b, clientStateVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ticket)))
	b = append(b, ticket...)
	return append(b, state...), nil
}

// decodeClientState parses what encodeClientState wrote, refusing anything
// crypto/tls could not resume with: bad lengths, a state that does not
// parse, or a server-side state.
func decodeClientState(b []byte) (*tls.ClientSessionState, error) {
	if len(b) < 3 || b[0] != clientStateVersion {
		return nil, fmt.Errorf("%w: unknown client state version", ErrInvalidExport)
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n == 0 || 3+n > len(b) {
		return nil, fmt.Errorf("%w: bad ticket length", ErrInvalidExport)
	}
	ticket := append([]byte(nil), b[3:3+n]...)
	state := b[3+n:]
	// crypto/tls's encoding starts with the version (2 bytes) and the type:
	// 1 server, 2 client. A server state would be taken for a client one.
	if len(state) < 3 || state[2] != 2 {
		return nil, fmt.Errorf("%w: not a client session state", ErrInvalidExport)
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidExport, err)
	}
	return tls.NewResumptionState(ticket, ss)
}

// Export returns the key's session as bytes, like openssl s_client
// -sess_out: tlscache's session encoding (a version byte first) around the
// ticket and crypto/tls's state. The bytes hold the session's secret.
// With [ClientOptions.SingleUse] it exports the ticket that expires last.
func (cc *ClientCache) Export(key string) ([]byte, error) {
	var best *tlscache.Session
	for slot := range cc.opts.TicketsPerKey {
		s := cc.cache.Peek(cc.slotID(key, slot))
		if s != nil && (best == nil || s.Expires().After(best.Expires())) {
			best = s
		}
	}
	if best == nil {
		return nil, fmt.Errorf("tlscache/adapter: no session for %q: %w", key, tlscache.ErrCacheMiss)
	}
	return marshalClient(best)
}

// Import adds a session that [ClientCache.Export] returned, like openssl
// s_client -sess_in. The session keeps its key, context, creation time and
// timeout. Bytes that are not a valid export give an error wrapping
// [ErrInvalidExport], and a session that has expired gives [ErrExpired];
// both change nothing.
func (cc *ClientCache) Import(b []byte) error {
	s, err := parseExport(b)
	if err != nil {
		return err
	}
	if s.ExpiredAt(cc.cache.Now()) {
		return fmt.Errorf("%w at %v", ErrExpired, s.Expires())
	}
	cc.cache.Add(s)
	return nil
}

// ExportAll returns every client session in the cache as bytes: a version
// byte, a count, and each session as [ClientCache.Export] encodes it.
func (cc *ClientCache) ExportAll() ([]byte, error) {
	out := []byte{exportAllVersion, 0, 0, 0, 0}
	n := 0
	for s := range cc.cache.All() {
		if _, ok := s.Value.(*tls.ClientSessionState); !ok {
			if _, err := decodeClientState(s.State); err != nil {
				continue // a server session sharing the cache
			}
		}
		b, err := marshalClient(s)
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
		n++
	}
	binary.BigEndian.PutUint32(out[1:5], uint32(n))
	return out, nil
}

// ImportAll adds every session of a [ClientCache.ExportAll] output, but
// those that have expired, and returns how many it added. It checks all of
// them first: on an error nothing is added.
func (cc *ClientCache) ImportAll(b []byte) (int, error) {
	if len(b) < 5 || b[0] != exportAllVersion {
		return 0, fmt.Errorf("%w: unknown export version", ErrInvalidExport)
	}
	count := binary.BigEndian.Uint32(b[1:5])
	if count > maxExportSessions {
		return 0, fmt.Errorf("%w: %d sessions", ErrInvalidExport, count)
	}
	rest := b[5:]
	var sessions []*tlscache.Session
	for i := range count {
		if len(rest) < 4 {
			return 0, fmt.Errorf("%w: session %d truncated", ErrInvalidExport, i)
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return 0, fmt.Errorf("%w: session %d truncated", ErrInvalidExport, i)
		}
		s, err := parseExport(rest[4 : 4+n])
		if err != nil {
			return 0, fmt.Errorf("%w (session %d)", err, i)
		}
		sessions = append(sessions, s)
		rest = rest[4+n:]
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", ErrInvalidExport, len(rest))
	}
	added := 0
	now := cc.cache.Now()
	for _, s := range sessions {
		if !s.ExpiredAt(now) && cc.cache.Add(s) {
			added++
		}
	}
	return added, nil
}

func parseExport(b []byte) (*tlscache.Session, error) {
	s := new(tlscache.Session)
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidExport, err)
	}
	cs, err := decodeClientState(s.State)
	if err != nil {
		return nil, err
	}
	s.Value = cs
	return s, nil
}
