package fleet

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tlscache/tlscache/tlscache"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrUnsealed is the error of a stored value that does not open: made under
// a key the keyring lacks, tampered with, truncated, or not ours at all. It
// is a miss for the handshake, counted in [tlscache.Stats.StoreErrors] and
// [Stats.BadValues].
var ErrUnsealed = errors.New("tlscache/fleet: stored value does not open")

// A sealed value is
//
//	version (1) | key ID (4) | context length (2) | context | nonce (24) | ciphertext
//
// where the ciphertext is XChaCha20-Poly1305 over the session's
// MarshalBinary encoding, with the store key and everything before the
// nonce as additional data: a value moved to another key, or given another
// context, does not open.
const (
	sealVersion = 1
	headerLen   = 1 + 4 + 2
	maxContext  = 1024
)

var adPrefix = []byte("tlscache fleet seal v1\x00")

// storeKey is the key a session is stored under: its ID in hex.
func storeKey(id []byte) string { return hex.EncodeToString(id) }

// seal encrypts s under k, bound to the store key.
func seal(k Key, s *tlscache.Session) ([]byte, error) {
	if len(s.IDContext) > maxContext {
		return nil, fmt.Errorf("tlscache/fleet: session context of %d bytes is over %d", len(s.IDContext), maxContext)
	}
	plain, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	aead, _ := chacha20poly1305.NewX(k.secret[:])
	out := make([]byte, 0, headerLen+len(s.IDContext)+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, k.id[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(s.IDContext)))
	out = append(out, s.IDContext...)
	header := out
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, additionalData(storeKey(s.ID), header)), nil
}

// open decrypts a value read under key with one of keys. It accepts any
// bytes: whatever does not open is ErrUnsealed.
func open(keys []Key, key string, value []byte) (*tlscache.Session, error) {
	if len(value) < headerLen || value[0] != sealVersion {
		return nil, fmt.Errorf("%w: not a sealed session", ErrUnsealed)
	}
	ctxLen := int(binary.BigEndian.Uint16(value[5:7]))
	rest := value[headerLen:]
	if ctxLen > maxContext || len(rest) < ctxLen+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: truncated", ErrUnsealed)
	}
	header := value[:headerLen+ctxLen]
	idContext := rest[:ctxLen]
	nonce := rest[ctxLen : ctxLen+chacha20poly1305.NonceSizeX]
	ciphertext := rest[ctxLen+chacha20poly1305.NonceSizeX:]
	var plain []byte
	known, opened := false, false
	for i := range keys {
		if !bytes.Equal(keys[i].id[:], value[1:5]) {
			continue
		}
		known = true // IDs are 32-bit fingerprints: try every key that matches
		aead, _ := chacha20poly1305.NewX(keys[i].secret[:])
		if p, err := aead.Open(nil, nonce, ciphertext, additionalData(key, header)); err == nil {
			plain, opened = p, true
			break
		}
	}
	if !known {
		return nil, fmt.Errorf("%w: sealed under key %x, which is not in the keyring", ErrUnsealed, value[1:5])
	}
	if !opened {
		return nil, fmt.Errorf("%w: authentication failed", ErrUnsealed)
	}
	s := new(tlscache.Session)
	if err := s.UnmarshalBinary(plain); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsealed, err)
	}
	if !bytes.Equal(s.IDContext, idContext) || storeKey(s.ID) != key {
		return nil, fmt.Errorf("%w: sealed for another session", ErrUnsealed)
	}
	return s, nil
}

func additionalData(key string, header []byte) []byte {
	ad := make([]byte, 0, len(adPrefix)+2+len(key)+len(header))
	ad = append(ad, adPrefix...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(key)))
	ad = append(ad, key...)
	return append(ad, header...)
}
