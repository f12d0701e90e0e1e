package tlscache

import (
	"context"
	"errors"
	"time"
)

// A Claimer is a [Store] that records keys once: of any number of concurrent
// Claims of one key, across all processes sharing the store, exactly one
// wins until the key expires. The adapter claims a ticket's early data
// (0-RTT) with it, so that a replayed early-data flight is refused on every
// server of a fleet.
type Claimer interface {
	// Claim records key for ttl unless a live value or claim is already
	// under it, and reports whether this call recorded it. A ttl that is
	// not positive records nothing and reports false. A claim reads as an
	// empty value ([Store.Get]) and may be deleted like one.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// ErrStoreFull is the error of a [MemoryStore.Claim] that found no room:
// claims never evict, since an evicted claim could be won again.
var ErrStoreFull = errors.New("tlscache: store full of live entries")

var _ Claimer = (*MemoryStore)(nil)

// Claim implements [Claimer]. A store full of live entries refuses the claim
// with [ErrStoreFull] rather than evict one ([MemoryStore.Put] may still
// evict claims: give claims a MemoryStore of their own).
func (m *MemoryStore) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live(key); ok {
		return false, nil
	}
	if m.max > 0 && len(m.m) >= m.max {
		for k, e := range m.m {
			if now.After(e.exp) {
				delete(m.m, k)
			}
		}
		if len(m.m) >= m.max {
			return false, ErrStoreFull
		}
	}
	m.m[key] = memEntry{data: []byte{}, exp: now.Add(ttl)}
	return true, nil
}
