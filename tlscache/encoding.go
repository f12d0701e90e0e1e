package tlscache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// encodingVersion is the first byte of a marshaled session, flags the
// second.
const (
	encodingVersion = 1
	flagCreated     = 1 << 0 // the creation time is set
)

// Limits on what [Session.UnmarshalBinary] accepts.
const (
	MaxIDLen    = math.MaxUint16 // a TLS 1.3 PSK identity is at most this long
	MaxStateLen = 1 << 24        // a session with a long certificate chain fits
)

// ErrInvalidSession is wrapped by every error [Session.UnmarshalBinary]
// returns.
var ErrInvalidSession = errors.New("tlscache: invalid session encoding")

// MarshalBinary encodes the session for an external store or a file: a
// version byte, flags, the ID, IDContext, creation time (or that it is
// unset), timeout and State. Value
// and the resumable flag are not encoded. The encoding holds the secret
// state: seal it before it leaves the process.
func (s *Session) MarshalBinary() ([]byte, error) {
	if len(s.ID) == 0 || len(s.ID) > MaxIDLen || len(s.IDContext) > MaxIDLen || len(s.State) > MaxStateLen {
		return nil, fmt.Errorf("tlscache: cannot encode session: ID of %d bytes, IDContext of %d, State of %d", len(s.ID), len(s.IDContext), len(s.State))
	}
	var created int64
	var flags byte
	if s.hasCreated.Load() {
		created = s.created.Load()
		flags |= flagCreated
	}
	b := make([]byte, 0, 2+2+len(s.ID)+2+len(s.IDContext)+8+8+4+len(s.State))
	b = append(b, encodingVersion, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.ID)))
	b = append(b, s.ID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.IDContext)))
	b = append(b, s.IDContext...)
	b = binary.BigEndian.AppendUint64(b, uint64(created))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Timeout()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.State)))
	b = append(b, s.State...)
	return b, nil
}

// UnmarshalBinary decodes what [Session.MarshalBinary] encoded into a
// session that is not in any cache. It copies what it keeps from data.
// Malformed input of any length gives an error wrapping [ErrInvalidSession],
// never a panic, and allocates no more than len(data).
func (s *Session) UnmarshalBinary(data []byte) error {
	if s.owner.Load() != nil {
		return errors.New("tlscache: UnmarshalBinary into a cached session")
	}
	r := reader(data)
	version, ok := r.uint8()
	if !ok {
		return fmt.Errorf("%w: empty", ErrInvalidSession)
	}
	if version != encodingVersion {
		return fmt.Errorf("%w: unknown version %d", ErrInvalidSession, version)
	}
	flags, ok := r.uint8()
	if !ok {
		return fmt.Errorf("%w: truncated", ErrInvalidSession)
	}
	if flags&^flagCreated != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrInvalidSession, flags)
	}
	id, ok1 := r.bytes16()
	idContext, ok2 := r.bytes16()
	created, ok3 := r.uint64()
	timeout, ok4 := r.uint64()
	state, ok5 := r.bytes32()
	switch {
	case !ok1 || !ok2 || !ok3 || !ok4 || !ok5:
		return fmt.Errorf("%w: truncated", ErrInvalidSession)
	case len(r) != 0:
		return fmt.Errorf("%w: %d trailing bytes", ErrInvalidSession, len(r))
	case len(id) == 0:
		return fmt.Errorf("%w: empty ID", ErrInvalidSession)
	case int64(timeout) < 0:
		return fmt.Errorf("%w: negative timeout", ErrInvalidSession)
	case flags&flagCreated == 0 && created != 0:
		return fmt.Errorf("%w: creation time without its flag", ErrInvalidSession)
	case len(state) > MaxStateLen:
		return fmt.Errorf("%w: state of %d bytes", ErrInvalidSession, len(state))
	}
	s.ID = append([]byte(nil), id...)
	s.IDContext = nil
	if len(idContext) > 0 {
		s.IDContext = append([]byte(nil), idContext...)
	}
	s.State = append([]byte(nil), state...)
	s.Value = nil
	s.created.Store(int64(created))
	s.hasCreated.Store(flags&flagCreated != 0)
	s.timeout.Store(int64(timeout))
	s.notResumable.Store(false)
	return nil
}

type reader []byte

func (r *reader) uint8() (byte, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *reader) uint64() (uint64, bool) {
	if len(*r) < 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(*r)
	*r = (*r)[8:]
	return v, true
}

func (r *reader) take(n int) ([]byte, bool) {
	if n > len(*r) {
		return nil, false
	}
	v := (*r)[:n:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) bytes16() ([]byte, bool) {
	b, ok := r.take(2)
	if !ok {
		return nil, false
	}
	return r.take(int(binary.BigEndian.Uint16(b)))
}

func (r *reader) bytes32() ([]byte, bool) {
	b, ok := r.take(4)
	if !ok {
		return nil, false
	}
	return r.take(int(binary.BigEndian.Uint32(b)))
}
