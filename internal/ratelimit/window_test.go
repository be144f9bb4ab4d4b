package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

var tenSec = PolicyConfig{Name: "s", Limit: 100, Window: 10 * time.Second}

// TestSlidingWindowEstimate checks the estimate prev × (1 − elapsed) + cur
// against exact expectations: after the previous window counted `prev`, a
// request at fraction f of the next window is admitted while
// prev × (1 − f) + cur + 1 ≤ limit.
func TestSlidingWindowEstimate(t *testing.T) {
	for _, tc := range []struct {
		prev int
		frac float64
		want int
	}{
		{0, 0, 100},
		{100, 0, 0},
		{100, 0.25, 25},
		{100, 0.5, 50},
		{100, 0.75, 75},
		{60, 0.5, 70},
		{40, 0.75, 90},
	} {
		t.Run(fmt.Sprintf("prev=%d/f=%v", tc.prev, tc.frac), func(t *testing.T) {
			s := newSingle(t, Options{}, tenSec)
			p := s.l.Policy("s")
			if tc.prev > 0 && !p.AllowN("k", int64(tc.prev)) {
				t.Fatal("could not fill the previous window")
			}
			s.clk.Advance(10*time.Second + time.Duration(tc.frac*float64(10*time.Second)))
			if got := admitRun(p, "k"); got != tc.want {
				t.Fatalf("admitted %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDecisionFields checks Remaining, Reset and RetryAfter, which feed the
// RateLimit headers.
func TestDecisionFields(t *testing.T) {
	s := newSingle(t, Options{}, tenSec)
	p := s.l.Policy("s")
	s.clk.Advance(time.Second)
	d := p.Decide("k", 1)
	if !d.Allowed || d.Limit != 100 || d.Remaining != 99 || d.Reset != 9*time.Second {
		t.Fatalf("first decision %+v", d)
	}
	if !p.AllowN("k", 99) {
		t.Fatal("AllowN(99) denied with 99 left")
	}
	d = p.Decide("k", 1)
	// Denied at 100/100 one second into the window: this window becomes the
	// previous one, whose weight must fall to 99: 1% into the next window.
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 9100*time.Millisecond {
		t.Fatalf("at the limit: %+v", d)
	}
	if st := p.Stats(); st.Admitted != 2 || st.Denied != 1 {
		t.Fatalf("stats %+v: AllowN counts one decision", st)
	}

	// 25% into the next window: 100 × 0.75 = 75 counted, 25 admitted, then
	// the next request must wait for 1% more of the window to pass.
	s.clk.Advance(9*time.Second + 2500*time.Millisecond)
	if got := admitRun(p, "k"); got != 25 {
		t.Fatalf("admitted %d at 25%%, want 25", got)
	}
	d = p.Decide("k", 1)
	if d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("RetryAfter %v, want 100ms", d.RetryAfter)
	}
	s.clk.Advance(d.RetryAfter)
	if !p.Allow("k") || p.Allow("k") {
		t.Fatal("after RetryAfter: want exactly one more admitted")
	}

	// n = 0 peeks; n > limit can never be admitted.
	if d := p.Decide("k", 0); d.Allowed {
		t.Fatalf("peek at the limit: %+v", d)
	}
	if d := p.Decide("other", 101); d.Allowed || d.RetryAfter != 0 {
		t.Fatalf("n > limit: %+v", d)
	}
	if d := p.Decide("other", 0); !d.Allowed || d.Remaining != 100 {
		t.Fatalf("peek at an empty key: %+v", d)
	}
	if l, _ := p.counts("other", win(tenSec, s.clk.Now())); l != 0 {
		t.Fatalf("peek and denial counted %d", l)
	}
}

// TestEstimateIncludesPeers checks that peers' reported counts for both
// windows enter the estimate, and that the sum is precomputed per key.
func TestEstimateIncludesPeers(t *testing.T) {
	s := newSingle(t, Options{}, tenSec).estimateOnly()
	s.setPeers(2)
	p := s.l.Policy("s")
	w := win(tenSec, t0)
	s.clk.Advance(15 * time.Second) // half way through window w+1
	mustMerge(t, s.l, countsMsg("a", tenSec, "k", map[int64]int64{w: 40, w + 1: 10}))
	mustMerge(t, s.l, countsMsg("b", tenSec, "k", map[int64]int64{w: 20, w + 1: 5}))
	// (40 + 20) × 0.5 + 15 = 45: 55 more.
	if got := admitRun(p, "k"); got != 55 {
		t.Fatalf("admitted %d, want 55", got)
	}
	info := p.List()[0]
	if info.Local != 55 || info.Cluster != 70 || info.Reporters != 2 || info.Estimate != 100 {
		t.Fatalf("List: %+v", info)
	}
}

// TestConcurrentAllowExact checks that parallel requests on one key never
// admit past the limit on a single node (the count is a CAS, not
// check-then-add).
func TestConcurrentAllowExact(t *testing.T) {
	s := newSingle(t, Options{}, PolicyConfig{Name: "c", Limit: 1000, Window: time.Minute})
	p := s.l.Policy("c")
	done := make(chan int)
	for range 8 {
		go func() {
			n := 0
			for range 400 {
				if p.Allow("k") {
					n++
				}
			}
			done <- n
		}()
	}
	total := 0
	for range 8 {
		total += <-done
	}
	if total != 1000 {
		t.Fatalf("admitted %d of 3200 with limit 1000", total)
	}
}
