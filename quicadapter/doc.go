// Package quicadapter serves HTTP/3 ([github.com/quic-go/quic-go]) with the
// session cache of package adapter: tickets resume over QUIC under the
// application's control, and early data (0-RTT) is accepted at most once
// per ticket, on every server of a fleet. The core and the adapter never
// import quic-go; this package is where it meets them.
//
//	srv := adapter.NewServer(cache, nil) // EarlyDataOnce by default
//	h3 := &http3.Server{Handler: adapter.TooEarly(mux, nil), TLSConfig: tlsConfig}
//	qs, err := quicadapter.NewServer(h3, srv)
//	tr := &quic.Transport{Conn: udpConn}
//	err = qs.Serve(tr)
//
// # Server
//
// [Server.Listen] sets up the quic.Transport's ConnContext ([ConnContext]),
// so that each connection's handshake is tracked (adapter.ConnSessionsFrom
// works in handlers, as with adapter.ConnContext over TCP), and it gives
// the listener a config whose tickets record the HTTP/3 SETTINGS: 0-RTT is
// refused for a ticket issued under SETTINGS it could break, the check
// http3.Server makes only on listeners it creates itself (ListenAndServe,
// Serve), which have no ConnContext. Handlers reach the connection with
// [ConnFrom], and adapter.InEarlyData tells a request that may be a replay.
//
// Over QUIC the server's ticket is issued after the handshake, so the
// handler of a 0-RTT request (or of a 1-RTT one that raced it) runs before
// its connection issued anything: approve with
// adapter.ConnSessions.Approve, which also approves what the connection
// issues later, rather than with All.
//
// # Early data
//
// [crypto/tls] accepts early data only over QUIC, checks no ticket age and
// keeps no record of used tickets: with its own tickets, a recorded 0-RTT
// flight replayed to a server (or another server of the fleet) runs the
// request's handler again. The adapter's EarlyDataPolicy is the defence
// RFC 8446 section 8.1 asks for: by default the first resumption that
// offers a ticket's early data claims it (a tlscache.Claimer: in process,
// or fleet.Tier for a fleet), and a replay resumes without early data, so
// its requests are never read. Requests that arrived in early data on the
// genuine connection can still be a replay of each other only through
// the client; for those not safe to process twice, adapter.TooEarly
// answers 425 Too Early (RFC 8470) and [RoundTripper] resends them after
// the handshake.
//
// Known limit: crypto/tls calls UnwrapSession before it checks the PSK
// binder, so whoever copies a ticket identity off the wire can offer it
// with a bad binder: the handshake fails, but the lookup already claimed
// the ticket's early data (EarlyDataOnce: the genuine client's 0-RTT is
// refused, it still resumes) or took the ticket (EarlyDataSingleUse and
// adapter.ServerOptions.SingleUse: the genuine client does a full
// handshake). That is a denial of 0-RTT or of resumption, never a replay:
// nothing the attacker sends is read.
//
// # Client
//
// RoundTripper sends GET and HEAD requests in 0-RTT when it can, and
// resends once, after the handshake, a request whose early data the server
// refused (quic.Err0RTTRejected, or 425 Too Early).
package quicadapter
