package fleet_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/loopback"
	"github.com/tlscache/tlscache/internal/testcert"
	"github.com/tlscache/tlscache/tlscache"
)

// A server restarted with the sessions it saved resumes its clients.
func TestSessionsSurviveRestart(t *testing.T) {
	cert, pool := testcert.SelfSigned("localhost")
	keys := []fleet.Key{fleet.GenerateKey()}
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "sessions")
			// start is one run of the server process: a new cache, a new
			// adapter, a new config.
			start := func() (*tlscache.Cache, *tls.Config) {
				cache := tlscache.New(nil)
				cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
				if err := adapter.NewServer(cache, nil).Install(cfg); err != nil {
					t.Fatal(err)
				}
				return cache, cfg
			}
			client := &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: version,
				ClientSessionCache: tls.NewLRUClientSessionCache(8)}

			cache, server := start()
			if loopback.Connect(t, server, client).DidResume {
				t.Fatal("the first connection resumed")
			}
			if err := fleet.SaveSessions(file, cache, keys); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("session file: %v, %v", fi, err)
			}

			// Without the file, the restarted server makes a full handshake.
			_, fresh := start()
			if loopback.Connect(t, fresh, &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: version,
				ClientSessionCache: cloneOne(t, client)}).DidResume {
				t.Fatal("a server that loaded nothing resumed")
			}

			cache, server = start()
			n, err := fleet.LoadSessions(file, cache, keys)
			if err != nil || n != 1 {
				t.Fatalf("LoadSessions = %d, %v; want 1 session", n, err)
			}
			if !loopback.Connect(t, server, client).DidResume {
				t.Fatal("the restarted server did not resume the saved session")
			}
		})
	}
}

// cloneOne gives a second client the sessions of the first, so that it
// offers the same ticket.
func cloneOne(t *testing.T, client *tls.Config) tls.ClientSessionCache {
	t.Helper()
	cs, ok := client.ClientSessionCache.Get("localhost")
	if !ok {
		t.Fatal("the client has no session")
	}
	c := tls.NewLRUClientSessionCache(1)
	c.Put("localhost", cs)
	return c
}

// What does not open, what is not a session file and what expired are
// refused; the rest loads.
func TestLoadSessionsRefuses(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	keyA, keyB := fleet.GenerateKey(), fleet.GenerateKey()
	cache := tlscache.New(&tlscache.Options{Now: clk.Now, Timeout: time.Hour})
	cache.Add(newSession(clk, "one"))
	cache.Add(newSession(clk, "two"))
	file := filepath.Join(dir, "sessions")
	if err := fleet.SaveSessions(file, cache, []fleet.Key{keyA}); err != nil {
		t.Fatal(err)
	}
	fresh := func() *tlscache.Cache { return tlscache.New(&tlscache.Options{Now: clk.Now}) }

	if n, err := fleet.LoadSessions(file, fresh(), []fleet.Key{keyB}); n != 0 || !errors.Is(err, fleet.ErrUnsealed) {
		t.Errorf("another key: %d, %v; want 0 and ErrUnsealed", n, err)
	}
	if n, err := fleet.LoadSessions(file, fresh(), []fleet.Key{keyB, keyA}); n != 2 || err != nil {
		t.Errorf("a keyring with the old key: %d, %v; want 2", n, err)
	}

	b, _ := os.ReadFile(file)
	for name, junk := range map[string][]byte{
		"empty":     {},
		"magic":     []byte("tlscache sess 1\n"),
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte(nil), b...), 0),
		"foreign":   []byte("-----BEGIN SSL SESSION PARAMETERS-----\n"),
	} {
		bad := filepath.Join(dir, name)
		os.WriteFile(bad, junk, 0o600)
		c := fresh()
		if n, err := fleet.LoadSessions(bad, c, []fleet.Key{keyA}); n != 0 || !errors.Is(err, fleet.ErrInvalidFile) || c.Len() != 0 {
			t.Errorf("%s: %d, %v, Len %d; want 0 and ErrInvalidFile", name, n, err, c.Len())
		}
	}

	// A bit flipped in one value: the other session loads.
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)-1] ^= 1
	os.WriteFile(file, flipped, 0o600)
	if n, err := fleet.LoadSessions(file, fresh(), []fleet.Key{keyA}); n != 1 || !errors.Is(err, fleet.ErrUnsealed) {
		t.Errorf("one value altered: %d, %v; want 1 and ErrUnsealed", n, err)
	}

	os.WriteFile(file, b, 0o600)
	clk.Advance(2 * time.Hour)
	if n, err := fleet.LoadSessions(file, fresh(), []fleet.Key{keyA}); n != 0 || err != nil {
		t.Errorf("after expiry: %d, %v; want 0", n, err)
	}
	if _, err := fleet.LoadSessions(filepath.Join(dir, "missing"), fresh(), []fleet.Key{keyA}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Loading accepts any bytes: an error or sessions, never a panic.
func FuzzLoadSessions(f *testing.F) {
	clk := newClock()
	key := fleet.GenerateKey()
	cache := tlscache.New(&tlscache.Options{Now: clk.Now})
	cache.Add(newSession(clk, "one"))
	file := filepath.Join(f.TempDir(), "seed")
	if err := fleet.SaveSessions(file, cache, []fleet.Key{key}); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(file)
	f.Add(seed)
	f.Add([]byte("tlscache sess 1\n\x00\x00\x00\x01\x00\x02ab\x00\x00\x00\x01x"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "in")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := tlscache.New(&tlscache.Options{Now: clk.Now})
		n, _ := fleet.LoadSessions(p, c, []fleet.Key{key})
		if n != c.Len() {
			t.Fatalf("reported %d sessions, cache holds %d", n, c.Len())
		}
	})
}
