package integration_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/tlscache"
)

// redisProxy forwards TCP connections to a Redis and can black-hole those
// that subscribed (pub/sub): their bytes are read and dropped in both
// directions, the connections stay open, as behind a NAT or load balancer
// that lost their state.
type redisProxy struct {
	addr   string
	target string
	holed  atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	ln    net.Listener
}

func startRedisProxy(t *testing.T, target string) *redisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &redisProxy{addr: ln.Addr().String(), target: target, ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			var pubsub atomic.Bool
			wg.Add(2)
			go func() { defer wg.Done(); p.pump(s, c, &pubsub, true) }()
			go func() { defer wg.Done(); p.pump(c, s, &pubsub, false) }()
		}
	}()
	return p
}

// pump copies src to dst, dropping what a black-holed pub/sub connection
// sends; fromClient marks the direction in which SUBSCRIBE is seen.
func (p *redisProxy) pump(dst, src net.Conn, pubsub *atomic.Bool, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
				pubsub.Store(true)
			}
			if !(p.holed.Load() && pubsub.Load()) {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// pollUntil polls cond until it holds or the timeout passes.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// A fault is injected into a fleet's Redis for a while, then ended.
type fault struct {
	name       string
	viaProxy   bool // B reaches Redis through a redisProxy
	start, end func(t *testing.T, r *redistest.Server, p *redisProxy)
}

// faultLength is how long each fault lasts.
const faultLength = 3 * time.Second

var faults = []fault{
	{"BlackholedSubscription", true,
		func(t *testing.T, _ *redistest.Server, p *redisProxy) { p.holed.Store(true) },
		func(t *testing.T, _ *redistest.Server, p *redisProxy) { p.holed.Store(false) }},
	{"ClientPauseAll", false,
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { clientPause(t, r.Addr, "ALL") },
		func(t *testing.T, r *redistest.Server, _ *redisProxy) {}}, // CLIENT PAUSE ends by itself
	{"ClientPauseWrite", false,
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { clientPause(t, r.Addr, "WRITE") },
		func(t *testing.T, r *redistest.Server, _ *redisProxy) {}},
	{"SIGSTOP", false,
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { r.Pause() },
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { r.Resume() }},
	{"Killed", false,
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { r.Stop() },
		func(t *testing.T, r *redistest.Server, _ *redisProxy) { r.Restart() }},
}

func clientPause(t *testing.T, addr, mode string) {
	t.Helper()
	c := redistest.Client(t, addr)
	ms := faultLength.Milliseconds()
	if err := c.Do(context.Background(), "CLIENT", "PAUSE", ms, mode).Err(); err != nil {
		t.Fatalf("CLIENT PAUSE %d %s: %v", ms, mode, err)
	}
}

// TestRevocationUnderFaults: A issues a session that B (two tiers: it
// holds it in its internal tier) and C (Redis alone) resume, over and over,
// from a client that keeps offering it. A fault hits Redis, or only B's
// subscription, and A revokes the session during the fault; A stays idle
// afterwards. No server resumes the session later than the promise after
// A's Revoke returned, during the fault or after it; the worst delay is
// printed per fault, and once the fault is over, every server refuses it.
func TestRevocationUnderFaults(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version uint16) {
		for _, f := range faults {
			t.Run(f.name, func(t *testing.T) {
				worst := runFault(t, version, f, false)
				if worst > revocationPromise {
					t.Errorf("a server resumed the revoked session %v after the revoke returned, beyond the promise of %v", worst, revocationPromise)
				}
			})
		}
	})
}

// TestFailOpenCost: with fleet.Options.FailOpen, B, whose subscription is
// black-holed, goes on resuming the session revoked on A for as long as the
// fault lasts: the cost the option documents.
func TestFailOpenCost(t *testing.T) {
	worst := runFault(t, tls.VersionTLS13, faults[0], true)
	if worst < revocationPromise {
		t.Fatalf("fail open: the last resumption of the revoked session came %v after the revoke, within the promise; want B to resume it through the fault", worst)
	}
}

// runFault runs one fault scenario and returns the latest resumption of the
// revoked session on B or C after the revoke returned.
func runFault(t *testing.T, version uint16, f fault, failOpen bool) time.Duration {
	cert := thePKI(t).leaf(t, "localhost")
	redis := redistest.Start(t)
	o := newFleetOptions(t, redis.Addr)
	o.timeout = 100 * time.Millisecond
	a := startMember(t, serverConfig(version, cert), o)
	var proxy *redisProxy
	bo := o
	bo.failOpen = failOpen
	if f.viaProxy {
		proxy = startRedisProxy(t, redis.Addr)
		bo.addr = proxy.addr
	}
	b := startMember(t, serverConfig(version, cert), bo)
	co := o
	co.mode = tlscache.Server | tlscache.NoInternal
	c := startMember(t, serverConfig(version, cert), co)

	client := ticketFrom(t, version, a.addr)
	id := onlySession(t, a).ID
	for name, m := range map[string]*fleetMember{"B": b, "C": c} {
		if !dial(t, m.addr, client).DidResume {
			t.Fatalf("setup: %s did not resume A's session", name)
		}
	}

	// Clients hammer B and C with the revoked ticket.
	var mu sync.Mutex
	last := map[string]time.Time{} // latest resumption seen, per server
	counts := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for name, m := range map[string]*fleetMember{"B": b, "C": c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cs, err := tryDial(m.addr, client)
				at := time.Now()
				if err == nil && cs.DidResume {
					mu.Lock()
					last[name] = at
					counts[name]++
					mu.Unlock()
				}
			}
		}()
	}
	defer func() { // on a failure too
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	testwait.For(t, "B and C to resume before the fault", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts["B"] > 0 && counts["C"] > 0
	})

	began := time.Now()
	f.start(t, redis, proxy)
	time.Sleep(20 * time.Millisecond) // the fault is established; B heard its last heartbeat just before
	a.srv.Revoke(id)
	revoked := time.Now()
	mu.Lock()
	before := map[string]int{"B": counts["B"], "C": counts["C"]}
	mu.Unlock()
	time.Sleep(faultLength - time.Since(began)) // the fault's length
	f.end(t, redis, proxy)
	ended := time.Now()
	// When, after the fault, A's revocation reached the store and B and C
	// trusted their watches again: the first must come before the others
	// (the quarantine's purpose), and a failure says by how much it did not.
	var landed, trustedB, trustedC time.Duration
	if !pollUntil(10*time.Second, func() bool {
		now := time.Since(ended)
		if landed == 0 && a.tier.Stats().Pending == 0 {
			landed = now
		}
		if trustedB == 0 && b.tier.Trusted() {
			trustedB = now
		}
		if trustedC == 0 && c.tier.Trusted() {
			trustedC = now
		}
		return landed > 0 && trustedB > 0 && trustedC > 0
	}) {
		t.Fatalf("10 s after the fault: A's revocation landed %v (0: not yet), B trusted %v, C trusted %v: B %+v, C %+v",
			landed, trustedB, trustedC, b.tier.Stats(), c.tier.Stats())
	}
	t.Logf("after the fault: A's revocation landed %v, B trusted %v, C trusted %v", landed.Round(time.Millisecond),
		trustedB.Round(time.Millisecond), trustedC.Round(time.Millisecond))
	if !failOpen && (trustedB < landed || trustedC < landed) {
		t.Errorf("B or C trusted its watch again before A's revocation reached the store (landed %v after the fault, B trusted %v, C %v): the quarantine is shorter than A took to land it",
			landed, trustedB, trustedC)
	}
	time.Sleep(time.Second) // more handshakes on B and C, trusted again
	close(stop)
	wg.Wait()

	var worst time.Duration
	for _, name := range []string{"B", "C"} {
		if l := last[name]; l.After(revoked) {
			worst = max(worst, l.Sub(revoked))
		}
	}
	t.Logf("%s (%s, fail open %v): worst resumption after the revoke returned: %v (B resumed %d times after it, C %d; the fault ended %v after the revoke; B's tier: %d times untrusted)",
		f.name, tls.VersionName(version), failOpen, worst.Round(time.Millisecond), counts["B"]-before["B"], counts["C"]-before["C"],
		ended.Sub(revoked).Round(time.Millisecond), b.tier.Stats().Untrusted)
	for name, m := range map[string]*fleetMember{"A": a, "B": b, "C": c} {
		if dial(t, m.addr, client).DidResume {
			t.Errorf("%s resumed the revoked session after the fault", name)
		}
	}
	// The fleet works again: a new session resumes across it.
	fresh := ticketFrom(t, version, a.addr)
	if !dial(t, b.addr, fresh).DidResume {
		t.Errorf("after the fault, a new session from A did not resume on B")
	}
	return worst
}
