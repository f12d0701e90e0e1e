package tlscache

import "testing"

// Options{Mode: Off} cannot be told from the zero Options (Off is zero),
// so Off is a field of its own; with it no handshake stores a session and
// a session added by hand still resumes.
func TestOptionsOff(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want Mode
	}{
		{Options{}, Server},
		{Options{Mode: Off}, Server}, // the zero value: the default
		{Options{Off: true}, Off},
		{Options{Off: true, Mode: Both | NoAutoClear}, NoAutoClear},
		{Options{Mode: Client}, Client},
	} {
		if got := New(&tc.opts).Mode(); got != tc.want {
			t.Errorf("New(%+v).Mode() = %v, want %v", tc.opts, got, tc.want)
		}
	}
	c := New(&Options{Off: true})
	s := &Session{ID: []byte("handshake"), IDContext: []byte("ctx")}
	if c.NewSession(Server, s) || c.Len() != 0 {
		t.Fatal("a handshake's session was stored in mode Off")
	}
	byHand := &Session{ID: []byte("by hand"), IDContext: []byte("ctx")}
	if !c.Add(byHand) || c.Lookup(byHand.ID, byHand.IDContext) == nil {
		t.Fatal("a session added by hand does not resume in mode Off")
	}
}

// Every Options field means its default at zero, MaxSessions included;
// SetSize keeps OpenSSL's meaning (0 is no limit).
func TestOptionsMaxSessions(t *testing.T) {
	if got := New(&Options{}).Size(); got != DefaultSize {
		t.Errorf("MaxSessions 0: Size = %d, want DefaultSize %d", got, DefaultSize)
	}
	if got := New(&Options{MaxSessions: -1}).Size(); got != 0 {
		t.Errorf("MaxSessions -1: Size = %d, want 0 (no limit)", got)
	}
	if got := New(&Options{MaxSessions: 7}).Size(); got != 7 {
		t.Errorf("MaxSessions 7: Size = %d", got)
	}
	c := New(&Options{MaxSessions: 7})
	if prev := c.SetSize(0); prev != 7 || c.Size() != 0 {
		t.Errorf("SetSize(0) = %d, then Size = %d; want 7, then 0 (no limit)", prev, c.Size())
	}
}
