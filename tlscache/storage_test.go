package tlscache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// handshakeSession is a session as the adapter stores it for a handshake:
// a 16-byte ID, a 32-byte context and a state, no Value.
func handshakeSession(i int, ctx []byte, stateLen int) *Session {
	id := make([]byte, 16)
	binary.BigEndian.PutUint64(id, uint64(i))
	state := bytes.Repeat([]byte{byte(i)}, stateLen)
	return &Session{ID: id, IDContext: ctx, State: state}
}

func heapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// The byte budget bounds the memory the cache holds, whatever the count:
// heap growth after GC stays within MaxBytes, and it is given back by a
// flush.
func TestByteBudgetBoundsHeap(t *testing.T) {
	const budget = 8 << 20
	c := New(&Options{MaxSessions: -1, MaxBytes: budget})
	ctx := bytes.Repeat([]byte("c"), 32)
	before := heapAfterGC()
	const n = 40000 // 40000 * ~1.2 KiB: more than five times the budget
	for i := range n {
		c.NewSession(Server, handshakeSession(i, ctx, 1024))
	}
	after := heapAfterGC()
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	st := c.Stats()
	t.Logf("budget %d: %d sessions cached (%d charged bytes), heap grew %d bytes (%.2f of the budget), %d evicted",
		budget, st.Number, c.Bytes(), growth, float64(growth)/budget, st.CacheFull)
	if c.Bytes() > budget {
		t.Errorf("charged %d bytes, over the budget %d", c.Bytes(), budget)
	}
	if growth > budget {
		t.Errorf("heap grew %d bytes, over the budget %d", growth, budget)
	}
	if st.CacheFull == 0 || st.Number == 0 || int64(st.Number)*1024 < budget/2 {
		t.Errorf("the budget should have evicted and kept about half of it in states: %+v", st)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	c.FlushAll()
	flushed := heapAfterGC()
	if g := int64(flushed.HeapAlloc) - int64(before.HeapAlloc); g > budget/8 {
		t.Errorf("after FlushAll the heap is still %d bytes above where it started", g)
	}
	runtime.KeepAlive(c)
}

// A session above the per-session limit is not cached and is counted; it
// never displaces anything.
func TestMaxSessionBytes(t *testing.T) {
	c, _, log := newTestCache(t, Options{MaxSessions: 2})
	small := sess("small", 0, time.Hour)
	c.Add(small)
	chain := &Session{ID: []byte("big"), State: make([]byte, 236<<10)} // a 236 KiB client chain
	if c.Add(chain) || c.NewSession(Server, chain) {
		t.Fatal("a 236 KiB session was cached; the default limit is 64 KiB")
	}
	st := c.Stats()
	if st.TooLarge != 2 || st.Number != 1 || c.Peek([]byte("small")) != small || len(log.removed()) != 0 {
		t.Fatalf("TooLarge %d, Number %d, removes %v", st.TooLarge, st.Number, log.removed())
	}
	if len(log.news) != 1 {
		t.Errorf("the new hook saw %d sessions, want the large one too", len(log.news))
	}
	tiny := New(&Options{MaxBytes: 1024, MaxSessionBytes: -1}) // the budget alone bounds a session
	tiny.Add(sess("one", 0, time.Hour))
	if tiny.Add(chain) || tiny.Len() != 1 || tiny.Stats().TooLarge != 1 || tiny.Stats().CacheFull != 0 {
		t.Fatalf("a session above the whole budget: Len %d, %+v", tiny.Len(), tiny.Stats())
	}
	big := New(&Options{MaxSessionBytes: 1 << 20})
	if !big.Add(chain) || big.Bytes() < 236<<10 {
		t.Fatalf("with a 1 MiB limit the session is cached: Bytes %d", big.Bytes())
	}
}

// Handshake sessions are kept as bytes: a million of them add no objects
// the garbage collector has to look at, beyond a constant number of
// buffers.
func TestHandshakeSessionsAreNotObjects(t *testing.T) {
	c := New(&Options{MaxSessions: -1, MaxBytes: -1})
	ctx := bytes.Repeat([]byte("c"), 32)
	before := heapAfterGC()
	const n = 100000
	for i := range n {
		c.NewSession(Server, handshakeSession(i, ctx, 57))
	}
	after := heapAfterGC()
	objs := int64(after.HeapObjects) - int64(before.HeapObjects)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d sessions: %d more heap objects, %.1f heap bytes per session", n, objs, float64(heap)/n)
	if objs > 50 {
		t.Errorf("%d sessions added %d heap objects, want a constant handful", n, objs)
	}
	if per := heap / n; per > 250 {
		t.Errorf("%d heap bytes per session, want at most 250", per)
	}
	if c.Len() != n {
		t.Fatalf("Len %d", c.Len())
	}
	runtime.KeepAlive(c)
}

// A copy that stands for a session kept as bytes behaves as that session.
func TestCopiesStandForTheCachedSession(t *testing.T) {
	c, clock, log := newTestCache(t, Options{})
	s := handshakeSession(1, []byte("ctx"), 57)
	if !c.NewSession(Server, s) {
		t.Fatal("NewSession did not add")
	}
	p := c.Peek(s.ID)
	if p == nil || p == s || !bytes.Equal(p.State, s.State) || !bytes.Equal(p.IDContext, s.IDContext) || !p.Created().Equal(clock.Now()) {
		t.Fatalf("Peek = %+v", p)
	}
	if c.Add(p) || c.Add(s) {
		t.Error("Add of the session or of its copy is not a no-op")
	}
	p.SetTimeout(time.Second)
	clock.Advance(2 * time.Second)
	if l := c.Lookup(s.ID, []byte("ctx")); l != nil || c.Len() != 0 {
		t.Fatalf("SetTimeout on the copy did not shorten the cached session: %v, Len %d", l, c.Len())
	}
	if got := log.removed(); len(got) != 1 || got[0] != string(s.ID)+":expired" {
		t.Errorf("removes %q", got)
	}
	if p.Resumable() || s.Resumable() {
		t.Error("the copy and the original are still resumable after the session expired")
	}
}

// A copy handed out before a FlushAll does not stand for a session cached
// after it in the same slot.
func TestCopyStaleAfterFlushAll(t *testing.T) {
	c, _, _ := newTestCache(t, Options{})
	old := handshakeSession(1, nil, 57)
	c.NewSession(Server, old)
	p := c.Peek(old.ID)
	c.FlushAll()
	fresh := handshakeSession(2, nil, 57)
	c.NewSession(Server, fresh) // takes the same slot
	if p.Resumable() {
		t.Error("a copy of a flushed session is resumable")
	}
	if !c.Add(p) || c.Len() != 2 {
		t.Errorf("Add of the stale copy was taken for a no-op (Len %d)", c.Len())
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}

// Sessions of handshakes that never complete cannot evict established
// ones: a flood fills only the probationary share.
func TestProbationProtectsEstablished(t *testing.T) {
	const size = 64
	c, _, _ := newTestCache(t, Options{MaxSessions: size})
	ctx := []byte("ctx")
	var established [][]byte
	for i := range 40 {
		s := handshakeSession(i, ctx, 57)
		c.NewSession(Server, s)
		if c.Lookup(s.ID, ctx) == nil { // the client came back: established
			t.Fatal("lookup missed")
		}
		established = append(established, s.ID)
	}
	manual := sess("manual", 0, 3*DefaultTimeout) // added by hand: established
	c.Add(manual)
	for i := range 20000 {
		c.NewSession(Server, handshakeSession(1000+i, ctx, 57))
	}
	st := c.Stats()
	if st.Number != size || st.CacheFull < 20000-size {
		t.Fatalf("Number %d, CacheFull %d: the flood did not fill the cache", st.Number, st.CacheFull)
	}
	for _, id := range established {
		if c.Lookup(id, ctx) == nil {
			t.Fatalf("established session %x evicted by the flood", id)
		}
	}
	if c.Peek([]byte("manual")) != manual {
		t.Fatal("hand-added session evicted by the flood")
	}
	// New sessions still find room, also in a cache full of established
	// ones: promotions keep those to 7/8 of Size.
	for i := range size {
		s := handshakeSession(100000+i, ctx, 57)
		c.NewSession(Server, s)
		c.Lookup(s.ID, ctx)
	}
	c.mu.Lock()
	prot, prob := c.t.n-c.t.nProbe, c.t.nProbe
	c.mu.Unlock()
	if prot > size-size/8 {
		t.Errorf("%d established sessions, over their share of %d", prot, size-size/8)
	}
	s := handshakeSession(999999, ctx, 57)
	if !c.NewSession(Server, s) || c.Stats().Refused != 0 {
		t.Errorf("a new session found no room (established %d, probationary %d, refused %d)", prot, prob, c.Stats().Refused)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}

// Promote before NewSession stores the session established.
func TestPromoteBeforeNewSession(t *testing.T) {
	c, _, _ := newTestCache(t, Options{MaxSessions: 8})
	s := handshakeSession(1, nil, 57)
	if c.Promote(s) {
		t.Error("Promote of a session not cached reported it cached")
	}
	c.NewSession(Server, s)
	for i := range 100 {
		c.NewSession(Server, handshakeSession(10+i, nil, 57))
	}
	if c.Peek(s.ID) == nil {
		t.Fatal("the promoted session was evicted by probationary ones")
	}
	p := handshakeSession(2, nil, 57)
	c.NewSession(Server, p)
	if !c.Promote(p) {
		t.Fatal("Promote of a cached session reported it not cached")
	}
	for i := range 100 {
		c.NewSession(Server, handshakeSession(200+i, nil, 57))
	}
	if c.Peek(p.ID) == nil {
		t.Fatal("the session promoted in the cache was evicted by probationary ones")
	}
}

// notLocked fails the test if the cache's lock is held.
func notLocked(t *testing.T, c *Cache, after string) {
	t.Helper()
	if !c.mu.TryLock() {
		t.Fatalf("after %s the cache lock is held", after)
	}
	c.mu.Unlock()
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Helper()
			t.Errorf("%s did not pass on the hook's panic", what)
		}
	}()
	f()
}

// A hook that panics leaves the cache unlocked and consistent, and the
// other removals of the same operation still reach the remove hook.
func TestPanickingHooks(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	c, clock, _ := newTestCache(t, Options{
		MaxSessions: 3,
		RemoveHook: func(s *Session, why Reason) error {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s:%s", s.ID, why))
			mu.Unlock()
			if bytes.HasPrefix(s.ID, []byte("boom")) {
				panic("remove hook: " + string(s.ID))
			}
			return nil
		},
		NewHook: func(s *Session) error { panic("new hook") },
		GetHook: func(id []byte, take bool) (*Session, error) { panic("get hook") },
	})
	// Eviction in Add.
	c.Add(sess("boom1", 0, time.Minute))
	c.Add(sess("a", 0, time.Hour))
	c.Add(sess("b", 0, time.Hour))
	mustPanic(t, "Add evicting", func() { c.Add(sess("c", 0, time.Hour)) })
	notLocked(t, c, "a panic in an eviction")
	if got := ids(c); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("after the eviction: %v", got)
	}
	// Flush: every removal reaches the hook although two panic.
	c.SetSize(0)
	c.Add(sess("boom2", 0, time.Minute))
	c.Add(sess("boom3", 0, time.Minute))
	c.Add(sess("d", 0, time.Minute))
	mu.Lock()
	seen = nil
	mu.Unlock()
	clock.Advance(2 * time.Minute)
	mustPanic(t, "Flush", func() { c.Flush(clock.Now()) })
	notLocked(t, c, "a panic in Flush")
	mu.Lock()
	if fmt.Sprint(seen) != "[boom2:flushed boom3:flushed d:flushed]" {
		t.Errorf("Flush's removals reached the hook as %v", seen)
	}
	mu.Unlock()
	// Expired at lookup.
	c.Add(sess("boom4", 0, time.Second))
	mustPanic(t, "Lookup of an expired session", func() { c.Lookup([]byte("boom4"), nil) })
	notLocked(t, c, "a panic at an expired lookup")
	if c.Peek([]byte("boom4")) != nil {
		t.Error("the expired session stayed")
	}
	// Take and the get hook.
	c.Add(newSessionAt([]byte("boom5"), nil, nil, clock.Now(), time.Hour))
	mustPanic(t, "Take", func() { c.Take([]byte("boom5"), nil) })
	notLocked(t, c, "a panic in a take's remove hook")
	mustPanic(t, "Lookup with a get hook", func() { c.Lookup([]byte("nowhere"), nil) })
	notLocked(t, c, "a panic in the get hook")
	// The new hook, after the session is stored.
	s := sess("new", 0, time.Hour)
	mustPanic(t, "NewSession", func() { c.NewSession(Server, s) })
	notLocked(t, c, "a panic in the new hook")
	if c.Lookup([]byte("new"), nil) == nil {
		t.Error("the session whose new hook panicked is not cached")
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}

// The cache keys a session by the ID it had at Add: changing the ID
// afterwards (which the docs forbid) breaks nothing.
func TestMutatedIDAfterAdd(t *testing.T) {
	c, clock, log := newTestCache(t, Options{MaxSessions: 2})
	s := sess("orig", 0, time.Minute)
	c.Add(s)
	s.ID[0] = 'X' // in place
	if c.Lookup([]byte("orig"), nil) != s {
		t.Error("not found by the ID it was added with")
	}
	if c.Lookup([]byte("Xrig"), nil) != nil {
		t.Error("found by the mutated ID")
	}
	s.ID = []byte("another") // replaced
	s.SetTimeout(time.Hour)  // moves it, by its slot
	c.Add(sess("b", 0, 30*time.Minute))
	c.Add(sess("c", 0, 30*time.Minute)) // evicts b, the soonest
	if got := fmt.Sprint(ids(c)); got != "[another c]" {
		t.Errorf("cached %s", got)
	}
	clock.Advance(2 * time.Hour)
	if n := c.Flush(clock.Now()); n != 2 || c.Len() != 0 {
		t.Errorf("Flush removed %d, %d left", n, c.Len())
	}
	notLocked(t, c, "removals of a mutated session")
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if len(log.removed()) != 3 {
		t.Errorf("removes %v", log.removed())
	}
}

// Concurrent adds, lookups, takes, removals, promotions and flushes over
// sessions kept as bytes and as objects keep the table consistent (run
// with -race).
func TestConcurrentStorage(t *testing.T) {
	c := New(&Options{MaxSessions: 300, MaxBytes: 64 << 10})
	ctx := []byte("ctx")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				k := g*100000 + i
				s := handshakeSession(k%700, ctx, 57+k%300)
				switch k % 7 {
				case 0:
					c.Add(s)
				case 1:
					c.Take(s.ID, ctx)
				case 2:
					if l := c.Lookup(s.ID, ctx); l != nil {
						l.SetTimeout(time.Duration(k) * time.Second)
					}
				case 3:
					c.RemoveID(s.ID)
				case 4:
					if i%100 == 0 {
						c.RemoveFunc(func(s *Session) bool { return s.ID[7]%5 == 0 })
					}
				default:
					c.NewSession(Server, s)
					if k%3 == 0 {
						c.Promote(s)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if c.Len() > 300 || c.Bytes() > 64<<10 {
		t.Fatalf("Len %d, Bytes %d over the limits", c.Len(), c.Bytes())
	}
}

// Eviction follows expiry order (ties: insertion order) whatever mix of
// timeouts, creation times and changes: a model with a sorted list agrees
// with the queues and the heap.
func TestEvictionOrderModel(t *testing.T) {
	type model struct {
		id       string
		exp, seq int64
		s        *Session
	}
	const size = 20
	c, _, _ := newTestCache(t, Options{MaxSessions: size})
	var m []*model
	seq := int64(0)
	r := uint64(42)
	rnd := func(n int) int {
		r = r*6364136223846793005 + 1442695040888963407
		return int(r>>33) % n
	}
	timeouts := []time.Duration{time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 5 * time.Hour, 7 * time.Hour}
	for step := range 20000 {
		switch op := rnd(10); {
		case op < 6: // add
			created := time.Duration(step+rnd(3)-1) * time.Second // mostly in order
			s := sess(fmt.Sprint("s", step), created, timeouts[rnd(len(timeouts))])
			if len(m) == size {
				v := 0
				for i, x := range m {
					if x.exp < m[v].exp || (x.exp == m[v].exp && x.seq < m[v].seq) {
						v = i
					}
				}
				m = append(m[:v], m[v+1:]...)
			}
			seq++
			c.Add(s)
			m = append(m, &model{id: string(s.ID), exp: s.expiry(), seq: seq, s: s})
		case op < 8 && len(m) > 0: // change a time
			x := m[rnd(len(m))]
			if rnd(2) == 0 {
				x.s.SetTimeout(timeouts[rnd(len(timeouts))])
			} else {
				x.s.SetCreated(epoch.Add(time.Duration(step-rnd(100)) * time.Second))
			}
			x.exp = x.s.expiry()
		case len(m) > 0: // remove
			i := rnd(len(m))
			c.Remove(m[i].s)
			m = append(m[:i], m[i+1:]...)
		}
		if c.Len() != len(m) {
			t.Fatalf("step %d: Len %d, model %d", step, c.Len(), len(m))
		}
		for _, x := range m {
			if c.Peek([]byte(x.id)) != x.s {
				t.Fatalf("step %d: %s evicted, the model keeps it", step, x.id)
			}
		}
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}
