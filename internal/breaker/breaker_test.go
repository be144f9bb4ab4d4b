package breaker

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// solo is one Registry whose sent reports and state changes are recorded.
type solo struct {
	clk     *clock.Fake
	reg     *Registry
	mu      sync.Mutex
	sent    []report
	changes []change
}

func newSolo(t *testing.T) *solo {
	t.Helper()
	s := &solo{clk: clock.NewFake(t0)}
	reg, err := New(Options{
		Node:  "me",
		Clock: s.clk,
		Send: func(_ string, msg []byte) {
			r, err := decodeMessage(msg)
			if err != nil {
				t.Errorf("sent a malformed message: %v", err)
			}
			s.mu.Lock()
			s.sent = append(s.sent, r)
			s.mu.Unlock()
		},
		OnStateChange: func(e string, from, to State, cause string) {
			s.mu.Lock()
			s.changes = append(s.changes, change{e, from, to, cause})
			s.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.reg = reg
	return s
}

func (s *solo) reports() []report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// The local state machine: trip on consecutive failures, reject while
// open, probe after the timeout, close on the probe's success; each
// transition reported and counted.
func TestLocalTripProbeClose(t *testing.T) {
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	fail(t, b, 2)
	succeed(t, b, 1) // breaks the run
	fail(t, b, 2)
	wantState(t, b, Closed)
	fail(t, b, 1)
	wantState(t, b, Open)
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow while open: %v", err)
	}
	rs := s.reports()
	if len(rs) != 1 || rs[0].state != stateOpen || rs[0].ttl != 10*time.Second || rs[0].endpoint != ep || rs[0].reporter != "me" {
		t.Fatalf("reports %+v", rs)
	}
	s.clk.Advance(10*time.Second - time.Millisecond)
	wantState(t, b, Open)
	s.clk.Advance(time.Millisecond)
	wantState(t, b, HalfOpen)
	if st := status(t, s.reg, ep); st.Local != HalfOpen || st.Cause != CauseTimeout || !st.OpenUntil.IsZero() {
		t.Fatalf("status %+v: its vote has expired", st)
	}
	probe, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("second probe: %v", err)
	}
	probe.Done(true)
	wantState(t, b, Closed)
	rs = s.reports()
	if len(rs) != 2 || rs[1].state != stateClosed || rs[1].gen <= rs[0].gen {
		t.Fatalf("reports %+v", rs)
	}
	want := []change{{ep, Closed, Open, CauseLocal}, {ep, Open, HalfOpen, CauseTimeout}, {ep, HalfOpen, Closed, CauseProbe}}
	if !slices.Equal(s.changes, want) {
		t.Fatalf("changes %v", s.changes)
	}
	st := s.reg.Stats()
	if st.Transitions[Transition{Open, CauseLocal}] != 1 || st.Transitions[Transition{HalfOpen, CauseTimeout}] != 1 ||
		st.Transitions[Transition{Closed, CauseProbe}] != 1 || len(st.Transitions) != 3 || st.ReportsSent != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A fresh closed period: old failures are forgotten.
	fail(t, b, 2)
	wantState(t, b, Closed)
}

// A failed probe re-opens the breaker for a full period, as this node's
// own evidence: it is reported.
func TestProbeFailureReopens(t *testing.T) {
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	fail(t, b, 3)
	s.clk.Advance(10 * time.Second)
	fail(t, b, 1)
	wantState(t, b, Open)
	if st := status(t, s.reg, ep); st.Cause != CauseProbe || st.Local != Open || !st.OpenUntil.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("status %+v", st)
	}
	if rs := s.reports(); len(rs) != 2 || rs[1].state != stateOpen {
		t.Fatalf("reports %+v", rs)
	}
}

// MaxProbes requests pass while half-open; all must succeed; a skipped
// probe gives its slot back.
func TestHalfOpenProbesAndSkip(t *testing.T) {
	s := newSolo(t)
	set := testSettings
	set.MaxProbes = 2
	b := s.reg.Breaker(ep, set)
	fail(t, b, 3)
	s.clk.Advance(10 * time.Second)
	p1, err1 := b.Allow()
	p2, err2 := b.Allow()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("third probe: %v", err)
	}
	p2.Skip()
	p3, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	p1.Done(true)
	wantState(t, b, HalfOpen)
	p3.Done(true)
	wantState(t, b, Closed)
}

// An outcome that arrives after the breaker moved on is ignored.
func TestStaleTicketIgnored(t *testing.T) {
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	old, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	fail(t, b, 3)
	s.clk.Advance(10 * time.Second)
	wantState(t, b, HalfOpen)
	old.Done(false)
	wantState(t, b, HalfOpen)
	probe, _ := b.Allow()
	probe.Done(true)
	old.Done(false)
	wantState(t, b, Closed)
	var zero Ticket
	zero.Done(false) // a zero Ticket is inert
	zero.Skip()
}

// A probe whose ticket is never ended does not hold the breaker half-open
// for ever.
func TestStalledProbeReleased(t *testing.T) {
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	fail(t, b, 3)
	s.clk.Advance(10 * time.Second)
	if _, err := b.Allow(); err != nil { // leaked
		t.Fatal(err)
	}
	if sends(b) {
		t.Fatal("second probe let through")
	}
	s.clk.Advance(10 * time.Second)
	succeed(t, b, 1)
	wantState(t, b, Closed)
}

func TestFailureRatioTrips(t *testing.T) {
	set := Settings{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 4}
	b := newSolo(t).reg.Breaker(ep, set)
	fail(t, b, 3)
	wantState(t, b, Closed) // 3 of 3, but fewer than MinRequests
	fail(t, b, 1)
	wantState(t, b, Open)

	b = newSolo(t).reg.Breaker(ep, set)
	succeed(t, b, 3)
	fail(t, b, 2)
	wantState(t, b, Closed) // 2 of 5
	fail(t, b, 1)
	wantState(t, b, Open) // 3 of 6
}

// A reload with new settings updates the breaker in place.
func TestSettingsReload(t *testing.T) {
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	fail(t, b, 2)
	if again := s.reg.Breaker(ep, testSettings); again != b {
		t.Fatal("same settings, new breaker")
	}
	next := testSettings
	next.ConsecutiveFailures = 5
	next.OpenTimeout = time.Minute
	if b2 := s.reg.Breaker(ep, next); b2 != b {
		t.Fatal("reload replaced the breaker")
	}
	fail(t, b, 4) // counting starts afresh under the new rule
	wantState(t, b, Closed)
	fail(t, b, 1)
	wantState(t, b, Open)
	if st := status(t, s.reg, ep); !st.OpenUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("open until %v", st.OpenUntil)
	}
	// A reload while open keeps the period; the next one uses the settings.
	s.reg.Breaker(ep, testSettings)
	s.clk.Advance(10 * time.Second)
	wantState(t, b, Open)
	s.clk.Advance(50 * time.Second)
	wantState(t, b, HalfOpen)
}

func TestSettingsValidate(t *testing.T) {
	if err := (Settings{}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Settings{FailureRatio: 1.5, Interval: -1, OpenTimeout: 25 * time.Hour, Quorum: -1, MaxProbes: 1 << 20}
	err := bad.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	n := bad.normalized()
	if n.FailureRatio != 0 || n.Interval != defaultInterval || n.OpenTimeout != defaultOpenTimeout || n.Quorum != 2 || n.MaxProbes != 1 {
		t.Fatalf("normalized %+v", n)
	}
}

func TestRemoveAndNewNames(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("empty node name accepted")
	}
	s := newSolo(t)
	b := s.reg.Breaker(ep, testSettings)
	fail(t, b, 3)
	s.reg.Remove(ep)
	s.clk.Advance(time.Minute) // its timer is stopped: nothing fires
	if len(s.reg.List()) != 0 || s.clk.Pending() != 0 {
		t.Fatal("removed breaker still listed or timed")
	}
	if nb := s.reg.Breaker(ep, testSettings); nb == b {
		t.Fatal("removed breaker returned")
	}
}

// Concurrent requests, gossip and admin calls: run with -race.
func TestConcurrentUse(t *testing.T) {
	s := newSolo(t)
	set := testSettings
	set.Quorum = 1
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			b := s.reg.Breaker(ep, set)
			for i := range 500 {
				if tk, err := b.Allow(); err == nil {
					tk.Done((i+g)%3 != 0)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			msg := encodeMessage(report{state: wireState(i % 2), gen: uint64(i + 1), ttl: time.Second, reporter: "peer", endpoint: ep})
			if _, err := s.reg.Merge(msg); err != nil {
				t.Error(err)
			}
			if i%20 == 0 {
				s.reg.MergeState(s.reg.LocalState())
				s.reg.List()
				s.reg.Reset(ep)
				s.reg.Stats()
			}
		}
	})
	wg.Go(func() {
		for range 50 {
			s.clk.Advance(time.Second)
		}
	})
	wg.Wait()
}
