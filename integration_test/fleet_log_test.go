package integration_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testlog"
	"github.com/tlscache/tlscache/internal/testwait"
)

// TestFleetLogOutage: Redis dies while handshakes run, then is restarted.
// A server whose tier and cache share one logger logs, exactly once each,
// that the store is failing (the back-off), that its watch is lost, that
// the store answers again and that the watch resynced: nothing per
// handshake, nothing while the state stays the same.
func TestFleetLogOutage(t *testing.T) {
	redis := redistest.Start(t) // our own, to stop and start
	cert := thePKI(t).leaf(t, "localhost")
	o := newFleetOptions(t, redis.Addr)
	o.timeout = 50 * time.Millisecond
	version := uint16(tls.VersionTLS13)
	a := startMember(t, serverConfig(version, cert), o)
	logs := &testlog.Handler{}
	o.log = slog.New(logs)
	b := startMember(t, serverConfig(version, cert), o) // B alone logs

	// Handshakes run all along: each offers B a ticket from A, so a
	// resumption needs Redis.
	base := clientConfig(t, version, "localhost", nil)
	var hs struct {
		sync.Mutex
		n, resumed int
		errs       []error
	}
	counts := func() (n, resumed int) {
		hs.Lock()
		defer hs.Unlock()
		return hs.n, hs.resumed
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			client := base.Clone()
			tickets := &stickyCache{}
			client.ClientSessionCache = tickets
			_, err := tryDial(a.addr, client)
			var cs tls.ConnectionState
			if err == nil {
				tickets.freeze()
				cs, err = tryDial(b.addr, client)
			}
			hs.Lock()
			if err != nil {
				hs.errs = append(hs.errs, err)
			} else {
				hs.n++
				if cs.DidResume {
					hs.resumed++
				}
			}
			hs.Unlock()
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); <-stopped })
	defer halt()
	more := func(what string, k int) {
		t.Helper()
		n0, _ := counts()
		testwait.For(t, fmt.Sprintf("%d more handshakes %s", k, what), 10*time.Second, func() bool {
			n, _ := counts()
			return n >= n0+k
		})
	}
	const (
		failing  = "fleet: store failing, backing off"
		answers  = "fleet: store answers again, back-off ended"
		lost     = "fleet: watch lost: resumptions are full handshakes until it resyncs"
		resynced = "fleet: watch resynced, trusted again"
	)
	logged := func(lines ...string) func() bool {
		return func() bool {
			for _, l := range lines {
				if n, _ := logs.Count(l); n == 0 {
					return false
				}
			}
			return true
		}
	}

	more("with Redis up", 10)
	if n, r := counts(); r != n {
		t.Fatalf("%d/%d handshakes resumed with Redis up", r, n)
	}
	if got := logs.Records(); len(got) != 0 {
		t.Fatalf("lines logged with Redis up: %v", got)
	}

	redis.Stop()
	down := time.Now()
	testwait.For(t, "the back-off and the watch's loss to be logged", 10*time.Second, logged(failing, lost))
	n0, r0 := counts()
	more("with Redis dead", 20)
	if n, r := counts(); r != r0 {
		t.Fatalf("%d/%d handshakes resumed with Redis dead, the watch lost", r-r0, n-n0)
	}

	nDown, _ := counts()
	redis.Restart()
	up := time.Now()
	testwait.For(t, "the recovery and the resync to be logged", 10*time.Second, logged(answers, resynced))
	_, r1 := counts()
	testwait.For(t, "10 resumptions once Redis is back", 10*time.Second, func() bool {
		_, r := counts()
		return r >= r1+10
	})
	halt()

	n, r := counts()
	t.Logf("%d handshakes on B, %d resumed; %d by the restart of Redis; tier stats of B: %+v", n, r, nDown, b.tier.Stats())
	for _, l := range logs.Records() {
		t.Logf("%s  %s", l.At.Format("15:04:05.000"), l.Text)
	}
	if len(hs.errs) > 0 {
		t.Fatalf("%d handshakes failed: %v", len(hs.errs), hs.errs)
	}
	for _, want := range []struct {
		line  string
		since time.Time
		what  string
	}{
		{failing, down, "Redis stopped"},
		{lost, down, "Redis stopped"},
		{answers, up, "Redis restarted"},
		{resynced, up, "Redis restarted"},
	} {
		n, first := logs.Count(want.line)
		if n != 1 {
			t.Errorf("%q logged %d times, want once", want.line, n)
			continue
		}
		t.Logf("%q: %v after %s", want.line, first.Sub(want.since).Round(time.Millisecond), want.what)
	}
	if got := logs.Records(); len(got) != 4 {
		t.Errorf("%d lines logged, want 4", len(got))
	}
}
