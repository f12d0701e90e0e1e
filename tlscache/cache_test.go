package tlscache

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaults(t *testing.T) {
	c := New(nil)
	if got := c.Mode(); got != Server {
		t.Errorf("Mode = %v, want Server", got)
	}
	if got := c.Size(); got != 20480 {
		t.Errorf("Size = %d, want 20480", got)
	}
	if got := c.Timeout(); got != 7200*time.Second {
		t.Errorf("Timeout = %v, want 7200s", got)
	}
	if got := New(&Options{MaxSessions: -1}).Size(); got != 0 {
		t.Errorf("Options.MaxSessions -1: Size = %d, want 0 (no limit)", got)
	}
}

func TestSettersReturnPrevious(t *testing.T) {
	c := New(&Options{Mode: Server, MaxSessions: 10, Timeout: time.Minute})
	if prev := c.SetMode(Off); prev != Server {
		t.Errorf("SetMode(Off) = %v, want Server", prev)
	}
	if prev := c.SetMode(Both | UpdateTime); prev != Off || c.Mode() != Both|UpdateTime {
		t.Errorf("SetMode = %v then Mode = %v", prev, c.Mode())
	}
	if prev := c.SetTimeout(time.Hour); prev != time.Minute || c.Timeout() != time.Hour {
		t.Errorf("SetTimeout = %v then Timeout = %v", prev, c.Timeout())
	}
	if prev := c.SetTimeout(-time.Second); prev != time.Hour || c.Timeout() != time.Hour {
		t.Errorf("negative SetTimeout = %v then Timeout = %v, want it ignored", prev, c.Timeout())
	}
	if prev := c.SetSize(0); prev != 10 || c.Size() != 0 {
		t.Errorf("SetSize(0) = %d then Size = %d", prev, c.Size())
	}
	if prev := c.SetSize(-5); prev != 0 || c.Size() != 0 {
		t.Errorf("SetSize(-5) = %d then Size = %d, want it ignored", prev, c.Size())
	}
}

// After OpenSSL's test/sslapitest.c (execute_test_session): add, re-add,
// replace and remove, with their return values and hook calls.
func TestAddRemoveReturnsAndHooks(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	a := sess("A", 0, time.Hour)
	if !c.Add(a) {
		t.Fatal("first Add = false, want true")
	}
	if c.Add(a) {
		t.Error("re-Add of the same object = true, want false")
	}
	a2 := sess("A", time.Second, time.Hour) // same ID, another object
	if !c.Add(a2) {
		t.Error("Add of another object with the same ID = false, want true (replace)")
	}
	if got := c.Len(); got != 1 {
		t.Errorf("Len after replace = %d, want 1", got)
	}
	if len(log.removed()) != 0 {
		t.Errorf("replace called the remove hook: %v", log.removed())
	}
	if c.Peek([]byte("A")) != a2 {
		t.Error("the replacing session is not the cached one")
	}
	if !c.Remove(a) {
		t.Error("Remove by ID of a cached session = false, want true")
	}
	if a.Resumable() || a2.Resumable() {
		t.Error("Remove left the argument or the removed session resumable")
	}
	if c.Remove(a) {
		t.Error("Remove of an uncached session = true, want false")
	}
	if c.RemoveID([]byte("never")) {
		t.Error("RemoveID of an uncached ID = true, want false")
	}
	want := []string{"A:removed", "A:removed", "never:removed"}
	if diff := cmp.Diff(want, log.removed()); diff != "" {
		t.Errorf("remove hook calls (-want +got):\n%s", diff)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d, want 0", c.Len())
	}
}

func TestRefusedSessions(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	if c.Add(nil) || c.Add(&Session{}) || c.Add(&Session{ID: []byte{}}) {
		t.Error("Add of a nil session or an empty ID = true, want false")
	}
	if c.Remove(&Session{}) || c.RemoveID(nil) {
		t.Error("Remove of an empty ID = true")
	}
	if len(log.removed()) != 0 {
		t.Errorf("remove hook called for an empty ID: %v", log.removed())
	}
	other := New(nil)
	s := sess("X", 0, time.Hour)
	other.Add(s)
	if c.Add(s) {
		t.Error("Add of a session held by another cache = true, want false")
	}
	if c.Len() != 0 || other.Len() != 1 {
		t.Errorf("Len = %d / %d, want 0 / 1", c.Len(), other.Len())
	}
}

func TestAddFillsDefaults(t *testing.T) {
	c, clock, _ := newTestCache(t, Options{Timeout: 90 * time.Second})
	clock.Advance(time.Minute)
	s := &Session{ID: []byte("x")}
	c.Add(s)
	if !s.Created().Equal(epoch.Add(time.Minute)) {
		t.Errorf("Created = %v, want the clock's now %v", s.Created(), epoch.Add(time.Minute))
	}
	if s.Timeout() != 90*time.Second {
		t.Errorf("Timeout = %v, want the cache's 90s", s.Timeout())
	}
	kept := sess("y", 5*time.Second, time.Second)
	c.Add(kept)
	if !kept.Created().Equal(epoch.Add(5*time.Second)) || kept.Timeout() != time.Second {
		t.Errorf("Add changed a set time: %v %v", kept.Created(), kept.Timeout())
	}
}

// After the cache-size checks of OpenSSL's test/sslapitest.c: eight adds of
// increasing expiry into caches of size 1 to 4.
func TestCapacity(t *testing.T) {
	for size := 1; size <= 4; size++ {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			c, _, log := newTestCache(t, Options{MaxSessions: size})
			var added []string
			for i := range 8 {
				id := fmt.Sprintf("s%d", i)
				if !c.Add(sess(id, time.Duration(i)*time.Second, time.Hour)) {
					t.Fatalf("Add(%s) = false", id)
				}
				added = append(added, id)
				if c.Len() > size {
					t.Fatalf("after %d adds Len = %d > size %d", i+1, c.Len(), size)
				}
				// The earliest expiring are evicted: the last `size` remain.
				want := added[max(0, len(added)-size):]
				if diff := cmp.Diff(want, ids(c)); diff != "" {
					t.Fatalf("after adding %s (-want +got):\n%s", id, diff)
				}
				if got, want := c.Stats().CacheFull, int64(max(0, i+1-size)); got != want {
					t.Fatalf("CacheFull = %d, want %d", got, want)
				}
			}
			var evictions []string
			for _, id := range added[:8-size] {
				evictions = append(evictions, id+":evicted")
			}
			if diff := cmp.Diff(evictions, log.removed()); diff != "" {
				t.Errorf("remove hook (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCapacityKeepsSessionBeingAdded(t *testing.T) {
	c, _, _ := newTestCache(t, Options{MaxSessions: 2})
	c.Add(sess("late1", 0, 2*time.Hour))
	c.Add(sess("late2", 0, 3*time.Hour))
	early := sess("early", 0, time.Minute) // expires before both
	if !c.Add(early) {
		t.Fatal("Add = false")
	}
	if diff := cmp.Diff([]string{"early", "late2"}, ids(c)); diff != "" {
		t.Errorf("cached (-want +got):\n%s", diff)
	}
	// An already expired session also survives its own add.
	expired := sess("expired", -3*time.Hour, time.Second)
	c.Add(expired)
	if c.Peek([]byte("expired")) != expired || c.Len() != 2 {
		t.Errorf("expired session not kept by its own add: %v", ids(c))
	}
}

func TestEvictionTiesGoToOldestInsertion(t *testing.T) {
	c, _, _ := newTestCache(t, Options{MaxSessions: 3})
	for _, id := range []string{"first", "second", "third"} {
		c.Add(sess(id, 0, time.Hour))
	}
	c.Add(sess("fourth", 0, time.Hour))
	if diff := cmp.Diff([]string{"fourth", "second", "third"}, ids(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestShrinkEvictsAtOnce(t *testing.T) {
	c, _, log := newTestCache(t, Options{MaxSessions: 10})
	for i := range 5 {
		c.Add(sess(fmt.Sprintf("s%d", i), time.Duration(i)*time.Second, time.Hour))
	}
	c.SetSize(2)
	if diff := cmp.Diff([]string{"s3", "s4"}, ids(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := c.Stats().CacheFull; got != 3 {
		t.Errorf("CacheFull = %d, want 3", got)
	}
	if got := len(log.removed()); got != 3 {
		t.Errorf("remove hook called %d times, want 3", got)
	}
}

// After test_session_timeout in OpenSSL's test/sslapitest.c: three sessions
// expiring early, middle and late, flushed one second before, at and after
// each boundary.
func TestFlushStrictExpiry(t *testing.T) {
	// Created at epoch with timeouts 10s, 20s, 30s.
	boundaries := map[string]time.Duration{"early": 10 * time.Second, "middle": 20 * time.Second, "late": 30 * time.Second}
	tests := []struct {
		at   time.Duration
		kept []string
	}{
		{9 * time.Second, []string{"early", "late", "middle"}},
		{10 * time.Second, []string{"early", "late", "middle"}}, // valid at exactly expiry
		{11 * time.Second, []string{"late", "middle"}},
		{19 * time.Second, []string{"late", "middle"}},
		{20 * time.Second, []string{"late", "middle"}},
		{21 * time.Second, []string{"late"}},
		{29 * time.Second, []string{"late"}},
		{30 * time.Second, []string{"late"}},
		{31 * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			c, _, log := newTestCache(t, Options{})
			all := map[string]*Session{}
			for id, d := range boundaries {
				all[id] = sess(id, 0, d)
				c.Add(all[id])
			}
			n := c.Flush(epoch.Add(tt.at))
			if diff := cmp.Diff(tt.kept, ids(c)); diff != "" {
				t.Fatalf("kept (-want +got):\n%s", diff)
			}
			if n != 3-len(tt.kept) || len(log.removed()) != n {
				t.Errorf("Flush returned %d with %d remove hook calls, want %d", n, len(log.removed()), 3-len(tt.kept))
			}
			if st := c.Stats(); st.Timeouts != 0 {
				t.Errorf("Flush counted Timeouts = %d", st.Timeouts)
			}
			// Re-adding all three inserts the flushed ones and no-ops the rest.
			for id, s := range all {
				wantAdded := !slices.Contains(tt.kept, id)
				if got := c.Add(s); got != wantAdded {
					t.Errorf("re-Add(%s) = %v, want %v", id, got, wantAdded)
				}
			}
			if c.FlushAll() != 3 || c.Len() != 0 {
				t.Errorf("FlushAll left %d sessions", c.Len())
			}
		})
	}
}

func TestFlushZeroTimeRemovesAll(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	c.Add(sess("a", 0, time.Hour))
	c.Add(sess("b", 0, 100*time.Hour))
	if n := c.Flush(time.Time{}); n != 2 || c.Len() != 0 {
		t.Errorf("Flush(zero) = %d, Len %d", n, c.Len())
	}
	if diff := cmp.Diff([]string{"a:flushed", "b:flushed"}, sorted(log.removed())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The three sessions flushed are re-added as new.
	if !c.Add(sess("a", 0, time.Hour)) {
		t.Error("Add after FlushAll = false")
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestUpdateTime(t *testing.T) {
	c, clock, _ := newTestCache(t, Options{Mode: Server | UpdateTime, MaxSessions: 2})
	a := sess("a", 0, time.Minute)
	b := sess("b", 0, 2*time.Minute)
	c.Add(a)
	c.Add(b)
	clock.Advance(10 * time.Minute)
	if c.Add(a) {
		t.Error("re-Add with UpdateTime = true, want false")
	}
	if !a.Created().Equal(clock.Now()) {
		t.Errorf("Created = %v, want now %v", a.Created(), clock.Now())
	}
	// a now expires after b: a full cache evicts b first.
	c.Add(sess("c", 10*time.Minute, time.Hour))
	if diff := cmp.Diff([]string{"a", "c"}, ids(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without UpdateTime, re-adding leaves the time alone.
	c.SetMode(Server)
	clock.Advance(time.Minute)
	c.Add(a)
	if a.Created().Equal(clock.Now()) {
		t.Error("re-Add without UpdateTime moved Created")
	}
	// A new insertion under UpdateTime is also stamped now.
	c.SetMode(Server | UpdateTime)
	d := sess("d", 0, time.Hour)
	c.Add(d)
	if !d.Created().Equal(clock.Now()) {
		t.Errorf("new session under UpdateTime: Created = %v, want now", d.Created())
	}
}

func TestSetCreatedReordersCachedSession(t *testing.T) {
	c, _, _ := newTestCache(t, Options{MaxSessions: 2})
	a := sess("a", 0, time.Minute)
	b := sess("b", 0, time.Hour)
	c.Add(a)
	c.Add(b)
	a.SetCreated(epoch.Add(24 * time.Hour)) // a now expires last
	c.Add(sess("c", 0, 2*time.Hour))
	if diff := cmp.Diff([]string{"a", "c"}, ids(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c.Peek([]byte("c")).SetTimeout(time.Second)
	if n := c.Flush(epoch.Add(time.Minute)); n != 1 || c.Peek([]byte("c")) != nil {
		t.Errorf("SetTimeout was not taken into account by Flush: %v", ids(c))
	}
}

func TestLookupMatrix(t *testing.T) {
	ctxA, ctxB := []byte("vhost-a"), []byte("vhost-b")
	type want struct {
		found bool
		st    Stats
		len   int
		hooks []string
	}
	tests := []struct {
		name    string
		mode    Mode
		cached  *Session // added by hand before the lookup
		hook    *Session // what the get hook returns
		advance time.Duration
		ctx     []byte
		want    want
	}{
		{
			name: "internal hit",
			mode: Server, cached: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{found: true, st: Stats{Number: 1, Hits: 1, InternalHits: 1}, len: 1},
		},
		{
			name: "miss",
			mode: Server, ctx: ctxA,
			want: want{st: Stats{Misses: 1}},
		},
		{
			name: "NoInternalStore with get hook",
			mode: Server | NoInternalStore, hook: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{found: true, st: Stats{Hits: 1, CbHits: 1, Misses: 1, ExternalHits: 1}},
		},
		{
			name: "NoInternal with get hook",
			mode: Server | NoInternal, hook: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{found: true, st: Stats{Hits: 1, CbHits: 1, ExternalHits: 1}},
		},
		{
			name: "get hook result copied in",
			mode: Server, hook: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{found: true, st: Stats{Number: 1, Hits: 1, CbHits: 1, Misses: 1, ExternalHits: 1}, len: 1},
		},
		{
			name: "Off finds a session added by hand",
			mode: Off, cached: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{found: true, st: Stats{Number: 1, Hits: 1, InternalHits: 1}, len: 1},
		},
		{
			name: "expired internal",
			mode: Server, cached: withCtx(sess("id", 0, time.Minute), ctxA), advance: time.Minute + time.Nanosecond, ctx: ctxA,
			want: want{st: Stats{Timeouts: 1}, hooks: []string{"id:expired"}},
		},
		{
			name: "valid at exactly expiry",
			mode: Server, cached: withCtx(sess("id", 0, time.Minute), ctxA), advance: time.Minute, ctx: ctxA,
			want: want{found: true, st: Stats{Number: 1, Hits: 1, InternalHits: 1}, len: 1},
		},
		{
			name: "expired from get hook",
			mode: Server | NoInternal, hook: withCtx(sess("id", 0, time.Minute), ctxA), advance: time.Hour, ctx: ctxA,
			want: want{st: Stats{CbHits: 1, Timeouts: 1}, hooks: []string{"id:expired"}},
		},
		{
			name: "context mismatch keeps the entry",
			mode: Server, cached: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxB,
			want: want{st: Stats{Number: 1, ContextMismatches: 1}, len: 1},
		},
		{
			name: "context mismatch from get hook is copied in and kept",
			mode: Server, hook: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxB,
			want: want{st: Stats{Number: 1, Misses: 1, CbHits: 1, ContextMismatches: 1}, len: 1},
		},
		{
			name: "expired from get hook is copied in, then removed",
			mode: Server, hook: withCtx(sess("id", 0, time.Minute), ctxA), advance: time.Hour, ctx: ctxA,
			want: want{st: Stats{Misses: 1, CbHits: 1, Timeouts: 1}, hooks: []string{"id:expired"}},
		},
		{
			name: "UpdateTime refreshes a get hook result as it is copied in",
			mode: Server | UpdateTime, hook: withCtx(sess("id", 0, time.Minute), ctxA), advance: time.Hour, ctx: ctxA,
			want: want{found: true, st: Stats{Number: 1, Misses: 1, CbHits: 1, Hits: 1, ExternalHits: 1}, len: 1},
		},
		{
			name: "get hook answering for another ID is ignored",
			mode: Server | NoInternal, hook: withCtx(sess("other", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{st: Stats{StoreErrors: 1}},
		},
		{
			name: "not resumable get hook result is ignored",
			mode: Server | NoInternal, hook: notResumable(withCtx(sess("id", 0, time.Hour), ctxA)), ctx: ctxA,
			want: want{},
		},
		{
			name: "NoInternalLookup ignores the internal entry",
			mode: Server | NoInternalLookup, cached: withCtx(sess("id", 0, time.Hour), ctxA), ctx: ctxA,
			want: want{st: Stats{Number: 1}, len: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{}
			if tt.hook != nil {
				opts.GetHook = func(id []byte, take bool) (*Session, error) {
					return tt.hook, nil
				}
			}
			c, clock, log := newTestCache(t, opts)
			c.SetMode(tt.mode)
			if tt.cached != nil {
				c.Add(tt.cached)
			}
			clock.Advance(tt.advance)
			got := c.Lookup([]byte("id"), tt.ctx)
			if (got != nil) != tt.want.found {
				t.Fatalf("Lookup found = %v, want %v", got != nil, tt.want.found)
			}
			if diff := cmp.Diff(tt.want.st, c.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if c.Len() != tt.want.len {
				t.Errorf("Len = %d, want %d", c.Len(), tt.want.len)
			}
			if diff := cmp.Diff(tt.want.hooks, log.removed()); diff != "" {
				t.Errorf("remove hook (-want +got):\n%s", diff)
			}
		})
	}
}

func withCtx(s *Session, ctx []byte) *Session { s.IDContext = ctx; return s }

func notResumable(s *Session) *Session { s.notResumable.Store(true); return s }

func TestGetHookErrors(t *testing.T) {
	failing := errors.New("store down")
	var calls int
	c, _, _ := newTestCache(t, Options{GetHook: func(id []byte, take bool) (*Session, error) {
		calls++
		if calls == 1 {
			return nil, failing
		}
		return nil, fmt.Errorf("wrapped: %w", ErrCacheMiss)
	}})
	c.Lookup([]byte("a"), nil)
	c.Lookup([]byte("b"), nil)
	if st := c.Stats(); st.StoreErrors != 1 || st.Misses != 2 || st.Hits != 0 {
		t.Errorf("stats = %+v, want StoreErrors 1 (ErrCacheMiss is not an error), Misses 2", st)
	}
}

func TestHookErrorsCount(t *testing.T) {
	fail := func(*Session) error { return errors.New("down") }
	c, _, _ := newTestCache(t, Options{
		NewHook:    fail,
		RemoveHook: func(*Session, Reason) error { return errors.New("down") },
	})
	c.NewSession(Server, sess("a", 0, time.Hour))
	c.RemoveID([]byte("a"))
	if got := c.Stats().StoreErrors; got != 2 {
		t.Errorf("StoreErrors = %d, want 2", got)
	}
}

func TestUpdateTimeOnCopyIn(t *testing.T) {
	external := sess("id", 0, time.Hour)
	c, clock, _ := newTestCache(t, Options{
		Mode:    Server | UpdateTime,
		GetHook: func([]byte, bool) (*Session, error) { return external, nil },
	})
	clock.Advance(30 * time.Minute)
	if c.Lookup([]byte("id"), nil) != external {
		t.Fatal("miss")
	}
	if !external.Created().Equal(clock.Now()) {
		t.Errorf("copy-in under UpdateTime: Created = %v, want now", external.Created())
	}
}

func TestTake(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	s := sess("id", 0, time.Hour)
	c.Add(s)
	if c.Take([]byte("id"), nil) != s {
		t.Fatal("first Take missed")
	}
	if c.Take([]byte("id"), nil) != nil || c.Lookup([]byte("id"), nil) != nil {
		t.Error("a taken session was found again")
	}
	if diff := cmp.Diff([]string{"id:taken"}, log.removed()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 2 || st.Number != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTakeAsksGetHookToTake(t *testing.T) {
	var gotTake []bool
	external := sess("id", 0, time.Hour)
	c, _, _ := newTestCache(t, Options{GetHook: func(id []byte, take bool) (*Session, error) {
		gotTake = append(gotTake, take)
		return external, nil
	}})
	if c.Take([]byte("id"), nil) != external {
		t.Fatal("Take missed")
	}
	if c.Lookup([]byte("id"), nil) != external {
		t.Fatal("Lookup missed")
	}
	if diff := cmp.Diff([]bool{true, false}, gotTake); diff != "" {
		t.Errorf("take flags (-want +got):\n%s", diff)
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d: Take must not copy in, Lookup must", c.Len())
	}
}

func TestNewSessionModes(t *testing.T) {
	tests := []struct {
		mode       Mode
		role       Mode
		wantCached bool
		wantHook   bool
	}{
		{Server, Server, true, true},
		{Server, Client, false, false},
		{Client, Client, true, true},
		{Both, Client, true, true},
		{Off, Server, false, false},
		{Server | NoInternalStore, Server, false, true},
		{Server | NoInternal, Server, false, true},
		{Client | NoInternalStore, Server, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%v", tt.mode, tt.role), func(t *testing.T) {
			c, clock, log := newTestCache(t, Options{Timeout: time.Minute})
			c.SetMode(tt.mode)
			s := &Session{ID: []byte("new")}
			added := c.NewSession(tt.role, s)
			if added != tt.wantCached || (c.Len() == 1) != tt.wantCached {
				t.Errorf("added %v, Len %d; want cached %v", added, c.Len(), tt.wantCached)
			}
			if (len(log.news) == 1) != tt.wantHook {
				t.Errorf("new hook calls %v, want called %v", log.news, tt.wantHook)
			}
			if tt.wantHook && (!s.Created().Equal(clock.Now()) || s.Timeout() != time.Minute) {
				t.Errorf("hook saw Created %v Timeout %v, want defaults", s.Created(), s.Timeout())
			}
		})
	}
}

func TestAutoClear(t *testing.T) {
	for _, tt := range []struct {
		name      string
		mode      Mode
		role      Mode
		wantClear bool
	}{
		{"server", Server, Server, true},
		{"client", Client, Client, true},
		{"NoAutoClear", Server | NoAutoClear, Server, false},
		{"role not in mode", Client, Server, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, clock, _ := newTestCache(t, Options{})
			c.SetMode(tt.mode)
			c.Add(sess("short", 0, time.Minute))
			c.Add(sess("long", 0, time.Hour))
			clock.Advance(10 * time.Minute)
			for range 254 {
				c.HandshakeDone(tt.role)
			}
			if c.Len() != 2 {
				t.Fatalf("cleared before the 255th handshake: %v", ids(c))
			}
			c.HandshakeDone(tt.role)
			want := []string{"long", "short"}
			if tt.wantClear {
				want = []string{"long"}
			}
			if diff := cmp.Diff(want, ids(c)); diff != "" {
				t.Errorf("after 255 handshakes (-want +got):\n%s", diff)
			}
			st := c.Stats()
			if good := st.AcceptGood + st.ConnectGood; good != 255 {
				t.Errorf("good handshakes counted %d, want 255", good)
			}
		})
	}
}

func TestAutoClearEvery255(t *testing.T) {
	c, clock, _ := newTestCache(t, Options{})
	for round := 1; round <= 2; round++ {
		c.Add(sess(fmt.Sprintf("r%d", round), 0, time.Minute))
		clock.Advance(time.Hour)
		for range 254 {
			c.HandshakeDone(Server)
		}
		if c.Len() != 1 {
			t.Fatalf("round %d: cleared early", round)
		}
		c.HandshakeDone(Server)
		if c.Len() != 0 {
			t.Fatalf("round %d: not cleared on handshake %d", round, 255*round)
		}
	}
}

func TestHandshakeCounters(t *testing.T) {
	c := New(nil)
	c.HandshakeStart(Server)
	c.HandshakeStart(Server)
	c.HandshakeDone(Server)
	c.HandshakeStart(Client)
	c.HandshakeDone(Client)
	want := Stats{Accept: 2, AcceptGood: 1, Connect: 1, ConnectGood: 1}
	if diff := cmp.Diff(want, c.Stats()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRemoveFunc(t *testing.T) {
	c, _, log := newTestCache(t, Options{})
	for _, id := range []string{"a1", "a2", "b1"} {
		c.Add(withCtx(sess(id, 0, time.Hour), []byte(id[:1])))
	}
	n := c.RemoveFunc(func(s *Session) bool {
		c.Len() // the predicate may call back into the cache
		return string(s.IDContext) == "a"
	})
	if n != 2 {
		t.Errorf("RemoveFunc = %d, want 2", n)
	}
	if diff := cmp.Diff([]string{"b1"}, ids(c)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a1:removed", "a2:removed"}, sorted(log.removed())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAllListsMetadata(t *testing.T) {
	c, _, _ := newTestCache(t, Options{})
	s := withCtx(sess("id", time.Minute, time.Hour), []byte("ctx"))
	c.Add(s)
	var got []SessionInfo
	for s := range c.All() {
		got = append(got, s.Info())
	}
	want := []SessionInfo{{
		ID: []byte("id"), IDContext: []byte("ctx"),
		Created: epoch.Add(time.Minute), Timeout: time.Hour, Expires: epoch.Add(time.Minute + time.Hour),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHooksMayCallBackIntoCache(t *testing.T) {
	var c *Cache
	c = New(&Options{
		MaxSessions: 1,
		RemoveHook: func(s *Session, _ Reason) error {
			c.Len() // would deadlock if called under the lock
			c.Peek(s.ID)
			return nil
		},
		NewHook: func(s *Session) error { c.Stats(); return nil },
	})
	c.NewSession(Server, &Session{ID: []byte("a")})
	c.NewSession(Server, &Session{ID: []byte("b")}) // evicts a
	c.RemoveID([]byte("b"))
	c.FlushAll()
}
