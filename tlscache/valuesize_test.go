package tlscache

import "testing"

// A session kept as a Value alone is charged its ValueSize: the byte budget
// and MaxSessionBytes bound it as if it had a State that long.
func TestValueSizeCharged(t *testing.T) {
	c := New(&Options{Mode: Client, MaxSessionBytes: 1000})
	lazy := &Session{ID: []byte("a"), Value: 1, ValueSize: 500}
	if !c.Add(lazy) {
		t.Fatal("Add refused a session within MaxSessionBytes")
	}
	if got, want := c.Bytes(), charge(1, 0, 500); got != want {
		t.Errorf("Bytes %d, want %d: ValueSize not charged", got, want)
	}
	if c.Add(&Session{ID: []byte("b"), Value: 1, ValueSize: 2000}) || c.Stats().TooLarge != 1 {
		t.Error("a ValueSize above MaxSessionBytes was cached")
	}
	// With a State, ValueSize is ignored.
	if !c.Add(&Session{ID: []byte("c"), State: make([]byte, 10), Value: 1, ValueSize: 2000}) {
		t.Error("ValueSize counted for a session with a State")
	}
	if got, want := c.Bytes(), charge(1, 0, 500)+charge(1, 0, 10); got != want {
		t.Errorf("Bytes %d, want %d", got, want)
	}
	c.Remove(lazy)
	c.RemoveID([]byte("c"))
	if c.Bytes() != 0 {
		t.Errorf("Bytes %d after removing every session, want 0", c.Bytes())
	}
}

func TestHasHooks(t *testing.T) {
	if New(nil).HasHooks() {
		t.Error("a cache without hooks has hooks")
	}
	for i, o := range []*Options{
		{NewHook: func(*Session) error { return nil }},
		{GetHook: func([]byte, bool) (*Session, error) { return nil, nil }},
		{RemoveHook: func(*Session, Reason) error { return nil }},
	} {
		if !New(o).HasHooks() {
			t.Errorf("cache %d: HasHooks false", i)
		}
	}
}
