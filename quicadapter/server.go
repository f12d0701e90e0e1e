package quicadapter

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
)

// ConnContext is a [quic.Transport.ConnContext] that tracks each
// connection's sessions, as [adapter.ConnContext] does for [net/http] over
// TCP: quic-go runs the connection's TLS handshake under the context it
// returns, and derives every stream's and request's context from it, so
// that adapter.ConnSessionsFrom(r.Context()) is the connection's record.
func ConnContext(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	ctx, _ = adapter.WithConnSessions(ctx)
	return ctx, nil
}

type connKey struct{}

// ConnFrom returns the QUIC connection a request (its context) arrived
// on, for connections a [Server] serves, or nil.
func ConnFrom(ctx context.Context) *quic.Conn {
	c, _ := ctx.Value(connKey{}).(*quic.Conn)
	return c
}

// A Server serves HTTP/3 (an [*http3.Server]) with the sessions of an
// [*adapter.Server]: tickets resume and carry early data under the adapter's
// policies, each connection's sessions are tracked, and handlers can tell
// early-data requests ([adapter.InEarlyData]). Create one with [NewServer].
type Server struct {
	h3       *http3.Server
	sessions *adapter.Server
	settings h3Settings

	conns, resumed, used0RTT atomic.Int64
}

// Stats count the HTTP/3 connections a [Server] handled.
type Stats struct {
	Conns    int64 `json:"conns"`     // connections handed to HTTP/3
	Resumed  int64 `json:"resumed"`   // of those, resumed from a ticket
	Used0RTT int64 `json:"used_0rtt"` // of those, with early data accepted
}

// NewServer binds h3.TLSConfig to sessions ([adapter.Server.Install]: a
// config bound already to sessions is fine, one bound to another Server is
// [adapter.ErrBound]) and sets h3.ConnContext, keeping the one h3 had, so
// that requests carry their connection ([ConnFrom]) and its handshake state
// ([adapter.InEarlyData]). Set h3's fields before NewServer.
func NewServer(h3 *http3.Server, sessions *adapter.Server) (*Server, error) {
	if h3.TLSConfig == nil {
		return nil, errors.New("tlscache/quicadapter: http3.Server.TLSConfig is not set")
	}
	if err := sessions.Install(h3.TLSConfig); err != nil {
		return nil, err
	}
	s := &Server{h3: h3, sessions: sessions, settings: settingsOf(h3)}
	user := h3.ConnContext
	h3.ConnContext = func(ctx context.Context, c *quic.Conn) context.Context {
		if user != nil {
			ctx = user(ctx, c)
		}
		s.count(c)
		ctx = context.WithValue(ctx, connKey{}, c)
		return adapter.WithHandshakeDone(ctx, c.HandshakeComplete())
	}
	return s, nil
}

func (s *Server) count(c *quic.Conn) {
	st := c.ConnectionState()
	s.conns.Add(1)
	if st.TLS.DidResume {
		s.resumed.Add(1)
	}
	if st.Used0RTT {
		s.used0RTT.Add(1)
	}
}

// Stats returns a snapshot of the server's connection counters.
func (s *Server) Stats() Stats {
	return Stats{Conns: s.conns.Load(), Resumed: s.resumed.Load(), Used0RTT: s.used0RTT.Load()}
}

// Listen returns an early listener on tr for the server, to pass to
// [http3.Server.ServeListener] (or use [Server.Serve]). It sets
// tr.ConnContext to [ConnContext], after the one tr had, so call it before
// tr dials or listens. The listener's TLS config is a clone of h3.TLSConfig
// speaking "h3" whose tickets record the server's HTTP/3 SETTINGS, and 0-RTT
// is refused for a ticket issued under SETTINGS it could break: the check
// [http3.Server] makes on the listeners it creates itself, and not on
// ServeListener's. Its QUIC config is h3.QUICConfig, or one that allows
// 0-RTT (http3's default).
func (s *Server) Listen(tr *quic.Transport) (*quic.EarlyListener, error) {
	user := tr.ConnContext
	tr.ConnContext = func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
		if user != nil {
			var err error
			if ctx, err = user(ctx, ci); err != nil {
				return ctx, err
			}
		}
		return ConnContext(ctx, ci)
	}
	qc := &quic.Config{Allow0RTT: true}
	if s.h3.QUICConfig != nil {
		qc = s.h3.QUICConfig.Clone()
	}
	if s.h3.EnableDatagrams {
		qc.EnableDatagrams = true
	}
	return tr.ListenEarly(s.settings.config(s.h3.TLSConfig), qc)
}

// Serve serves HTTP/3 on tr until the [http3.Server] is closed; it returns
// what [http3.Server.ServeListener] returns. The listener is closed when it
// returns.
func (s *Server) Serve(tr *quic.Transport) error {
	ln, err := s.Listen(tr)
	if err != nil {
		return err
	}
	defer ln.Close()
	return s.h3.ServeListener(ln)
}

// h3Settings are the HTTP/3 SETTINGS a server sends that 0-RTT depends on.
type h3Settings struct {
	maxFieldSectionSize int64
	datagram            bool
	other               map[uint64]uint64
}

func settingsOf(h3 *http3.Server) h3Settings {
	max := int64(h3.MaxHeaderBytes)
	if max <= 0 {
		max = http.DefaultMaxHeaderBytes
	}
	return h3Settings{maxFieldSectionSize: max, datagram: h3.EnableDatagrams, other: maps.Clone(h3.AdditionalSettings)}
}

// settingsTag starts the SessionState.Extra entry that records a ticket's
// SETTINGS.
var settingsTag = []byte("tlscache h3 settings v1\x00")

func (st h3Settings) marshal() []byte {
	b := append([]byte(nil), settingsTag...)
	b = binary.AppendVarint(b, st.maxFieldSectionSize)
	b = binary.AppendUvarint(b, boolBit(st.datagram))
	for _, k := range slices.Sorted(maps.Keys(st.other)) {
		b = binary.AppendUvarint(b, k)
		b = binary.AppendUvarint(b, st.other[k])
	}
	return b
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// compatible reports whether 0-RTT under the SETTINGS recorded in extra
// is safe with st, by http3's rules: the client may rely on a header limit
// no larger than today's and on datagrams if they were on, and an unknown
// setting might be an extension that is gone.
func (st h3Settings) compatible(extra [][]byte) bool {
	for _, e := range extra {
		rest, ok := bytes.CutPrefix(e, settingsTag)
		if !ok {
			continue
		}
		old, n := binary.Varint(rest)
		if n <= 0 {
			return false
		}
		dg, m := binary.Uvarint(rest[n:])
		if m <= 0 || len(rest) != n+m { // other settings: refuse, as http3 does
			return false
		}
		return old <= st.maxFieldSectionSize && (dg == 0 || st.datagram)
	}
	return false
}

// config returns a clone of cfg for HTTP/3 whose tickets carry the
// SETTINGS, and whose resumptions keep early data only under compatible
// ones; configs that GetConfigForClient returns get the same treatment.
func (st h3Settings) config(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	c.NextProtos = []string{http3.NextProtoH3}
	tag := st.marshal()
	if wrap := c.WrapSession; wrap != nil {
		c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			ss.Extra = append(ss.Extra, bytes.Clone(tag))
			return wrap(cs, ss)
		}
	}
	if unwrap := c.UnwrapSession; unwrap != nil {
		c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			ss, err := unwrap(identity, cs)
			if err == nil && ss != nil && ss.EarlyData && !st.compatible(ss.Extra) {
				ss.EarlyData = false
			}
			return ss, err
		}
	}
	if gcfc := c.GetConfigForClient; gcfc != nil {
		c.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			conf, err := gcfc(chi)
			if conf == nil || err != nil {
				return conf, err
			}
			return st.config(conf), nil
		}
	}
	return c
}
