package telemetry

import "github.com/prometheus/client_golang/prometheus"

// BreakerView is the breakers' state, read at scrape time.
type BreakerView struct {
	States      map[string]int       // endpoint → 0 closed, 1 half-open, 2 open
	Transitions map[[2]string]uint64 // {to, cause} → count
	Reports     map[string]uint64    // sent, received, stale, dropped, bad
}

// LimitView is one rate-limit policy's counters, read at scrape time.
type LimitView struct {
	Route                          string
	Admitted, Denied, OverAdmitted int64
	Keys                           int
	Evicted                        int64 // keys that gave way at the key cap
}

type sharedCollector struct {
	breakers func() BreakerView
	limits   func() []LimitView

	brkState, brkTrans, brkReports *prometheus.Desc
	decisions, over, keys, evicted *prometheus.Desc
}

// WatchSharedState exports the circuit breakers and the rate limits. Call
// it once per node.
func (m *Metrics) WatchSharedState(breakers func() BreakerView, limits func() []LimitView) {
	m.Registry.MustRegister(&sharedCollector{breakers: breakers, limits: limits,
		brkState:   prometheus.NewDesc("meshgate_breaker_state", "Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open.", []string{"endpoint"}, nil),
		brkTrans:   prometheus.NewDesc("meshgate_breaker_transitions_total", "Circuit breaker state changes, by state entered and cause (local, probe, remote, timeout, reset).", []string{"to", "cause"}, nil),
		brkReports: prometheus.NewDesc("meshgate_breaker_reports_total", "Breaker reports exchanged with the cluster, by kind (sent, received, stale, dropped, bad).", []string{"kind"}, nil),
		decisions:  prometheus.NewDesc("meshgate_ratelimit_decisions_total", "Rate-limit decisions, by route and result (admitted, limited).", []string{"route", "result"}, nil),
		over:       prometheus.NewDesc("meshgate_ratelimit_over_admitted_total", "Admissions found afterwards to exceed the cluster-wide limit (gossip delay), by route.", []string{"route"}, nil),
		keys:       prometheus.NewDesc("meshgate_ratelimit_keys", "Keys counted, by route.", []string{"route"}, nil),
		evicted:    prometheus.NewDesc("meshgate_ratelimit_keys_evicted_total", "Keys forgotten at the key cap to make room for a new one (the coldest of a sample), by route.", []string{"route"}, nil),
	})
}

func (c *sharedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.brkState, c.brkTrans, c.brkReports, c.decisions, c.over, c.keys, c.evicted} {
		ch <- d
	}
}

func (c *sharedCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.breakers()
	for ep, st := range b.States {
		ch <- prometheus.MustNewConstMetric(c.brkState, prometheus.GaugeValue, float64(st), ep)
	}
	for k, v := range b.Transitions {
		ch <- prometheus.MustNewConstMetric(c.brkTrans, prometheus.CounterValue, float64(v), k[0], k[1])
	}
	for kind, v := range b.Reports {
		ch <- prometheus.MustNewConstMetric(c.brkReports, prometheus.CounterValue, float64(v), kind)
	}
	for _, l := range c.limits() {
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(l.Admitted), l.Route, "admitted")
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(l.Denied), l.Route, "limited")
		ch <- prometheus.MustNewConstMetric(c.over, prometheus.CounterValue, float64(l.OverAdmitted), l.Route)
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(l.Keys), l.Route)
		ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(l.Evicted), l.Route)
	}
}
