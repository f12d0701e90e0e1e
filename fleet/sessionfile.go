package fleet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/tlscache/tlscache/internal/atomicfile"
	"github.com/tlscache/tlscache/tlscache"
)

// A session file is
//
//	magic (16) | count (4) | count × (key length (2) | key | value length (4) | value)
//
// where key is the session's store key and value the session sealed as a
// Tier seals it for its store.
var fileMagic = []byte("tlscache sess 1\n")

const maxFileSessions = 1 << 24

// ErrInvalidFile is wrapped by the error [LoadSessions] returns for a file
// that is not a session file.
var ErrInvalidFile = errors.New("tlscache/fleet: not a session file")

// SaveSessions writes every session of cache that has not expired to the
// file at path, each sealed with keys[0] as a [Tier] seals what it stores,
// so that a server restarted with [LoadSessions] resumes its clients'
// sessions: a graceful restart or a deploy costs no full handshakes. The
// file is replaced atomically (a temporary file in the same directory,
// synced, then renamed over it) and has mode 0600. Sessions removed or
// revoked before the save are not in it.
func SaveSessions(path string, cache *tlscache.Cache, keys []Key) error {
	if len(keys) == 0 {
		return errors.New("tlscache/fleet: SaveSessions needs a key")
	}
	out := append([]byte(nil), fileMagic...)
	out = append(out, 0, 0, 0, 0)
	n := 0
	now := cache.Now()
	for s := range cache.All() {
		if s.ExpiredAt(now) || !s.Resumable() || len(s.State) == 0 {
			continue // an empty State: a Value alone (an adapter.ClientCache without hooks), nothing to resume
		}
		v, err := seal(keys[0], s)
		if err != nil {
			continue // not storable (an oversized context): a full handshake after the restart
		}
		key := storeKey(s.ID)
		out = binary.BigEndian.AppendUint16(out, uint16(len(key)))
		out = append(out, key...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
		n++
	}
	binary.BigEndian.PutUint32(out[len(fileMagic):], uint32(n))
	if err := atomicfile.Write(path, out, true); err != nil {
		return fmt.Errorf("tlscache/fleet: session file: %w", err)
	}
	return nil
}

// LoadSessions adds the sessions of a file [SaveSessions] wrote to cache
// (without calling its new hook), but those that have expired since, and
// returns how many it added. A file that is not a session file gives an
// error wrapping [ErrInvalidFile] and adds nothing. Sessions sealed with a
// key the keyring lacks (rotated away) or altered are skipped: the others
// are added, and the error, wrapping [ErrUnsealed], says how many did not
// open. A missing file is an error wrapping [os.ErrNotExist].
//
// The file is left as it is. Remove it once loaded, as the example server
// does, unless it is written again before anything is revoked: a server
// that crashes (no shutdown to save over it) would otherwise load it again
// at its next start, sessions removed or revoked since the save included.
func LoadSessions(path string, cache *tlscache.Cache, keys []Key) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("tlscache/fleet: session file: %w", err)
	}
	type record struct {
		key   string
		value []byte
	}
	if !bytes.HasPrefix(b, fileMagic) || len(b) < len(fileMagic)+4 {
		return 0, fmt.Errorf("%w: %s", ErrInvalidFile, path)
	}
	count := binary.BigEndian.Uint32(b[len(fileMagic):])
	if count > maxFileSessions {
		return 0, fmt.Errorf("%w: %d sessions", ErrInvalidFile, count)
	}
	rest := b[len(fileMagic)+4:]
	records := make([]record, 0, min(int(count), len(rest)/6))
	for i := range count {
		if len(rest) < 2 {
			return 0, fmt.Errorf("%w: session %d truncated", ErrInvalidFile, i)
		}
		kl := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+kl+4 {
			return 0, fmt.Errorf("%w: session %d truncated", ErrInvalidFile, i)
		}
		key := string(rest[2 : 2+kl])
		vl := binary.BigEndian.Uint32(rest[2+kl:])
		rest = rest[2+kl+4:]
		if uint64(vl) > uint64(len(rest)) {
			return 0, fmt.Errorf("%w: session %d truncated", ErrInvalidFile, i)
		}
		records = append(records, record{key, rest[:vl]})
		rest = rest[vl:]
	}
	if len(rest) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", ErrInvalidFile, len(rest))
	}
	added, bad := 0, 0
	now := cache.Now()
	for _, r := range records {
		s, err := open(keys, r.key, r.value)
		if err != nil {
			bad++
			continue
		}
		if !s.ExpiredAt(now) && cache.Add(s) {
			added++
		}
	}
	if bad > 0 {
		return added, fmt.Errorf("tlscache/fleet: %d of %d saved sessions skipped: %w", bad, len(records), ErrUnsealed)
	}
	return added, nil
}
