package telemetry

import "github.com/prometheus/client_golang/prometheus"

// aggregateMetrics count the calls of composite routes (routes[].aggregate).
type aggregateMetrics struct {
	calls   *prometheus.CounterVec
	partial *prometheus.CounterVec
}

func newAggregateMetrics() aggregateMetrics {
	return aggregateMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_aggregate_calls_total",
			Help: "Calls of composite routes, by route, call and result (ok, failed, timeout, too_large, skipped).",
		}, []string{"route", "call", "result"}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_aggregate_partial_total",
			Help: "Responses of composite routes that left out a failed optional call, by route.",
		}, []string{"route"}),
	}
}

func (a *aggregateMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.calls, a.partial}
}

func (a *aggregateMetrics) forget(route string) {
	a.calls.DeletePartialMatch(prometheus.Labels{"route": route})
	a.partial.DeleteLabelValues(route)
}

// Call counts one call of a composite request of route by result (ok,
// failed, timeout, too_large, skipped): aggregate.Counter.
func (m *Metrics) Call(route, call, result string) {
	if m == nil {
		return
	}
	m.aggregate.calls.WithLabelValues(route, call, result).Inc()
}

// Partial counts a response of composite route that left out a failed
// optional call: aggregate.Counter.
func (m *Metrics) Partial(route string) {
	if m == nil {
		return
	}
	m.aggregate.partial.WithLabelValues(route).Inc()
}
