// Package tlscache is OpenSSL's SSL_CTX session cache for Go: a bounded,
// concurrent cache of TLS sessions with OpenSSL's modes, operations, hooks and
// statistics, so that an application decides which sessions may resume.
//
// The package is the engine, with no dependency on [crypto/tls]; package
// [github.com/tlscache/tlscache/adapter] binds it to a [crypto/tls.Config]
// on the server side (WrapSession/UnwrapSession) and the client side
// ([crypto/tls.ClientSessionCache]).
//
// # From OpenSSL to Go
//
//	OpenSSL                                   tlscache
//	SSL_CTX_add_session                       (*Cache).Add
//	SSL_CTX_remove_session                    (*Cache).Remove, (*Cache).RemoveID
//	SSL_CTX_flush_sessions(ctx, t)            (*Cache).Flush(t); Flush(time.Time{}) or FlushAll for all
//	SSL_CTX_set_session_cache_mode            (*Cache).SetMode (returns the previous mode)
//	SSL_CTX_get_session_cache_mode            (*Cache).Mode
//	SSL_SESS_CACHE_OFF, _CLIENT, _SERVER, ...  Off, Client, Server, Both, NoAutoClear, NoInternalLookup,
//	                                          NoInternalStore, NoInternal, UpdateTime (same values)
//	SSL_CTX_set_timeout / SSL_CTX_get_timeout (*Cache).SetTimeout / Timeout
//	SSL_CTX_sess_set_cache_size / _get_       (*Cache).SetSize / Size
//	SSL_CTX_sess_set_new_cb                   Options.NewHook
//	SSL_CTX_sess_set_get_cb                   Options.GetHook
//	SSL_CTX_sess_set_remove_cb                Options.RemoveHook
//	SSL_CTX_set_session_id_context            Session.IDContext (set by the adapter per virtual host)
//	SSL_CTX_sess_number                       (*Cache).Len, Stats.Number
//	SSL_CTX_sess_connect, _connect_good       Stats.Connect, Stats.ConnectGood
//	SSL_CTX_sess_accept, _accept_good         Stats.Accept, Stats.AcceptGood
//	SSL_CTX_sess_hits, _cb_hits, _misses      Stats.Hits, Stats.CbHits, Stats.Misses
//	SSL_CTX_sess_timeouts, _cache_full        Stats.Timeouts, Stats.CacheFull
//	SSL_SESSION_get_time / set_time           (*Session).Created / SetCreated
//	SSL_SESSION_get_timeout / set_timeout     (*Session).Timeout / SetTimeout
//	SSL_SESSION_is_resumable                  (*Session).Resumable
//	ssl_get_prev_session (the lookup)         (*Cache).Lookup, and (*Cache).Take for single use
//	ssl_update_cache (a handshake's session)  (*Cache).NewSession, (*Cache).HandshakeStart / HandshakeDone
//	i2d_SSL_SESSION / d2i_SSL_SESSION         (*Session).MarshalBinary / UnmarshalBinary
//
// Beyond OpenSSL: [Stats.ContextMismatches], [Stats.StoreErrors] and
// per-tier hits ([Stats.InternalHits], [Stats.ExternalHits]); [Cache.Take]
// for single-use sessions; [Cache.RemoveFunc] for revocation by predicate;
// [Cache.All] to list sessions; [Cache.Peek]; a [Reason] passed to the
// remove hook; external stores; a byte budget ([Options.MaxBytes],
// [Options.MaxSessionBytes], [Cache.Bytes], [Stats.TooLarge]); and
// admission that protects established sessions ([Cache.Promote],
// [Stats.Refused]).
//
// # External stores
//
// A [Store] is the small interface a shared cache implements (context
// first, bytes, a TTL, Take for single use, [ErrCacheMiss]), and a
// [Watcher] one that reports what other processes deleted; a [Claimer]
// records a key once (for the early-data claims of a fleet). [MemoryStore]
// implements all three in process; package
// [github.com/tlscache/tlscache/redisstore] implements them on Redis;
// package [github.com/tlscache/tlscache/fleet] turns a Store into the
// three hooks, sealing each session, bounding each call with a deadline
// and backing off from a failing store. Every Store passes the suite in
// package [github.com/tlscache/tlscache/tlscache/storetest]. Three rules
// serve shared stores: [Cache.Invalidate] drops a session another process
// removed, calling the remove hook with reason [Invalidated] (not to be
// propagated again); a get-hook result that raced with an Invalidate of
// its ID (or a [Cache.FlushAll]) is a miss and is not copied in, so a
// revocation is not undone by a lookup in flight; and a remove hook that
// answers reason [Taken] with an error makes Take miss, since another
// server took the session first or the store could not say.
//
// # Logs
//
// With Options.Logger set, the cache logs two lines, once per change and
// never per handshake: a Warn when context mismatches
// (Stats.ContextMismatches: sessions found under another IDContext, a
// silent miss) come in a burst, MismatchBurst (10) within MismatchWindow
// (10 s), as when servers with different certificates, client-auth
// settings or IDContexts share a store; and an Info when the burst has
// ended, after a MismatchWindow without a mismatch (noticed at the next
// mismatch or new session), with the burst's count. Counting costs a
// mismatch a few atomic operations and a hit nothing; lines are written
// with no lock of the cache held.
//
// # Behaviour
//
// A session is expired at t iff t > Created+Timeout: it is still valid at
// exactly its expiry time. The defaults are OpenSSL's: mode [Server], size
// [DefaultSize] (20480), timeout [DefaultTimeout] (7200 s, OpenSSL's real
// default; its man page says 300 s).
//
// The cache never holds more than Size sessions (OpenSSL 3 keeps Size-1),
// nor more than MaxBytes in sessions ([DefaultMaxBytes], 64 MiB). When
// [Cache.Add] needs room it evicts the session that expires soonest, ties
// going to the oldest insertion, and never the session being added, even
// when that one expires first. A session larger than MaxSessionBytes (64 KiB
// by default: a client certificate chain of hundreds of kilobytes, say) is
// not cached and is counted in TooLarge; the handshake that made it goes on.
//
// # Admission
//
// crypto/tls issues a TLS 1.3 ticket before it has read the client's
// Finished, so a handshake that never completes still makes a session. The
// sessions [Cache.NewSession] stores for a server handshake are therefore
// probationary: they may evict only each other, never an established
// session. A session is established when it was added with Add, when a
// lookup finds it (its client came back), or when Promote vouches for it;
// the adapter promotes the sessions of TLS 1.2 handshakes (whose ticket
// follows the client's Finished) and of resumed ones (whose client proved
// it held a cached session). So a flood of unfinished handshakes churns
// the probationary sessions and leaves established ones resumable. For new
// sessions to find room in a cache full of established ones, promotions
// keep the established sessions to 7/8 of Size and of MaxBytes, evicting
// the established ones that expire soonest; established sessions beyond
// that share (added by hand, say) may be evicted by probationary ones.
// Known limit: a TLS 1.3 full handshake's session stays probationary until
// its first resumption, so a flood can push out a session whose client
// completed one handshake and has not come back yet; its next handshake is
// a full one.
//
// Where this package decides differently from OpenSSL, on points OpenSSL
// leaves to chance:
//   - A get-hook result is copied into the internal cache before its
//     context and expiry are checked, as in OpenSSL: with [UpdateTime] the
//     copy refreshes it, so it cannot be found expired. A result whose ID
//     is not the one asked for is ignored and counted in StoreErrors.
//   - A get-hook result with no creation time or timeout gets now and the
//     cache's timeout.
//   - Every way out of the cache ([Cache.Remove], eviction, flush, expiry at
//     lookup, Take) marks the session not resumable, and Remove also marks
//     the session passed in. Internal lookups do not look at the flag, so a
//     session added again by hand resumes; get-hook results that are not
//     resumable are ignored.
//   - Automatic clearing runs on every 255th completed handshake of a role
//     the mode has (255, 510, ...), counted with [Stats.AcceptGood] or
//     [Stats.ConnectGood].
//   - [Options.Mode] zero means the default, Server; start with [Off]
//     through SetMode(Off).
//   - A [*Session] lives in at most one [Cache] at a time; adding one that
//     another Cache holds is refused.
//
// # Security
//
// [Session.State] holds the resumption secret: whoever has it can resume
// the session, and for TLS 1.2 decrypt the connections that used it. The
// encoding of [Session.MarshalBinary] is not encrypted; seal it before it
// leaves the process. A session that leaves the cache is unlinked at once
// and its bytes in the cache's arenas are zeroed, so its secret becomes
// unreachable as soon as the application and the hooks let go of their
// copies; the cache never zeroes a Session's State, since the application
// may still hold and re-add the session.
//
// Memory is bounded by Size and by MaxBytes, however fast sessions are
// created and however large what peers send (a session kept as a Value
// alone, as adapter's ClientCache keeps a client session no hook reads,
// is charged the estimate in its [Session.ValueSize], and Size bounds how
// many such Values are held); IDs of any length and content are looked up
// safely; [Session.UnmarshalBinary] accepts any bytes without panicking
// or allocating more than its input. A session is found and removed by the
// ID it had when it was added, so a Session modified after Add breaks
// nothing but itself.
//
// # Storage
//
// The cache keeps what the garbage collector would otherwise scan out of
// its sight: a session a handshake stored (NewSession) without a Value
// lives in fixed-size entries without pointers, an open-addressed index of
// slot numbers and byte arenas for IDs and states, with each distinct
// IDContext kept once. A million such sessions are a few dozen heap
// objects, not millions, and add nothing to each GC cycle's marking.
// Sessions added with Add or carrying a Value are also kept themselves, in
// a side table, because Peek, [Cache.Lookup] and the hooks hand that very
// object back; the others are handed out as copies that stand for the cached
// session (see Session). The expiry order is a FIFO queue per timeout for
// sessions that arrive in the order they expire (the common case: every
// operation O(1)) and a binary heap for the others.
//
// # Concurrency
//
// A Cache is safe for concurrent use. One mutex guards the storage; every
// operation holds it for O(1) work in the common case (O(log n) for
// sessions in the heap) and never while user code runs: hooks and
// RemoveFunc's predicate run with no lock held, so they may call back into
// the cache, and they may run concurrently with each other. A hook that
// panics leaves the cache unlocked and consistent; when one of several
// removals' hooks panics (a [Cache.Flush], say), the others are still called
// and the first panic is raised again afterwards. Counters are atomic or
// counted under the lock the operation holds anyway. On the default clock,
// lookups read the monotonic clock only. [Stats] is a snapshot whose
// counters are read one by one.
package tlscache
