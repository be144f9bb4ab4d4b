package ratelimit

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// t0 is aligned to the minute, so simulations start at a window boundary.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// simNet is an in-process cluster: Limiters whose Send feeds the others'
// Merge through a network with delay, jitter, loss, partitions and
// memberlist-like epidemic relay, all on one fake clock. Time moves only
// through step, so a run is deterministic for a seed.
type simNet struct {
	t     testing.TB
	clk   *clock.Fake
	rng   *rand.Rand
	nodes []*simNode
	queue deliveries
	seq   int

	// Network behaviour; change between steps as a test needs.
	delay  time.Duration // minimum one-way delay
	jitter time.Duration // uniform extra delay, which reorders messages
	drop   float64       // probability a delivery is lost
	fanout int           // peers a broadcast goes to; 0: all
	relay  bool          // receivers that answer relay=true broadcast again
	cut    func(from, to int) bool
	// merge, when set, hands a delivery to node `to` instead of its Merge,
	// and outbound rewrites what node `from` sends (not what it relays): a
	// test stands in an older release's wire code with them.
	merge    func(to int, msg []byte) (relay bool, err error)
	outbound func(from int, msg []byte) []byte

	flushEvery time.Duration
	nextFlush  time.Time
	delivered  int
	tracked    []policyKey // keys whose flushed counts are recorded
}

type policyKey struct{ policy, key string }

type simNode struct {
	name  string
	l     *Limiter
	alive bool
	// flushed[k][w] is this node's own count of tracked key k for window w
	// right after its last flush: what the cluster can know of it.
	flushed map[string]map[int64]int64
}

type delivery struct {
	at   time.Time
	seq  int
	from int
	to   int
	msg  []byte
}

type deliveries []delivery

func (d deliveries) Len() int { return len(d) }
func (d deliveries) Less(i, j int) bool {
	return d[i].at.Before(d[j].at) || d[i].at.Equal(d[j].at) && d[i].seq < d[j].seq
}
func (d deliveries) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *deliveries) Push(x any)   { *d = append(*d, x.(delivery)) }
func (d *deliveries) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// newSimNet builds n nodes named n0…n(n−1), each with the given policies.
func newSimNet(t testing.TB, n int, seed uint64, opts Options, policies ...PolicyConfig) *simNet {
	t.Helper()
	s := &simNet{
		t: t, clk: clock.NewFake(t0), rng: rand.New(rand.NewPCG(seed, 1)),
		delay: 20 * time.Millisecond, jitter: 80 * time.Millisecond,
		flushEvery: 150 * time.Millisecond,
	}
	s.nextFlush = t0.Add(s.flushEvery)
	for i := range n {
		o := opts
		o.Node = fmt.Sprintf("n%d", i)
		o.Clock = s.clk
		o.Send = func(_ string, msg []byte) {
			if s.outbound != nil { // a relay, below, forwards the bytes as received
				msg = s.outbound(i, msg)
			}
			s.broadcast(i, msg)
		}
		o.Peers = func() int { return s.alivePeers(i) }
		o.Members = func() []string { return s.aliveNames(i) }
		l, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SetPolicies(policies); err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, &simNode{name: o.Node, l: l, alive: true, flushed: map[string]map[int64]int64{}})
	}
	for _, nd := range s.nodes {
		nd.l.observePeers()
	}
	return s
}

func (s *simNet) alivePeers(i int) int {
	n := 0
	for j, nd := range s.nodes {
		if j != i && nd.alive && (s.cut == nil || !s.cut(i, j)) {
			n++
		}
	}
	return n
}

func (s *simNet) aliveNames(i int) []string {
	var out []string
	for j, nd := range s.nodes {
		if j != i && nd.alive && (s.cut == nil || !s.cut(i, j)) {
			out = append(out, nd.name)
		}
	}
	return out
}

// broadcast queues msg from node `from` to fanout random peers (or all).
func (s *simNet) broadcast(from int, msg []byte) {
	targets := s.rng.Perm(len(s.nodes))
	sent := 0
	for _, to := range targets {
		if to == from || s.fanout > 0 && sent >= s.fanout {
			continue
		}
		sent++
		if s.cut != nil && s.cut(from, to) || s.rng.Float64() < s.drop {
			continue
		}
		d := s.delay
		if s.jitter > 0 {
			d += time.Duration(s.rng.Int64N(int64(s.jitter)))
		}
		s.seq++
		heap.Push(&s.queue, delivery{at: s.clk.Now().Add(d), seq: s.seq, from: from, to: to, msg: msg})
	}
}

// deliverDue hands every delivery due by now to its receiver.
func (s *simNet) deliverDue() {
	now := s.clk.Now()
	for s.queue.Len() > 0 && !s.queue[0].at.After(now) {
		d := heap.Pop(&s.queue).(delivery)
		nd := s.nodes[d.to]
		if !nd.alive {
			continue
		}
		merge := nd.l.Merge
		if s.merge != nil {
			merge = func(msg []byte) (bool, error) { return s.merge(d.to, msg) }
		}
		relay, err := merge(d.msg)
		if err != nil {
			s.t.Fatalf("%s: Merge of %s's message: %v", nd.name, s.nodes[d.from].name, err)
		}
		s.delivered++
		if relay && s.relay {
			s.broadcast(d.to, d.msg)
		}
	}
}

// step advances the clock by dt, delivers what is due and flushes every
// alive node when its interval comes round.
func (s *simNet) step(dt time.Duration) {
	s.clk.Advance(dt)
	s.deliverDue()
	// A raised claim asks for a flush at once (Run's kick): here, at the
	// next step.
	for _, nd := range s.nodes {
		if nd.l.takeKick() && nd.alive {
			s.flush(nd)
		}
	}
	if now := s.clk.Now(); !now.Before(s.nextFlush) {
		s.flushAll()
		s.nextFlush = now.Add(s.flushEvery)
	}
}

func (s *simNet) flushAll() {
	for _, nd := range s.nodes {
		if nd.alive {
			s.flush(nd)
		}
	}
}

func (s *simNet) flush(nd *simNode) {
	nd.l.Flush()
	for _, k := range s.tracked {
		p := nd.l.Policy(k.policy)
		w := p.windowIndex(s.clk.Now())
		m := nd.flushed[k.key]
		if m == nil {
			m = map[int64]int64{}
			nd.flushed[k.key] = m
		}
		for _, t := range []int64{w - 1, w} {
			if l, _ := p.counts(k.key, t); l > 0 {
				m[t] = l
			}
		}
	}
}

// run advances by d in steps of dt.
func (s *simNet) run(d, dt time.Duration) {
	for end := s.clk.Now().Add(d); s.clk.Now().Before(end); {
		s.step(dt)
	}
}

// settle delivers everything in flight (no new traffic, no flushes).
func (s *simNet) settle() {
	for s.queue.Len() > 0 {
		s.clk.Advance(s.queue[0].at.Sub(s.clk.Now()))
		s.deliverDue()
	}
}

// antiEntropy runs one push/pull between nodes i and j.
func (s *simNet) antiEntropy(i, j int) {
	a, b := s.nodes[i].l, s.nodes[j].l
	sa, sb := a.LocalState(), b.LocalState()
	if err := b.MergeState(sa); err != nil {
		s.t.Fatal(err)
	}
	if err := a.MergeState(sb); err != nil {
		s.t.Fatal(err)
	}
}

// windowIndex returns the index of the window containing t.
func (p *Policy) windowIndex(t time.Time) int64 { return t.UnixNano() / p.winNs }

// counts returns this node's and the peers' counts of key in window w.
func (p *Policy) counts(key string, w int64) (local, peers int64) {
	e := p.keys.get(key)
	if e == nil {
		return 0, 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	local, peers, _ = e.countsLocked(w)
	return local, peers
}

// demand drives requests for one key at given per-node rates (requests per
// second), as Poisson arrivals, and records admissions per window.
type demand struct {
	s        *simNet
	policy   string
	key      string
	rates    []float64
	next     []time.Time
	admitted map[int64]int64 // window → admitted, cluster-wide, true count
	offered  map[int64]int64
}

func newDemand(s *simNet, policy, key string, rates []float64) *demand {
	s.tracked = append(s.tracked, policyKey{policy, key})
	d := &demand{s: s, policy: policy, key: key, rates: rates,
		next: make([]time.Time, len(rates)), admitted: map[int64]int64{}, offered: map[int64]int64{}}
	for i := range d.next {
		d.next[i] = d.arrival(i, s.clk.Now())
	}
	return d
}

func (d *demand) arrival(i int, from time.Time) time.Time {
	if d.rates[i] <= 0 {
		return from.Add(time.Duration(1 << 62))
	}
	return from.Add(time.Duration(d.s.rng.ExpFloat64() / d.rates[i] * 1e9))
}

// setRate changes node i's demand from now on.
func (d *demand) setRate(i int, r float64) {
	d.rates[i] = r
	d.next[i] = d.arrival(i, d.s.clk.Now())
}

// run advances the network by dur in 10ms steps, issuing the requests due
// at each step at every alive node.
func (d *demand) run(dur time.Duration) {
	const dt = 10 * time.Millisecond
	for end := d.s.clk.Now().Add(dur); d.s.clk.Now().Before(end); {
		d.s.step(dt)
		now := d.s.clk.Now()
		for i, nd := range d.s.nodes {
			for !d.next[i].After(now) {
				d.next[i] = d.arrival(i, d.next[i])
				if !nd.alive {
					continue
				}
				p := nd.l.Policy(d.policy)
				w := p.windowIndex(now)
				d.offered[w]++
				if p.Allow(d.key) {
					d.admitted[w]++
				}
			}
		}
	}
}
