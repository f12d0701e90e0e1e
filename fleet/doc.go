// Package fleet puts a shared tlscache.Store (Redis, through package
// redisstore) behind a tlscache.Cache, so that the servers of a fleet
// resume each other's sessions and a revocation on one holds on all.
//
//	srv, err := fleet.NewServer(store, &fleet.ServerOptions{Keys: keys})
//	defer srv.Close()
//	err = srv.ListenAndServeTLS(&http.Server{Addr: ":8443", Handler: h}, "cert.pem", "key.pem")
//
// NewServer assembles the pieces, which stay available for other setups:
//
//	tier, err := fleet.New(store, &fleet.Options{Keys: keys})
//	cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server}))
//	srv := adapter.NewServer(cache, &adapter.ServerOptions{EarlyDataClaims: tier})
//	go tier.Watch(ctx, srv) // apply what other servers revoke; fail closed
//	<-tier.Ready()
//
// With ServerOptions.ApprovedOnly only the sessions the application
// approves (adapter.Server.Approve, at a login) resume, on every server,
// and the tickets their clients rotate to inherit the approval; a logout's
// revocation (adapter.Server.RevokeWait of the connection) ends them on
// every server.
//
// # Two tiers
//
// With mode Server the cache's internal tier sits in front of the store: a
// new session goes to both (new hook), a lookup that misses locally asks
// the store (get hook) and copies the result in. With Server|NoInternal the
// store alone holds sessions: every resumption is a store round trip, and
// nothing is held locally. Evictions, flushes and expiry stay local: the
// store expires sessions by its own TTL.
//
// # Revocation
//
// The promise: once a revocation returned, no server of the fleet resumes
// a revoked session more than one second later, under any single fault of
// the store or of a server's connection to it (killed, stopped, paused,
// partitioned, its subscription silently dropped).
//
//   - Durable and fleet-wide. A removal by hand (Remove, RemoveID,
//     RemoveFunc) and every revocation of an adapter.Server (of a lineage,
//     server name, context or client certificate: see package adapter)
//     goes to the store in one call (a [Revoker]'s Revoke: DEL, a tombstone
//     kept for [Options.Lifetime], PUBLISH) and from there to every watching
//     server, whose [Target] applies it. Each time a watch (re)subscribes it
//     reads the tombstones again, so a server that missed the message, or
//     joins later, applies it too; an adapter.Server keeps what it applied
//     for its cache's timeout and checks every resumption against it, so a
//     revoked value written back into the store does not resume.
//   - Retried. A removal the store did not take is kept and retried on a
//     timer, with back-off from [RetryMin] to [RetryMax], whatever the
//     traffic, until it lands (or [Tier.Close]). The adapter's RevokeWait
//     reports it: it returns an error unless the store took the revocation
//     and every watching server confirmed it applied it (PUBLISH's count of
//     receivers, each acknowledging), so a logout handler knows.
//   - Fail closed. A watch is trusted only while it is subscribed, has
//     loaded the tombstones since, and (a [LiveWatcher] such as
//     redisstore's) has heard, within [Silence] (700 ms), its own heartbeat
//     published through the store: proof that publishes go through and that
//     its subscription delivers. While it is not, the get hook misses and an
//     adapter.Server resumes nothing ([Tier.Trusted]; [Stats.Trusted]).
//     After a fault, trust returns a quarantine ([Options.Quarantine],
//     [DefaultQuarantine]: 1.5 s) after the heartbeat and the tombstones
//     came back, so that revocations other servers could not make during
//     the fault land first: each server retries its pending ones as soon
//     as its own heartbeat is back, and every RetryMax (200 ms) at most,
//     but its store client may take a second to reconnect (go-redis
//     probes a Redis it failed to dial once a second), so the quarantine
//     covers that too. [Options.FailOpen] keeps resuming instead:
//     then a server that misses a revocation resumes the revoked sessions it
//     holds, and those it can still read, until it resyncs, however long the
//     fault.
//
// The price of failing closed: full handshakes on a server while its
// watch is not trusted (a Redis outage, a partition, a CPU so busy that
// the heartbeat is 0.7 s late, and the quarantine after each), and one
// heartbeat PUBLISH per server every 100 ms. Lookups make no extra store
// call: a handshake makes at most two (its lookup and its new session).
// What fail closed cannot cover: a revoking server cut off from the store
// while the others are not, or one whose store client reconnects more
// than the quarantine after the others did, gets an error (RevokeWait)
// and retries; the others may resume the session until it lands. A plain *tlscache.Cache target cannot check
// trust nor apply revocations of whole lineages: it is flushed when the
// tier stops trusting its watch (within 50 ms), at every resync, and when
// [Tier.Watch] returns; watch an *adapter.Server, which keeps its sessions
// through a fault.
//
// Single use (adapter.ServerOptions.SingleUse, or Cache.Take) holds across
// the fleet: a take from the internal tier is confirmed by an atomic take
// from the store, and loses if another server took the session first.
//
// Early data (0-RTT) is accepted once per ticket across the fleet when the
// tier is the adapter's claimer (adapter.ServerOptions.EarlyDataClaims):
// [Tier.Claim] records the ticket in the store (redisstore: SET NX PX), and
// the first server to claim it wins. A claim that fails refuses the early
// data; the handshake goes on without it.
//
// # Failure
//
// The TLS hooks have no context, so every store call runs under a
// deadline: by default one that adapts to the store's latency, four times the
// peak of recent calls (forgotten by half every ten seconds), between
// [DefaultTimeout] (100 ms) and [Options.MaxTimeout] ([DefaultMaxTimeout],
// 250 ms), and MaxTimeout for the first calls, before any latency is known;
// a call that times out counts as taking its whole deadline, so the next one
// is four times as long. A busy host, whose scheduling stalls stretch round
// trips now and then, thus keeps resuming; [Options.Timeout] fixes the
// deadline instead. A call that fails or times out is a miss: the
// handshake goes on as a full one, and the cache counts a StoreError.
//
// When, within [Options.Window] (a second; or over the last 2 x Failures
// calls, if the window holds fewer), at least [Options.Failures] (5) calls
// failed and they make at least half of the calls, the store is skipped
// for [Options.BackOff] (half a second), after which one call probes it, and
// a store that answers again is used again, with no restart. A burst of
// timeouts among calls that succeed does not stop resumption. A [Sharded]
// store (a Redis Cluster: redisstore.Store.Shard names the master of a
// key) backs off per shard: the other masters' sessions keep resuming, and
// a key whose master changed (a replica promoted) is tried at once. What a
// failing store adds to a handshake, which makes at most two store calls
// (three for a QUIC resumption that offers early data: its claim): a
// refused connection, a round trip; a hung store, at most two deadlines
// (2 x 250 ms; three with the claim), for the handshakes before the
// back-off starts (at once for a store that fails from the start, within
// a window for one that was busy) and for one probe per back-off.
// [Options.Logger] gets a line, once per change and never one per
// handshake, at each of these events:
//
//   - Warn "fleet: store failing, backing off: full handshakes where it is
//     needed" when a back-off starts (attributes shard, failed, calls,
//     window, back_off);
//   - Info "fleet: store answers again, back-off ended" when it ends
//     (shard, down_for);
//   - Warn "fleet: watch lost: resumptions are full handshakes until it
//     resyncs" when the tier stops trusting its watch (with FailOpen:
//     "fleet: watch lost: FailOpen, still resuming: revocations may be
//     missed until it resyncs"; attribute reason: heartbeat silent, not
//     subscribed, or quarantine after a fault; and silent_for for a
//     silent heartbeat);
//   - Info "fleet: watch resynced, trusted again" when it trusts it again
//     (lost_for).
//
// The watch's trust is checked every 50 ms while Watch runs: a loss
// shorter than that may go unlogged ([Stats.Untrusted] counts them), a loss
// is logged only once the watch first worked, and Watch stopping is not
// one. The cache's own Logger (tlscache.Options.Logger) reports
// bursts of context mismatches: servers that share the store but whose
// sessions do not resume on each other.
//
// A removal that fails is retried on a timer (see Revocation). A lookup
// whose store read raced with a revocation does not bring the session back
// (see tlscache.Cache.Invalidate).
//
// # Security
//
// Every value written is sealed with XChaCha20-Poly1305 under the first key
// of [Options.Keys], with a random 24-byte nonce, and carries the key's ID;
// the store key and the session's context are additional data, so a value
// copied under another key, or given another context, does not open. Any
// key of the ring opens: to rotate, put a new key first on every server,
// and remove the old one after the session timeout. A value that does not
// open (another fleet's, tampered, truncated, or sealed under a key that
// was removed) is [ErrUnsealed]: a miss, counted in [Stats.BadValues]. The
// store sees session IDs (its keys, which clients also see) and contexts
// (SHA-256 digests, in the clear in the value header), never secrets.
//
// # Concurrency
//
// A [Tier] is safe for concurrent use; its hooks may run from many
// handshakes at once. Watch runs until its context is done; cancel it to
// stop it. The retry timer's goroutine runs only while removals are pending;
// Close stops it.
package fleet
