package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tlscache/tlscache/tlscache"
)

// metric is one sample of GET /metrics. Counters are named with _total, as
// the Prometheus text exposition format (0.0.4) wants.
type metric struct {
	name, typ, help string
	value           float64
}

// cacheMetrics returns the cache's statistics and settings as metrics, in
// a fixed order.
func cacheMetrics(c *tlscache.Cache) []metric {
	st := c.Stats()
	counter := func(name string, v int64, help string) metric {
		return metric{"tlscache_" + name + "_total", "counter", help, float64(v)}
	}
	gauge := func(name string, v float64, help string) metric {
		return metric{"tlscache_" + name, "gauge", help, v}
	}
	return []metric{
		gauge("sessions", float64(st.Number), "Sessions cached now (SSL_CTX_sess_number)."),
		counter("accept", st.Accept, "Server handshakes started (SSL_CTX_sess_accept)."),
		counter("accept_good", st.AcceptGood, "Server handshakes completed (SSL_CTX_sess_accept_good)."),
		counter("connect", st.Connect, "Client handshakes started (SSL_CTX_sess_connect)."),
		counter("connect_good", st.ConnectGood, "Client handshakes completed (SSL_CTX_sess_connect_good)."),
		counter("hits", st.Hits, "Lookups that returned a session to resume (SSL_CTX_sess_hits)."),
		counter("cb_hits", st.CbHits, "Resumable sessions the get hook returned (SSL_CTX_sess_cb_hits)."),
		counter("misses", st.Misses, "Internal lookups that found nothing (SSL_CTX_sess_misses)."),
		counter("timeouts", st.Timeouts, "Sessions found expired at lookup (SSL_CTX_sess_timeouts)."),
		counter("cache_full", st.CacheFull, "Sessions evicted to make room (SSL_CTX_sess_cache_full)."),
		counter("context_mismatches", st.ContextMismatches, "Sessions found under another ID context: a silent miss."),
		counter("store_errors", st.StoreErrors, "Hook (external store) calls that returned an error."),
		counter("internal_hits", st.InternalHits, "Hits served by the internal cache."),
		counter("external_hits", st.ExternalHits, "Hits served by the get hook."),
		gauge("size_limit", float64(c.Size()), "Most sessions the cache holds; 0 means no limit (SSL_CTX_sess_get_cache_size)."),
		gauge("timeout_seconds", c.Timeout().Seconds(), "Lifetime given to new sessions (SSL_CTX_get_timeout)."),
		gauge("mode", float64(c.Mode()), "Session cache mode bits, OpenSSL's SSL_SESS_CACHE_* values."),
	}
}

// metrics serves GET /metrics in the Prometheus text exposition format.
func (a *admin) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	ms := cacheMetrics(a.cache)
	if a.tier != nil {
		ms = append(ms, fleetMetrics(a.tier)...)
	}
	for _, m := range ms {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.name, m.help, m.name, m.typ,
			m.name, strconv.FormatFloat(m.value, 'f', -1, 64))
	}
	bw.Flush()
}
