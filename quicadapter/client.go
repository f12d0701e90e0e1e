package quicadapter

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// RoundTripper is an [http.RoundTripper] over HTTP/3 that sends safe
// requests (GET and HEAD, the ones http3 can send early) in 0-RTT when the
// client holds a ticket that allows it, and resends once, after the
// handshake, a request whose early data the server refused:
//
//   - the server answered 425 Too Early (RFC 8470): the request is resent
//     on the same connection once its handshake is complete;
//   - the server rejected the connection's 0-RTT ([quic.Err0RTTRejected]):
//     [http3.Transport] fails the request, and a redial would offer 0-RTT
//     again, so the request is resent on a connection dialed without
//     early data (it still resumes).
//
// A request with a body is resent only if its GetBody is set. Set the
// fields before the first request; [RoundTripper.Close] closes the
// connections.
type RoundTripper struct {
	// TLSClientConfig is the client's TLS config; its ClientSessionCache
	// holds the tickets (an adapter.ClientCache, for instance).
	TLSClientConfig *tls.Config
	// QUICConfig is the QUIC config of its connections; nil means
	// quic-go's defaults.
	QUICConfig *quic.Config
	// NoEarly sends every request after the handshake: no 0-RTT.
	NoEarly bool

	once        sync.Once
	early, late *http3.Transport
	resent      atomic.Int64
}

var _ http.RoundTripper = (*RoundTripper)(nil)

func (rt *RoundTripper) init() {
	rt.once.Do(func() {
		rt.early = &http3.Transport{TLSClientConfig: rt.TLSClientConfig, QUICConfig: rt.QUICConfig}
		rt.late = &http3.Transport{
			TLSClientConfig: rt.TLSClientConfig, QUICConfig: rt.QUICConfig,
			Dial: func(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, addr, tlsCfg, cfg) // no 0-RTT
			},
		}
	})
}

// Resent returns how many requests the RoundTripper resent after a refusal
// of their early data.
func (rt *RoundTripper) Resent() int64 { return rt.resent.Load() }

// Close closes the RoundTripper's connections.
func (rt *RoundTripper) Close() error {
	rt.init()
	return errors.Join(rt.early.Close(), rt.late.Close())
}

// RoundTrip implements [http.RoundTripper].
func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.init()
	send := req
	early := false
	if !rt.NoEarly {
		var method string
		switch req.Method {
		case http.MethodGet, "":
			method = http3.MethodGet0RTT
		case http.MethodHead:
			method = http3.MethodHead0RTT
		}
		if method != "" {
			send = req.Clone(req.Context())
			send.Method = method
			early = true
		}
	}
	resp, err := rt.early.RoundTrip(send)
	via := rt.early // a 425: the same connection, after its handshake
	switch {
	case errors.Is(err, quic.Err0RTTRejected):
		via = rt.late
	case err == nil && early && resp.StatusCode == http.StatusTooEarly:
		resp.Body.Close()
	default:
		return resp, err
	}
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("tlscache/quicadapter: early data refused for a request whose body cannot be resent (set GetBody)")
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	}
	rt.resent.Add(1)
	// Not a 0-RTT method: http3 waits for the handshake before sending it.
	return via.RoundTrip(again)
}
