package quicadapter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

func TestSettingsCompatible(t *testing.T) {
	base := h3Settings{maxFieldSectionSize: 1 << 16}
	for _, tc := range []struct {
		name     string
		issued   h3Settings
		now      h3Settings
		want     bool
		noRecord bool
	}{
		{name: "same", issued: base, now: base, want: true},
		{name: "larger limit now", issued: base, now: h3Settings{maxFieldSectionSize: 1 << 20}, want: true},
		{name: "smaller limit now", issued: base, now: h3Settings{maxFieldSectionSize: 1 << 10}},
		{name: "datagrams gone", issued: h3Settings{maxFieldSectionSize: 1 << 16, datagram: true}, now: base},
		{name: "datagrams added", issued: base, now: h3Settings{maxFieldSectionSize: 1 << 16, datagram: true}, want: true},
		{name: "other settings", issued: h3Settings{maxFieldSectionSize: 1 << 16, other: map[uint64]uint64{0x99: 1}}, now: base},
		{name: "not recorded", issued: base, now: base, noRecord: true},
	} {
		extra := [][]byte{[]byte("unrelated")}
		if !tc.noRecord {
			extra = append(extra, tc.issued.marshal())
		}
		if got := tc.now.compatible(extra); got != tc.want {
			t.Errorf("%s: compatible = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Truncated records never pass.
	rec := base.marshal()
	for n := len(settingsTag); n < len(rec); n++ {
		if base.compatible([][]byte{rec[:n]}) {
			t.Errorf("a record truncated to %d bytes is compatible", n)
		}
	}
}

// TestLoginApprovesConnectionTicket: with controlled resumption, clients
// that log in over HTTP/3 (1-RTT: a client that dials without early data
// opens no stream during the handshake) have the ticket their connection
// issues approved, possibly after the login's handler returned, and their
// next connection resumes from it; its handler sees the session it resumed
// from. Eight clients at once, under -race.
func TestLoginApprovesConnectionTicket(t *testing.T) {
	s, cache, h := startLogin(t)

	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := loginAndResume(t, s.addr); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	// Each client's second connection saw the session it resumed from: one
	// its login approved (the cache holds the approved ones only).
	var approved []*tlscache.Session
	for a := range cache.All() {
		approved = append(approved, a)
	}
	var resumed int
	for _, r := range h.seen() {
		if r.path != "/" || r.resumed == nil {
			continue
		}
		resumed++
		found := false
		for _, a := range approved {
			found = found || bytes.Equal(a.ID, r.resumed)
		}
		if !found {
			t.Errorf("a handler saw its connection resumed from %x, not an approved session", r.resumed)
		}
	}
	if resumed != n {
		t.Errorf("handlers saw %d resumed connections, want %d", resumed, n)
	}
	t.Logf("%d sessions approved, %d resumed connections seen by handlers", len(approved), resumed)
}

// loginAndResume connects, logs in, waits for the connection's ticket,
// and checks that the next connection resumes.
func loginAndResume(t *testing.T, addr net.Addr) error {
	clients := adapter.NewClientCache(nil, nil)
	cfg := clientTLS(clients)
	c, err := dialErr(t, addr, cfg, false)
	if err != nil {
		return err
	}
	if code, err := c.doErr(http.MethodPost, "/login"); code != http.StatusOK {
		return fmt.Errorf("POST /login: %d %v", code, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := clients.Export("localhost"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("no ticket after 5s")
		}
		time.Sleep(time.Millisecond)
	}
	if c, err = dialErr(t, addr, cfg, false); err != nil {
		return err
	}
	if !c.conn.ConnectionState().TLS.DidResume {
		return errors.New("the ticket of the connection that logged in did not resume")
	}
	if code, err := c.doErr(http.MethodGet, "/"); code != http.StatusOK {
		return fmt.Errorf("GET /: %d %v", code, err)
	}
	return nil
}

// FuzzSettingsRecord feeds any bytes as a ticket's SETTINGS record: no
// panic, and a record accepted for a server is one whose limits it meets.
func FuzzSettingsRecord(f *testing.F) {
	f.Add(h3Settings{maxFieldSectionSize: 1 << 16}.marshal()[len(settingsTag):])
	f.Add([]byte{})
	now := h3Settings{maxFieldSectionSize: 1 << 16}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := append(append([]byte(nil), settingsTag...), b...)
		if now.compatible([][]byte{rec}) {
			old, n := binary.Varint(b)
			if n <= 0 {
				t.Fatalf("record %x accepted without a header limit", b)
			}
			dg, m := binary.Uvarint(b[n:])
			if old > now.maxFieldSectionSize || dg != 0 || m <= 0 || n+m != len(b) {
				t.Fatalf("record %x accepted: limit %d, datagrams %d, %d bytes", b, old, dg, len(b))
			}
		}
	})
}
