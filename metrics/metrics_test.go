package metrics_test

import (
	"crypto/tls"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/loopback"
	"github.com/tlscache/tlscache/internal/testcert"
	"github.com/tlscache/tlscache/metrics"
	"github.com/tlscache/tlscache/tlscache"
)

// scrape gathers reg, writes it in the text format and parses it back, as
// a Prometheus server would.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	got, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return got
}

func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, typ dto.MetricType) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	if mf.GetType() != typ {
		t.Errorf("%s is a %v, want %v", name, mf.GetType(), typ)
	}
	m := mf.GetMetric()[0]
	if typ == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// The scraped values equal Stats after real handshakes, for the cache and
// for a fleet tier.
func TestCollectorEqualsStats(t *testing.T) {
	cert, pool := testcert.SelfSigned("localhost")
	serverConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	tier, err := fleet.New(tlscache.NewMemoryStore(0, nil), &fleet.Options{Keys: []fleet.Key{fleet.GenerateKey()}})
	if err != nil {
		t.Fatal(err)
	}
	cache := tlscache.New(tier.Hooks(&tlscache.Options{MaxSessions: 3}))
	srv := adapter.NewServer(cache, nil)
	if err := srv.Install(serverConfig); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry() // checks Describe against Collect
	reg.MustRegister(metrics.NewCollector(cache, &metrics.Options{Tier: tier, Server: srv}))

	resumed := 0
	for i := range 6 {
		client := &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		if i%2 == 1 { // a TLS 1.2 client too
			client.MaxVersion = tls.VersionTLS12
		}
		for range 2 {
			if loopback.Connect(t, serverConfig, client).DidResume {
				resumed++
			}
		}
	}
	if resumed != 6 {
		t.Fatalf("%d of 6 second connections resumed", resumed)
	}

	mfs := scrape(t, reg)
	st, ts := cache.Stats(), tier.Stats()
	if st.Hits == 0 || st.CacheFull == 0 || ts.Calls == 0 {
		t.Fatalf("the handshakes left nothing to count: %+v %+v", st, ts)
	}
	checkStats(t, mfs, "tlscache_", reflect.ValueOf(st))
	checkStats(t, mfs, "tlscache_fleet_", reflect.ValueOf(ts))
	checkStats(t, mfs, "tlscache_early_data_", reflect.ValueOf(srv.EarlyDataStats()))
	for name, want := range map[string]float64{
		"tlscache_sessions":        float64(cache.Len()),
		"tlscache_size_limit":      3,
		"tlscache_timeout_seconds": 7200,
		"tlscache_mode":            float64(tlscache.Server),
	} {
		if got := value(t, mfs, name, dto.MetricType_GAUGE); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// checkStats compares every number of a Stats struct with its metric.
func checkStats(t *testing.T, mfs map[string]*dto.MetricFamily, prefix string, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := prefix + strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Name == "Number" {
			name = prefix + "sessions"
		}
		var want float64
		typ := dto.MetricType_GAUGE
		switch x := v.Field(i).Interface().(type) {
		case time.Duration:
			name += "_seconds"
			want = x.Seconds()
		case int64:
			name += "_total"
			typ = dto.MetricType_COUNTER
			want = float64(x)
		case int:
			want = float64(x)
		case bool:
			if x {
				want = 1
			}
		default:
			t.Errorf("Stats.%s is a %T, which the collector does not export", f.Name, x)
			continue
		}
		if got := value(t, mfs, name, typ); got != want {
			t.Errorf("%s = %v, want %v (Stats.%s)", name, got, want, f.Name)
		}
	}
}

// Several caches in one process are told apart by their labels.
func TestConstLabels(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	server, client := tlscache.New(nil), tlscache.New(&tlscache.Options{Mode: tlscache.Client})
	reg.MustRegister(
		metrics.NewCollector(server, &metrics.Options{ConstLabels: prometheus.Labels{"cache": "server"}}),
		metrics.NewCollector(client, &metrics.Options{ConstLabels: prometheus.Labels{"cache": "client"}}),
	)
	mf := scrape(t, reg)["tlscache_mode"]
	if mf == nil || len(mf.GetMetric()) != 2 {
		t.Fatalf("tlscache_mode: %v", mf)
	}
	modes := map[string]float64{}
	for _, m := range mf.GetMetric() {
		modes[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if modes["server"] != float64(tlscache.Server) || modes["client"] != float64(tlscache.Client) {
		t.Errorf("modes by label: %v", modes)
	}
}

// A namespace of the user's replaces tlscache.
func TestNamespace(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewCollector(tlscache.New(nil), &metrics.Options{Namespace: "edge"}))
	mfs := scrape(t, reg)
	if _, ok := mfs["edge_hits_total"]; !ok {
		t.Errorf("no edge_hits_total")
	}
	if _, ok := mfs["tlscache_hits_total"]; ok {
		t.Errorf("tlscache_hits_total despite the namespace")
	}
}
