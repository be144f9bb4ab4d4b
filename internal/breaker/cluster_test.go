package breaker

import (
	"slices"
	"testing"
	"time"
)

// The endpoint is down: every node's latest request to it failed. The node
// that trips first stops the other nine within one gossip round, because
// each has its own evidence; after the open period each probes for itself.
func TestOpenSpreadsToNodesThatSeeFailures(t *testing.T) {
	s := newSim(t, 10)
	for i := range s.nodes {
		fail(t, s.br(i), 1)
	}
	fail(t, s.br(0), 2)
	wantState(t, s.br(0), Open)
	if n := s.deliver(); n != 9 {
		t.Fatalf("round 1 delivered %d packets, want 9", n)
	}
	for i := 1; i < 10; i++ {
		if sends(s.br(i)) {
			t.Fatalf("n%d still sends after one round", i)
		}
		st := status(t, s.node(i), ep)
		if st.Cause != CauseRemote || st.Local != Closed || !slices.Equal(st.Reporters, []string{"n0"}) ||
			!st.OpenUntil.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("n%d status %+v", i, st)
		}
	}
	s.settle()
	for i := 1; i < 10; i++ {
		if n := s.node(i).Stats().ReportsSent; n != 0 {
			t.Fatalf("n%d sent %d reports: an adopted open must not be a vote", i, n)
		}
	}

	// The endpoint is back when the period ends: every node probes for
	// itself and closes; n0's closed report withdraws its vote everywhere.
	s.clk.Advance(10 * time.Second)
	for i := range s.nodes {
		wantState(t, s.br(i), HalfOpen)
		succeed(t, s.br(i), 1)
		wantState(t, s.br(i), Closed)
	}
	s.settle()
	for i := 1; i < 10; i++ {
		if st := status(t, s.node(i), ep); len(st.Reporters) != 0 {
			t.Fatalf("n%d still counts %v", i, st.Reporters)
		}
	}
	if got := s.node(0).Stats().ReportsSent; got != 2 {
		t.Fatalf("n0 sent %d reports, want open and closed", got)
	}
	want := []change{{ep, Closed, Open, CauseRemote}, {ep, Open, HalfOpen, CauseTimeout}, {ep, HalfOpen, Closed, CauseProbe}}
	if got := s.changesOf(5); !slices.Equal(got, want) {
		t.Fatalf("n5 changes %v, want %v", got, want)
	}
}

// Recovery spreads: when the reporter's probe succeeds before the others'
// adopted periods end (theirs started later, the report took 2s to
// arrive), its closed report ends their support and they probe at once.
func TestRecoverySpreads(t *testing.T) {
	s := newSim(t, 4)
	for i := range s.nodes {
		fail(t, s.br(i), 1)
	}
	s.delay = 2 * time.Second
	fail(t, s.br(0), 2)
	s.clk.Advance(2 * time.Second)
	s.deliver()
	wantState(t, s.br(3), Open)
	if st := status(t, s.node(3), ep); !st.OpenUntil.Equal(t0.Add(12 * time.Second)) {
		t.Fatalf("adopted until %v, want the remaining 10s from receipt", st.OpenUntil)
	}
	s.delay = 0
	s.clk.Advance(8 * time.Second)
	succeed(t, s.br(0), 1)
	wantState(t, s.br(0), Closed)
	s.deliver()
	for i := 1; i < 4; i++ {
		wantState(t, s.br(i), HalfOpen)
		if st := status(t, s.node(i), ep); st.Cause != CauseRemote {
			t.Fatalf("n%d cause %q", i, st.Cause)
		}
		succeed(t, s.br(i), 1)
		wantState(t, s.br(i), Closed)
	}
}

// The policy's point: one node with a local network problem opens its own
// breaker, again and again, but nodes whose requests succeed, or that have
// sent none, keep the endpoint in service.
func TestSingleBadNodeDoesNotBlackHole(t *testing.T) {
	s := newSim(t, 10)
	for i := 1; i < 9; i++ {
		succeed(t, s.br(i), 5)
	}
	s.br(9) // no traffic yet
	for cycle := range 3 {
		if cycle == 0 {
			fail(t, s.br(0), 3)
		} else {
			s.clk.Advance(10 * time.Second)
			fail(t, s.br(0), 1) // its probe fails: open again, a new vote
		}
		wantState(t, s.br(0), Open)
		s.settle()
		for i := 1; i < 10; i++ {
			if !sends(s.br(i)) {
				t.Fatalf("cycle %d: n%d black-holed by n0's lone report", cycle, i)
			}
			if st := status(t, s.node(i), ep); !slices.Equal(st.Reporters, []string{"n0"}) {
				t.Fatalf("cycle %d: n%d reporters %v", cycle, i, st.Reporters)
			}
		}
		// The odd failure of a healthy endpoint is not evidence.
		fail(t, s.br(3), 1)
		succeed(t, s.br(3), 1)
		wantState(t, s.br(3), Closed)
	}
	if got := s.node(0).Stats().ReportsSent; got != 3 {
		t.Fatalf("n0 sent %d reports, want 3 opens", got)
	}
}

// A node without traffic to the endpoint pays one failed request to follow
// a lone reporter: that failure is its evidence.
func TestLoneReportAndOwnFailureOpen(t *testing.T) {
	s := newSim(t, 3)
	s.br(1)
	s.br(2)
	fail(t, s.br(0), 3)
	s.settle()
	wantState(t, s.br(1), Closed)
	fail(t, s.br(1), 1)
	wantState(t, s.br(1), Open)
	st := status(t, s.node(1), ep)
	if st.Cause != CauseRemote || !st.OpenUntil.Equal(t0.Add(10*time.Second)) || st.Local != Closed {
		t.Fatalf("status %+v", st)
	}
	s.settle()
	if st := status(t, s.node(2), ep); !slices.Equal(st.Reporters, []string{"n0"}) {
		t.Fatalf("n1's adopted open reached n2 as a vote: %v", st.Reporters)
	}

	// Evidence is recent failures: one older than Interval does not count.
	s.clk.Advance(31 * time.Second)
	fail(t, s.br(2), 1) // no vote is live now
	s.clk.Advance(31 * time.Second)
	fail(t, s.br(0), 1) // n0 is half-open; its probe fails: a new vote
	s.settle()
	wantState(t, s.br(2), Closed)
}

// Two independent reporters open the endpoint for nodes with no evidence,
// until fewer than Quorum votes remain.
func TestQuorumOpensNodesWithoutEvidence(t *testing.T) {
	s := newSim(t, 6)
	s.br(5)
	// n1 does not hear of n0's open: it trips on its own failures later.
	s.drop = func(_, to string, _ []byte) bool { return to == "n1" }
	fail(t, s.br(0), 3)
	s.settle()
	wantState(t, s.br(5), Closed)
	s.clk.Advance(3 * time.Second)
	s.drop = nil
	fail(t, s.br(1), 3)
	s.settle()
	wantState(t, s.br(5), Open)
	if st := status(t, s.node(5), ep); !st.OpenUntil.Equal(t0.Add(10*time.Second)) ||
		!slices.Equal(st.Reporters, []string{"n0", "n1"}) {
		t.Fatalf("status %+v: want open until the earlier vote ends", st)
	}
	s.clk.Advance(7 * time.Second)
	wantState(t, s.br(5), HalfOpen)
}

// A reporter that leaves the cluster no longer holds the endpoint open.
func TestReporterLeavingWithdrawsVote(t *testing.T) {
	s := newSim(t, 6)
	s.br(5)
	fail(t, s.br(0), 3)
	fail(t, s.br(1), 3)
	s.settle()
	wantState(t, s.br(5), Open)
	s.kill("n1")
	wantState(t, s.br(5), HalfOpen)
	st := status(t, s.node(5), ep)
	if st.Cause != CauseRemote || !slices.Equal(st.Reporters, []string{"n0"}) {
		t.Fatalf("status %+v", st)
	}
	rs, err := decodeState(s.node(5).LocalState())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.reporter == "n1" {
			t.Fatal("LocalState forwards a departed node's report")
		}
	}
	if !sends(s.br(5)) {
		t.Fatal("n5 does not probe")
	}
}

// Reset on any node closes the endpoint everywhere, the reporters'
// breakers included; a node that misses the reset message still loses the
// reporters' votes through their withdrawals.
func TestResetSpreads(t *testing.T) {
	s := newSim(t, 10)
	for i := 2; i < 10; i++ {
		s.br(i)
	}
	fail(t, s.br(0), 3)
	fail(t, s.br(1), 3)
	s.settle()
	for i := range s.nodes {
		wantState(t, s.br(i), Open)
	}
	s.drop = func(_, to string, msg []byte) bool {
		r, _ := decodeMessage(msg)
		return to == "n9" && r.state == stateReset
	}
	s.node(5).Reset(ep)
	s.settle()
	for i := 0; i < 9; i++ {
		wantState(t, s.br(i), Closed)
		st := status(t, s.node(i), ep)
		if st.Cause != CauseReset || len(st.Reporters) != 0 {
			t.Fatalf("n%d status %+v", i, st)
		}
	}
	wantState(t, s.br(9), HalfOpen)
	for _, i := range []int{0, 1} {
		if got := s.node(i).Stats().ReportsSent; got != 2 {
			t.Fatalf("n%d sent %d reports, want its open and its withdrawal", i, got)
		}
	}
}

// Anti-entropy repairs a node that missed the broadcasts, both ways: the
// votes it missed open the endpoint, the withdrawals it missed end that.
func TestAntiEntropyRepairsMissedBroadcasts(t *testing.T) {
	s := newSim(t, 4)
	s.br(3)
	s.drop = func(_, to string, _ []byte) bool { return to == "n3" }
	fail(t, s.br(0), 3)
	fail(t, s.br(1), 3)
	s.settle()
	wantState(t, s.br(3), Closed)
	if err := s.node(3).MergeState(s.node(0).LocalState()); err != nil {
		t.Fatal(err)
	}
	wantState(t, s.br(3), Open)
	if st := status(t, s.node(3), ep); !slices.Equal(st.Reporters, []string{"n0", "n1"}) ||
		!st.OpenUntil.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("status %+v", st)
	}

	s.clk.Advance(time.Second)
	s.node(2).Reset(ep)
	s.settle()
	wantState(t, s.br(0), Closed)
	wantState(t, s.br(3), Open)
	if err := s.node(3).MergeState(s.node(2).LocalState()); err != nil {
		t.Fatal(err)
	}
	wantState(t, s.br(3), HalfOpen)
	// Merging the same state again, or an older one, changes nothing.
	before := s.node(3).Stats().ReportsStale
	if err := s.node(3).MergeState(s.node(2).LocalState()); err != nil {
		t.Fatal(err)
	}
	if s.node(3).Stats().ReportsStale == before {
		t.Fatal("a repeated state was not stale")
	}
	wantState(t, s.br(3), HalfOpen)
}

// With partial fan-out, news reaches every node through relays, each node
// relays it once, and the spread stops.
func TestEpidemicRelayDiesOut(t *testing.T) {
	s := newSim(t, 10)
	s.fanout = 3
	for i := range s.nodes {
		fail(t, s.br(i), 1)
	}
	fail(t, s.br(0), 2)
	s.settle()
	for i := range s.nodes {
		wantState(t, s.br(i), Open)
	}
	// n0's send and one relay per other node, each to 3 peers.
	if s.delivered > 3*10 {
		t.Fatalf("%d packets delivered for one report", s.delivered)
	}
}

// A restarted node's previous life's open report, still held by peers, is
// withdrawn by the node itself as soon as anti-entropy shows it to it.
func TestRestartedReporterWithdrawsPreviousLife(t *testing.T) {
	s := newSim(t, 6)
	s.br(5)
	fail(t, s.br(0), 3)
	fail(t, s.br(1), 3)
	s.settle()
	wantState(t, s.br(5), Open)
	s.clk.Advance(time.Second)
	s.nodes[0] = s.newNode("n0", s.clk)
	if err := s.node(0).MergeState(s.node(5).LocalState()); err != nil {
		t.Fatal(err)
	}
	s.settle()
	wantState(t, s.br(5), HalfOpen)
	if st := status(t, s.node(5), ep); !slices.Equal(st.Reporters, []string{"n1"}) {
		t.Fatalf("reporters %v", st.Reporters)
	}
}

// When a node's own open period ends while a quorum of peers still reports
// the endpoint open, it stays open with them rather than probe.
func TestQuorumOutlastsOwnOpen(t *testing.T) {
	s := newSim(t, 3)
	fail(t, s.br(0), 3)
	s.clk.Advance(5 * time.Second)
	fail(t, s.br(1), 3)
	fail(t, s.br(2), 3)
	s.settle()
	s.clk.Advance(5 * time.Second)
	wantState(t, s.br(0), Open)
	if st := status(t, s.node(0), ep); st.Cause != CauseRemote || st.Local != Closed ||
		!st.OpenUntil.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("status %+v", st)
	}
	s.clk.Advance(5 * time.Second)
	wantState(t, s.br(0), HalfOpen)
}
