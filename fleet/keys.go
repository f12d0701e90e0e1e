package fleet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a sealing key: 32 bytes, XChaCha20-Poly1305's.
const KeySize = chacha20poly1305.KeySize

// A Key seals and opens the values a [Tier] writes to its store. Its ID, a
// fingerprint of the secret, travels in every sealed value so that any key
// of a keyring can open it: rotate by putting a new key first on every
// server, and drop the old one once its values have expired.
type Key struct {
	id     [4]byte
	secret [KeySize]byte
}

// ErrWeakKey is returned for a secret that cannot be random: all zero, or
// made of fewer than minDistinct different byte values (a repeated
// pattern, a word). Make keys with [GenerateKey] or
// head -c 32 /dev/urandom | base64.
var ErrWeakKey = errors.New("tlscache/fleet: weak key: not 32 random bytes")

// ErrDuplicateKey is returned for a keyring that holds one key twice: a
// copy-paste slip that would hide a missing rotation.
var ErrDuplicateKey = errors.New("tlscache/fleet: the same key twice in a keyring")

// minDistinct is the fewest different byte values a key may hold: 32
// random bytes hold about 30, and fewer than 16 happens with a probability
// far below 2^-64.
const minDistinct = 16

// NewKey returns the key with this 32-byte secret. A weak secret is
// [ErrWeakKey].
func NewKey(secret []byte) (Key, error) {
	var k Key
	if len(secret) != KeySize {
		return k, fmt.Errorf("tlscache/fleet: a key is %d bytes, not %d", KeySize, len(secret))
	}
	if weak(secret) {
		return k, ErrWeakKey
	}
	copy(k.secret[:], secret)
	sum := sha256.Sum256(append([]byte("tlscache fleet key id\x00"), secret...))
	copy(k.id[:], sum[:])
	return k, nil
}

// weak reports whether secret has too few different byte values to be
// random (the all-zero key has one).
func weak(secret []byte) bool {
	var seen [256]bool
	n := 0
	for _, b := range secret {
		if !seen[b] {
			seen[b] = true
			n++
		}
	}
	return n < minDistinct
}

// checkKeyring refuses a keyring with a weak key (such as the zero Key,
// which NewKey never returns) or the same key twice.
func checkKeyring(keys []Key) error {
	seen := make(map[[KeySize]byte]int, len(keys))
	for i, k := range keys {
		if weak(k.secret[:]) {
			return fmt.Errorf("tlscache/fleet: key %d: %w", i+1, ErrWeakKey)
		}
		if j, ok := seen[k.secret]; ok {
			return fmt.Errorf("tlscache/fleet: keys %d and %d: %w", j+1, i+1, ErrDuplicateKey)
		}
		seen[k.secret] = i
	}
	return nil
}

// GenerateKey returns a new random key.
func GenerateKey() Key {
	secret := make([]byte, KeySize)
	rand.Read(secret)
	k, _ := NewKey(secret)
	return k
}

// ID returns the key's public fingerprint, as hex.
func (k Key) ID() string { return hex.EncodeToString(k.id[:]) }

// String names the key by its ID, never its secret, so that printing a Key
// or an [Options] does not leak it into logs.
func (k Key) String() string { return "fleet.Key(" + k.ID() + ")" }

// GoString is [Key.String], for %#v.
func (k Key) GoString() string { return k.String() }

// Secret returns the key's secret in the form [ParseKeys] reads: standard
// base64 of the 32 bytes.
func (k Key) Secret() string { return base64.StdEncoding.EncodeToString(k.secret[:]) }

// ParseKeys reads a keyring: base64-encoded 32-byte secrets separated by
// white space or commas, where '#' starts a comment that runs to the end of
// the line. The first key seals; all of them open. This is the format of a
// key file or of an environment variable (head -c 32 /dev/urandom | base64
// makes one key). A weak key is [ErrWeakKey], a key given twice
// [ErrDuplicateKey].
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, field := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			secret, err := base64.StdEncoding.DecodeString(field)
			if err != nil {
				return nil, fmt.Errorf("tlscache/fleet: line %d: a key is standard base64: %v", n+1, err)
			}
			k, err := NewKey(secret)
			if err != nil {
				return nil, fmt.Errorf("tlscache/fleet: line %d: %w", n+1, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("tlscache/fleet: no key found")
	}
	if err := checkKeyring(keys); err != nil {
		return nil, err
	}
	return keys, nil
}
