package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

func testSession(id string) *tlscache.Session {
	s := &tlscache.Session{ID: []byte(id), IDContext: []byte("ctx-" + id), State: []byte("secret state of " + id)}
	s.SetCreated(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	s.SetTimeout(time.Hour)
	return s
}

func TestSealOpen(t *testing.T) {
	k := GenerateKey()
	s := testSession("session-1")
	blob, err := seal(k, s)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, s.State) {
		t.Fatal("the sealed value contains the secret state in clear")
	}
	got, err := open([]Key{k}, storeKey(s.ID), blob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ID, s.ID) || !bytes.Equal(got.IDContext, s.IDContext) || !bytes.Equal(got.State, s.State) ||
		!got.Created().Equal(s.Created()) || got.Timeout() != s.Timeout() {
		t.Fatalf("opened %+v, want %+v", got.Info(), s.Info())
	}
}

// TestOpenRefuses: whatever is not a value sealed for this key by a key of
// the ring is ErrUnsealed.
func TestOpenRefuses(t *testing.T) {
	k, other := GenerateKey(), GenerateKey()
	s := testSession("session-1")
	key := storeKey(s.ID)
	blob, _ := seal(k, s)
	type input struct {
		keys  []Key
		key   string
		value []byte
	}
	cases := map[string]input{
		"another key":       {[]Key{other}, key, blob},
		"another store key": {[]Key{k}, storeKey([]byte("session-2")), blob},
		"empty":             {[]Key{k}, key, nil},
		"plain session": {[]Key{k}, key, func() []byte {
			b, _ := s.MarshalBinary()
			return b
		}()},
	}
	for i := range blob {
		for _, bit := range []byte{0x01, 0x80} {
			v := bytes.Clone(blob)
			v[i] ^= bit
			cases[fmt.Sprintf("byte %d xor %#x", i, bit)] = input{[]Key{k}, key, v}
		}
	}
	for n := range len(blob) {
		cases[fmt.Sprintf("truncated to %d", n)] = input{[]Key{k}, key, blob[:n]}
	}
	for name, c := range cases {
		if got, err := open(c.keys, c.key, c.value); !errors.Is(err, ErrUnsealed) || got != nil {
			t.Errorf("%s: open = %v, %v; want ErrUnsealed", name, got, err)
		}
	}
}

// TestKeyRotation: values sealed under the old key open while it is still
// in the ring, after the new one.
func TestKeyRotation(t *testing.T) {
	oldK, newK := GenerateKey(), GenerateKey()
	s := testSession("rotated")
	blob, _ := seal(oldK, s)
	if _, err := open([]Key{newK, oldK}, storeKey(s.ID), blob); err != nil {
		t.Fatalf("a value of the old key does not open during rotation: %v", err)
	}
	if _, err := open([]Key{newK}, storeKey(s.ID), blob); !errors.Is(err, ErrUnsealed) {
		t.Fatalf("a value of a dropped key opened: %v", err)
	}
}

// TestKeyPrintsNoSecret: printing keys, in any verb, shows IDs only.
func TestKeyPrintsNoSecret(t *testing.T) {
	k := GenerateKey()
	opts := Options{Keys: []Key{k}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, opts)
		if strings.Contains(out, k.Secret()) || !strings.Contains(out, k.ID()) {
			t.Errorf("%s of Options = %s", verb, out)
		}
	}
}

func TestParseKeys(t *testing.T) {
	a, b := GenerateKey(), GenerateKey()
	text := "# fleet keys, newest first\n" + a.Secret() + "  # current\n\n" + b.Secret() + "\n"
	keys, err := ParseKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != a || keys[1] != b {
		t.Fatalf("ParseKeys gave %d keys %v, want [%v %v]", len(keys), keys, a, b)
	}
	if keys, err := ParseKeys(a.Secret() + "," + b.Secret()); err != nil || len(keys) != 2 {
		t.Fatalf("comma-separated: %d keys, %v", len(keys), err)
	}
	for _, bad := range []string{"", "# only a comment", "not base64!", "c2hvcnQ=" /* "short" */} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		}
	}
}

// FuzzOpen: any bytes under any store key either open to the session they
// were sealed for or are ErrUnsealed; never a panic.
func FuzzOpen(f *testing.F) {
	k := fuzzKey(f)
	s := testSession("fuzz")
	blob, _ := seal(k, s)
	f.Add(storeKey(s.ID), blob)
	f.Add("", []byte{})
	f.Add(storeKey(s.ID), blob[:len(blob)-1])
	f.Add("00", []byte{1, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		got, err := open([]Key{k}, key, value)
		if err != nil {
			if !errors.Is(err, ErrUnsealed) || got != nil {
				t.Fatalf("open = %v, %v; want nil, ErrUnsealed", got, err)
			}
			return
		}
		if storeKey(got.ID) != key {
			t.Fatalf("opened a session with ID %x under store key %q", got.ID, key)
		}
	})
}
