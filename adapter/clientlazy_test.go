package adapter

import (
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// Without hooks and a session file, Put keeps the *tls.ClientSessionState
// alone: no encoding (16 allocations when it encoded eagerly), and Get,
// Export and ExportAll still work from the Value.
func TestClientPutEncodesLazily(t *testing.T) {
	cs := realClientState(t)
	cc := NewClientCache(nil, nil)
	allocs := testing.AllocsPerRun(100, func() { cc.Put("example.com", cs) })
	if allocs > 4 {
		t.Errorf("Put allocates %.0f times without hooks, want <= 4 (no encoding)", allocs)
	}
	s := cc.Cache().Peek([]byte("example.com"))
	if s == nil || len(s.State) != 0 || s.Value != cs {
		t.Fatalf("cached session %+v, want the Value alone", s)
	}
	// The byte budget charges an estimate in place of the State.
	want, _ := encodeClientState(cs)
	if b := cc.Cache().Bytes(); b < int64(len(want)) {
		t.Errorf("Bytes %d, less than the %d-byte State the session stands for", b, len(want))
	}
	if got, ok := cc.Get("example.com"); !ok || got != cs {
		t.Fatal("Get missed the lazily kept session")
	}

	exp, err := cc.Export("example.com")
	if err != nil {
		t.Fatal(err)
	}
	other := NewClientCache(nil, nil)
	if err := other.Import(exp); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Get("example.com"); !ok {
		t.Error("the export of a lazily kept session does not resume")
	}
	all, err := cc.ExportAll()
	if err != nil {
		t.Fatal(err)
	}
	third := NewClientCache(nil, nil)
	if n, err := third.ImportAll(all); err != nil || n != 1 {
		t.Fatalf("ImportAll: %d, %v; want 1 session", n, err)
	}
	if s := third.Cache().Peek([]byte("example.com")); s == nil || s.Created() != cc.Cache().Peek([]byte("example.com")).Created() {
		t.Error("ExportAll lost the creation time of a lazily kept session")
	}
	if _, ok := third.Get("example.com"); !ok {
		t.Error("ExportAll's copy of a lazily kept session does not resume")
	}
}

func TestClientSingleUseLazy(t *testing.T) {
	cs := realClientState(t)
	cc := NewClientCache(nil, &ClientOptions{SingleUse: true, TicketsPerKey: 3})
	for range 3 {
		cc.Put("example.com", cs)
	}
	for i := range 3 {
		if got, ok := cc.Get("example.com"); !ok || got != cs {
			t.Fatalf("Get %d missed", i)
		}
	}
	if _, ok := cc.Get("example.com"); ok {
		t.Error("a fourth Get found a ticket: single use reused one")
	}
}

// A cache with a hook gets encoded sessions: the hook reads State.
func TestClientPutEncodesForHooks(t *testing.T) {
	cs := realClientState(t)
	want, err := encodeClientState(cs)
	if err != nil {
		t.Fatal(err)
	}
	var seen []*tlscache.Session
	hooked := []*tlscache.Options{
		{Mode: tlscache.Client, NewHook: func(s *tlscache.Session) error { seen = append(seen, s); return nil }},
		{Mode: tlscache.Client, RemoveHook: func(*tlscache.Session, tlscache.Reason) error { return nil }},
		{Mode: tlscache.Client, GetHook: func([]byte, bool) (*tlscache.Session, error) { return nil, nil }},
	}
	for i, o := range hooked {
		cc := NewClientCache(tlscache.New(o), nil)
		cc.Put("example.com", cs)
		s := cc.Cache().Peek([]byte("example.com"))
		if s == nil || string(s.State) != string(want) {
			t.Errorf("cache %d with a hook: State %d bytes, want the %d-byte encoding", i, len(s.State), len(want))
		}
	}
	if len(seen) != 1 || string(seen[0].State) != string(want) {
		t.Fatalf("new hook saw %d sessions, want one with the encoded State", len(seen))
	}
	if got, err := decodeClientState(seen[0].State); err != nil || got == nil {
		t.Errorf("the new hook's State does not decode: %v", err)
	}
}
