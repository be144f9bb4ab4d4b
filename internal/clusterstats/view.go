package clusterstats

import (
	"sort"
	"time"

	"github.com/meshgate/meshgate/internal/telemetry"
)

// NodeSnapshot is one node's window of an upstream.
type NodeSnapshot struct {
	Node string
	// Self: this node's own stats, read now; otherwise Age is how long ago
	// the node's latest record arrived.
	Self bool
	Age  time.Duration
	telemetry.UpstreamSnapshot
}

// Upstream returns this node's window of upstream, read now (zero if it
// sent it no request), then every live node's latest that had a request to
// it within the window, by name.
func (s *Sharer) Upstream(upstream string) []NodeSnapshot {
	if s == nil {
		return nil
	}
	snap, _ := s.o.Stats.Snapshot(upstream, s.o.Window)
	snap.Window = s.o.Window.Truncate(time.Second)
	out := []NodeSnapshot{{Node: s.o.Node, Self: true, UpstreamSnapshot: snap}}
	now := s.o.Clock.Now()
	ttl := s.ttl()
	s.mu.Lock()
	var peers []NodeSnapshot
	for name, p := range s.peers {
		r := p.ups[upstream]
		if r == nil || now.Sub(r.at) > ttl || s.o.Alive != nil && !s.o.Alive(name) {
			continue
		}
		peers = append(peers, NodeSnapshot{Node: name, Age: now.Sub(r.at), UpstreamSnapshot: r.rec.snapshot()})
	}
	s.mu.Unlock()
	sort.Slice(peers, func(i, j int) bool { return peers[i].Node < peers[j].Node })
	return append(out, peers...)
}

func (r *record) snapshot() telemetry.UpstreamSnapshot {
	return telemetry.UpstreamSnapshot{Window: r.window, Requests: r.requests, Errors: r.errors,
		Hist: r.hist, P50: r.hist.Quantile(0.50), P99: r.hist.Quantile(0.99)}
}

// Merge adds the nodes' windows up: the upstream's traffic over the
// cluster. Its p99 is that of the summed histograms, so a node that saw
// a few slow requests among many counts as much as their share.
func Merge(nodes []NodeSnapshot) telemetry.UpstreamSnapshot {
	var out telemetry.UpstreamSnapshot
	for _, n := range nodes {
		out.Add(n.UpstreamSnapshot)
	}
	return out
}
