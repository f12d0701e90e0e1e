package tlscache

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a [Store] and [Watcher] in process memory, the
// zero-configuration default: caches that share one MemoryStore behave like
// servers sharing one Redis, which makes it the reference implementation and
// a test double that needs no network. It holds at most its size; when full,
// [MemoryStore.Put] drops the entry that expires soonest. Create one with
// [NewMemoryStore].
type MemoryStore struct {
	now func() time.Time
	max int

	mu       sync.Mutex
	m        map[string]memEntry
	watchers map[*memWatcher]struct{}
}

type memEntry struct {
	data []byte
	exp  time.Time
}

type memWatcher struct{ deleted func(string) }

var (
	_ Store   = (*MemoryStore)(nil)
	_ Watcher = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty store holding at most size entries (zero
// means [DefaultSize], negative no limit), on the clock now (nil means
// [time.Now]).
func NewMemoryStore(size int, now func() time.Time) *MemoryStore {
	switch {
	case size == 0:
		size = DefaultSize
	case size < 0:
		size = 0
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, max: size, m: make(map[string]memEntry), watchers: make(map[*memWatcher]struct{})}
}

// Get implements [Store].
func (m *MemoryStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	if !ok {
		return nil, ErrCacheMiss
	}
	return append([]byte(nil), e.data...), nil
}

// Put implements [Store].
func (m *MemoryStore) Put(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[key]; !ok && m.max > 0 && len(m.m) >= m.max {
		m.makeRoom(now)
	}
	m.m[key] = memEntry{data: append([]byte(nil), data...), exp: now.Add(ttl)}
	return nil
}

// makeRoom drops the expired entries, or else the one expiring soonest. It
// is linear in the size: MemoryStore is meant for tests and single hosts,
// where the internal cache sits in front of it.
func (m *MemoryStore) makeRoom(now time.Time) {
	var victim string
	var first time.Time
	for k, e := range m.m {
		if now.After(e.exp) {
			delete(m.m, k)
			continue
		}
		if victim == "" || e.exp.Before(first) {
			victim, first = k, e.exp
		}
	}
	if len(m.m) >= m.max {
		delete(m.m, victim)
	}
}

// Delete implements [Store].
func (m *MemoryStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
	m.notify(key)
	return nil
}

// Take implements [Store].
func (m *MemoryStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	e, ok := m.live(key)
	delete(m.m, key)
	m.mu.Unlock()
	if !ok {
		return nil, ErrCacheMiss
	}
	m.notify(key)
	return e.data, nil
}

// live returns key's entry unless it is absent or expired; it drops an
// expired one. m.mu is held.
func (m *MemoryStore) live(key string) (memEntry, bool) {
	e, ok := m.m[key]
	if ok && m.now().After(e.exp) {
		delete(m.m, key)
		return memEntry{}, false
	}
	return e, ok
}

// Len returns the number of entries held, expired ones included until they
// are found.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Watch implements [Watcher]. Deletions are reported synchronously, before
// [MemoryStore.Delete] or [MemoryStore.Take] returns; lost is called once,
// when the watch starts, since nothing is lost in process after that.
func (m *MemoryStore) Watch(ctx context.Context, deleted func(key string), lost func()) error {
	w := &memWatcher{deleted: deleted}
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	lost()
	<-ctx.Done()
	m.mu.Lock()
	delete(m.watchers, w)
	m.mu.Unlock()
	return ctx.Err()
}

// notify reports a deletion to the watchers, outside the lock.
func (m *MemoryStore) notify(key string) {
	m.mu.Lock()
	ws := make([]*memWatcher, 0, len(m.watchers))
	for w := range m.watchers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.deleted(key)
	}
}
