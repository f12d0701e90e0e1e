package adapter

import (
	"context"
	"net/http"
	"slices"
)

type handshakeDoneKey struct{}

// WithHandshakeDone returns ctx carrying done, a channel closed when the
// connection's handshake has completed. A transport that accepts early
// data puts it in every request's context (package quicadapter does, for
// HTTP/3); [InEarlyData] reads it.
func WithHandshakeDone(ctx context.Context, done <-chan struct{}) context.Context {
	return context.WithValue(ctx, handshakeDoneKey{}, done)
}

// InEarlyData reports whether r may have arrived in early data (0-RTT),
// and so may be a replay: its connection's handshake had not completed
// when InEarlyData was called (a server reads no 1-RTT data before that),
// or a proxy in front forwarded it before its own handshake completed
// (the Early-Data: 1 header of RFC 8470, which only costs a client that
// forges it a 425). A request that arrived in early data on a connection
// whose handshake has since completed reports false: the handshake proved
// the client, so it is not a replay (RFC 8470 section 5.1 lets a server
// wait for that).
func InEarlyData(r *http.Request) bool {
	if slices.Contains(r.Header.Values("Early-Data"), "1") {
		return true
	}
	done, _ := r.Context().Value(handshakeDoneKey{}).(<-chan struct{})
	if done == nil {
		return false // crypto/tls reads no early data over TCP
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// RejectEarly answers 425 Too Early (RFC 8470) if r may have arrived in
// early data, and reports whether it did: the handler's choice, for a
// request it finds unsafe to replay whatever its method.
//
//	if adapter.RejectEarly(w, r) {
//		return // the client resends after the handshake
//	}
func RejectEarly(w http.ResponseWriter, r *http.Request) bool {
	if !InEarlyData(r) {
		return false
	}
	http.Error(w, "425 too early: resend after the handshake", http.StatusTooEarly)
	return true
}

// SafeMethod reports whether a request's method is safe (RFC 9110 section
// 9.2.1: GET, HEAD, OPTIONS, TRACE), the requests [TooEarly] lets through in
// early data by default.
func SafeMethod(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// TooEarly returns a handler that answers 425 Too Early to requests that
// may have arrived in early data ([InEarlyData]) and that safe does not
// find safe to replay, and passes every other request to next. A nil safe
// means [SafeMethod]. A handler behind it may still refuse a request of its
// own with [RejectEarly].
func TooEarly(next http.Handler, safe func(*http.Request) bool) http.Handler {
	if safe == nil {
		safe = SafeMethod
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safe(r) && RejectEarly(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
