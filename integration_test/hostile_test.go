package integration_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/testhello"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

// sendHello writes a raw ClientHello to addr and reads until the server
// closes or stops answering: the server has then processed the hello.
func sendHello(t testing.TB, addr string, h testhello.Hello) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(h.Records()); err != nil {
		t.Fatalf("writing the ClientHello: %v", err)
	}
	// One read: the server's first flight or its alert. Closing then ends
	// the server's handshake (it waits for our Finished).
	c.Read(make([]byte, 1))
}

// waitErrors waits until the server logged n failed handshakes.
func (s *server) waitErrors(t *testing.T, n int) {
	t.Helper()
	testwait.For(t, "the server to finish the handshakes", 20*time.Second, func() bool {
		return len(s.handshakeErrors()) >= n
	})
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// junkName is a server name of 60 KB under domain: a label far above the
// 63 bytes a host name allows, unique per i.
func junkName(i int, domain string) string {
	label := strings.Repeat("a", 60<<10)
	return label[:len(label)-8] + strings.Repeat("b", 8-len(itoa(i))) + itoa(i) + "." + domain
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// listedName returns the server name the listing gives the cached session
// with this ID.
func (s *server) listedName(t *testing.T, id []byte) string {
	t.Helper()
	for _, l := range s.srv.Sessions() {
		if string(l.ID) == string(id) {
			return l.ServerName
		}
	}
	t.Fatalf("session %x is not cached", id)
	return ""
}

// Server names are clients' input: a flood of junk names (60 KB labels,
// valid under the wildcard certificate's rules of crypto/tls) completing
// real handshakes must not grow the heap beyond the sessions themselves,
// and the real name must still be listed afterwards.
func TestJunkServerNameFloodLeavesHeapFlat(t *testing.T) {
	const floods = 300
	p := thePKI(t)
	cache := tlscache.New(nil)
	s := startServer(t, serverConfig(tls.VersionTLS13, p.leaf(t, "*.flood.test")), cache, nil)

	before := heapInUse()
	for i := range floods {
		client := clientConfig(t, tls.VersionTLS13, junkName(i, "flood.test"), tls.NewLRUClientSessionCache(1))
		client.InsecureSkipVerify = true // the point is the server's memory
		dial(t, s.addr, client)
	}
	after := heapInUse()
	grown := int64(after) - int64(before)
	perSession := float64(grown) / floods
	t.Logf("heap %d -> %d bytes after %d handshakes with 60 KB server names: %+d bytes, %.0f per handshake; %d sessions cached",
		before, after, floods, grown, perSession, cache.Len())
	// The cache keeps each session (its state, a few hundred bytes, and
	// its share of the storage's arenas); a name is 61,440 bytes. A bound
	// of 8 KB per handshake is far below one name and above a session.
	if perSession > 8192 {
		t.Errorf("the heap grew by %.0f bytes per junk-name handshake: the names are kept", perSession)
	}

	client := clientConfig(t, tls.VersionTLS13, "www.flood.test", tls.NewLRUClientSessionCache(1))
	dial(t, s.addr, client)
	if got := s.listedName(t, s.onlyIssued(t, floods).ID); got != "www.flood.test" {
		t.Errorf("after the flood the real name's session lists server name %q", got)
	}
}

// With a GetCertificate that refuses unknown names, a ClientHello with a
// junk name and a PSK identity fails; before a certificate was chosen the
// name must not have been recorded.
func TestRefusedServerNamesAreNotKept(t *testing.T) {
	const hellos = 300
	real := thePKI(t).leaf(t, "www.refuse.test")
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hi.ServerName != "www.refuse.test" {
				return nil, errors.New("unknown server name")
			}
			return &real, nil
		},
	}
	s := startServer(t, cfg, tlscache.New(nil), nil)
	before := heapInUse()
	for i := range hellos {
		sendHello(t, s.addr, testhello.Hello{ServerName: junkName(i, "refuse.test"), Identities: [][]byte{make([]byte, 16)}})
	}
	s.waitErrors(t, hellos)
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("heap %d -> %d bytes after %d refused hellos with 60 KB names: %+d bytes, %.0f per hello",
		before, after, hellos, grown, float64(grown)/hellos)
	if perHello := float64(grown) / hellos; perHello > 8192 {
		t.Errorf("each refused hello kept %.0f bytes: its server name is recorded", perHello)
	}
	dial(t, s.addr, clientConfig(t, tls.VersionTLS13, "www.refuse.test", tls.NewLRUClientSessionCache(1)))
	if got := s.listedName(t, s.onlyIssued(t, hellos).ID); got != "www.refuse.test" {
		t.Errorf("the real name's session lists server name %q", got)
	}
}

// countingStore counts the calls a Tier makes to a MemoryStore, and the
// longest key it was asked for.
type countingStore struct {
	*tlscache.MemoryStore
	mu     sync.Mutex
	calls  int
	maxKey int
}

func (c *countingStore) count(key string) {
	c.mu.Lock()
	c.calls++
	c.maxKey = max(c.maxKey, len(key))
	c.mu.Unlock()
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.count(key)
	return c.MemoryStore.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	c.count(key)
	return c.MemoryStore.Put(ctx, key, data, ttl)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.count(key)
	return c.MemoryStore.Delete(ctx, key)
}

func (c *countingStore) Take(ctx context.Context, key string) ([]byte, error) {
	c.count(key)
	return c.MemoryStore.Take(ctx, key)
}

func (c *countingStore) reset() (calls, maxKey int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, maxKey = c.calls, c.maxKey
	c.calls, c.maxKey = 0, 0
	return calls, maxKey
}

// A ClientHello carries up to five PSK identities that crypto/tls passes
// to UnwrapSession one by one: however many and however large, a handshake
// makes at most two store calls, and no identity longer than the server's
// own reaches the store.
func TestHostilePSKIdentitiesMakeAtMostTwoStoreCalls(t *testing.T) {
	for _, single := range []bool{false, true} {
		name := map[bool]string{false: "lookup", true: "single-use"}[single]
		t.Run(name, func(t *testing.T) {
			store := &countingStore{MemoryStore: tlscache.NewMemoryStore(0, nil)}
			tier, err := fleet.New(store, &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}})
			if err != nil {
				t.Fatal(err)
			}
			cache := tlscache.New(tier.Hooks(nil))
			opts := &adapter.ServerOptions{SingleUse: single}
			s := startServer(t, serverConfig(tls.VersionTLS13, thePKI(t).leaf(t, "localhost")), cache, opts)

			large := make([][]byte, 5)
			for i := range large {
				large[i] = make([]byte, 12900)
				rand.Read(large[i])
			}
			small := make([][]byte, 5)
			for i := range small {
				small[i] = make([]byte, 16)
				rand.Read(small[i])
			}
			for i, c := range []struct {
				name string
				ids  [][]byte
			}{{"5 identities of 12.9 KB", large}, {"5 identities of 16 bytes", small}} {
				store.reset()
				const hellos = 10
				for range hellos {
					sendHello(t, s.addr, testhello.Hello{ServerName: "localhost", Identities: c.ids})
				}
				s.waitErrors(t, (i+1)*hellos)
				calls, maxKey := store.reset()
				t.Logf("%s: %d store calls for %d hellos (%.1f per hello), longest key %d bytes", c.name, calls, hellos, float64(calls)/hellos, maxKey)
				if calls > 2*hellos {
					t.Errorf("%s: %d store calls for %d hellos, want at most 2 per hello", c.name, calls, hellos)
				}
				if maxKey > 1024 {
					t.Errorf("%s: a key of %d bytes reached the store", c.name, maxKey)
				}
			}
			// A real client still resumes through the store.
			client := clientConfig(t, tls.VersionTLS13, "localhost", tls.NewLRUClientSessionCache(1))
			dial(t, s.addr, client)
			cache.FlushAll() // the internal tier forgets; the store remembers
			store.reset()
			if !dial(t, s.addr, client).DidResume {
				t.Fatal("a real client did not resume from the store")
			}
			if calls, _ := store.reset(); calls > 2 {
				t.Errorf("a real resumption made %d store calls, want at most 2", calls)
			}
		})
	}
}

// The application owns the configs its GetConfigForClient returns: after
// it drops a CA from one's ClientCAs, the next full handshake with a
// certificate of that CA is refused, as crypto/tls alone refuses it.
func TestDerivedConfigFollowsDroppedClientCA(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		p, other := thePKI(t), newCA("second client CA")
		both := x509.NewCertPool()
		both.AddCert(p.caCert)
		both.AddCert(other.caCert)
		derived := serverConfig(version, p.leaf(t, "localhost"))
		derived.ClientAuth = tls.RequireAndVerifyClientCert
		derived.ClientCAs = both
		var mu sync.Mutex
		base := serverConfig(version, p.leaf(t, "localhost"))
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			return derived, nil
		}
		s := startServer(t, base, tlscache.New(nil), nil)
		clientCert := other.leaf(t, "client of the second CA")
		client := func() *tls.Config {
			c := clientConfig(t, version, "localhost", nil)
			c.Certificates = []tls.Certificate{clientCert}
			return c
		}
		dial(t, s.addr, client()) // accepted: both CAs trusted

		mu.Lock()
		only := x509.NewCertPool()
		only.AddCert(p.caCert)
		derived.ClientCAs = only // the application drops the second CA
		mu.Unlock()

		_, err := tryDial(s.addr, client())
		if err == nil {
			t.Fatal("a certificate of the dropped CA was accepted on a full handshake")
		}
		t.Logf("after dropping the CA: %v", err)
	})
}
