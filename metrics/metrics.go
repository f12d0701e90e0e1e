// Package metrics exports a [tlscache.Cache]'s statistics, and those of the
// [fleet.Tier] behind it and of the [adapter.Server] on it, to Prometheus.
//
// One line registers them with a server's registry:
//
//	prometheus.MustRegister(metrics.NewCollector(cache, &metrics.Options{Tier: tier}))
//
// Every counter of [tlscache.Stats] becomes tlscache_NAME_total and every
// counter of [fleet.Stats] tlscache_fleet_NAME_total, where NAME is the
// field's JSON name (hits, cache_full, back_offs, ...), and every counter of
// [adapter.EarlyDataStats] tlscache_early_data_NAME_total; the number of
// sessions, the settings (size limit, timeout, mode) and the tier's state
// (pending removals, backing off) are gauges. The values are read at each
// scrape, so they equal what Stats returns at that moment.
//
// The package lives apart from the core and the adapter so that they never
// import client_golang.
package metrics

import (
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// Options configure a [Collector]. The zero value is ready to use.
type Options struct {
	// Namespace prefixes every metric name; "" means "tlscache".
	Namespace string
	// ConstLabels are added to every metric, to tell several caches of one
	// process apart (for example {"cache": "client"}).
	ConstLabels prometheus.Labels
	// Tier, if set, adds the fleet tier's counters.
	Tier *fleet.Tier
	// Server, if set, adds the adapter's early-data (0-RTT) counters
	// ([adapter.Server.EarlyDataStats]) as tlscache_early_data_NAME_total.
	Server *adapter.Server
}

// Collector is a [prometheus.Collector] for a cache and, optionally, its
// fleet tier. It is safe for concurrent scrapes.
type Collector struct {
	cache  *tlscache.Cache
	tier   *fleet.Tier
	server *adapter.Server

	cacheStats []field
	tierStats  []field
	earlyStats []field
	settings   []*prometheus.Desc // size_limit, timeout_seconds, mode
}

var _ prometheus.Collector = (*Collector)(nil)

// field is one exported field of a Stats struct and the metric it becomes.
type field struct {
	index   int
	desc    *prometheus.Desc
	typ     prometheus.ValueType
	seconds bool // a time.Duration, exported in seconds
}

// NewCollector returns a collector for c; opts may be nil.
func NewCollector(c *tlscache.Cache, opts *Options) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "tlscache"
	}
	col := &Collector{cache: c, tier: o.Tier, server: o.Server}
	col.cacheStats = fields(reflect.TypeFor[tlscache.Stats](), o.Namespace, "", cacheHelp, o.ConstLabels)
	if o.Tier != nil {
		col.tierStats = fields(reflect.TypeFor[fleet.Stats](), o.Namespace, "fleet", tierHelp, o.ConstLabels)
	}
	if o.Server != nil {
		col.earlyStats = fields(reflect.TypeFor[adapter.EarlyDataStats](), o.Namespace, "early_data", earlyHelp, o.ConstLabels)
	}
	for _, s := range settingsHelp {
		col.settings = append(col.settings,
			prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, "", s[0]), s[1], nil, o.ConstLabels))
	}
	return col
}

// fields describes the metrics of a Stats struct: an int64 is a counter, an
// int or a bool a gauge, a time.Duration a gauge in seconds.
func fields(t reflect.Type, namespace, subsystem string, help map[string]string, labels prometheus.Labels) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		typ := prometheus.GaugeValue
		seconds := f.Type == reflect.TypeFor[time.Duration]()
		switch {
		case seconds:
			name += "_seconds"
		case f.Type.Kind() == reflect.Int64:
			typ = prometheus.CounterValue
			name += "_total"
		case f.Type.Kind() == reflect.Int, f.Type.Kind() == reflect.Bool:
		default:
			continue // not a number: nothing to export
		}
		h := help[f.Name]
		if h == "" {
			h = "Stats." + f.Name + "."
		}
		fs = append(fs, field{
			index:   i,
			typ:     typ,
			seconds: seconds,
			desc:    prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), h, nil, labels),
		})
	}
	return fs
}

func jsonName(f reflect.StructField) string {
	if n, ok := names[f.Name]; ok {
		return n
	}
	name := f.Tag.Get("json")
	for i := range len(name) {
		if name[i] == ',' {
			name = name[:i]
			break
		}
	}
	if name == "" || name == "-" {
		return f.Name
	}
	return name
}

// Describe sends the descriptors of every metric the collector makes.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.cacheStats {
		ch <- f.desc
	}
	for _, f := range c.tierStats {
		ch <- f.desc
	}
	for _, f := range c.earlyStats {
		ch <- f.desc
	}
	for _, d := range c.settings {
		ch <- d
	}
}

// Collect reads the statistics now and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	collect(ch, c.cacheStats, reflect.ValueOf(c.cache.Stats()))
	if c.tier != nil {
		collect(ch, c.tierStats, reflect.ValueOf(c.tier.Stats()))
	}
	if c.server != nil {
		collect(ch, c.earlyStats, reflect.ValueOf(c.server.EarlyDataStats()))
	}
	ch <- prometheus.MustNewConstMetric(c.settings[0], prometheus.GaugeValue, float64(c.cache.Size()))
	ch <- prometheus.MustNewConstMetric(c.settings[1], prometheus.GaugeValue, c.cache.Timeout().Seconds())
	ch <- prometheus.MustNewConstMetric(c.settings[2], prometheus.GaugeValue, float64(c.cache.Mode()))
}

func collect(ch chan<- prometheus.Metric, fs []field, v reflect.Value) {
	for _, f := range fs {
		fv := v.Field(f.index)
		var x float64
		switch {
		case f.seconds:
			x = time.Duration(fv.Int()).Seconds()
		case fv.Kind() == reflect.Bool:
			if fv.Bool() {
				x = 1
			}
		default:
			x = float64(fv.Int())
		}
		ch <- prometheus.MustNewConstMetric(f.desc, f.typ, x)
	}
}
