package tlscache

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMarshalRoundTrip(t *testing.T) {
	s := newSessionAt([]byte("id"), []byte("ctx"), []byte("state"), epoch, time.Hour)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Session
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Info(), got.Info()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !bytes.Equal(got.State, s.State) {
		t.Errorf("State = %q", got.State)
	}
	b[len(b)-1] ^= 1 // the copy must not alias the input
	if string(got.State) != "state" {
		t.Error("UnmarshalBinary kept a reference to its input")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := newSessionAt([]byte("id"), nil, []byte("st"), epoch, time.Hour).MarshalBinary()
	negTimeout := bytes.Clone(good)
	negTimeout[2+2+2+2+8] = 0xff
	badFlags := bytes.Clone(good)
	badFlags[1] = 0x80
	unflagged := bytes.Clone(good)
	unflagged[1] = 0
	cases := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"empty ID":       {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"long length":    {1, 0, 0xff, 0xff, 'a'},
		"negative timeo": negTimeout,
		"unknown flags":  badFlags,
		"time, no flag":  unflagged,
	}
	for name, in := range cases {
		var s Session
		if err := s.UnmarshalBinary(in); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("%s: err = %v, want ErrInvalidSession", name, err)
		}
	}
	var cached Session
	cached.ID = []byte("x")
	New(nil).Add(&cached)
	if err := cached.UnmarshalBinary(good); err == nil {
		t.Error("UnmarshalBinary into a cached session succeeded")
	}
}

func TestMarshalKeepsUnsetTime(t *testing.T) {
	b, err := (&Session{ID: []byte("id")}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var s Session
	if err := s.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !s.Created().IsZero() || s.Timeout() != 0 {
		t.Fatalf("unset time and timeout came back as %v and %v", s.Created(), s.Timeout())
	}
	c := New(&Options{Now: func() time.Time { return epoch }})
	c.Add(&s)
	if !s.Created().Equal(epoch) || c.Lookup(s.ID, nil) != &s {
		t.Errorf("a decoded session with an unset time was not stamped now on Add: %v", s.Created())
	}
}

func FuzzUnmarshalSession(f *testing.F) {
	good, _ := newSessionAt([]byte("id"), []byte("ctx"), []byte("state"), epoch, time.Hour).MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 'x', 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Session
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrInvalidSession) {
				t.Fatalf("error %v does not wrap ErrInvalidSession", err)
			}
			return
		}
		// What decodes is canonical: encoding it again gives the input.
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded session does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip changed the encoding:\n in %x\nout %x", data, again)
		}
		// And the decoded session is usable by a cache.
		c := New(&Options{Now: func() time.Time { return epoch }})
		if !c.Add(&s) || c.Peek(s.ID) != &s {
			t.Fatal("decoded session could not be added")
		}
	})
}
