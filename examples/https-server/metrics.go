package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/metrics"
	"github.com/tlscache/tlscache/tlscache"
)

// metricsHandler serves GET /metrics in the Prometheus text format: the
// cache's statistics and settings, the fleet tier's (with -redis), and the
// Go runtime's and the process's, and extra ones.
func metricsHandler(cache *tlscache.Cache, tier *fleet.Tier, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(cache, &metrics.Options{Tier: tier}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
