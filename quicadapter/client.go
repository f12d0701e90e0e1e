package quicadapter

import (
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// RoundTripper is an http.RoundTripper over HTTP/3 that sends safe requests
// (GET and HEAD, the ones http3 can send early) in 0-RTT when the client
// holds a ticket that allows it, and resends once, after the handshake, a
// request whose early data the server refused: the connection's 0-RTT was
// rejected (quic.Err0RTTRejected, which http3.Transport returns rather than
// resending), or the server answered 425 Too Early (RFC 8470). A request
// with a body is resent only if its GetBody is set.
type RoundTripper struct {
	// Transport carries the requests; it must not be nil.
	Transport *http3.Transport
	// NoEarly sends every request after the handshake: no 0-RTT.
	NoEarly bool

	resent atomic.Int64
}

var _ http.RoundTripper = (*RoundTripper)(nil)

// Resent returns how many requests the RoundTripper resent after a refusal
// of their early data.
func (rt *RoundTripper) Resent() int64 { return rt.resent.Load() }

// RoundTrip implements http.RoundTripper.
func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
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
	resp, err := rt.Transport.RoundTrip(send)
	refused := errors.Is(err, quic.Err0RTTRejected)
	if err == nil && resp.StatusCode == http.StatusTooEarly && early {
		resp.Body.Close()
		refused = true
	}
	if !refused {
		return resp, err
	}
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			if err == nil {
				err = errors.New("tlscache/quicadapter: 425 Too Early for a request whose body cannot be resent (set GetBody)")
			}
			return nil, err
		}
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, gerr
		}
		again.Body = body
	}
	again.Header.Del("Early-Data")
	rt.resent.Add(1)
	// Not a 0-RTT method: http3 waits for the handshake before sending it.
	return rt.Transport.RoundTrip(again)
}
