package telemetry

import "github.com/prometheus/client_golang/prometheus"

// ClusterStats is what a node's gossip membership reports, read at scrape
// time (the cluster keeps its own atomic counters; nothing is counted twice).
type ClusterStats struct {
	Members                          map[string]int // by state: alive, dead, left
	MessagesIn, Relayed, BadMessages uint64
	StatesIn, BadStates, UnknownKind uint64
	Queued                           int
	Rejected                         uint64 // connections refused by the mTLS transport
	// RefusedItems are peers' replicated items not applied: unsigned, not
	// signed by a writer of their kind, or a signature that does not verify.
	RefusedItems uint64
	// UnsignedItems are peers' unsigned items applied all the same
	// (cluster.accept_unsigned, for an upgrade).
	UnsignedItems uint64
}

type clusterCollector struct {
	read                                                 func() ClusterStats
	members, messages, states, queued, rejected, refused *prometheus.Desc
	unsigned                                             *prometheus.Desc
}

// WatchCluster exports the cluster's state and counters. Call it once,
// when the node joins a cluster.
func (m *Metrics) WatchCluster(read func() ClusterStats) {
	m.clusterApplies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_cluster_resource_applies_total",
		Help: "Snapshots rebuilt from cluster resources (routes, upstreams), by result (ok, failed).",
	}, []string{"result"})
	m.clusterApplies.WithLabelValues("ok")
	m.clusterApplies.WithLabelValues("failed")
	m.Registry.MustRegister(m.clusterApplies, &clusterCollector{read: read,
		members:  prometheus.NewDesc("meshgate_cluster_members", "Cluster members known to this node, by state.", []string{"state"}, nil),
		messages: prometheus.NewDesc("meshgate_gossip_messages_total", "Gossip broadcasts received, by result (ok, relayed, bad, unknown_kind).", []string{"result"}, nil),
		states:   prometheus.NewDesc("meshgate_gossip_states_total", "Push/pull states received, by result (ok, bad).", []string{"result"}, nil),
		queued:   prometheus.NewDesc("meshgate_gossip_queued_broadcasts", "Broadcasts waiting to be sent.", nil, nil),
		rejected: prometheus.NewDesc("meshgate_gossip_rejected_connections_total", "Gossip connections refused: no valid SVID, not allowed, or malformed.", nil, nil),
		refused:  prometheus.NewDesc("meshgate_cluster_items_refused_total", "Peers' replicated items not applied: unsigned, not signed by one of cluster.writers, or a signature that does not verify.", nil, nil),
		unsigned: prometheus.NewDesc("meshgate_cluster_items_unsigned_total", "Peers' unsigned replicated items applied under cluster.accept_unsigned (an upgrade from a release without signatures).", nil, nil),
	})
}

// ClusterApply counts a rebuild from cluster resources.
func (m *Metrics) ClusterApply(ok bool) {
	if m.clusterApplies == nil {
		return
	}
	if ok {
		m.clusterApplies.WithLabelValues("ok").Inc()
	} else {
		m.clusterApplies.WithLabelValues("failed").Inc()
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.messages, c.states, c.queued, c.rejected, c.refused, c.unsigned} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	for _, state := range []string{"alive", "dead", "left"} {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(s.Members[state]), state)
	}
	for result, v := range map[string]uint64{"ok": s.MessagesIn, "relayed": s.Relayed, "bad": s.BadMessages, "unknown_kind": s.UnknownKind} {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(v), result)
	}
	ch <- prometheus.MustNewConstMetric(c.states, prometheus.CounterValue, float64(s.StatesIn), "ok")
	ch <- prometheus.MustNewConstMetric(c.states, prometheus.CounterValue, float64(s.BadStates), "bad")
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.RefusedItems))
	ch <- prometheus.MustNewConstMetric(c.unsigned, prometheus.CounterValue, float64(s.UnsignedItems))
}
