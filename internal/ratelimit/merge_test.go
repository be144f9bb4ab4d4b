package ratelimit

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/wire"
)

// TestMergeIdempotent: duplicated, reordered and relayed reports never add
// twice; Merge asks for a relay only when it learned something.
func TestMergeIdempotent(t *testing.T) {
	s := newSingle(t, Options{}, perMinute)
	w := win(perMinute, t0)
	m10 := countsMsg("a", perMinute, "k", map[int64]int64{w: 10})
	m20 := countsMsg("a", perMinute, "k", map[int64]int64{w: 20})
	other := countsMsg("b", perMinute, "k", map[int64]int64{w: 5})
	for i, step := range []struct {
		msg   []byte
		relay bool
		peers int64
	}{
		{m10, true, 10},
		{m20, true, 20},
		{m10, false, 20}, // reordered: older news
		{m20, false, 20}, // duplicate, or a relay coming back
		{other, true, 25},
		{other, false, 25},
	} {
		if got := mustMerge(t, s.l, step.msg); got != step.relay {
			t.Errorf("step %d: relay = %v, want %v", i, got, step.relay)
		}
		if _, peers := s.l.Policy("api").counts("k", w); peers != step.peers {
			t.Errorf("step %d: peers' total %d, want %d", i, peers, step.peers)
		}
	}

	// A state carrying the same counts, relayed through a third node,
	// changes nothing either.
	relayer := newSingle(t, Options{Node: "c"}, perMinute)
	mustMerge(t, relayer.l, m20)
	mustMerge(t, relayer.l, other)
	for range 2 {
		if err := s.l.MergeState(relayer.l.LocalState()); err != nil {
			t.Fatal(err)
		}
	}
	if _, peers := s.l.Policy("api").counts("k", w); peers != 25 {
		t.Fatalf("after anti-entropy: peers' total %d, want 25", peers)
	}
	if st := s.l.Stats(); st.MessagesReceived != 6 || st.StatesReceived != 2 || st.BadMessages != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMergeIgnoresDeadAndForeign: counts for expired windows, for windows
// far ahead, for unknown policies and for a policy with another window are
// dropped without error and without a relay.
func TestMergeIgnoresDeadAndForeign(t *testing.T) {
	s := newSingle(t, Options{}, perMinute)
	w := win(perMinute, t0)
	for name, msg := range map[string][]byte{
		"expired": countsMsg("a", perMinute, "k", map[int64]int64{w - 2: 50}),
		"future":  countsMsg("a", perMinute, "k", map[int64]int64{w + 2: 50}),
		"unknown": countsMsg("a", PolicyConfig{Name: "nope", Window: time.Minute}, "k", map[int64]int64{w: 50}),
		"window":  countsMsg("a", PolicyConfig{Name: "api", Window: 30 * time.Second}, "k", map[int64]int64{2 * w: 50}),
	} {
		if mustMerge(t, s.l, msg) {
			t.Errorf("%s: relay = true", name)
		}
	}
	if info := s.l.List(); len(info) != 0 {
		t.Fatalf("keys created: %+v", info)
	}
	if st := s.l.Stats(); st.ForeignKeys != 2 {
		t.Fatalf("ForeignKeys = %d, want 2", st.ForeignKeys)
	}
	// One window ahead is a peer whose clock is slightly fast: kept, and
	// counted once this node reaches that window.
	mustMerge(t, s.l, countsMsg("a", perMinute, "k", map[int64]int64{w + 1: 30}))
	s.clk.Advance(time.Minute)
	if got := admitRun(s.l.Policy("api"), "k"); got != 970 {
		t.Fatalf("admitted %d, want 970", got)
	}
}

// TestRestartAdoptsOwnCounts: a node that restarts under the same name gets
// its counts back from the cluster, so it does not admit its share twice.
func TestRestartAdoptsOwnCounts(t *testing.T) {
	a := newSingle(t, Options{Node: "a"}, perMinute).estimateOnly()
	b := newSingle(t, Options{Node: "b"}, perMinute)
	a.setPeers(1)
	if !a.l.Policy("api").AllowN("k", 600) {
		t.Fatal("denied")
	}
	a.l.Flush()
	for _, m := range a.sent {
		mustMerge(t, b.l, m.msg)
	}
	restarted := newSingle(t, Options{Node: "a"}, perMinute).estimateOnly()
	restarted.setPeers(1)
	if err := restarted.l.MergeState(b.l.LocalState()); err != nil {
		t.Fatal(err)
	}
	w := win(perMinute, t0)
	if local, peers := restarted.l.Policy("api").counts("k", w); local != 600 || peers != 0 {
		t.Fatalf("after restart: local %d peers %d, want 600 and 0", local, peers)
	}
	if got := admitRun(restarted.l.Policy("api"), "k"); got != 400 {
		t.Fatalf("admitted %d after restart, want 400", got)
	}
}

// TestDecodeRejects: malformed payloads are errors (counted), never panics,
// and change nothing.
func TestDecodeRejects(t *testing.T) {
	s := newSingle(t, Options{}, perMinute)
	w := win(perMinute, t0)
	good := countsMsg("a", perMinute, "key", map[int64]int64{w: 7})
	for name, msg := range map[string][]byte{
		"empty":            {},
		"version":          append([]byte{2}, good[1:]...),
		"truncated":        good[:len(good)-1],
		"trailing":         append(slices.Clone(good), 0),
		"overlong varint":  {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"too many nodes":   {1, 0x7f},
		"empty node name":  {1, 1, 0, 0},
		"name past end":    {1, 1, 9, 'a'},
		"zero window":      {1, 1, 1, 'a', 1, 1, 'p', 0, 5, 0},
		"node index":       {1, 1, 1, 'a', 1, 1, 'p', 1, 5, 1, 0, 1, 'k', 1, 1 << 2, 3},
		"age before epoch": {1, 1, 1, 'a', 1, 1, 'p', 1, 0, 1, 0, 1, 'k', 1, 1, 3},
		"shared > prev":    {1, 1, 1, 'a', 1, 1, 'p', 1, 5, 1, 2, 1, 'k', 1, 0, 3},
		"count too big":    {1, 1, 1, 'a', 1, 1, 'p', 1, 5, 1, 0, 1, 'k', 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"key too long":     append([]byte{1, 1, 1, 'a', 1, 1, 'p', 1, 5, 1, 0, 0x81, 0x04}, make([]byte, 513)...),
	} {
		if _, err := s.l.Merge(msg); err == nil {
			t.Errorf("%s: Merge accepted % x", name, msg)
		}
		if err := s.l.MergeState(msg); err == nil {
			t.Errorf("%s: MergeState accepted", name)
		}
	}
	if _, err := s.l.Merge(append([]byte{9}, good[1:]...)); !errors.Is(err, wire.ErrVersion) {
		t.Errorf("version error = %v", err)
	}
	if st := s.l.Stats(); st.BadMessages != 15 || st.BadStates != 14 {
		t.Fatalf("bad counts %d/%d, want 15/14", st.BadMessages, st.BadStates)
	}
	if len(s.l.List()) != 0 {
		t.Fatal("a rejected message created keys")
	}
	if !mustMerge(t, s.l, good) {
		t.Fatal("the good message was not news")
	}
}

// TestOverAdmittedCounted: when gossip reveals a window's total above the
// limit, the excess is counted once.
func TestOverAdmittedCounted(t *testing.T) {
	s := newSingle(t, Options{}, PolicyConfig{Name: "api", Limit: 100, Window: time.Minute}).estimateOnly()
	s.setPeers(1)
	p := s.l.Policy("api")
	w := win(perMinute, t0)
	if got := admitRun(p, "k"); got != 100 {
		t.Fatalf("admitted %d", got)
	}
	mustMerge(t, s.l, countsMsg("a", perMinute, "k", map[int64]int64{w: 30}))
	mustMerge(t, s.l, countsMsg("a", perMinute, "k", map[int64]int64{w: 30}))
	mustMerge(t, s.l, countsMsg("a", perMinute, "k", map[int64]int64{w: 45}))
	s.l.Flush()
	if got := p.Stats().OverAdmitted; got != 45 {
		t.Fatalf("OverAdmitted = %d, want 45", got)
	}
}
