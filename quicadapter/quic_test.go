package quicadapter

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
)

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

func (h *recorder) count(path string) (n, early int) {
	for _, s := range h.seen() {
		if s.path == path {
			n++
			if s.used0RTT {
				early++
			}
		}
	}
	return n, early
}

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

var _ = atomic.Int64{}
var _ = time.Second
