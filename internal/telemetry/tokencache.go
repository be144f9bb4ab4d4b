package telemetry

import "github.com/prometheus/client_golang/prometheus"

// TokenCacheView is one auth definition's cache of verified tokens, read at
// scrape time: a map keyed by what clients send, so its size and its
// evictions are watched.
type TokenCacheView struct {
	Kind, Auth string // "jwt" or "introspection"; auth definition
	Entries    int
	Evictions  uint64
}

type tokenCacheCollector struct {
	read               func() []TokenCacheView
	entries, evictions *prometheus.Desc
}

// WatchTokenCaches exports the auth methods' token caches. Call it once.
func (m *Metrics) WatchTokenCaches(read func() []TokenCacheView) {
	m.Registry.MustRegister(&tokenCacheCollector{read: read,
		entries: prometheus.NewDesc("meshgate_auth_token_cache_entries",
			"Verified tokens (JWT) or introspection answers cached, by auth definition (at most cache.max_entries each).", []string{"kind", "auth"}, nil),
		evictions: prometheus.NewDesc("meshgate_auth_token_cache_evictions_total",
			"Cached tokens evicted to make room for another, by auth definition: a steady rise means more live tokens than the cache holds, or a flood of distinct ones.", []string{"kind", "auth"}, nil),
	})
}

func (c *tokenCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.evictions
}

func (c *tokenCacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(v.Entries), v.Kind, v.Auth)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(v.Evictions), v.Kind, v.Auth)
	}
}
