// Package tlscache is OpenSSL's SSL_CTX session cache for Go: a bounded,
// concurrent cache of TLS sessions with OpenSSL's modes, operations, hooks and
// statistics, so that an application decides which sessions may resume.
//
// The package is the engine, with no dependency on crypto/tls; package
// github.com/tlscache/tlscache/adapter binds it to a *tls.Config on the
// server side (WrapSession/UnwrapSession) and the client side
// (tls.ClientSessionCache).
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
// Beyond OpenSSL: Stats.ContextMismatches, Stats.StoreErrors and per-tier
// hits (Stats.InternalHits, Stats.ExternalHits); Take for single-use
// sessions; RemoveFunc for revocation by predicate; All to list sessions;
// Peek; a Reason passed to the remove hook; and external stores.
//
// # External stores
//
// A Store is the small interface a shared cache implements (context first,
// bytes, a TTL, Take for single use, ErrCacheMiss), and a Watcher one that
// reports what other processes deleted; a Claimer records a key once (for
// the early-data claims of a fleet). MemoryStore implements all three in
// process; package github.com/tlscache/tlscache/redisstore implements them
// on Redis; package github.com/tlscache/tlscache/fleet turns a Store into
// the three hooks, sealing each session, bounding each call with a
// deadline and backing off from a failing store. Every Store passes the
// suite in package storetest. Three rules serve shared stores: Invalidate
// drops a session another process removed, calling the remove hook with
// reason Invalidated (not to be propagated again); a get-hook result that
// raced with an Invalidate of its ID (or a FlushAll) is a miss and is not
// copied in, so a revocation is not undone by a lookup in flight; and a
// remove hook that answers reason Taken with an error makes Take miss,
// since another server took the session first or the store could not say.
//
// # Behaviour
//
// A session is expired at t iff t > Created+Timeout: it is still valid at
// exactly its expiry time. The defaults are OpenSSL's: mode Server, size
// DefaultSize (20480), timeout DefaultTimeout (7200 s, OpenSSL's real
// default; its man page says 300 s).
//
// The cache never holds more than Size sessions (OpenSSL 3 keeps Size-1).
// When Add needs room it evicts the session that expires soonest, ties
// going to the oldest insertion, and never the session being added, even
// when that one expires first.
//
// Where this package decides differently from OpenSSL, on points OpenSSL
// leaves to chance:
//   - A get-hook result is copied into the internal cache before its
//     context and expiry are checked, as in OpenSSL: with UpdateTime the
//     copy refreshes it, so it cannot be found expired. A result whose ID
//     is not the one asked for is ignored and counted in StoreErrors.
//   - A get-hook result with no creation time or timeout gets now and the
//     cache's timeout.
//   - Every way out of the cache (Remove, eviction, flush, expiry at lookup,
//     Take) marks the session not resumable, and Remove also marks the
//     session passed in. Internal lookups do not look at the flag, so a
//     session added again by hand resumes; get-hook results that are not
//     resumable are ignored.
//   - Automatic clearing runs on every 255th completed handshake of a role
//     the mode has (255, 510, ...), counted with AcceptGood or ConnectGood.
//   - Options.Mode zero means the default, Server; start with Off through
//     SetMode(Off).
//   - A *Session lives in at most one Cache at a time; adding one that
//     another Cache holds is refused.
//
// # Security
//
// Session.State holds the resumption secret: whoever has it can resume the
// session, and for TLS 1.2 decrypt the connections that used it. The
// encoding of MarshalBinary is not encrypted; seal it before it leaves the
// process. Sessions that leave the cache are unlinked at once (the map and
// heap drop them), so their secrets become unreachable as soon as the
// application and the hooks let go of them; the cache never zeroes State,
// since the application may still hold and re-add the session.
//
// Memory is bounded by Size, however fast sessions are created; IDs of any
// length and content are looked up safely; UnmarshalBinary accepts any bytes
// without panicking or allocating more than its input.
//
// # Concurrency
//
// A Cache is safe for concurrent use. One read-write mutex guards the map and
// the expiry heap: lookups share it, changes hold it alone, and every
// operation is O(log n) or better in the number of cached sessions. Counters
// are atomic. Hooks and RemoveFunc's predicate run with no lock held, so they
// may call back into the cache; they may run concurrently with each other.
// Stats is a snapshot whose counters are read one by one.
package tlscache
