package fleet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a sealing key: 32 bytes, XChaCha20-Poly1305's.
const KeySize = chacha20poly1305.KeySize

// A Key seals and opens the values a Tier writes to its store. Its ID, a
// fingerprint of the secret, travels in every sealed value so that any key
// of a keyring can open it: rotate by putting a new key first on every
// server, and drop the old one once its values have expired.
type Key struct {
	id     [4]byte
	secret [KeySize]byte
}

// NewKey returns the key with this 32-byte secret.
func NewKey(secret []byte) (Key, error) {
	var k Key
	if len(secret) != KeySize {
		return k, fmt.Errorf("fleet: a key is %d bytes, not %d", KeySize, len(secret))
	}
	copy(k.secret[:], secret)
	sum := sha256.Sum256(append([]byte("tlscache fleet key id\x00"), secret...))
	copy(k.id[:], sum[:])
	return k, nil
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
// or an Options does not leak it into logs.
func (k Key) String() string { return "fleet.Key(" + k.ID() + ")" }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// Secret returns the key's secret in the form ParseKeys reads: standard
// base64 of the 32 bytes.
func (k Key) Secret() string { return base64.StdEncoding.EncodeToString(k.secret[:]) }

// ParseKeys reads a keyring: base64-encoded 32-byte secrets separated by
// white space or commas, where '#' starts a comment that runs to the end of
// the line. The first key seals; all of them open. This is the format of a
// key file or of an environment variable (head -c 32 /dev/urandom | base64
// makes one key).
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, field := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			secret, err := base64.StdEncoding.DecodeString(field)
			if err != nil {
				return nil, fmt.Errorf("fleet: line %d: a key is standard base64: %v", n+1, err)
			}
			k, err := NewKey(secret)
			if err != nil {
				return nil, fmt.Errorf("fleet: line %d: %w", n+1, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("fleet: no key found")
	}
	return keys, nil
}
