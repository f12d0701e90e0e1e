package integration_test

import (
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

// silentAfterHello is a client connection that sends its ClientHello and
// then nothing: its handshake never completes on the server, which issues a
// TLS 1.3 ticket anyway, before it reads the client's Finished.
type silentAfterHello struct {
	net.Conn
	wrote bool
}

func (c *silentAfterHello) Write(b []byte) (int, error) {
	if c.wrote {
		return len(b), nil // dropped
	}
	c.wrote = true
	return c.Conn.Write(b)
}

// A flood of TLS 1.3 handshakes that never complete, many times the cache's
// size, leaves every established session resumable: the tickets of those
// handshakes are probationary and evict only each other. TLSCACHE_FLOOD sets
// a larger flood.
func TestFloodOfUnfinishedHandshakes(t *testing.T) {
	const (
		size        = 64
		established = 24
	)
	flood := 16 * size
	if n, err := strconv.Atoi(os.Getenv("TLSCACHE_FLOOD")); err == nil && n > flood {
		flood = n // the figure: TLSCACHE_FLOOD=20000
	}
	p := thePKI(t)
	cache := tlscache.New(&tlscache.Options{MaxSessions: size})
	s := startServer(t, serverConfig(tls.VersionTLS13, p.leaf(t, "localhost")), cache, nil, untracked)

	// Established clients: a full handshake, then a resumption (which
	// makes the session they now hold established).
	clients := make([]*tls.Config, established)
	for i := range clients {
		clients[i] = clientConfig(t, tls.VersionTLS13, "localhost", tls.NewLRUClientSessionCache(1))
		dial(t, s.addr, clients[i])
		if !dial(t, s.addr, clients[i]).DidResume {
			t.Fatalf("client %d did not resume before the flood", i)
		}
	}
	before := cache.Stats()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, flood)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < flood; i += 4 {
				raw, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				raw.SetDeadline(time.Now().Add(5 * time.Second))
				// An empty session cache, so that the hello asks for a
				// ticket (psk_key_exchange_modes) and offers none.
				cfg := clientConfig(t, tls.VersionTLS13, "localhost", tls.NewLRUClientSessionCache(1))
				c := tls.Client(&silentAfterHello{Conn: raw}, cfg)
				if err := c.Handshake(); err != nil { // completes on the client's side only
					errs <- err
				}
				raw.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("flood client: %v", err)
	}
	// Every flood handshake was accepted and issued a ticket before it
	// failed; wait until the server has seen them all.
	testwait.For(t, "the server to see the flood", 10*time.Second, func() bool {
		return cache.Stats().Accept-before.Accept >= int64(flood)
	})
	st := cache.Stats()
	t.Logf("flood of %d unfinished handshakes in %v: cache %d/%d, evicted %d, refused %d, accepted %d, completed %d",
		flood, time.Since(start).Round(time.Millisecond), st.Number, size, st.CacheFull-before.CacheFull,
		st.Refused, st.Accept-before.Accept, st.AcceptGood-before.AcceptGood)
	if st.Number != size || st.CacheFull-before.CacheFull < int64(flood-size) {
		t.Fatalf("the flood did not fill the cache: %+v", st)
	}

	for i, cfg := range clients {
		if !dial(t, s.addr, cfg).DidResume {
			t.Errorf("established client %d no longer resumes after the flood", i)
		}
	}
}
