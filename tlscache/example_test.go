package tlscache_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// Add and Remove behave as SSL_CTX_add_session and SSL_CTX_remove_session.
func ExampleCache_Add() {
	cache := tlscache.New(nil)
	s := &tlscache.Session{ID: []byte("session-1"), State: []byte("secret state")}

	fmt.Println("add:", cache.Add(s))
	fmt.Println("add again:", cache.Add(s)) // the very same object: a no-op
	fmt.Println("replace:", cache.Add(&tlscache.Session{ID: []byte("session-1")}))
	fmt.Println("len:", cache.Len())
	fmt.Println("remove:", cache.Remove(s)) // by ID
	fmt.Println("remove again:", cache.Remove(s))
	fmt.Println("resumable:", s.Resumable())
	// Output:
	// add: true
	// add again: false
	// replace: true
	// len: 1
	// remove: true
	// remove again: false
	// resumable: false
}

// With NoInternalStore, handshakes only report their sessions to the new
// hook; the application adds the ones it approves. This is the seed man
// page's use case: full control over which sessions can resume.
func ExampleCache_noInternalStore() {
	var (
		mu      sync.Mutex
		pending = map[string]*tlscache.Session{} // issued, not yet approved
	)
	cache := tlscache.New(&tlscache.Options{
		Mode: tlscache.Server | tlscache.NoInternalStore,
		NewHook: func(s *tlscache.Session) error {
			mu.Lock()
			pending[string(s.ID)] = s
			mu.Unlock()
			return nil
		},
	})

	// A handshake creates a session (the adapter does this in WrapSession).
	cache.NewSession(tlscache.Server, &tlscache.Session{ID: []byte("ticket-1")})
	fmt.Println("resumes before approval:", cache.Lookup([]byte("ticket-1"), nil) != nil)

	// The user logged in: approve the session.
	mu.Lock()
	cache.Add(pending["ticket-1"])
	mu.Unlock()
	fmt.Println("resumes after approval:", cache.Lookup([]byte("ticket-1"), nil) != nil)
	// Output:
	// resumes before approval: false
	// resumes after approval: true
}

// The three hooks plug in an external cache, as OpenSSL's callbacks do. Here
// the external cache is a map of encoded sessions; mode NoInternal uses it
// alone.
func ExampleOptions_externalCache() {
	var (
		mu       sync.Mutex
		external = map[string][]byte{}
	)
	cache := tlscache.New(&tlscache.Options{
		Mode: tlscache.Server | tlscache.NoInternal,
		NewHook: func(s *tlscache.Session) error {
			b, err := s.MarshalBinary()
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			external[string(s.ID)] = b
			return nil
		},
		GetHook: func(id []byte, take bool) (*tlscache.Session, error) {
			mu.Lock()
			b, ok := external[string(id)]
			if take {
				delete(external, string(id))
			}
			mu.Unlock()
			if !ok {
				return nil, tlscache.ErrCacheMiss
			}
			s := new(tlscache.Session)
			return s, s.UnmarshalBinary(b)
		},
		RemoveHook: func(s *tlscache.Session, why tlscache.Reason) error {
			mu.Lock()
			delete(external, string(s.ID))
			mu.Unlock()
			return nil
		},
	})

	cache.NewSession(tlscache.Server, &tlscache.Session{ID: []byte("t1"), State: []byte("state")})
	s := cache.Lookup([]byte("t1"), nil)
	fmt.Printf("found %q in the external cache; internal holds %d\n", s.State, cache.Len())
	cache.RemoveID([]byte("t1"))
	fmt.Println("after remove:", cache.Lookup([]byte("t1"), nil) != nil)
	st := cache.Stats()
	fmt.Printf("hits=%d cb_hits=%d misses=%d\n", st.Hits, st.CbHits, st.Misses)
	// Output:
	// found "state" in the external cache; internal holds 0
	// after remove: false
	// hits=1 cb_hits=1 misses=0
}

// Flush removes the sessions expired at a given time.
func ExampleCache_Flush() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cache := tlscache.New(&tlscache.Options{Now: func() time.Time { return now }})
	cache.Add(&tlscache.Session{ID: []byte("short")})
	short := cache.Peek([]byte("short"))
	short.SetTimeout(time.Minute)
	cache.Add(&tlscache.Session{ID: []byte("long")}) // the default 7200 s

	fmt.Println("flushed at expiry:", cache.Flush(now.Add(time.Minute)))
	fmt.Println("flushed a second later:", cache.Flush(now.Add(time.Minute+time.Second)))
	fmt.Println("left:", cache.Len())
	// Output:
	// flushed at expiry: 0
	// flushed a second later: 1
	// left: 1
}
