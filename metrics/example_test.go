package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlscache/tlscache/metrics"
	"github.com/tlscache/tlscache/tlscache"
)

// A server registers its cache's statistics in one line and serves them.
func ExampleNewCollector() {
	cache := tlscache.New(nil)
	prometheus.MustRegister(metrics.NewCollector(cache, nil))
	http.Handle("GET /metrics", promhttp.Handler())
}
