package ratelimit

import (
	"fmt"
	"math"
	"testing"
	"time"
)

var perMinute = PolicyConfig{Name: "api", Limit: 1000, Window: time.Minute}

// skewed returns per-node rates summing to 3× the limit per second, 80% on
// node 0 and the rest spread evenly.
func skewed(n int) []float64 {
	total := 3 * 1000.0 / 60
	r := make([]float64, n)
	r[0] = 0.8 * total
	for i := 1; i < n; i++ {
		r[i] = 0.2 * total / float64(n-1)
	}
	return r
}

// accuracyRun drives the skewed demand over a lossy, delaying, reordering
// network with epidemic relay and periodic anti-entropy, and returns
// admitted/limit for each of the windows.
func accuracyRun(t testing.TB, nodes int, extrapolate time.Duration, windows int) []float64 {
	s := newSimNet(t, nodes, uint64(nodes), Options{Extrapolate: extrapolate}, perMinute)
	s.delay, s.jitter, s.drop = 20*time.Millisecond, 200*time.Millisecond, 0.05
	s.fanout, s.relay = 3, true
	d := newDemand(s, "api", "consumer-42", skewed(nodes))
	w0 := s.nodes[0].l.Policy("api").windowIndex(t0)
	for i := range windows * 2 {
		d.run(30 * time.Second)
		a, b := i%nodes, (i+1)%nodes
		s.antiEntropy(a, b) // memberlist's push/pull, every 30s
	}
	ratios := make([]float64, windows)
	for i := range ratios {
		ratios[i] = float64(d.admitted[w0+int64(i)]) / 1000
	}
	return ratios
}

// TestClusterAccuracy is the target: limit 1000/min, demand 3× the
// limit with 80% on one node, 3 and 10 nodes; every window admits within
// 5% of the limit, with and without extrapolating the peers' counts.
func TestClusterAccuracy(t *testing.T) {
	for _, nodes := range []int{3, 10} {
		for _, x := range []time.Duration{0, 500 * time.Millisecond} {
			t.Run(fmt.Sprintf("nodes=%d/extrapolate=%v", nodes, x), func(t *testing.T) {
				t.Parallel()
				ratios := accuracyRun(t, nodes, x, 4)
				t.Logf("%d nodes, extrapolate %v: admitted/limit per window %.3f", nodes, x, ratios)
				for i, r := range ratios {
					if r < 0.95 || r > 1.05 {
						t.Errorf("window %d: admitted/limit %.3f outside [0.95, 1.05]", i, r)
					}
				}
			})
		}
	}
}

// viewTotal is node i's view of the cluster's count of key in window w.
func (s *simNet) viewTotal(i int, key string, w int64) int64 {
	local, peers := s.nodes[i].l.Policy("api").counts(key, w)
	return local + peers
}

// knownTotal is what node i can know of window w: its own exact count plus
// every other node's count as of that node's last flush.
func (s *simNet) knownTotal(i int, key string, w int64) int64 {
	local, _ := s.nodes[i].l.Policy("api").counts(key, w)
	for j, nd := range s.nodes {
		if j != i {
			local += nd.flushed[key][w]
		}
	}
	return local
}

// TestNodeKilledMidWindow: the hot node dies half way through a window
// without a last flush, and its clients move to another node. The survivors
// keep its reported counts (they neither vanish nor double, through relays
// and anti-entropy), the window still admits within 5% of the limit, and
// its records go once its windows expire.
func TestNodeKilledMidWindow(t *testing.T) {
	s := newSimNet(t, 3, 7, Options{}, perMinute)
	s.relay = true // every node gets every message, and relays news
	d := newDemand(s, "api", "k", skewed(3))
	w := s.nodes[0].l.Policy("api").windowIndex(t0) + 1
	d.run(90 * time.Second) // half way through window w
	s.settle()
	dead := s.nodes[0]
	reported := dead.flushed["k"][w]
	if reported == 0 {
		t.Fatal("the hot node reported nothing before dying")
	}
	dead.alive = false
	d.setRate(1, d.rates[1]+d.rates[0])
	d.run(25 * time.Second) // still in window w
	s.settle()
	for i := 1; i < 3; i++ {
		if got, want := s.viewTotal(i, "k", w), s.knownTotal(i, "k", w); got != want {
			t.Errorf("n%d: total %d, want %d (the dead node's %d counted once)", i, got, want, reported)
		}
	}
	// Anti-entropy between the survivors carries the dead node's counts
	// both ways: still counted once. (A state carries each node's exact
	// count, so both survivors then know each other's exactly.)
	s.antiEntropy(1, 2)
	s.antiEntropy(2, 1)
	l1, _ := s.nodes[1].l.Policy("api").counts("k", w)
	l2, _ := s.nodes[2].l.Policy("api").counts("k", w)
	for i := 1; i < 3; i++ {
		if got, want := s.viewTotal(i, "k", w), l1+l2+reported; got != want {
			t.Errorf("n%d after anti-entropy: total %d, want %d", i, got, want)
		}
	}
	d.run(5 * time.Second) // to the end of window w
	if r := float64(d.admitted[w]) / 1000; r < 0.95 || r > 1.05 {
		t.Errorf("window with the kill: admitted/limit %.3f", r)
	} else {
		t.Logf("window with the kill: admitted/limit %.3f (dead node reported %d)", r, reported)
	}
	d.run(2 * time.Minute)
	s.flushAll()
	for i := 1; i < 3; i++ {
		e := s.nodes[i].l.Policy("api").keys.get("k")
		e.mu.Lock()
		for _, r := range e.peers {
			if r.node == dead.name {
				t.Errorf("n%d still holds the dead node's record two windows later", i)
			}
		}
		e.mu.Unlock()
	}
}

// TestPartitionHeal: two halves of a cluster each admit the limit while cut
// off from each other; on healing, one push/pull between them gives every
// node the same, exact totals, revealing the excess, and repeating the
// exchanges changes nothing.
func TestPartitionHeal(t *testing.T) {
	s := newSimNet(t, 4, 3, Options{}, perMinute)
	s.cut = func(a, b int) bool { return a/2 != b/2 }
	for _, nd := range s.nodes {
		nd.l.observePeers()
	}
	d := newDemand(s, "api", "k", []float64{15, 10, 15, 10})
	w := s.nodes[0].l.Policy("api").windowIndex(t0)
	d.run(50 * time.Second)
	s.flushAll()
	s.settle()
	if r := float64(d.admitted[w]) / 1000; r < 1.8 {
		t.Fatalf("partitioned halves admitted only %.2f× the limit", r)
	}
	s.cut = nil
	s.antiEntropy(0, 2)
	s.antiEntropy(1, 3)
	s.antiEntropy(0, 1)
	s.antiEntropy(2, 3)
	var want int64
	for _, nd := range s.nodes {
		want += nd.flushed["k"][w]
	}
	check := func(when string) {
		for i := range s.nodes {
			if got := s.viewTotal(i, "k", w); got != want {
				t.Errorf("%s: n%d total %d, want %d", when, i, got, want)
			}
			if over := s.nodes[i].l.Policy("api").Stats().OverAdmitted; over != want-1000 {
				t.Errorf("%s: n%d OverAdmitted %d, want %d", when, i, over, want-1000)
			}
		}
	}
	check("healed")
	for i := range s.nodes {
		for j := range s.nodes {
			if i != j {
				s.antiEntropy(i, j)
			}
		}
	}
	check("after repeated exchanges")
	// The healed cluster admits nothing more this window.
	for _, nd := range s.nodes {
		if nd.l.Policy("api").Allow("k") {
			t.Errorf("%s admitted after healing over the limit", nd.name)
		}
	}
}

// TestExtrapolationHelpsShortWindows measures Options.Extrapolate, on the
// estimate alone (burst shares off: with them there is no over-admission
// left to trim, 0.968 vs 0.965 measured), where
// gossip delay is a visible fraction of the window (10s window, limit 100,
// 100–500ms delivery, 200ms flushes, 10 nodes, 3× demand skewed 80%): the
// over-admission it removes. With minute windows it makes no difference
// that matters (see TestClusterAccuracy's log).
func TestExtrapolationHelpsShortWindows(t *testing.T) {
	pc := PolicyConfig{Name: "api", Limit: 100, Window: 10 * time.Second}
	mean := func(x time.Duration) float64 {
		s := newSimNet(t, 10, 1, Options{Extrapolate: x}, pc)
		for _, nd := range s.nodes {
			nd.l.noShares = true // extrapolation offsets the estimate's staleness, which shares bound anyway
		}
		s.delay, s.jitter, s.drop, s.fanout, s.relay = 100*time.Millisecond, 400*time.Millisecond, 0.05, 3, true
		s.flushEvery = 200 * time.Millisecond
		rates := skewed(10)
		for i := range rates {
			rates[i] *= 0.6 // 3× of 100 per 10s, not of 1000 per minute
		}
		d := newDemand(s, "api", "k", rates)
		d.run(20 * pc.Window)
		sum := 0.0
		for i := range int64(20) {
			sum += float64(d.admitted[win(pc, t0)+i]) / 100
		}
		return sum / 20
	}
	off, on := mean(0), mean(250*time.Millisecond)
	t.Logf("mean admitted/limit over 20 windows: %.3f without extrapolation, %.3f with a 250ms horizon", off, on)
	if math.Abs(on-1) >= math.Abs(off-1) {
		t.Errorf("extrapolation did not help: %.3f vs %.3f", on, off)
	}
}
