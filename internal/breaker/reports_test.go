package breaker

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

func msgFrom(reporter string, st wireState, gen uint64, ttl time.Duration) []byte {
	return encodeMessage(report{state: st, gen: gen, ttl: ttl, reporter: reporter, endpoint: ep})
}

func mustMerge(t *testing.T, r *Registry, msg []byte) bool {
	t.Helper()
	relay, err := r.Merge(msg)
	if err != nil {
		t.Fatal(err)
	}
	return relay
}

// Only news counts and is relayed: a duplicate, or a report older than the
// reporter's latest (a closed report overtaken by its own earlier open), is
// ignored, also after the closed report that withdrew it.
func TestStaleDuplicateReorderedReportsIgnored(t *testing.T) {
	s := newSolo(t)
	set := testSettings
	set.Quorum = 1
	b := s.reg.Breaker(ep, set)
	open5 := msgFrom("p", stateOpen, 5, 10*time.Second)
	if !mustMerge(t, s.reg, open5) {
		t.Fatal("news not relayed")
	}
	wantState(t, b, Open)
	if mustMerge(t, s.reg, open5) {
		t.Fatal("duplicate relayed")
	}
	if !mustMerge(t, s.reg, msgFrom("p", stateClosed, 7, 10*time.Second)) {
		t.Fatal("withdrawal not relayed")
	}
	wantState(t, b, HalfOpen)
	if mustMerge(t, s.reg, msgFrom("p", stateOpen, 6, 10*time.Second)) {
		t.Fatal("reordered older open relayed")
	}
	wantState(t, b, HalfOpen)
	if st := status(t, s.reg, ep); len(st.Reporters) != 0 {
		t.Fatalf("reporters %v", st.Reporters)
	}
	// Reordered the other way round: a withdrawal that arrives first
	// makes the older open stale even with no open held before.
	if !mustMerge(t, s.reg, msgFrom("q", stateClosed, 9, 10*time.Second)) ||
		mustMerge(t, s.reg, msgFrom("q", stateOpen, 8, 10*time.Second)) {
		t.Fatal("q's reordered reports")
	}
	wantState(t, b, HalfOpen)
	// This node's own reports coming back are not news.
	succeed(t, b, 1)
	fail(t, b, 3)
	own := s.reports()
	if mustMerge(t, s.reg, encodeMessage(own[len(own)-1])) {
		t.Fatal("own echo relayed")
	}
	st := s.reg.Stats()
	if st.ReportsStale != 4 || st.ReportsReceived != 7 {
		t.Fatalf("stats %+v", st)
	}
}

// Clock skew between nodes does not matter: reports carry the remaining
// open period, not a deadline.
func TestRemainingPeriodIsRelative(t *testing.T) {
	a := newSolo(t)
	skewed := clock.NewFake(t0.Add(-time.Hour))
	b, err := New(Options{Node: "b", Clock: skewed})
	if err != nil {
		t.Fatal(err)
	}
	set := testSettings
	set.Quorum = 1
	bb := b.Breaker(ep, set)
	fail(t, a.reg.Breaker(ep, set), 3)
	a.clk.Advance(4 * time.Second)
	skewed.Advance(4 * time.Second)
	// Anti-entropy 4s later carries the 6s left.
	if err := b.MergeState(a.reg.LocalState()); err != nil {
		t.Fatal(err)
	}
	wantState(t, bb, Open)
	if st := status(t, b, ep); !st.OpenUntil.Equal(skewed.Now().Add(6 * time.Second)) {
		t.Fatalf("open until %v, want 6s after %v", st.OpenUntil, skewed.Now())
	}
	// A peer cannot keep this node open longer than its own OpenTimeout.
	if !mustMerge(t, b, msgFrom("p", stateOpen, 1, 24*time.Hour)) {
		t.Fatal("not news")
	}
	if st := status(t, b, ep); !st.OpenUntil.Equal(skewed.Now().Add(10 * time.Second)) {
		t.Fatalf("a 24h report: open until %v, want this node's 10s", st.OpenUntil)
	}
	skewed.Advance(10 * time.Second)
	wantState(t, bb, HalfOpen)
}

func TestMalformedMessagesRejected(t *testing.T) {
	s := newSolo(t)
	set := testSettings
	set.Quorum = 1
	b := s.reg.Breaker(ep, set)
	good := msgFrom("p", stateOpen, 1, time.Second)
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	withName := func(name []byte) []byte {
		m := []byte{wireVersion, 1, 1, 10, byte(len(name))}
		m = append(m, name...)
		return append(m, 2, 'e', 'p')
	}
	msgs := map[string][]byte{
		"empty":   nil,
		"version": append([]byte{0}, good[1:]...), // below this release's: a later one reads as this

		"truncated":      good[:len(good)-1],
		"trailing":       append(slices.Clone(good), 0),
		"state":          append([]byte{wireVersion, 3}, good[2:]...),
		"generation 0":   msgFrom("p", stateOpen, 0, time.Second),
		"ttl":            encodeMessage(report{state: stateOpen, gen: 1, ttl: 25 * time.Hour, reporter: "p", endpoint: ep}),
		"empty reporter": withName(nil),
		"long reporter":  append(append([]byte{wireVersion, 1, 1, 10, 0xac, 0x02}, long...), 2, 'e', 'p'),
		"not utf-8":      withName([]byte{0xff, 0xfe}),
		"huge length":    []byte{wireVersion, 1, 1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, m := range msgs {
		if relay, err := s.reg.Merge(m); err == nil || relay {
			t.Errorf("%s: relay %v, err %v", name, relay, err)
		}
	}
	state := s.reg.LocalState()
	states := map[string][]byte{
		"empty":     nil,
		"version":   {0, 0},
		"count":     {wireVersion, 5, 0},
		"too many":  {wireVersion, 0x81, 0x10},
		"reset":     encodeState([]report{{state: stateReset, gen: 1, reporter: "p", endpoint: ep}}),
		"trailing":  append(slices.Clone(state), 1),
		"bad entry": encodeState([]report{{state: stateOpen, gen: 1, reporter: "p", endpoint: ep}, {state: stateOpen, reporter: "q", endpoint: ep}}),
	}
	for name, st := range states {
		if err := s.reg.MergeState(st); err == nil {
			t.Errorf("state %s accepted", name)
		}
	}
	// A state is all or nothing: the good entry before the bad one did
	// not open the breaker.
	wantState(t, b, Closed)
	if got, want := s.reg.Stats().BadMessages, uint64(len(msgs)+len(states)); got != want {
		t.Fatalf("bad messages %d, want %d", got, want)
	}
	if st := s.reg.Stats(); st.ReportsReceived != 0 {
		t.Fatalf("malformed input was merged: %+v", st)
	}
}

// LocalState carries this node's own reports first, drops expired ones,
// and stays bounded however many reports the node holds; the store itself
// is bounded too.
func TestLocalStateBounded(t *testing.T) {
	s := newSolo(t)
	fail(t, s.reg.Breaker("10.9.9.9:1", testSettings), 3)
	for i := range maxReports + 10 {
		m := encodeMessage(report{state: stateOpen, gen: 1, ttl: time.Duration(1+i%2) * time.Minute,
			reporter: "p" + strconv.Itoa(i%100), endpoint: "10.0.0." + strconv.Itoa(i/100) + ":80"})
		mustMerge(t, s.reg, m)
	}
	if st := s.reg.Stats(); st.ReportsDropped != 11 {
		t.Fatalf("dropped %d, want 11 (store bound %d, own report included)", st.ReportsDropped, maxReports)
	}
	rs, err := decodeState(s.reg.LocalState())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != maxStateEntries || rs[0].reporter != "me" || rs[0].state != stateOpen {
		t.Fatalf("%d entries, first %+v", len(rs), rs[0])
	}
	// Peers' open reports got at most the local default timeout (no breaker
	// for those endpoints: 30s); this node's own lasts 10s.
	s.clk.Advance(30 * time.Second)
	if rs, _ := decodeState(s.reg.LocalState()); len(rs) != 0 {
		t.Fatalf("%d expired entries kept", len(rs))
	}
	if s.reg.nreports != 0 {
		t.Fatalf("store holds %d expired entries", s.reg.nreports)
	}
}
