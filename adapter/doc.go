// Package adapter binds a tlscache.Cache to [crypto/tls], on both sides.
//
// # Server
//
// crypto/tls resumes sessions only through tickets; a [Server] makes each
// ticket a random identity ([IDLen] bytes from [crypto/rand]) under which
// the session state is kept in the cache, so the application decides which
// sessions resume:
//
//	cache := tlscache.New(nil) // mode Server, 20480 sessions, 7200 s
//	srv := adapter.NewServer(cache, nil)
//	err := srv.Install(tlsConfig) // WrapSession, UnwrapSession and friends
//
// UnwrapSession never fails a handshake: an unknown, malformed, expired or
// foreign identity, a context mismatch or a failing store is a full
// handshake. crypto/tls calls it for each of up to five PSK identities of a
// TLS 1.3 ClientHello; only identities of IDLen bytes (the only ones a
// Server issues) are looked up, and only the first of them: a handshake
// makes at most one lookup and one new session, so at most two store calls
// (package fleet), whatever a ClientHello carries; a QUIC resumption that
// offers early data adds its claim (see [EarlyDataPolicy]), a third. A
// TLS 1.2 resumption hands out the same identity again, so it does not grow
// the cache (crypto/tls re-issues a ticket after every TLS 1.2 resumption,
// with the same secret and creation time).
//
// Sessions are bound to a context: SHA-256 over [ServerOptions.IDContext],
// the SNI server name, the certificate chain the config serves for that name
// (the first certificate valid for the name, as crypto/tls picks without
// the client's algorithms) and the ClientAuth policy. crypto/tls itself
// checks version, cipher suite, a 7-day age limit and client certificates
// on resumption, but not the server name or certificate: a ticket issued for
// a.example would otherwise resume on b.example. With a GetCertificate
// callback there is no static certificate to bind to, and the adapter does
// not call GetCertificate (it may have side effects, such as ACME orders):
// the context then covers the name and policy, and changing
// ServerOptions.IDContext drops every session when certificates change.
// ClientCAs are not part of the context because crypto/tls re-verifies a
// resumed session's client chain against them.
//
// # Controlled resumption
//
// With mode Server|NoInternalStore, handshakes store nothing; the
// application adds the sessions it approves (OpenSSL's SSL_CTX_add_session
// use case). From a [net/http.Handler], the sessions of the request's
// connection are at hand when the server is configured with
// [Server.ConfigureHTTPServer] (or http.Server.ConnContext = [ConnContext]):
//
//	func login(w http.ResponseWriter, r *http.Request) {
//		srv.Approve(adapter.ConnSessionsFrom(r.Context()))
//	}
//
// [Server.Approve] adds the connection's sessions to the cache, and, on a
// server of a fleet, to the store shared by every server: the approval
// holds across the fleet with no more code. Clients offer the newest
// ticket they hold, and every TLS 1.3 handshake issues a new one, so an
// approved session alone would resume once. With
// [ServerOptions.InheritApproval], a session issued on a connection that
// resumed from a cached session is approved too, on whichever server it
// is issued.
//
// # Lineage and revocation
//
// Every handshake, tracked or not, runs on callbacks of its own (a clone of
// the config, made in GetConfigForClient; nothing depends on [net.Conn], so
// QUIC handshakes get them too), so a session issued on a resumed
// handshake knows its parent: it joins the parent's lineage (its family),
// the chain of sessions that one full handshake started. A TLS 1.2
// resumption hands out the resumed session again. The lineage, when it
// was born, the server name and the client certificate's SHA-256 and
// subject travel inside the session's state (an entry of
// [crypto/tls.SessionState.Extra]), so any server of a fleet knows them of a
// session it loaded from the store ([ServerSession] shows them).
//
// Revocation ends lineages: [Server.Revoke] (by ID), [Server.RevokeFamily]
// (a logout), [Server.RevokeServerName], [Server.RevokeContext] and
// [Server.RevokeClientCertificate] (the lineages born before the call),
// [Server.RevokeFunc] (the lineages of the cached sessions it matches), and
// [Server.RevokeWait], which takes a [Revocation] and a context and returns
// once the revocation is durable and applied by every server of the fleet,
// or with the error that says it is not. Each revocation is remembered, for
// the cache's timeout, in a bounded set that every resumption is checked
// against after its state is parsed, so a session revoked elsewhere, or
// written back into a store, does not resume, from the internal tier or from
// the store. With a fleet (fleet.Tier.Watch on the Server, which calls
// [Server.SetFleet]) revocations reach every server and the store's
// tombstones, and a server that cannot be sure it hears them resumes nothing
// until it can (fail closed; see package fleet).
//
// [ServerOptions.LineageTickets] ([DefaultLineageTickets], 4) bounds the
// sessions of one lineage in the cache, most recently used or issued
// first: when a resumption issues a ticket, the lineage's older ones
// beyond the limit leave the internal tier (not the store). So the cache's
// capacity counts clients rather than connections: a client that rotates
// tickets holds up to 4 entries, and one that keeps offering one ticket
// keeps it (it moves to the front at every use) while it is valid.
//
// Tracking works through the same per-handshake callbacks: those of a
// tracked connection also record into its [ConnSessions]. Because the clone
// is made from the config as it is at the ClientHello, a config the
// application changes (a CA dropped from ClientCAs, new certificates)
// applies from the next handshake on, also for the configs
// GetConfigForClient returns; crypto/tls still forbids modifying a config
// while handshakes use it, so replace it or synchronize.
//
// # Early data
//
// crypto/tls accepts early data (0-RTT) only over QUIC, for the first
// identity a ClientHello offers, when the ticket allows it, and it checks
// no ticket age and keeps no record of use: a recorded 0-RTT flight can be
// replayed. [ServerOptions.EarlyData] is the replay defence: [EarlyDataOnce]
// (the default) accepts a ticket's early data at most once, claimed
// atomically in [ServerOptions.EarlyDataClaims] (in process, or a fleet.Tier
// across a fleet), and a later use resumes without it; [EarlyDataOff]
// refuses early data; [EarlyDataSingleUse] takes the ticket of a resumption
// that offers early data. [Server.EarlyDataStats] counts offers, accepts and
// replays. A 0-RTT resumption whose session came from the store makes one
// store call more: the claim. Handlers tell a request that may be a replay
// with [InEarlyData]; [TooEarly] and [RejectEarly] answer 425 Too Early (RFC
// 8470). [ConnSessions.Approve] approves the sessions a connection issues
// later, as QUIC servers issue their ticket after the handshake (package
// quicadapter serves HTTP/3).
//
// Known limit: crypto/tls calls UnwrapSession before it checks the PSK
// binder, so a copied identity offered with a bad binder fails its
// handshake but has claimed the ticket's early data (or taken a single-use
// ticket): the genuine client loses 0-RTT (or resumption), and nothing is
// replayed.
//
// # Client
//
// [ClientCache] is a [crypto/tls.ClientSessionCache] on the same core: the
// Client mode bit, NoInternalStore, NoInternalLookup and the hooks apply,
// manual Add and Remove work, Put(key, nil) deletes without inserting or
// evicting, and sessions export and import as bytes (like openssl s_client
// -sess_out/-sess_in). As in OpenSSL, the new hook fires for the session
// of a full handshake and for each TLS 1.3 ticket, not for the ticket a
// server re-issues after a TLS 1.2 resumption (see [ClientCache.Install]).
// With [ClientOptions.SingleUse] several tickets are kept per server and
// each is used once.
//
// # Counting
//
// Accept counts ClientHellos (GetConfigForClient); AcceptGood and
// ConnectGood count handshakes that passed VerifyConnection, which
// crypto/tls calls on every handshake just before the final Finished
// messages: Go offers no later hook, so a handshake that fails in its last
// message is counted as good. Connect counts ClientSessionCache.Get calls,
// one per client handshake. Hits are lookups that returned a session;
// crypto/tls may still decline it (for example when the client no longer
// offers the session's cipher suite).
//
// # Security
//
// Identities are 16 random bytes: they carry nothing and cannot be forged
// into a session. In TLS 1.2 a resumed session keeps its identity (as a
// TLS 1.2 session ID does), so its resumptions can be linked by an
// observer; TLS 1.3 and single use hand out a new identity each time.
// Server names come from clients: a name is remembered (for the listings'
// ServerName and to share its context) only when it is a valid host name
// of at most 253 bytes that a certificate of the config is for, and only
// once a session is issued under it (a certificate was chosen and the
// handshake got that far). The name caches of a Server share a budget of
// 4 MiB, and the registry behind listings keeps 1 MiB, dropping the names
// least recently issued a session first, so a flood of junk names neither
// grows memory nor pushes out names in use. The cache holds the sessions'
// secrets, and a Session never prints them (see tlscache.Session.String);
// a TLS 1.2 session being resumed is held by that handshake only, until
// its ticket is re-issued. An export holds a client session's secret, so
// store it as you would a private key. Memory
// stays bounded by the cache size, also when TLS 1.3 handshakes fail after
// the ticket was issued (crypto/tls sends it before the client's Finished),
// and the per-config caches of server names and contexts are bounded.
//
// # Concurrency
//
// Server and ClientCache are safe for concurrent use by any number of
// connections. The callbacks they install take no lock of their own beyond
// the cache's, except short ones around bounded maps.
package adapter
