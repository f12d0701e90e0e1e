package adapter

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// realSessions returns the server and client states of one real TLS 1.3
// session, to seed the fuzzers.
func realSessions(f *testing.F) (serverState []byte, clientExport []byte) {
	server, client := testConfigs(f, tls.VersionTLS13)
	cache := tlscache.New(nil)
	if err := NewServer(cache, nil).Install(server); err != nil {
		f.Fatal(err)
	}
	cc := NewClientCache(nil, nil)
	client.ClientSessionCache = cc
	pipeHandshake(f, server, client)
	for s := range cache.All() {
		serverState = s.State
	}
	exp, err := cc.Export("example.com")
	if err != nil {
		f.Fatal(err)
	}
	return serverState, exp
}

// FuzzUnwrapSession feeds UnwrapSession identities of any length and
// content, with a cached session whose state is also fuzzed: it must never
// fail the handshake (return an error) nor panic, and it may only resume the
// cached identity with a state that parses.
func FuzzUnwrapSession(f *testing.F) {
	state, _ := realSessions(f)
	id := bytes.Repeat([]byte{7}, IDLen)
	f.Add(id, state, "example.com", true)
	f.Add([]byte{}, state, "", false)
	f.Add(append(id, 0), state, "EXAMPLE.COM.", true)
	f.Add(id[:IDLen-1], []byte("garbage"), "example.com", false)
	f.Add(bytes.Repeat([]byte{0xff}, 5000), state, "example.com", true)

	cfg, _ := testConfigs(f, tls.VersionTLS13)
	f.Fuzz(func(t *testing.T, identity, stored []byte, serverName string, tls13 bool) {
		cache := tlscache.New(nil)
		srv := NewServer(cache, nil)
		c := cfg.Clone()
		if err := srv.Install(c); err != nil {
			t.Fatal(err)
		}
		ctx := srv.stateFor(c).contexts().forName("example.com")
		cache.Add(&tlscache.Session{ID: id, IDContext: ctx, State: stored})
		version := uint16(tls.VersionTLS12)
		if tls13 {
			version = tls.VersionTLS13
		}
		ss, err := c.UnwrapSession(identity, tls.ConnectionState{ServerName: serverName, Version: version})
		if err != nil {
			t.Fatalf("UnwrapSession returned an error, which aborts the handshake: %v", err)
		}
		if ss == nil {
			return
		}
		if !bytes.Equal(identity, id) {
			t.Fatalf("resumed identity %x, which was never issued", identity)
		}
		if normalizeName(serverName) != "example.com" {
			t.Fatalf("resumed under server name %q", serverName)
		}
		if _, err := tls.ParseSessionState(stored); err != nil {
			t.Fatalf("resumed a state that does not parse: %v", err)
		}
	})
}

// FuzzClientImport feeds Import and ImportAll bytes of any kind: garbage is
// a clear error that adds nothing, never a panic; what imports is a session
// crypto/tls can use, and exports back to the same bytes.
func FuzzClientImport(f *testing.F) {
	_, exp := realSessions(f)
	f.Add(exp)
	all := append([]byte{exportAllVersion, 0, 0, 0, 1, 0, 0, 0, byte(len(exp))}, exp...)
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cc := NewClientCache(nil, nil)
		err := cc.Import(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidExport) && !errors.Is(err, ErrExpired) {
				t.Fatalf("Import error %v wraps neither ErrInvalidExport nor ErrExpired", err)
			}
			if cc.Cache().Len() != 0 {
				t.Fatal("a failed Import added a session")
			}
		} else {
			var s *tlscache.Session
			for s = range cc.Cache().All() {
			}
			cs, ok := cc.Get(string(s.ID))
			if !ok || cs == nil {
				t.Fatal("imported session cannot be found")
			}
			if _, state, err := cs.ResumptionState(); err != nil || state == nil {
				t.Fatalf("imported session has no resumption state: %v", err)
			}
			// The session exports back to the very bytes imported, but for an
			// unset timeout, which becomes the cache's on import.
			again, err := cc.Export(string(s.ID))
			if err != nil {
				t.Fatal(err)
			}
			var in tlscache.Session
			in.UnmarshalBinary(data)
			if in.Timeout() != 0 && !bytes.Equal(again, data) {
				t.Fatalf("export of an import differs:\n in %x\nout %x", data, again)
			}
			if in.Timeout() == 0 && s.Timeout() != cc.Cache().Timeout() {
				t.Fatalf("unset timeout imported as %v", s.Timeout())
			}
		}
		n, err := NewClientCache(nil, nil).ImportAll(data)
		if err != nil && (n != 0 || !errors.Is(err, ErrInvalidExport)) {
			t.Fatalf("ImportAll = %d, %v", n, err)
		}
	})
}
