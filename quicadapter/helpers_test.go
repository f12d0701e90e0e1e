package quicadapter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/internal/testcert"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

var testCert, testPool = testcert.SelfSigned("localhost")

// h3server is an HTTP/3 server on a loopback UDP port of its own.
type h3server struct {
	addr *net.UDPAddr
	h3   *http3.Server
	qs   *Server // nil for a server without the adapter
	srv  *adapter.Server
}

func serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testCert}, MinVersion: tls.VersionTLS13}
}

// startH3 serves h on 127.0.0.1 with srv's sessions, on tlsConf (nil: a
// new config). A nil srv serves with crypto/tls's own tickets, through a
// transport that http3 sets up (the stdlib baseline).
func startH3(t *testing.T, srv *adapter.Server, tlsConf *tls.Config, h http.Handler, tweak func(*http3.Server)) *h3server {
	t.Helper()
	if tlsConf == nil {
		tlsConf = serverTLS()
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h3 := &http3.Server{Handler: h, TLSConfig: tlsConf}
	if tweak != nil {
		tweak(h3)
	}
	s := &h3server{addr: pc.LocalAddr().(*net.UDPAddr), h3: h3, srv: srv}
	tr := &quic.Transport{Conn: pc}
	done := make(chan error, 1)
	if srv != nil {
		if s.qs, err = NewServer(h3, srv); err != nil {
			t.Fatal(err)
		}
		ln, err := s.qs.Listen(tr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- h3.ServeListener(ln) }()
	} else {
		tlsConf := http3.ConfigureTLSConfig(tlsConf)
		ln, err := tr.ListenEarly(tlsConf, &quic.Config{Allow0RTT: true})
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- h3.ServeListener(ln) }()
	}
	t.Cleanup(func() {
		h3.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeListener: %v", err)
		}
		tr.Close()
		pc.Close()
	})
	return s
}

func newServer(opts *adapter.ServerOptions) *adapter.Server {
	return adapter.NewServer(tlscache.New(nil), opts)
}

// clientTLS is a client config for the test servers; cache nil means a
// new adapter.ClientCache.
func clientTLS(cache tls.ClientSessionCache) *tls.Config {
	if cache == nil {
		cache = adapter.NewClientCache(nil, nil)
	}
	return &tls.Config{RootCAs: testPool, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}, ClientSessionCache: cache}
}

// client is one HTTP/3 connection of a test.
type client struct {
	conn *quic.Conn
	cc   *http3.ClientConn
	tr   *quic.Transport
}

// dialH3 dials addr with 0-RTT if cfg's cache holds a ticket that allows
// it.
func dialH3(t *testing.T, addr net.Addr, cfg *tls.Config) *client {
	return dialQUIC(t, addr, cfg, true)
}

// dialQUIC dials addr, early with 0-RTT if a ticket allows it, else after
// the handshake (the client then opens no stream during the handshake).
func dialQUIC(t *testing.T, addr net.Addr, cfg *tls.Config, early bool) *client {
	t.Helper()
	c, err := dialErr(t, addr, cfg, early)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialErr is dialQUIC for goroutines other than the test's.
func dialErr(t *testing.T, addr net.Addr, cfg *tls.Config, early bool) (*client, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: pc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := tr.Dial
	if early {
		dial = tr.DialEarly
	}
	conn, err := dial(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, err
	}
	c := &client{conn: conn, tr: tr, cc: (&http3.Transport{}).NewClientConn(conn)}
	t.Cleanup(func() {
		conn.CloseWithError(0, "")
		tr.Close()
		pc.Close()
	})
	return c, nil
}

// doErr sends a request and returns its status, or the error.
func (c *client) doErr(method, path string) (int, error) {
	req, err := http.NewRequest(method, "https://localhost"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// do sends a request (method GET_0RTT sends it in 0-RTT) and returns
// the status and body.
func (c *client) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://localhost"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitTicket waits until cache holds a ticket for the test servers (over
// QUIC it comes after the handshake).
func waitTicket(t *testing.T, cache *adapter.ClientCache) []byte {
	t.Helper()
	var b []byte
	testwait.For(t, "the client's ticket", 5*time.Second, func() bool {
		var err error
		b, err = cache.Export("localhost")
		return err == nil
	})
	return b
}

// proxy is a UDP proxy in front of a server, for one client at a time: it
// records the datagrams the client sends, and can hold back those that
// carry Handshake or 1-RTT packets (the client's Finished and what
// follows), so that the server's handshake stays incomplete while it reads
// the client's early data.
type proxy struct {
	pc     *net.UDPConn
	server *net.UDPAddr

	mu       sync.Mutex
	client   *net.UDPAddr
	upstream *net.UDPConn
	recorded [][]byte
	holding  bool
	held     [][]byte
	// holdingReplies holds back every datagram of the server's.
	holdingReplies bool
	heldReplies    [][]byte
}

func startProxy(t *testing.T, server *net.UDPAddr) *proxy {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{pc: pc, server: server, upstream: up}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			d := append([]byte(nil), buf[:n]...)
			p.mu.Lock()
			p.client = from
			p.recorded = append(p.recorded, d)
			if p.holding && carriesHandshake(d) {
				p.held = append(p.held, d)
			} else {
				up.Write(d) // under the lock: release keeps the order
			}
			p.mu.Unlock()
		}
	})
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.holdingReplies {
				p.heldReplies = append(p.heldReplies, append([]byte(nil), buf[:n]...))
			} else if p.client != nil {
				pc.WriteToUDP(buf[:n], p.client)
			}
			p.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		pc.Close()
		up.Close()
		wg.Wait()
	})
	return p
}

func (p *proxy) addr() *net.UDPAddr { return p.pc.LocalAddr().(*net.UDPAddr) }

// hold starts holding back the client's handshake completion.
func (p *proxy) hold() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

// release forwards what was held, in order, and stops holding.
func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.held {
		p.upstream.Write(d)
	}
	p.held, p.holding = nil, false
}

// holdReplies holds back the server's datagrams, so that the client keeps
// sending in 0-RTT (it has no 1-RTT keys before the server's reply).
func (p *proxy) holdReplies() {
	p.mu.Lock()
	p.holdingReplies = true
	p.mu.Unlock()
}

// releaseReplies forwards the server's datagrams held, in order, and stops
// holding them.
func (p *proxy) releaseReplies() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.heldReplies {
		p.pc.WriteToUDP(d, p.client)
	}
	p.heldReplies, p.holdingReplies = nil, false
}

// takeRecording returns the datagrams recorded so far and starts a new
// recording.
func (p *proxy) takeRecording() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.recorded
	p.recorded = nil
	return r
}

// carriesHandshake reports whether a datagram holds a Handshake packet or
// a 1-RTT (short header) one, walking its coalesced QUIC v1 packets.
func carriesHandshake(d []byte) bool {
	for len(d) > 0 {
		first := d[0]
		if first&0x80 == 0 {
			return true // short header: 1-RTT
		}
		typ := (first >> 4) & 0x3
		if typ == 2 {
			return true // Handshake
		}
		// version (4), DCID, SCID, [token for Initial], length
		p := 5
		if p >= len(d) {
			return false
		}
		p += 1 + int(d[p])
		if p >= len(d) {
			return false
		}
		p += 1 + int(d[p])
		if typ == 0 {
			tl, n := varint(d[p:])
			if n == 0 {
				return false
			}
			p += n + int(tl)
		}
		if p > len(d) {
			return false
		}
		l, n := varint(d[p:])
		if n == 0 {
			return false
		}
		p += n + int(l)
		if p > len(d) {
			return false
		}
		d = d[p:]
	}
	return false
}

// varint reads a QUIC variable-length integer: its value and length, or
// a zero length if b is too short.
func varint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	n := 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}

// replay sends datagrams to addr, byte for byte, from a socket of its own.
func replay(t *testing.T, addr *net.UDPAddr, datagrams [][]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

// seen is what a test handler saw of one request.
type seen struct {
	path     string
	early    bool   // adapter.InEarlyData when the handler started
	used0RTT bool   // the connection's early data was accepted
	resumed  []byte // ID of the session the connection resumed from
	rec      *adapter.ConnSessions
}

// recorder is a handler that records what it saw and answers its path.
type recorder struct {
	mu  sync.Mutex
	all []seen
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seen{path: r.URL.Path, early: adapter.InEarlyData(r), rec: adapter.ConnSessionsFrom(r.Context())}
	if c := ConnFrom(r.Context()); c != nil {
		s.used0RTT = c.ConnectionState().Used0RTT
	}
	if s.rec != nil {
		if res := s.rec.Resumed(); res != nil {
			s.resumed = res.ID
		}
	}
	h.mu.Lock()
	h.all = append(h.all, s)
	h.mu.Unlock()
	fmt.Fprint(w, "ok ", r.URL.Path)
}

func (h *recorder) seen() []seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seen(nil), h.all...)
}

// count returns how many requests for path the handler saw, and how many
// of those came in 0-RTT on a connection resumed from the ticket id.
func (h *recorder) count(path string, id []byte) (n, early int) {
	for _, s := range h.seen() {
		if s.path == path {
			n++
			if s.used0RTT && bytes.Equal(s.resumed, id) {
				early++
			}
		}
	}
	return n, early
}

// withTicket returns a client config whose cache holds the ticket of one
// full handshake with addr (a GET /ticket).
func withTicket(t *testing.T, addr net.Addr) (*tls.Config, *adapter.ClientCache) {
	t.Helper()
	cache := adapter.NewClientCache(nil, nil)
	cfg := clientTLS(cache)
	c := dialH3(t, addr, cfg)
	if code, _ := c.do(t, http.MethodGet, "/ticket"); code != http.StatusOK {
		t.Fatalf("GET /ticket: %d", code)
	}
	waitTicket(t, cache)
	return cfg, cache
}

// startLogin serves controlled resumption (NoInternalStore): /login
// approves its connection's sessions, those issued later included; every
// request is recorded.
func startLogin(t *testing.T) (*h3server, *tlscache.Cache, *recorder) {
	t.Helper()
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	h := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		adapter.ConnSessionsFrom(r.Context()).Approve(func(s *tlscache.Session) { cache.Add(s) })
		h.ServeHTTP(w, r)
	})
	mux.Handle("/", h)
	return startH3(t, adapter.NewServer(cache, nil), nil, mux, nil), cache, h
}
