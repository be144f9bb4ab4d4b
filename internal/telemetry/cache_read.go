package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CacheCounts are one route's cache counters as /metrics shows them, read
// back for the admin API (meshctl cache stats), so that both report the
// same numbers: counted since the node started, forgotten with the route.
type CacheCounts struct {
	// Results counts requests by result (hit, miss, stale, ...).
	Results map[string]uint64
	// Evictions counts entries that left the cache by reason.
	Evictions map[string]uint64
}

// CacheCounts returns every route's cache counters.
func (m *Metrics) CacheCounts() map[string]CacheCounts {
	out := map[string]CacheCounts{}
	get := func(route string) CacheCounts {
		c, ok := out[route]
		if !ok {
			c = CacheCounts{Results: map[string]uint64{}, Evictions: map[string]uint64{}}
			out[route] = c
		}
		return c
	}
	readCounters(m.cache.requests, "result", func(route, result string, n uint64) { get(route).Results[result] += n })
	readCounters(m.cache.evictions, "reason", func(route, reason string, n uint64) { get(route).Evictions[reason] += n })
	return out
}

// readCounters calls f with each series of a counter vector labelled by
// route and by label.
func readCounters(v *prometheus.CounterVec, label string, f func(route, value string, n uint64)) {
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil {
			continue
		}
		var route, value string
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "route":
				route = l.GetValue()
			case label:
				value = l.GetValue()
			}
		}
		f(route, value, uint64(d.GetCounter().GetValue()))
	}
}
