package clusterstats

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/telemetry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testNet is nodes whose Send delivers to every other node at once, as a
// cluster of perfect gossip would.
type testNet struct {
	clk   *clock.Fake
	nodes map[string]*Sharer
	stats map[string]*telemetry.UpstreamStats
	dead  map[string]bool
	drop  bool // lose every message
}

func newNet(t *testing.T, names ...string) *testNet {
	n := &testNet{clk: clock.NewFake(t0), nodes: map[string]*Sharer{}, stats: map[string]*telemetry.UpstreamStats{}, dead: map[string]bool{}}
	for _, name := range names {
		n.add(t, name)
	}
	return n
}

func (n *testNet) add(t *testing.T, name string) *Sharer {
	st := telemetry.NewUpstreamStatsClock(n.clk)
	s := New(Options{Node: name, Stats: st, Clock: n.clk, Alive: func(p string) bool { return !n.dead[p] },
		Send: func(key string, msg []byte) {
			if len(msg) > gossip.MaxMessage {
				t.Errorf("%s: message of %d bytes", key, len(msg))
			}
			if n.drop {
				return
			}
			for other, o := range n.nodes {
				if other != name {
					if _, err := o.Merge(msg); err != nil {
						t.Errorf("%s from %s: %v", key, name, err)
					}
				}
			}
		}})
	n.nodes[name], n.stats[name] = s, st
	return s
}

// peers is what node knows of the others' windows of upstream (Upstream
// without the node's own, which comes first).
func (n *testNet) peers(node, upstream string) []NodeSnapshot {
	return n.nodes[node].Upstream(upstream)[1:]
}

func (n *testNet) flush() {
	for _, s := range n.nodes {
		s.Flush()
	}
}

// A node's merged view of an upstream is what one node would have counted
// had it seen every node's requests: counts add up, and the p99 is that of
// the summed histograms (here set by the few slow requests on b alone).
func TestMergeAddsEveryNode(t *testing.T) {
	n := newNet(t, "a", "b", "c")
	all := telemetry.NewUpstreamStatsClock(n.clk) // one node seeing everything
	obs := func(node string, status int, d time.Duration, times int) {
		for range times {
			n.stats[node].Observe("orders-v2", status, d)
			all.Observe("orders-v2", status, d)
		}
	}
	obs("a", 200, 3*time.Millisecond, 300)
	obs("b", 200, 5*time.Millisecond, 80)
	obs("b", 503, 900*time.Millisecond, 12)
	obs("c", 200, 2*time.Millisecond, 5)
	n.stats["c"].Observe("other", 200, time.Millisecond)
	n.flush()

	nodes := n.nodes["a"].Upstream("orders-v2")
	if len(nodes) != 3 || nodes[0].Node != "a" || !nodes[0].Self || nodes[1].Node != "b" || nodes[2].Node != "c" {
		t.Fatalf("nodes %+v", nodes)
	}
	if nodes[1].Requests != 92 || nodes[1].Errors != 12 {
		t.Fatalf("b as a sees it: %+v", nodes[1].UpstreamSnapshot)
	}
	got := Merge(nodes)
	want, _ := all.Snapshot("orders-v2", DefaultWindow)
	if got.Requests != 397 || got.Errors != 12 || got.Hist != want.Hist || got.P99 != want.P99 || got.P50 != want.P50 {
		t.Fatalf("merged %+v\nwant %+v", got, want)
	}
	if got.P99 < 600*time.Millisecond {
		t.Fatalf("merged p99 %v hides b's slow requests", got.P99)
	}
	// Every node has the same view (its own stats read now, the others').
	for _, name := range []string{"b", "c"} {
		if m := Merge(n.nodes[name].Upstream("orders-v2")); m.Requests != 397 || m.Hist != want.Hist {
			t.Errorf("%s merges %+v", name, m)
		}
	}
}

// A node whose window empties says so and is forgotten; one whose last
// word was lost is forgotten after the window, and one that left at once.
func TestMergeForgets(t *testing.T) {
	n := newNet(t, "a", "b", "c")
	n.stats["b"].Observe("u", 500, time.Millisecond)
	n.stats["c"].Observe("u", 500, time.Millisecond)
	n.flush()
	if got := len(n.peers("a", "u")); got != 2 {
		t.Fatalf("a sees %d nodes", got)
	}
	// a sent u nothing, and still lists itself: the merge says whose
	// traffic it covers.
	if self := n.nodes["a"].Upstream("u")[0]; !self.Self || self.Node != "a" || self.Requests != 0 || self.Window != DefaultWindow {
		t.Fatalf("a's own entry %+v", self)
	}
	// b's request slides out of its window: b sends an empty record. c's
	// empty record is lost: a drops it when its record outlives the window.
	n.clk.Advance(DefaultWindow + time.Second)
	n.nodes["b"].Flush()
	if got := n.peers("a", "u"); len(got) != 1 || got[0].Node != "c" {
		t.Fatalf("after b's window emptied: %+v", got)
	}
	n.drop = true
	n.nodes["c"].Flush()
	n.clk.Advance(5 * DefaultInterval)
	if got := n.peers("a", "u"); len(got) != 0 {
		t.Fatalf("c's record outlived its window: %+v", got)
	}
	n.nodes["a"].Flush() // and is dropped from memory
	if len(n.nodes["a"].peers) != 0 {
		t.Fatalf("peers kept: %v", n.nodes["a"].peers)
	}

	n.drop = false
	n.stats["b"].Observe("u", 200, time.Millisecond)
	n.nodes["b"].Flush()
	if len(n.peers("a", "u")) != 1 {
		t.Fatal("b's new request not seen")
	}
	n.dead["b"] = true
	if got := n.peers("a", "u"); len(got) != 0 {
		t.Fatalf("a dead node's stats merged: %+v", got)
	}
}

// Gossip delivers out of order and twice; a restarted node starts a new
// epoch. Only news is kept and relayed.
func TestMergeOrder(t *testing.T) {
	a := newNet(t, "a").nodes["a"]
	rec := func(req uint64) record { return record{upstream: "u", window: 30 * time.Second, requests: req} }
	for i, c := range []struct {
		h     header
		req   uint64
		relay bool
		want  uint64
	}{
		{header{"b", 5, 2}, 10, true, 10},
		{header{"b", 5, 2}, 10, false, 10}, // the same again
		{header{"b", 5, 1}, 7, false, 10},  // an older one, late
		{header{"b", 5, 3}, 12, true, 12},
		{header{"b", 9, 1}, 3, true, 3},   // b restarted
		{header{"b", 5, 4}, 30, false, 3}, // from before the restart
		{header{"a", 1, 99}, 50, false, 3},
	} {
		r := rec(c.req)
		relay, err := a.Merge(encodeMessage(c.h, &r))
		got := Merge(a.Upstream("u"))
		if err != nil || relay != c.relay || got.Requests != c.want {
			t.Errorf("%d: relay %v, %v; merged %d requests, want relay %v and %d", i, relay, err, got.Requests, c.relay, c.want)
		}
	}
}

// Push/pull repairs lost messages, and a state is the node's whole set:
// what it no longer lists is dropped.
func TestMergeState(t *testing.T) {
	n := newNet(t, "a", "b")
	n.drop = true
	n.stats["b"].Observe("u", 200, time.Millisecond)
	n.stats["b"].Observe("v", 200, time.Millisecond)
	n.flush()
	if len(n.peers("a", "u")) != 0 {
		t.Fatal("a dropped message arrived")
	}
	if err := n.nodes["a"].MergeState(n.nodes["b"].LocalState()); err != nil {
		t.Fatal(err)
	}
	if len(n.peers("a", "u")) != 1 || len(n.peers("a", "v")) != 1 {
		t.Fatal("state did not bring b's records")
	}
	n.clk.Advance(DefaultWindow + time.Second)
	n.stats["b"].Observe("v", 200, time.Millisecond) // u's window emptied, v's did not
	if err := n.nodes["a"].MergeState(n.nodes["b"].LocalState()); err != nil {
		t.Fatal(err)
	}
	if len(n.peers("a", "u")) != 0 || len(n.peers("a", "v")) != 1 {
		t.Fatalf("after b's later state: u %+v, v %+v", n.peers("a", "u"), n.peers("a", "v"))
	}
	if err := n.nodes["b"].MergeState(n.nodes["b"].LocalState()); err != nil || len(n.nodes["b"].peers) != 0 {
		t.Fatalf("own state merged: %v", err)
	}
}

// A flush sends only what changed, at most maxSendsPerFlush messages, each
// under gossip.MaxMessage even with the longest names and a full
// histogram; what is left goes at the next flush.
func TestFlushIsBounded(t *testing.T) {
	n := newNet(t, strings.Repeat("a", maxName), "b")
	a := n.nodes[strings.Repeat("a", maxName)]
	st := n.stats[a.o.Node]
	total := maxSendsPerFlush + 10
	for i := range total {
		up := fmt.Sprintf("%03d", i) + strings.Repeat("u", maxName-3)
		for b := range telemetry.LatencyBuckets {
			st.Observe(up, 200, time.Duration(float64(100*time.Microsecond)*float64(int(1)<<(b/2)))+time.Duration(b))
		}
		st.Observe(up, 500, time.Hour)
	}
	a.Flush()
	if got := a.Stats().MessagesSent; got != maxSendsPerFlush {
		t.Fatalf("first flush sent %d", got)
	}
	a.Flush()
	if got := a.Stats().MessagesSent; got != uint64(total) {
		t.Fatalf("second flush: %d in all", got)
	}
	a.Flush() // nothing changed
	if got := a.Stats().MessagesSent; got != uint64(total) {
		t.Fatalf("an unchanged window was sent again: %d in all", got)
	}
	b := n.nodes["b"]
	if got := len(b.peers[a.o.Node].ups); got != total {
		t.Fatalf("b has %d of a's upstreams", got)
	}
}
