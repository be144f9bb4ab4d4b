package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// cacheMetrics are the shared HTTP cache's (routes[].cache).
type cacheMetrics struct {
	requests  *prometheus.CounterVec
	evictions *prometheus.CounterVec
	bytes     *cacheBytes
}

func newCacheMetrics() cacheMetrics {
	return cacheMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_cache_requests_total",
			Help: "Requests of routes with a cache, by route and result (hit, collapsed, miss, stale, revalidated, bypass).",
		}, []string{"route", "result"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_cache_evictions_total",
			Help: "Entries that left the cache, by route and reason (size, expired, replaced, purged).",
		}, []string{"route", "reason"}),
		bytes: &cacheBytes{desc: prometheus.NewDesc("meshgate_cache_stored_bytes",
			"Bytes the cache holds for each route (bodies, headers and bookkeeping), read when scraped.", []string{"route"}, nil)},
	}
}

func (c *cacheMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.requests, c.evictions, c.bytes}
}

func (c *cacheMetrics) forget(route string) {
	c.requests.DeletePartialMatch(prometheus.Labels{"route": route})
	c.evictions.DeletePartialMatch(prometheus.Labels{"route": route})
}

// cacheBytes reads the stores' occupancy at scrape time: the stores count
// their bytes exactly already, so a gauge kept in step on every put and
// eviction would only be a second, racier count.
type cacheBytes struct {
	desc *prometheus.Desc
	src  atomic.Pointer[func() map[string]int64]
}

func (c *cacheBytes) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *cacheBytes) Collect(ch chan<- prometheus.Metric) {
	f := c.src.Load()
	if f == nil {
		return
	}
	for route, n := range (*f)() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), route)
	}
}

// CacheRequest counts one request of a route with a cache by result:
// cache.Counter.
func (m *Metrics) CacheRequest(route, result string) {
	m.cache.requests.WithLabelValues(route, result).Inc()
}

// CacheEviction counts one entry that left the cache, by reason.
func (m *Metrics) CacheEviction(route, reason string) {
	m.cache.evictions.WithLabelValues(route, reason).Inc()
}

// CacheBytesFrom sets where meshgate_cache_stored_bytes is read from: a
// function returning the bytes held per route.
func (m *Metrics) CacheBytesFrom(f func() map[string]int64) {
	m.cache.bytes.src.Store(&f)
}
