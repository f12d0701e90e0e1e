//go:build !race

// The tests of this file make client connections with 0-RTT, on which
// quic-go v0.65.0 has a data race of its own (quic-go/quic-go#4303: the
// client writes the server's transport parameters while a 0-RTT stream
// reads the remembered ones). They run without -race (.ci/run runs them
// so); the server side is race-checked by the tests of server_test.go.

package quicadapter

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

// TestResumeAnd0RTT: over HTTP/3, a second connection resumes from the
// first one's ticket and its request goes in 0-RTT; a tracked connection's
// handler sees the session it resumed from, the one the first connection
// issued.
func TestResumeAnd0RTT(t *testing.T) {
	h := &recorder{}
	s := startH3(t, newServer(nil), nil, h, nil)
	cache := adapter.NewClientCache(nil, nil)
	cfg := clientTLS(cache)

	c1 := dialH3(t, s.addr, cfg)
	if code, _ := c1.do(t, http.MethodGet, "/one"); code != http.StatusOK {
		t.Fatalf("GET /one: %d", code)
	}
	waitTicket(t, cache)
	first := h.seen()[0]
	if first.rec == nil || first.resumed != nil {
		t.Fatalf("first connection: tracked %v, resumed from %x", first.rec != nil, first.resumed)
	}
	issued := first.rec.Issued()
	if len(issued) != 1 {
		t.Fatalf("first connection issued %d sessions, want 1", len(issued))
	}

	c2 := dialH3(t, s.addr, cfg)
	if code, body := c2.do(t, http3.MethodGet0RTT, "/two"); code != http.StatusOK || body != "ok /two" {
		t.Fatalf("GET_0RTT /two: %d %q", code, body)
	}
	st := c2.conn.ConnectionState()
	if !st.TLS.DidResume || !st.Used0RTT {
		t.Fatalf("second connection: resumed %v, 0-RTT %v; want both", st.TLS.DidResume, st.Used0RTT)
	}
	second := h.seen()[1]
	if !bytes.Equal(second.resumed, issued[0].ID) {
		t.Fatalf("second connection's handler: resumed from %x, want the first connection's ticket %x", second.resumed, issued[0].ID)
	}
	if !second.used0RTT {
		t.Fatal("second connection's handler: the server did not accept 0-RTT")
	}
	if got := s.srv.EarlyDataStats(); got != (adapter.EarlyDataStats{Offered: 1, Accepted: 1}) {
		t.Fatalf("EarlyDataStats = %+v, want 1 offered and accepted", got)
	}
	if got := s.qs.Stats(); got != (Stats{Conns: 2, Resumed: 1, Used0RTT: 1}) {
		t.Fatalf("Stats = %+v", got)
	}
	t.Logf("resumed from %s; %+v", hex.EncodeToString(second.resumed), s.srv.Cache().Stats())
}

// ticket returns the export of the ticket of one full handshake with
// addr, and its ID, which h (the server's handler) saw issued.
func ticket(t *testing.T, addr net.Addr, h *recorder) (export, id []byte) {
	t.Helper()
	_, cache := withTicket(t, addr)
	export, err := cache.Export("localhost")
	if err != nil {
		t.Fatal(err)
	}
	all := h.seen()
	issued := all[len(all)-1].rec.Issued()
	if len(issued) != 1 {
		t.Fatalf("the ticket's connection issued %d sessions", len(issued))
	}
	return export, issued[0].ID
}

// offerAtOnce has one client per address offer the exported ticket at
// once, each with a GET in 0-RTT through a RoundTripper, and checks that
// every one gets its answer. It returns how many requests were resent.
func offerAtOnce(t *testing.T, export []byte, addrs []net.Addr, path string) int64 {
	t.Helper()
	var resent atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, addr := range addrs {
		cache := adapter.NewClientCache(nil, nil)
		if err := cache.Import(export); err != nil {
			t.Fatal(err)
		}
		rt := &RoundTripper{TLSClientConfig: clientTLS(cache)}
		t.Cleanup(func() { rt.Close() })
		wg.Go(func() {
			<-start
			url := fmt.Sprintf("https://%s%s?client=%d", addr, path, i)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "ok "+path {
				t.Errorf("client %d: %d %q", i, resp.StatusCode, body)
			}
			resent.Add(rt.Resent())
		})
	}
	close(start)
	wg.Wait()
	return resent.Load()
}

// TestOneTicketEightClients: eight clients offer one ticket at once, each
// with a 0-RTT request. Every client gets its answer; the ticket's early
// data is accepted once (EarlyDataOnce, EarlyDataSingleUse) or never
// (EarlyDataOff), and the others resume without it, or do a full
// handshake when the ticket was single use.
func TestOneTicketEightClients(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		policy adapter.EarlyDataPolicy
		early  int
		stats  adapter.EarlyDataStats
	}{
		{adapter.EarlyDataOnce, 1, adapter.EarlyDataStats{Offered: n, Accepted: 1, Replays: n - 1}},
		{adapter.EarlyDataOff, 0, adapter.EarlyDataStats{Offered: n, Refused: n}},
		{adapter.EarlyDataSingleUse, 1, adapter.EarlyDataStats{Offered: 1, Accepted: 1}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			h := &recorder{}
			s := startH3(t, newServer(&adapter.ServerOptions{EarlyData: tc.policy}), nil, h, nil)
			export, id := ticket(t, s.addr, h)
			addrs := make([]net.Addr, n)
			for i := range addrs {
				addrs[i] = s.addr
			}
			resent := offerAtOnce(t, export, addrs, "/eight")
			got, early := h.count("/eight", id)
			if got != n || early != tc.early {
				t.Fatalf("handler ran %d times, %d of them in 0-RTT; want %d and %d; %+v %+v", got, early, n, tc.early, s.srv.EarlyDataStats(), s.qs.Stats())
			}
			// http3.Transport redials a connection whose 0-RTT was
			// refused once by itself, in 0-RTT again: with the shared
			// ticket (another offer, refused) or with the one the refused
			// connection got (which may be accepted). So the counters are
			// at least the clients'; the shared ticket's early data was
			// accepted once, as the handler saw above.
			st := s.srv.EarlyDataStats()
			if st.Offered < tc.stats.Offered || st.Accepted < tc.stats.Accepted || st.Replays < tc.stats.Replays || st.Refused < tc.stats.Refused ||
				st.Offered != st.Accepted+st.Replays+st.Refused || (tc.policy == adapter.EarlyDataOff && st.Accepted != 0) {
				t.Fatalf("EarlyDataStats = %+v, want at least %+v", st, tc.stats)
			}
			// The connections with 0-RTT: the shared ticket's one, and
			// at most one more per refused client, whose own redial may
			// offer the fresh ticket its refused connection got; none
			// under EarlyDataOff. (The handler's count above is the exact
			// one for the shared ticket.)
			if st := s.qs.Stats(); st.Used0RTT < int64(tc.early) || st.Used0RTT > int64(tc.early)*n ||
				(tc.policy == adapter.EarlyDataOff && st.Used0RTT != 0) {
				t.Fatalf("Stats = %+v, want %d connections with 0-RTT from the shared ticket (and at most %d in all)", st, tc.early, tc.early*n)
			}
			t.Logf("policy %s: %d clients, %d in 0-RTT, %d requests resent; %+v", tc.policy, n, early, resent, s.srv.EarlyDataStats())
		})
	}
}

// TestReplayRunsHandlerOnce records a 0-RTT flight through a UDP proxy and
// replays it byte for byte, from another address, to a second server that
// shares the first one's sessions (a replay to the very server would meet
// the original connection's state, which quic-go keeps for a while). With
// crypto/tls's own tickets the replayed request runs the handler again;
// with the adapter's default policy the replay resumes without early
// data, and the handler has run once.
func TestReplayRunsHandlerOnce(t *testing.T) {
	for _, protected := range []bool{false, true} {
		name := map[bool]string{false: "stdlib-tickets", true: "adapter"}[protected]
		t.Run(name, func(t *testing.T) {
			h := &recorder{}
			var srv *adapter.Server
			if protected {
				srv = newServer(nil)
			}
			tlsConf := serverTLS()
			a := startH3(t, srv, tlsConf, h, nil)
			b := startH3(t, srv, tlsConf, h, nil)
			cfg, _ := withTicket(t, a.addr)

			// The server's replies are held until the request has run, so
			// that the client sends it in 0-RTT, not after the handshake.
			p := startProxy(t, a.addr)
			p.holdReplies()
			c := dialH3(t, p.addr(), cfg)
			str := c.sendEarly(t, http.MethodGet, "/replay")
			testwait.For(t, "the early request at the server", 5*time.Second, func() bool {
				n, _ := h.count("/replay", nil)
				return n == 1
			})
			p.releaseReplies()
			if code := readStatus(t, str); code != http.StatusOK {
				t.Fatalf("GET /replay in early data: %d", code)
			}
			if !c.conn.ConnectionState().Used0RTT {
				t.Fatal("the recorded connection did not use 0-RTT")
			}
			flight := p.takeRecording()
			c.conn.CloseWithError(0, "")

			start := time.Now()
			replay(t, b.addr, flight)
			if !protected {
				testwait.For(t, "the replayed request's handler", 5*time.Second, func() bool {
					n, _ := h.count("/replay", nil)
					return n == 2
				})
				t.Logf("stdlib tickets: %d datagrams replayed, the handler ran again %v later", len(flight), time.Since(start))
				return
			}
			testwait.For(t, "the server to refuse the replay's early data", 5*time.Second, func() bool {
				return srv.EarlyDataStats().Replays == 1
			})
			if n, _ := h.count("/replay", nil); n != 1 {
				t.Fatalf("the handler ran %d times, want once", n)
			}
			st := srv.EarlyDataStats()
			if st != (adapter.EarlyDataStats{Offered: 2, Accepted: 1, Replays: 1}) {
				t.Fatalf("EarlyDataStats = %+v", st)
			}
			t.Logf("adapter: %d datagrams replayed, early data refused as a replay after %v; the handler ran once; %+v", len(flight), time.Since(start), st)
		})
	}
}

// TestTooEarly: a POST that arrives in early data gets 425 Too Early, while
// the server's handshake is held incomplete by the proxy; a GET in early
// data is served; the POST resent after the handshake succeeds, and its
// handler has run once.
func TestTooEarly(t *testing.T) {
	h := &recorder{}
	var arrived atomic.Int64
	tooEarly := adapter.TooEarly(h, nil)
	s := startH3(t, newServer(nil), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		tooEarly.ServeHTTP(w, r)
	}), nil)
	cfg, _ := withTicket(t, s.addr)

	// The client's handshake completion is held back for the whole early
	// phase, and the server's replies until both requests have arrived, so
	// that the client sends both in 0-RTT.
	p := startProxy(t, s.addr)
	p.hold()
	p.holdReplies()
	c := dialH3(t, p.addr(), cfg)
	post := c.sendEarly(t, http.MethodPost, "/transfer")
	get := c.sendEarly(t, http.MethodGet, "/info")
	testwait.For(t, "both early requests at the server", 5*time.Second, func() bool { return arrived.Load() == 3 })
	p.releaseReplies()
	if code := readStatus(t, post); code != http.StatusTooEarly {
		t.Fatalf("POST /transfer in early data: %d, want 425", code)
	}
	if code := readStatus(t, get); code != http.StatusOK {
		t.Fatalf("GET /info in early data: %d, want 200", code)
	}
	p.release()
	<-c.conn.HandshakeComplete()
	if code, body := c.do(t, http.MethodPost, "/transfer"); code != http.StatusOK || body != "ok /transfer" {
		t.Fatalf("POST /transfer after the handshake: %d %q", code, body)
	}
	var transfers, infos []seen
	for _, r := range h.seen() {
		switch r.path {
		case "/transfer":
			transfers = append(transfers, r)
		case "/info":
			infos = append(infos, r)
		}
	}
	if len(transfers) != 1 || transfers[0].early {
		t.Fatalf("the transfer handler ran %d times (%+v), want once after the handshake", len(transfers), transfers)
	}
	if len(infos) != 1 || !infos[0].early || !infos[0].used0RTT {
		t.Fatalf("GET /info: %+v, want one request seen in early data", infos)
	}
}

// sendEarly sends a request at once, whatever its method: in 0-RTT while
// the handshake runs (http3.ClientConn sends only GET_0RTT and HEAD_0RTT
// early; a request stream does not wait for the handshake).
func (c *client) sendEarly(t *testing.T, method, path string) *http3.RequestStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	str, err := c.cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "https://localhost"+path, nil)
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	str.Close()
	return str
}

func readStatus(t *testing.T, str *http3.RequestStream) int {
	t.Helper()
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoginApprovesInEarlyData: with controlled resumption (NoInternalStore),
// a login sent in 0-RTT approves the ticket its connection issues after
// the handshake, and that ticket then resumes.
func TestLoginApprovesInEarlyData(t *testing.T) {
	s, cache, _ := startLogin(t)
	clients := adapter.NewClientCache(nil, nil)
	cfg := clientTLS(clients)

	c := dialH3(t, s.addr, cfg)
	c.do(t, http.MethodGet, "/login") // approves the first ticket
	first := waitTicket(t, clients)
	c = dialH3(t, s.addr, cfg)
	if code, _ := c.do(t, http3.MethodGet0RTT, "/login"); code != http.StatusOK {
		t.Fatalf("GET_0RTT /login: %d", code)
	}
	if st := c.conn.ConnectionState(); !st.TLS.DidResume || !st.Used0RTT {
		t.Fatalf("second connection: resumed %v, 0-RTT %v", st.TLS.DidResume, st.Used0RTT)
	}
	testwait.For(t, "the second connection's ticket in the client", 5*time.Second, func() bool {
		b, err := clients.Export("localhost")
		return err == nil && !bytes.Equal(b, first)
	})
	if cache.Len() != 2 {
		t.Fatalf("%d sessions approved, want 2 (one per login)", cache.Len())
	}
	c = dialQUIC(t, s.addr, cfg, false)
	c.do(t, http.MethodGet, "/after")
	if !c.conn.ConnectionState().TLS.DidResume {
		t.Fatal("the ticket issued after a 0-RTT login did not resume")
	}
}

// TestSettingsChangeRefuses0RTT: a ticket issued under larger HTTP/3
// SETTINGS (a header limit) resumes on a server with smaller ones, but
// without 0-RTT; the server with the same SETTINGS accepts it.
func TestSettingsChangeRefuses0RTT(t *testing.T) {
	srv := newServer(nil)
	h := &recorder{}
	tlsConf := serverTLS()
	a := startH3(t, srv, tlsConf, h, func(h3 *http3.Server) { h3.MaxHeaderBytes = 1 << 20 })
	b := startH3(t, srv, tlsConf, h, func(h3 *http3.Server) { h3.MaxHeaderBytes = 1 << 10 })
	export, _ := ticket(t, a.addr, h)
	for _, tc := range []struct {
		name  string
		addr  net.Addr
		early bool
	}{{"same settings", a.addr, true}, {"smaller header limit", b.addr, false}} {
		cache := adapter.NewClientCache(nil, nil)
		if err := cache.Import(export); err != nil {
			t.Fatal(err)
		}
		rt := &RoundTripper{TLSClientConfig: clientTLS(cache)}
		t.Cleanup(func() { rt.Close() })
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s/s", tc.addr), nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		all := h.seen()
		last := all[len(all)-1]
		if last.resumed == nil || last.used0RTT != tc.early {
			t.Fatalf("%s: resumed %v, 0-RTT %v; want resumed, 0-RTT %v", tc.name, last.resumed != nil, last.used0RTT, tc.early)
		}
	}
}

// TestFleetEarlyDataOnce: two servers with caches of their own on one real
// Redis, claiming early data through their fleet tiers; a ticket one of
// them issued is offered by eight clients at once, half to each server.
// Its early data is accepted once across both, and every client gets its
// answer. Three rounds, each with a new ticket.
func TestFleetEarlyDataOnce(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix(t)
	keys := []fleet.Key{fleet.GenerateKey()}
	h := &recorder{}
	var members [2]*h3server
	for i := range members {
		store, err := redisstore.New(redistest.Client(t, addr), &redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		tier, err := fleet.New(store, &fleet.Options{Keys: keys, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cache := tlscache.New(tier.Hooks(nil))
		members[i] = startH3(t, adapter.NewServer(cache, &adapter.ServerOptions{EarlyDataClaims: tier}), nil, h, nil)
	}
	const n = 8
	for round := range 3 {
		export, id := ticket(t, members[round%2].addr, h)
		addrs := make([]net.Addr, n)
		for i := range addrs {
			addrs[i] = members[i%2].addr
		}
		path := fmt.Sprintf("/round%d", round)
		resent := offerAtOnce(t, export, addrs, path)
		got, early := h.count(path, id)
		var sum adapter.EarlyDataStats
		for _, m := range members {
			st := m.srv.EarlyDataStats()
			sum.Offered += st.Offered
			sum.Accepted += st.Accepted
			sum.Replays += st.Replays
			sum.Refused += st.Refused
		}
		// http3.Transport redials a connection whose 0-RTT was refused
		// once by itself, in 0-RTT again (see TestOneTicketEightClients):
		// the counters are at least the clients'.
		rounds := int64(round + 1)
		if got != n || early != 1 || sum.Accepted < rounds || sum.Replays < (n-1)*rounds || sum.Refused != 0 || sum.Offered != sum.Accepted+sum.Replays {
			t.Fatalf("round %d: handler ran %d times, %d in 0-RTT from the ticket; counters %+v", round, got, early, sum)
		}
		t.Logf("round %d: %d clients on 2 servers, 0-RTT accepted once, %d resent; counters so far %+v", round, n, resent, sum)
	}
}
