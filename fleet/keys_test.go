package fleet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// fuzzKey is a fixed key, so that seeds stay valid from run to run.
func fuzzKey(tb testing.TB) Key {
	sum := sha256.Sum256([]byte("tlscache fleet fuzz key"))
	k, err := NewKey(sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Weak secrets (all zero, a repeated byte or pattern, a word) and a key
// given twice are refused wherever a keyring is made.
func TestWeakAndDuplicateKeysRefused(t *testing.T) {
	for name, secret := range map[string][]byte{
		"all zero":      make([]byte, KeySize),
		"one byte":      bytes.Repeat([]byte{7}, KeySize),
		"a pattern":     bytes.Repeat([]byte("0123456789"), 4)[:KeySize],
		"a short word":  []byte(strings.Repeat("password", 4)),
		"ascii letters": []byte("aaaabbbbccccddddeeeeffffgggghhhh"),
	} {
		if _, err := NewKey(secret); !errors.Is(err, ErrWeakKey) {
			t.Errorf("NewKey(%s) = %v, want ErrWeakKey", name, err)
		}
		if _, err := ParseKeys(GenerateKey().Secret() + "\n" + (Key{secret: [KeySize]byte(secret)}).Secret()); !errors.Is(err, ErrWeakKey) {
			t.Errorf("ParseKeys with a %s key = %v, want ErrWeakKey", name, err)
		}
	}
	a, b := GenerateKey(), GenerateKey()
	if _, err := ParseKeys(a.Secret() + "\n" + b.Secret() + "\n" + a.Secret()); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("ParseKeys with a key twice = %v, want ErrDuplicateKey", err)
	}
	store := tlscache.NewMemoryStore(0, nil)
	for name, keys := range map[string][]Key{"the zero Key": {{}}, "a key twice": {a, b, a}} {
		if _, err := New(store, &Options{Keys: keys}); err == nil {
			t.Errorf("New with %s succeeded", name)
		} else {
			t.Logf("New with %s: %v", name, err)
		}
	}
	if _, err := New(store, &Options{Keys: []Key{a, b}}); err != nil {
		t.Errorf("New with two good keys: %v", err)
	}
	for range 1000 {
		k := GenerateKey()
		if _, err := NewKey(k.secret[:]); err != nil {
			t.Fatalf("a random key refused: %v", err)
		}
	}
}

// FuzzParseKeys: any text is a keyring of strong, distinct keys or an
// error; never a panic.
func FuzzParseKeys(f *testing.F) {
	a, b := fuzzKey(f), GenerateKey()
	f.Add(a.Secret())
	f.Add("# keys\n" + a.Secret() + " # current\n" + b.Secret() + ",\n")
	f.Add(a.Secret() + "," + a.Secret())
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("not base64! #")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeys(text)
		if err != nil {
			if keys != nil {
				t.Fatalf("keys %v with error %v", keys, err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		if err := checkKeyring(keys); err != nil {
			t.Fatalf("ParseKeys returned a keyring New refuses: %v", err)
		}
		for _, k := range keys {
			if strings.Contains(k.String(), k.Secret()) {
				t.Fatal("a key prints its secret")
			}
		}
	})
}
