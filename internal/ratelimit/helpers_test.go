package ratelimit

import (
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// single is one Limiter on a fake clock, with a switchable peer count and
// the messages it sends.
type single struct {
	l     *Limiter
	clk   *clock.Fake
	peers int
	sent  []sentMsg
}

type sentMsg struct {
	key string
	msg []byte
}

func newSingle(t testing.TB, o Options, policies ...PolicyConfig) *single {
	t.Helper()
	s := &single{clk: clock.NewFake(t0)}
	if o.Node == "" {
		o.Node = "self"
	}
	o.Clock = s.clk
	o.Peers = func() int { return s.peers }
	o.Send = func(key string, msg []byte) { s.sent = append(s.sent, sentMsg{key, msg}) }
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetPolicies(policies); err != nil {
		t.Fatal(err)
	}
	s.l = l
	return s
}

// estimateOnly turns burst shares off, for tests of the estimate's
// arithmetic: with shares, a node with peers admits a burst only in
// per-interval budgets, and these tests admit one all at once.
func (s *single) estimateOnly() *single {
	s.l.noShares = true
	return s
}

// setPeers changes the alive peer count as the next Flush will see it.
func (s *single) setPeers(n int) {
	s.peers = n
	s.l.Flush()
}

// admitRun counts consecutive admissions of key until the first denial.
func admitRun(p *Policy, key string) int {
	n := 0
	for p.Allow(key) {
		n++
		if n > 1<<20 {
			panic("no denial")
		}
	}
	return n
}

// countsMsg encodes node's counts of key in policy: one record per window.
func countsMsg(node string, pc PolicyConfig, key string, counts map[int64]int64) []byte {
	var base int64
	for w := range counts {
		base = max(base, w)
	}
	var recs []wireRecord
	for w, n := range counts {
		recs = append(recs, wireRecord{win: w, count: n})
	}
	b := newBuilder(1<<20, []string{node})
	if !b.add(pc.Name, int64(pc.Window/time.Millisecond), base, key, recs) {
		panic("countsMsg: does not fit")
	}
	return b.finish()
}

func win(pc PolicyConfig, t time.Time) int64 { return t.UnixNano() / int64(pc.Window) }

func mustMerge(t testing.TB, l *Limiter, msg []byte) bool {
	t.Helper()
	relay, err := l.Merge(msg)
	if err != nil {
		t.Fatal(err)
	}
	return relay
}
