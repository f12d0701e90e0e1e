package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/metrics"
	"github.com/tlscache/tlscache/quicadapter"
	"github.com/tlscache/tlscache/tlscache"
)

// metricsHandler serves GET /metrics in the Prometheus text format: the
// cache's statistics and settings, the fleet tier's (with -redis), the
// early-data counters, HTTP/3's (with -http3), and the Go runtime's and the
// process's.
func metricsHandler(cache *tlscache.Cache, tier *fleet.Tier, srv *adapter.Server, h3 *quicadapter.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(cache, &metrics.Options{Tier: tier, Server: srv}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if h3 != nil {
		reg.MustRegister(h3Collector{h3})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
