package adapter

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tlscache/tlscache/tlscache"
)

// quicResult is what one in-memory QUIC handshake (crypto/tls's QUIC API,
// no transport) did.
type quicResult struct {
	resumed, early bool // the server resumed; it accepted early data
	err            error
}

// quicHandshake runs a QUIC handshake between server and client configs
// in memory, the client offering early data when its ticket allows it,
// and delivers the server's ticket (with early data allowed) to the
// client's cache. With badBinder the ClientHello's last byte (a PSK
// binder's) is flipped on its way, as an observer that copied a ticket
// identity would send it.
func quicHandshake(ctx context.Context, server, client *tls.Config, badBinder bool) quicResult {
	return quicHandshakeWith(ctx, ctx, server, client, badBinder, nil)
}

// quicHandshakeWith is quicHandshake with the server's handshake under
// serverCtx (one of [WithConnSessions], say), and beforeTicket, if not nil,
// run when the server's handshake is done, before it sends its ticket:
// where an HTTP/3 handler may run.
func quicHandshakeWith(ctx, serverCtx context.Context, server, client *tls.Config, badBinder bool, beforeTicket func()) quicResult {
	cq := tls.QUICClient(&tls.QUICConfig{TLSConfig: client, EnableSessionEvents: true})
	sq := tls.QUICServer(&tls.QUICConfig{TLSConfig: server, EnableSessionEvents: true})
	defer cq.Close()
	defer sq.Close()
	cq.SetTransportParameters(nil)
	var res quicResult
	done := false
	hello := true
	// pump handles the events of from, sending its data to to.
	pump := func(from, to *tls.QUICConn, isServer bool) (bool, error) {
		moved := false
		for {
			ev := from.NextEvent()
			switch ev.Kind {
			case tls.QUICNoEvent:
				return moved, nil
			case tls.QUICWriteData:
				data := append([]byte(nil), ev.Data...)
				if !isServer && hello && badBinder {
					data[len(data)-1] ^= 1
				}
				hello = hello && isServer
				if err := to.HandleData(ev.Level, data); err != nil {
					return moved, err
				}
				moved = true
			case tls.QUICErrorEvent:
				return moved, ev.Err
			case tls.QUICTransportParametersRequired:
				from.SetTransportParameters(nil)
			case tls.QUICSetReadSecret:
				if isServer && ev.Level == tls.QUICEncryptionLevelEarly {
					res.early = true
				}
			case tls.QUICStoreSession:
				if err := from.StoreSession(ev.SessionState); err != nil {
					return moved, err
				}
			case tls.QUICHandshakeDone:
				if isServer {
					done = true
					if beforeTicket != nil {
						beforeTicket()
					}
					if err := from.SendSessionTicket(tls.QUICSessionTicketOptions{EarlyData: true}); err != nil {
						return moved, err
					}
					moved = true
				}
			}
		}
	}
	if err := cq.Start(ctx); err != nil {
		return quicResult{err: err}
	}
	if err := sq.Start(serverCtx); err != nil {
		return quicResult{err: err}
	}
	for {
		m1, err := pump(cq, sq, false)
		if err != nil {
			return quicResult{err: err}
		}
		m2, err := pump(sq, cq, true)
		if err != nil {
			return quicResult{err: err}
		}
		if !m1 && !m2 {
			break
		}
	}
	if !done {
		return quicResult{err: errors.New("handshake did not complete")}
	}
	res.resumed = sq.ConnectionState().DidResume
	return res
}

func quicConfigs(t *testing.T, srv *Server) (server *tls.Config, client func() (*tls.Config, *ClientCache)) {
	t.Helper()
	cert, pool := selfSigned(t)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"t"}}
	if err := srv.Install(server); err != nil {
		t.Fatal(err)
	}
	return server, func() (*tls.Config, *ClientCache) {
		cc := NewClientCache(nil, nil)
		return &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: tls.VersionTLS13, NextProtos: []string{"t"}, ClientSessionCache: cc}, cc
	}
}

// TestEarlyDataPolicies: one ticket offered by eight QUIC clients at once
// (crypto/tls's QUIC handshakes, in memory, so under -race): early data is
// accepted once (once, single use) or never (off); the others resume
// without it, or do a full handshake when the ticket was single use.
func TestEarlyDataPolicies(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		policy         EarlyDataPolicy
		early, resumed int
		stats          EarlyDataStats
	}{
		{EarlyDataOnce, 1, n, EarlyDataStats{Offered: n, Accepted: 1, Replays: n - 1}},
		{EarlyDataOff, 0, n, EarlyDataStats{Offered: n, Refused: n}},
		{EarlyDataSingleUse, 1, 1, EarlyDataStats{Offered: 1, Accepted: 1}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			srv := NewServer(tlscache.New(nil), &ServerOptions{EarlyData: tc.policy})
			server, client := quicConfigs(t, srv)
			cfg, cc := client()
			if r := quicHandshake(t.Context(), server, cfg, false); r.err != nil || r.resumed {
				t.Fatalf("first handshake: resumed %v, %v", r.resumed, r.err)
			}
			export, err := cc.Export("example.com")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var early, resumed int
			var wg sync.WaitGroup
			for range n {
				cfg, cc := client()
				if err := cc.Import(export); err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					ctx, _ := WithConnSessions(t.Context())
					r := quicHandshake(ctx, server, cfg, false)
					if r.err != nil {
						t.Error(r.err)
					}
					mu.Lock()
					defer mu.Unlock()
					if r.early {
						early++
					}
					if r.resumed {
						resumed++
					}
				})
			}
			wg.Wait()
			if early != tc.early || resumed != tc.resumed {
				t.Fatalf("%d handshakes with early data, %d resumed; want %d and %d", early, resumed, tc.early, tc.resumed)
			}
			if st := srv.EarlyDataStats(); st != tc.stats {
				t.Fatalf("EarlyDataStats = %+v, want %+v", st, tc.stats)
			}
		})
	}
}

// TestBadBinderBurnsNotReplays documents the binder limitation: crypto/tls
// calls UnwrapSession before it checks the PSK binder, so a ClientHello
// with a copied identity and a bad binder fails, but has claimed the
// ticket's early data (once: the genuine client still resumes, without
// early data) or taken the ticket (single use: a full handshake). Nothing
// of the attacker's is read either way.
func TestBadBinderBurnsNotReplays(t *testing.T) {
	for _, tc := range []struct {
		policy         EarlyDataPolicy
		resumed, early bool
	}{
		{EarlyDataOnce, true, false},
		{EarlyDataSingleUse, false, false},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			srv := NewServer(tlscache.New(nil), &ServerOptions{EarlyData: tc.policy})
			server, client := quicConfigs(t, srv)
			cfg, cc := client()
			if r := quicHandshake(t.Context(), server, cfg, false); r.err != nil {
				t.Fatal(r.err)
			}
			export, _ := cc.Export("example.com")
			attacker, ac := client()
			ac.Import(export)
			if r := quicHandshake(t.Context(), server, attacker, true); r.err == nil || !strings.Contains(r.err.Error(), "binder") || r.early {
				t.Fatalf("a bad binder: %v (early %v), want a failed binder check without early data", r.err, r.early)
			}
			r := quicHandshake(t.Context(), server, cfg, false)
			if r.err != nil || r.resumed != tc.resumed || r.early != tc.early {
				t.Fatalf("the genuine client after the bad binder: %+v, want resumed %v, early %v", r, tc.resumed, tc.early)
			}
		})
	}
}

func TestParseEarlyDataPolicy(t *testing.T) {
	for _, p := range []EarlyDataPolicy{EarlyDataOnce, EarlyDataOff, EarlyDataSingleUse} {
		got, err := ParseEarlyDataPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseEarlyDataPolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParseEarlyDataPolicy("twice"); err == nil {
		t.Error("ParseEarlyDataPolicy(twice) succeeded")
	}
}

// TestTooEarly checks RFC 8470 over a plain HTTP server: requests are
// early only when a proxy says so (Early-Data: 1) or the connection's
// handshake is still running, and only unsafe ones get 425.
func TestTooEarly(t *testing.T) {
	var ran []string
	h := TooEarly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/choice" && RejectEarly(w, r) {
			return
		}
		ran = append(ran, r.Method+" "+r.URL.Path)
	}), nil)
	pending := make(chan struct{})
	closed := make(chan struct{})
	close(closed)
	for _, tc := range []struct {
		method, path string
		header       bool
		done         chan struct{} // the handshake's; nil: none in the context
		want         int
	}{
		{"POST", "/a", false, nil, 200},
		{"POST", "/b", true, nil, 425},
		{"GET", "/c", true, nil, 200},
		{"GET", "/choice", true, nil, 425},
		{"POST", "/d", false, pending, 425},
		{"POST", "/e", false, closed, 200},
		{"GET", "/choice", false, pending, 425},
		{"GET", "/choice", false, closed, 200},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.header {
			r.Header.Set("Early-Data", "1")
		}
		if tc.done != nil {
			r = r.WithContext(WithHandshakeDone(r.Context(), tc.done))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s (header %v, handshake %v): %d, want %d", tc.method, tc.path, tc.header, tc.done, w.Code, tc.want)
		}
	}
	if len(ran) != 4 {
		t.Errorf("handler ran for %v, want the four requests answered 200", ran)
	}
}

// TestApproveOnce: Approve sees each session once, those there already
// and those issued later, and a TLS 1.2 re-issue of the resumed one not
// again.
func TestApproveOnce(t *testing.T) {
	_, rec := WithConnSessions(context.Background())
	resumed := &tlscache.Session{ID: []byte("r")}
	rec.setResumed(resumed)
	rec.addIssued(&tlscache.Session{ID: []byte("a")})
	var got []string
	rec.Approve(func(s *tlscache.Session) { got = append(got, string(s.ID)) })
	rec.addIssued(&tlscache.Session{ID: []byte("b")})
	rec.addIssued(resumed)
	if got, want := strings.Join(got, " "), "r a b"; got != want {
		t.Fatalf("approved %q, want %q", got, want)
	}
	ConnSessionsFrom(context.Background()).Approve(func(*tlscache.Session) { t.Fatal("an untracked connection approved a session") })
}
