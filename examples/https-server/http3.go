package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/quicadapter"
)

// h3 is the HTTP/3 side of the server (-http3): the same handler, cache and
// policies over QUIC, on the HTTPS port's number over UDP.
type h3 struct {
	srv *http3.Server
	qs  *quicadapter.Server
	tr  *quic.Transport
	pc  net.PacketConn
}

// startHTTP3 listens on UDP at addr (the HTTPS listener's address) with a
// clone of tlsConfig, serving handler.
func startHTTP3(log *slog.Logger, a *app, addr net.Addr, tlsConfig *tls.Config, handler http.Handler) (*h3, error) {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return nil, err
	}
	srv := &http3.Server{
		Handler:   handler,
		TLSConfig: tlsConfig,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			st := c.ConnectionState()
			log.Info("h3 connection", "remote", c.RemoteAddr().String(), "resumed", st.TLS.DidResume, "0rtt", st.Used0RTT)
			return ctx
		},
	}
	qs, err := quicadapter.NewServer(srv, a.srv)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &h3{srv: srv, qs: qs, tr: &quic.Transport{Conn: pc}, pc: pc}, nil
}

func (h *h3) serve() error { return h.qs.Serve(h.tr) }

func (h *h3) shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	h.tr.Close()
	h.pc.Close()
	return err
}

// altSvc advertises HTTP/3 (Alt-Svc) on every HTTPS response.
func (h *h3) altSvc(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 3 {
			h.srv.SetQUICHeaders(w.Header())
		}
		next.ServeHTTP(w, r)
	})
}

// earlyCollector is a prometheus.Collector of the early-data counters,
// and of the HTTP/3 ones with -http3 (h3 may be nil).
type earlyCollector struct {
	srv *adapter.Server
	h3  *quicadapter.Server
}

func earlyDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("tlscache_"+name+"_total", help, nil, nil)
}

var (
	descOffered  = earlyDesc("early_data_offered", "Resumptions that offered early data (0-RTT) with a ticket allowing it.")
	descAccepted = earlyDesc("early_data_accepted", "Early data the policy accepted.")
	descReplays  = earlyDesc("early_data_replays", "Early data refused: the ticket's early data was used already (a replay).")
	descRefused  = earlyDesc("early_data_refused", "Early data refused otherwise (policy off, claim failed).")
	descConns    = earlyDesc("http3_conns", "HTTP/3 connections served.")
	descResumed  = earlyDesc("http3_resumed", "HTTP/3 connections resumed from a ticket.")
	desc0RTT     = earlyDesc("http3_0rtt", "HTTP/3 connections whose early data was accepted.")
)

func (c earlyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOffered
	ch <- descAccepted
	ch <- descReplays
	ch <- descRefused
	if c.h3 != nil {
		ch <- descConns
		ch <- descResumed
		ch <- desc0RTT
	}
}

func (c earlyCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	st := c.srv.EarlyDataStats()
	counter(descOffered, st.Offered)
	counter(descAccepted, st.Accepted)
	counter(descReplays, st.Replays)
	counter(descRefused, st.Refused)
	if c.h3 != nil {
		qs := c.h3.Stats()
		counter(descConns, qs.Conns)
		counter(descResumed, qs.Resumed)
		counter(desc0RTT, qs.Used0RTT)
	}
}
