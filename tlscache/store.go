package tlscache

import (
	"context"
	"time"
)

// A Store is an external session store, shared by the servers of a fleet:
// bytes under string keys, like [golang.org/x/crypto/acme/autocert.Cache].
// The cache reaches it through its hooks (package fleet builds them, with
// sealing, deadlines and back-off); a Store never sees a [*Session].
//
// Every method takes a context whose deadline the store must honour, and
// must be safe for concurrent use. A key that is absent or expired is
// [ErrCacheMiss], never a nil error with nil data.
type Store interface {
	// Get returns the value stored under key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores data under key for ttl, replacing any value there. A ttl
	// that is not positive stores nothing.
	Put(ctx context.Context, key string, data []byte, ttl time.Duration) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Take is [Store.Get] and [Store.Delete] in one atomic step: of any number
	// of concurrent Takes of one key, across all processes sharing the store,
	// at most one returns the value (single use).
	Take(ctx context.Context, key string) ([]byte, error)
}

// A Watcher is a [Store] that tells each process which keys other processes
// removed, so that a session removed on one server is also dropped from the
// internal cache of every other server (fleet-wide revocation).
type Watcher interface {
	// Watch calls deleted with each key that [Store.Delete] or a successful
	// [Store.Take] removes, in any process, until ctx is done; it then returns
	// ctx.Err(). It calls lost each time the watch starts working: first
	// when it is established, then after every break (the connection to the
	// store dropped and came back). Deletions before a call to lost may have
	// been missed, so the caller drops what it holds. Watch does not return
	// on store errors: it retries until ctx is done.
	Watch(ctx context.Context, deleted func(key string), lost func()) error
}
