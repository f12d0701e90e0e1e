package adapter

import (
	"crypto/tls"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// realClientState returns a client session from a real handshake.
func realClientState(t *testing.T) *tls.ClientSessionState {
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
		t.Fatal(err)
	}
	lru := tls.NewLRUClientSessionCache(1)
	client.ClientSessionCache = lru
	pipeHandshake(t, server, client)
	cs, ok := lru.Get("example.com")
	if !ok {
		t.Fatal("no client session")
	}
	return cs
}

func TestClientPutNil(t *testing.T) {
	cs := realClientState(t)
	var removed []string
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Client, MaxSessions: 2, RemoveHook: func(s *tlscache.Session, _ tlscache.Reason) error {
		removed = append(removed, string(s.ID))
		return nil
	}})
	cc := NewClientCache(cache, nil)
	cc.Put("a", cs)
	cc.Put("b", cs)
	cc.Put("absent", nil)
	if cache.Len() != 2 || cache.Stats().CacheFull != 0 {
		t.Fatalf("Put(absent, nil) inserted or evicted: Len %d, CacheFull %d", cache.Len(), cache.Stats().CacheFull)
	}
	cc.Put("a", nil)
	if cache.Peek([]byte("a")) != nil || cache.Peek([]byte("b")) == nil {
		t.Error("Put(a, nil) did not delete a alone")
	}
	if len(removed) != 2 || removed[0] != "absent" || removed[1] != "a" {
		t.Errorf("remove hook saw %q, want absent then a", removed)
	}
}

// With single use, the ticket Get handed out is gone already: a failed
// resumption's Put(key, nil) keeps the key's other tickets.
func TestClientSingleUsePutNilKeepsSpares(t *testing.T) {
	cs := realClientState(t)
	cc := NewClientCache(nil, &ClientOptions{SingleUse: true, TicketsPerKey: 3})
	for range 3 {
		cc.Put("example.com", cs)
	}
	if got := cc.Cache().Len(); got != 3 {
		t.Fatalf("%d tickets kept, want 3", got)
	}
	if _, ok := cc.Get("example.com"); !ok {
		t.Fatal("Get missed")
	}
	cc.Put("example.com", nil)
	if got := cc.Cache().Len(); got != 2 {
		t.Errorf("%d tickets left after a failed resumption, want the 2 spares", got)
	}
	// More tickets than slots replace the one expiring first.
	for range 5 {
		cc.Put("example.com", cs)
	}
	if got := cc.Cache().Len(); got != 3 {
		t.Errorf("%d tickets kept, want 3", got)
	}
}

func TestTicketsPerKeyIsCapped(t *testing.T) {
	cc := NewClientCache(nil, &ClientOptions{SingleUse: true, TicketsPerKey: 10_000})
	if cc.opts.TicketsPerKey != MaxTicketsPerKey {
		t.Errorf("TicketsPerKey = %d, want %d", cc.opts.TicketsPerKey, MaxTicketsPerKey)
	}
	seen := map[string]bool{}
	for slot := range cc.opts.TicketsPerKey {
		id := string(cc.slotID("k", slot))
		if seen[id] {
			t.Fatalf("slot %d repeats an ID", slot)
		}
		seen[id] = true
	}
}

// The client's new hook follows OpenSSL: it fires for a full handshake's
// session and for every TLS 1.3 ticket, not for the ticket a server
// re-issues after a TLS 1.2 resumption; that ticket still replaces the
// cached one, so resumption goes on.
func TestClientNewHookSkipsTLS12Resumptions(t *testing.T) {
	for _, tt := range []struct {
		name      string
		version   uint16
		adapter   bool // the server runs the adapter (same identity re-issued) or stock tickets (a new one)
		wantHooks int
	}{
		{"TLS12 adapter server", tls.VersionTLS12, true, 1},
		{"TLS12 stock server", tls.VersionTLS12, false, 1},
		{"TLS13 stock server", tls.VersionTLS13, false, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server, client := testConfigs(t, tt.version)
			if tt.adapter {
				if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
					t.Fatal(err)
				}
			}
			var hooks int
			cache := tlscache.New(&tlscache.Options{Mode: tlscache.Client, NewHook: func(*tlscache.Session) error {
				hooks++
				return nil
			}})
			cc := NewClientCache(cache, nil)
			cc.Install(client)
			if pipeHandshake(t, server, client).DidResume {
				t.Fatal("the first handshake resumed")
			}
			var tickets []string
			for i := range 3 {
				if !pipeHandshake(t, server, client).DidResume {
					t.Fatalf("resumption %d failed", i+1)
				}
				for s := range cache.All() {
					tickets = append(tickets, string(s.State))
				}
			}
			if hooks != tt.wantHooks {
				t.Errorf("new hook fired %d times for 1 full handshake and 3 resumptions, want %d", hooks, tt.wantHooks)
			}
			if cache.Len() != 1 {
				t.Errorf("%d sessions cached, want 1", cache.Len())
			}
			if !tt.adapter && tt.version == tls.VersionTLS12 && tickets[0] == tickets[2] {
				t.Error("the re-issued ticket did not replace the cached one")
			}
		})
	}
}
