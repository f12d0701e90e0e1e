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

// h3Collector is a prometheus.Collector of the HTTP/3 counters.
type h3Collector struct{ h3 *quicadapter.Server }

func h3Desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("tlscache_"+name+"_total", help, nil, nil)
}

var (
	descConns   = h3Desc("http3_conns", "HTTP/3 connections served.")
	descResumed = h3Desc("http3_resumed", "HTTP/3 connections resumed from a ticket.")
	desc0RTT    = h3Desc("http3_0rtt", "HTTP/3 connections whose early data was accepted.")
)

func (c h3Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConns
	ch <- descResumed
	ch <- desc0RTT
}

func (c h3Collector) Collect(ch chan<- prometheus.Metric) {
	qs := c.h3.Stats()
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(qs.Conns))
	ch <- prometheus.MustNewConstMetric(descResumed, prometheus.CounterValue, float64(qs.Resumed))
	ch <- prometheus.MustNewConstMetric(desc0RTT, prometheus.CounterValue, float64(qs.Used0RTT))
}
