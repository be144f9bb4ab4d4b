// Package telemetry holds the node's Prometheus metrics and its JSON access
// log. Every node has its own registry (no process-global state), so several
// nodes can run in one process, as tests do.
package telemetry

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the node's instruments.
type Metrics struct {
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	endpointHealthy *prometheus.GaugeVec
	endpointEjected *prometheus.GaugeVec
	activeConns     *prometheus.GaugeVec
	reloads         *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	denied          *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	tierRequests    *prometheus.CounterVec
	transforms      *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec
	aggregate       aggregateMetrics
	cache           cacheMetrics
	clusterApplies  *prometheus.CounterVec // nil until the node joins a cluster
}

// NewMetrics registers the node's metrics in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_requests_total", Help: "Requests served, by route and status class.",
	}, []string{"route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meshgate_request_duration_seconds",
		Help:    "Time from request received to response complete, by route.",
		Buckets: durationBuckets[:],
	}, []string{"route"})
	m.endpointHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_upstream_endpoint_healthy", Help: "1 when the endpoint passes its health checks.",
	}, []string{"upstream", "endpoint"})
	m.endpointEjected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_upstream_endpoint_ejected", Help: "1 while the endpoint is ejected as an outlier.",
	}, []string{"upstream", "endpoint"})
	m.activeConns = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_active_connections", Help: "Open client connections, by listener.",
	}, []string{"listener"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_config_reloads_total", Help: "Configuration loads, by result (ok, failed).",
	}, []string{"result"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_rejected_requests_total", Help: "Requests refused before routing, by reason.",
	}, []string{"reason"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_retries_total", Help: "Upstream retries, by route.",
	}, []string{"route"})
	m.budgetExhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_retry_budget_exhausted_total", Help: "Retries not made because the upstream's retry budget was spent, by route.",
	}, []string{"route"})
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_authz_denied_total", Help: "Callers refused by an mTLS listener's policy, by listener.",
	}, []string{"listener"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_auth_failures_total", Help: "Requests refused by a route's auth, by route and reason (an error name of the error table).",
	}, []string{"route", "reason"})
	m.tierRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_tier_requests_total",
		Help: "Requests of authenticated consumers, by route, tier and status class (tiers, not consumers: the label set stays bounded).",
	}, []string{"route", "tier", "code"})
	m.transforms = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_transforms_total",
		Help: "Route transforms, by route, side (request, response) and result (applied, failed, skipped).",
	}, []string{"route", "side", "result"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_fallbacks_total",
		Help: "Requests a route's fallback handled, by route, reason (what called for it: an error name, or status_5NN) and via (upstream, response, or none when every fallback failed too).",
	}, []string{"route", "reason", "via"})
	m.aggregate = newAggregateMetrics()
	m.Registry.MustRegister(m.aggregate.collectors()...)
	m.cache = newCacheMetrics()
	m.Registry.MustRegister(m.cache.collectors()...)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(buildinfo.Version, buildinfo.GoVersion()).Set(1)
	m.Registry.MustRegister(m.requests, m.duration, m.endpointHealthy, m.endpointEjected,
		m.activeConns, m.reloads, m.rejected, m.retries, m.budgetExhausted, m.denied, m.authFailures, m.tierRequests, m.transforms, m.fallbacks, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Pre-create the reload series so a dashboard sees zeros, not gaps.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// bucketOf is the index of the latency bucket of an observation (the
// first upper bound not below it; len(durationBuckets) for +Inf).
func bucketOf(seconds float64) int {
	for i, ub := range &durationBuckets {
		if seconds <= ub {
			return i
		}
	}
	return len(durationBuckets)
}

// durationBuckets are the upper bounds of meshgate_request_duration_seconds
// (an array: RouteStats.exemplarAt has a place for each, and +Inf).
var durationBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// RouteStats are one route's instruments, resolved once per config so that a
// request does no label lookups.
type RouteStats struct {
	classes  [6]prometheus.Counter // index: status / 100 (0 for anything else)
	duration prometheus.Observer
	// exemplars is duration's exemplar side (nil if it had none), and
	// exemplarAt the time (Unix ns) each bucket (+Inf last) last took one.
	exemplars  prometheus.ExemplarObserver
	exemplarAt [len(durationBuckets) + 1]atomic.Int64
}

// Route returns the instruments of a route ("none" for requests that matched
// no route).
func (m *Metrics) Route(name string) *RouteStats {
	s := &RouteStats{duration: m.duration.WithLabelValues(name)}
	s.exemplars, _ = s.duration.(prometheus.ExemplarObserver)
	for i, class := range statusClasses {
		s.classes[i] = m.requests.WithLabelValues(name, class)
	}
	return s
}

// exemplarEvery is how often a latency bucket takes a new exemplar. A
// bucket keeps only its latest one, and scrapes are seconds apart: one a
// second per bucket loses nothing and keeps the cost of exemplars (a few
// allocations each) off most requests.
const exemplarEvery = time.Second

// ObserveSpan records one finished request whose server span is span, as
// Observe does. When the trace is sampled, its latency bucket takes the
// trace and span ids as an exemplar (at most once per exemplarEvery),
// shown with the histogram in the OpenMetrics format.
func (s *RouteStats) ObserveSpan(status int, seconds float64, now time.Time, span *Span) {
	if s.exemplars == nil || !span.Sampled() {
		s.Observe(status, seconds)
		return
	}
	b := bucketOf(seconds)
	last, ns := &s.exemplarAt[b], now.UnixNano()
	if prev := last.Load(); ns-prev < int64(exemplarEvery) || !last.CompareAndSwap(prev, ns) {
		s.Observe(status, seconds)
		return
	}
	s.count(status)
	s.exemplars.ObserveWithExemplar(seconds, prometheus.Labels{"trace_id": span.TraceIDString(), "span_id": span.SpanIDString()})
}

// Observe records one finished request.
func (s *RouteStats) Observe(status int, seconds float64) {
	s.count(status)
	s.duration.Observe(seconds)
}

// count counts a request in its status class.
func (s *RouteStats) count(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	s.classes[c].Inc()
}

// ForgetRoute deletes the series of a route that no longer exists.
func (m *Metrics) ForgetRoute(name string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"route": name})
	m.duration.DeleteLabelValues(name)
	m.retries.DeleteLabelValues(name)
	m.budgetExhausted.DeleteLabelValues(name)
	m.authFailures.DeletePartialMatch(prometheus.Labels{"route": name})
	m.tierRequests.DeletePartialMatch(prometheus.Labels{"route": name})
	m.transforms.DeletePartialMatch(prometheus.Labels{"route": name})
	m.fallbacks.DeletePartialMatch(prometheus.Labels{"route": name})
	m.aggregate.forget(name)
	m.cache.forget(name)
}

// Fallback counts one request a route's fallback handled.
func (m *Metrics) Fallback(route, reason, via string) {
	m.fallbacks.WithLabelValues(route, reason, via).Inc()
}

// Transform counts one side of a request a route's transform handled.
func (m *Metrics) Transform(route, side, result string) {
	m.transforms.WithLabelValues(route, side, result).Inc()
}

// TransformCounter is the series Transform(route, side, result) counts,
// resolved once for a route's stage. A series of a route that is gone is
// deleted by ForgetRoute; a stage of it still finishing counts into a
// series no longer exported.
func (m *Metrics) TransformCounter(route, side, result string) interface{ Inc() } {
	return m.transforms.WithLabelValues(route, side, result)
}

var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// TierRequest counts a finished request of a consumer of tier on route.
func (m *Metrics) TierRequest(route, tier string, status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.tierRequests.WithLabelValues(route, tier, statusClasses[c]).Inc()
}

// AuthFailure counts a request a route's auth refused; reason is the name
// of its error kind (unauthorized, invalid_token, …).
func (m *Metrics) AuthFailure(route, reason string) {
	m.authFailures.WithLabelValues(route, reason).Inc()
}

// Reload counts a configuration load.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("failed").Inc()
	}
}

// Rejected counts a request refused before routing (bad path, too large, …).
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// Denied counts a caller refused by a listener's policy.
func (m *Metrics) Denied(listener string) { m.denied.WithLabelValues(listener).Inc() }

// Retry counts a retry of a route.
func (m *Metrics) Retry(route string) { m.retries.WithLabelValues(route).Inc() }

// BudgetExhausted counts a retry refused by the retry budget.
func (m *Metrics) BudgetExhausted(route string) { m.budgetExhausted.WithLabelValues(route).Inc() }

// Conns returns the active-connection gauge of a listener.
func (m *Metrics) Conns(listener string) prometheus.Gauge {
	return m.activeConns.WithLabelValues(listener)
}

// EndpointHealth implements upstream.Observer.
func (m *Metrics) EndpointHealth(upstream, addr string, healthy bool) {
	m.endpointHealthy.WithLabelValues(upstream, addr).Set(b2f(healthy))
}

// EndpointRemoved implements upstream.Observer: the endpoint's series go.
func (m *Metrics) EndpointRemoved(upstream, addr string) {
	m.endpointHealthy.DeleteLabelValues(upstream, addr)
	m.endpointEjected.DeleteLabelValues(upstream, addr)
}

// EndpointEjected implements upstream.Observer.
func (m *Metrics) EndpointEjected(upstream, addr string, ejected bool) {
	m.endpointEjected.WithLabelValues(upstream, addr).Set(b2f(ejected))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Reloads returns the count of configuration loads with result "ok" or
// "failed" (for tests and the admin API).
func (m *Metrics) Reloads(result string) float64 {
	var d dto.Metric
	if err := m.reloads.WithLabelValues(result).Write(&d); err != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
