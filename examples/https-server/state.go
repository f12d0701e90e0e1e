package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// state is -state FILE: the server's sessions saved at shutdown and loaded
// (and the file removed) at start, so that a restart or a deploy costs its
// clients no full handshakes, and a crash never brings back a session
// revoked since the save. The file is sealed with the fleet's keys (-seal-keys), or
// without them with a key of its own kept in FILE.key (mode 0600).
type state struct {
	path string
	keys []fleet.Key
}

// openState loads the sessions of path into cache, and removes the file. A
// missing file is a first start; a file that is not a session file refuses
// the start, so that the shutdown does not overwrite what an operator may
// want to keep.
func openState(log *slog.Logger, path, keysFile string, cache *tlscache.Cache) (*state, error) {
	keys, err := sealKeys(keysFile)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if keys, err = stateKey(path + ".key"); err != nil {
			return nil, err
		}
	}
	n, err := fleet.LoadSessions(path, cache, keys)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("state", "file", path, "sessions_loaded", 0, "note", "no saved sessions yet")
	case errors.Is(err, fleet.ErrUnsealed): // some sealed with a key no longer in the keyring
		log.Warn("state", "file", path, "sessions_loaded", n, "err", err)
	case err != nil:
		return nil, fmt.Errorf("-state: %w (move the file away to start without it)", err)
	default:
		log.Info("state", "file", path, "sessions_loaded", n)
	}
	// The file is good for this start only: left in place, a crash
	// (no shutdown to save over it) would bring back at the next start the
	// sessions removed or revoked meanwhile. Fail closed: a crash loses the
	// sessions instead.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("-state: %w (a crash would bring back sessions revoked after this start)", err)
	}
	return &state{path: path, keys: keys}, nil
}

// save writes cache's sessions to the state file.
func (s *state) save(log *slog.Logger, cache *tlscache.Cache) error {
	if err := fleet.SaveSessions(s.path, cache, s.keys); err != nil {
		return fmt.Errorf("-state: %w", err)
	}
	log.Info("state saved", "file", s.path, "sessions", cache.Len())
	return nil
}

// stateKey reads the key of path, making it on first use.
func stateKey(path string) ([]fleet.Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := fleet.GenerateKey()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("-state: %w", err)
		}
		_, err = f.WriteString(k.Secret() + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("-state: %w", err)
		}
		return []fleet.Key{k}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("-state: %w", err)
	}
	keys, err := fleet.ParseKeys(string(b))
	if err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("-state: key file %s: %v", path, err)
	}
	return keys, nil
}
