package integration_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/redistest"
	"github.com/tlscache/tlscache/internal/testwait"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

// fleetMember is one server of a fleet sharing a Redis.
type fleetMember struct {
	*server
	tier  *fleet.Tier
	store *redisstore.Store
}

// fleetOptions configure startMember.
type fleetOptions struct {
	addr, prefix string
	redis        *redis.UniversalOptions // if set, instead of addr: the client redisstore.Open makes
	keys         []fleet.Key
	timeout      time.Duration // per store call; zero: one second, so a busy CI machine resumes reliably; negative: fleet.DefaultTimeout
	mode         tlscache.Mode // zero: Server (two tiers)
	log          *slog.Logger  // the tier's and the cache's
	opts         *adapter.ServerOptions
	untracked    bool // handshakes run without a ConnSessions
	failOpen     bool // fleet.Options.FailOpen
}

// newFleetOptions returns the options of a new fleet on the Redis at
// addr: a prefix of its own and one sealing key.
func newFleetOptions(t *testing.T, addr string) fleetOptions {
	return fleetOptions{addr: addr, prefix: redistest.Prefix(t), keys: []fleet.Key{fleet.GenerateKey()}}
}

// startMember starts a TLS server whose cache sits in front of Redis, with
// its own Redis client and its Watch running.
func startMember(t *testing.T, cfg *tls.Config, o fleetOptions) *fleetMember {
	t.Helper()
	var client redis.UniversalClient
	if o.redis != nil {
		c, err := redisstore.Open(context.Background(), o.redis)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		client = c
	} else {
		client = redistest.Client(t, o.addr)
	}
	store, err := redisstore.New(client, &redisstore.Options{Prefix: o.prefix})
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout == 0 {
		o.timeout = time.Second
	}
	if o.timeout < 0 { // the default
		o.timeout = 0
	}
	tier, err := fleet.New(store, &fleet.Options{Keys: o.keys, Timeout: o.timeout, Logger: o.log, FailOpen: o.failOpen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tier.Close)
	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: o.mode, Logger: o.log}))
	var serverOpts []func(*server)
	if o.untracked {
		serverOpts = append(serverOpts, untracked)
	}
	s := startServer(t, cfg, cache, o.opts, serverOpts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tier.Watch(ctx, s.srv) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-tier.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not start")
	}
	return &fleetMember{server: s, tier: tier, store: store}
}

// A server follows the fleet's removals, families included; the Redis store
// keeps tombstones and proves its watch alive.
var (
	_ fleet.Target      = (*adapter.Server)(nil)
	_ fleet.Revoker     = (*redisstore.Store)(nil)
	_ fleet.LiveWatcher = (*redisstore.Store)(nil)
)

// ticketFrom returns a client config that offers, from now on, the ticket
// of one full handshake with the server at addr.
func ticketFrom(t *testing.T, version uint16, addr string) *tls.Config {
	t.Helper()
	tickets := &stickyCache{}
	client := clientConfig(t, version, "localhost", tickets)
	if dial(t, addr, client).DidResume {
		t.Fatal("a client with no ticket resumed")
	}
	tickets.freeze()
	return client
}

func TestFleetResumesOnAnotherServer(t *testing.T) {
	addr := redistest.Addr(t)
	forEachVersion(t, func(t *testing.T, version uint16) {
		cert := thePKI(t).leaf(t, "localhost")
		o := newFleetOptions(t, addr)
		a := startMember(t, serverConfig(version, cert), o)
		b := startMember(t, serverConfig(version, cert), o)
		o.mode = tlscache.Server | tlscache.NoInternal // Redis alone
		c := startMember(t, serverConfig(version, cert), o)

		client := ticketFrom(t, version, a.addr) // offers A's ticket from now on
		for name, m := range map[string]*fleetMember{"B (two tiers)": b, "C (Redis alone)": c} {
			if !dial(t, m.addr, client).DidResume {
				t.Fatalf("A's session did not resume on %s", name)
			}
			if st := m.cache.Stats(); st.ExternalHits != 1 || st.StoreErrors != 0 {
				t.Fatalf("%s: ExternalHits %d StoreErrors %d, want 1 and 0", name, st.ExternalHits, st.StoreErrors)
			}
		}
		if c.cache.Len() != 0 {
			t.Fatalf("C (NoInternal) holds %d sessions locally", c.cache.Len())
		}
		if b.cache.Len() == 0 {
			t.Fatal("B (two tiers) did not keep the session in its internal tier")
		}
	})
}

// TestFleetRevocation: a session A issued, resumed on B (so B holds it in
// its internal tier), is revoked on A; B refuses it within a second. The
// delay is measured and logged.
func TestFleetRevocation(t *testing.T) {
	addr := redistest.Addr(t)
	forEachVersion(t, func(t *testing.T, version uint16) {
		cert := thePKI(t).leaf(t, "localhost")
		o := newFleetOptions(t, addr)
		a := startMember(t, serverConfig(version, cert), o)
		b := startMember(t, serverConfig(version, cert), o)

		client := ticketFrom(t, version, a.addr)
		id := a.onlyIssued(t, 0).ID
		if !dial(t, b.addr, client).DidResume || b.cache.Peek(id) == nil {
			t.Fatal("setup: B did not resume A's session into its internal tier")
		}
		start := time.Now()
		if !a.srv.Revoke(id) {
			t.Fatal("A did not hold the session it issued")
		}
		returned := time.Since(start)
		testwait.For(t, "B to drop the revoked session", time.Second, func() bool { return b.cache.Peek(id) == nil })
		t.Logf("revocation reached B's internal tier %v after A's Revoke began (Revoke returned after %v)", time.Since(start), returned)
		if dial(t, b.addr, client).DidResume {
			t.Fatal("B resumed a session revoked on A")
		}
		if dial(t, a.addr, client).DidResume {
			t.Fatal("A resumed a session it revoked")
		}
		if st := b.tier.Stats(); st.Invalidations == 0 {
			t.Fatal("B counted no invalidation")
		}
	})
}

// TestFleetRedisOutage: Redis hangs, then dies, in the middle of a run of
// handshakes: every handshake still succeeds, as a full one when it needs
// Redis, in bounded time; StoreErrors rises; Redis restarted, resumption
// across servers comes back without a restart.
func TestFleetRedisOutage(t *testing.T) {
	redis := redistest.Start(t) // our own, to stop and start
	cert := thePKI(t).leaf(t, "localhost")
	const deadline = 50 * time.Millisecond
	o := newFleetOptions(t, redis.Addr)
	o.timeout = deadline
	version := uint16(tls.VersionTLS13)
	a := startMember(t, serverConfig(version, cert), o)
	b := startMember(t, serverConfig(version, cert), o)

	// A client whose sessions come from A and are offered to B: every
	// resumption needs Redis.
	handshake := func() (resumed bool, took time.Duration) {
		t.Helper()
		client := ticketFrom(t, version, a.addr)
		start := time.Now()
		resumed = dial(t, b.addr, client).DidResume
		return resumed, time.Since(start)
	}
	phase := func(name string, n int) (resumed int, slowest time.Duration) {
		for range n {
			r, took := handshake()
			if r {
				resumed++
			}
			slowest = max(slowest, took)
		}
		t.Logf("%-22s %d/%d handshakes on B resumed, slowest %v", name, resumed, n, slowest)
		return resumed, slowest
	}

	if r, _ := phase("Redis up:", 10); r != 10 {
		t.Fatalf("%d/10 resumed with Redis up", r)
	}
	errsBefore := b.cache.Stats().StoreErrors

	// A handshake makes at most two store calls (the lookup, the new
	// ticket), each cut at the deadline; the margin is for a loaded
	// machine, far below go-redis's own 3 s read timeout.
	bound := 2*deadline + 250*time.Millisecond
	redis.Pause()
	if r, slowest := phase("Redis hung (SIGSTOP):", 10); r != 0 || slowest > bound {
		t.Fatalf("with Redis hung: %d resumed, slowest handshake %v (deadline %v, bound %v)", r, slowest, deadline, bound)
	}
	redis.Resume()
	redis.Stop()
	if r, slowest := phase("Redis dead:", 10); r != 0 || slowest > bound {
		t.Fatalf("with Redis dead: %d resumed, slowest handshake %v (bound %v)", r, slowest, bound)
	}
	if got := b.cache.Stats().StoreErrors; got <= errsBefore {
		t.Fatalf("StoreErrors %d did not rise during the outage", got)
	}
	if errs := append(a.handshakeErrors(), b.handshakeErrors()...); len(errs) > 0 {
		t.Fatalf("handshakes failed during the outage: %v", errs)
	}

	redis.Restart()
	testwait.For(t, "resumption to come back", 10*time.Second, func() bool {
		r, _ := handshake()
		return r
	})
	if r, _ := phase("Redis restarted:", 10); r != 10 {
		t.Fatalf("%d/10 resumed after Redis came back", r)
	}
	t.Logf("tier stats of B: %+v", b.tier.Stats())
}

// TestFleetBadValues: a value overwritten in Redis with other bytes, or
// sealed under another fleet's key, is a miss, counted.
func TestFleetBadValues(t *testing.T) {
	addr := redistest.Addr(t)
	cert := thePKI(t).leaf(t, "localhost")
	version := uint16(tls.VersionTLS13)
	o := newFleetOptions(t, addr)
	o.mode = tlscache.Server | tlscache.NoInternal
	a := startMember(t, serverConfig(version, cert), o)
	b := startMember(t, serverConfig(version, cert), o)
	other := o
	other.keys = []fleet.Key{fleet.GenerateKey()}
	c := startMember(t, serverConfig(version, cert), other)

	client := ticketFrom(t, version, a.addr)
	if dial(t, c.addr, client).DidResume {
		t.Fatal("a server with another key resumed the session")
	}
	if c.tier.Stats().BadValues != 1 {
		t.Fatalf("C: BadValues %d, want 1", c.tier.Stats().BadValues)
	}
	key := o.prefix + hex.EncodeToString(a.onlyIssued(t, 0).ID)
	rc := redistest.Client(t, addr)
	ctx := context.Background()
	good, err := rc.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string][]byte{
		"other bytes": []byte("not a session"),
		"flipped bit": func() []byte { v := append([]byte(nil), good...); v[len(v)/2] ^= 1; return v }(),
		"truncated":   good[:len(good)-1],
	} {
		rc.Set(ctx, key, value, time.Minute)
		before := b.tier.Stats().BadValues
		if dial(t, b.addr, client).DidResume {
			t.Fatalf("%s: resumed", name)
		}
		if b.tier.Stats().BadValues != before+1 {
			t.Fatalf("%s: not counted as a bad value", name)
		}
	}
	rc.Set(ctx, key, good, time.Minute)
	if !dial(t, b.addr, client).DidResume {
		t.Fatal("the original value no longer resumes")
	}
}

// TestFleetSingleUse: one TLS 1.3 ticket offered to A and B at once
// resumes at most once, also when A holds it in its internal tier.
func TestFleetSingleUse(t *testing.T) {
	addr := redistest.Addr(t)
	cert := thePKI(t).leaf(t, "localhost")
	version := uint16(tls.VersionTLS13)
	o := newFleetOptions(t, addr)
	o.opts = &adapter.ServerOptions{SingleUse: true}
	a := startMember(t, serverConfig(version, cert), o)
	b := startMember(t, serverConfig(version, cert), o)

	total := 0
	for round := range 20 {
		client := ticketFrom(t, version, a.addr)
		var resumed atomic.Int32
		var wg sync.WaitGroup
		for _, m := range []*fleetMember{a, b, a, b} {
			wg.Go(func() {
				cs, err := tryDial(m.addr, client)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				if cs.DidResume {
					resumed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := resumed.Load(); n > 1 {
			t.Fatalf("round %d: one single-use ticket resumed %d times across the fleet", round, n)
		}
		total += int(resumed.Load())
	}
	if total == 0 {
		t.Fatal("no ticket resumed at all in 20 rounds")
	}
	t.Logf("%d of 20 tickets resumed once, none twice", total)
}

// TestFleetRevocationDuringOutage: a revocation made on A while Redis hangs
// is retried on a timer, with no traffic on A, once Redis answers again, so
// B (Redis alone) stops resuming the session; A keeps refusing it meanwhile.
func TestFleetRevocationDuringOutage(t *testing.T) {
	redis := redistest.Start(t)
	cert := thePKI(t).leaf(t, "localhost")
	version := uint16(tls.VersionTLS13)
	o := newFleetOptions(t, redis.Addr)
	o.timeout = 50 * time.Millisecond
	a := startMember(t, serverConfig(version, cert), o)
	o.mode = tlscache.Server | tlscache.NoInternal
	b := startMember(t, serverConfig(version, cert), o)

	client := ticketFrom(t, version, a.addr)
	id := a.onlyIssued(t, 0).ID
	if !dial(t, b.addr, client).DidResume {
		t.Fatal("setup: B did not resume A's session")
	}
	redis.Pause()
	a.srv.Revoke(id)
	if dial(t, a.addr, client).DidResume {
		t.Fatal("A resumed the session it revoked")
	}
	if st := a.tier.Stats(); st.Pending == 0 {
		t.Fatalf("A's tier: %+v, want the failed removal pending", st)
	}
	redis.Resume()
	// A is idle: its timer retries the removal.
	testwait.For(t, "A to retry the removal", 5*time.Second, func() bool {
		st := a.tier.Stats()
		return st.Pending == 0 && st.Retried > 0
	})
	testwait.For(t, "B to trust its watch again", 5*time.Second, b.tier.Trusted)
	if dial(t, b.addr, client).DidResume {
		t.Fatal("B resumed a session revoked on A during the outage")
	}
}

// TestFleetFamilyRevocation: a client rotates TLS 1.3 tickets across
// servers (A, then B, then A); revoking the family on B ends every ticket
// of it on both, also the one A issued from a session B had issued.
func TestFleetFamilyRevocation(t *testing.T) {
	addr := redistest.Addr(t)
	cert := thePKI(t).leaf(t, "localhost")
	version := uint16(tls.VersionTLS13)
	o := newFleetOptions(t, addr)
	a := startMember(t, serverConfig(version, cert), o)
	b := startMember(t, serverConfig(version, cert), o)

	tickets := &stickyCache{} // keeps the newest ticket
	client := clientConfig(t, version, "localhost", tickets)
	dial(t, a.addr, client)
	root := a.onlyIssued(t, 0)
	for i, m := range []*fleetMember{b, a} {
		if !dial(t, m.addr, client).DidResume {
			t.Fatalf("hop %d did not resume", i+1)
		}
	}
	last := a.onlyIssued(t, 1) // issued by A on a resumption of B's ticket
	if a.cache.Peek(last.ID) == nil {
		t.Fatal("setup: A does not hold the ticket it issued last")
	}
	// Revoke on B, from the connection that resumed the root there.
	if n := b.srv.RevokeFamily(b.onlyIssued(t, 0)); n == 0 {
		t.Fatal("B revoked nothing")
	}
	testwait.For(t, "A to drop the family", time.Second, func() bool { return a.cache.Peek(last.ID) == nil && a.cache.Peek(root.ID) == nil })
	if a.cache.Len() != 0 || b.cache.Len() != 0 {
		t.Fatalf("A holds %d sessions and B %d, want the family gone from both", a.cache.Len(), b.cache.Len())
	}
	tickets.freeze()
	for name, m := range map[string]*fleetMember{"A": a, "B": b} {
		if dial(t, m.addr, client).DidResume {
			t.Fatalf("%s resumed the family's last ticket after its revocation on B", name)
		}
	}
}
