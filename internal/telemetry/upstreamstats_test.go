package telemetry

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

var statsT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// withinBucket reports whether got is within one histogram bucket (a
// factor of √2, or one base below the first bound) of want.
func withinBucket(got, want time.Duration) bool {
	if want < latencyBase {
		return got < 2*latencyBase
	}
	r := float64(got) / float64(want)
	return r >= 1/math.Sqrt2-1e-9 && r <= math.Sqrt2+1e-9
}

func TestLatencyBuckets(t *testing.T) {
	if latencyLow[1] != int64(latencyBase) {
		t.Fatalf("first bound %v", time.Duration(latencyLow[1]))
	}
	if top := time.Duration(latencyLow[latencyBuckets-1]); top < 60*time.Second {
		t.Fatalf("overflow bucket starts at %v, below 60 s", top)
	}
	for i := 1; i < latencyBuckets; i++ {
		lo := time.Duration(latencyLow[i])
		if got := latencyBucket(lo); got != i {
			t.Errorf("bucket(%v) = %d, want %d", lo, got, i)
		}
		if got := latencyBucket(lo - 1); got != i-1 {
			t.Errorf("bucket(%v) = %d, want %d", lo-1, got, i-1)
		}
	}
	for _, d := range []time.Duration{-1, 0, 1, 99 * time.Microsecond} {
		if got := latencyBucket(d); got != 0 {
			t.Errorf("bucket(%v) = %d, want 0", d, got)
		}
	}
	for _, d := range []time.Duration{75 * time.Second, time.Hour, math.MaxInt64} {
		if got := latencyBucket(d); got != latencyBuckets-1 {
			t.Errorf("bucket(%v) = %d, want %d", d, got, latencyBuckets-1)
		}
	}
	// Against a plain scan, over a sweep of durations.
	for d := time.Duration(1); d < 100*time.Second; d = d*21/20 + 1 {
		want := 0
		for want+1 < latencyBuckets && int64(d) >= latencyLow[want+1] {
			want++
		}
		if got := latencyBucket(d); got != want {
			t.Fatalf("bucket(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestUpstreamStatsPercentiles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		latency  func(i int) time.Duration // i in 0..999
		p50, p99 time.Duration
	}{
		{"uniform 1..1000ms", func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }, 500 * time.Millisecond, 990 * time.Millisecond},
		{"constant 20ms", func(int) time.Duration { return 20 * time.Millisecond }, 20 * time.Millisecond, 20 * time.Millisecond},
		{"tail", func(i int) time.Duration {
			if i < 985 {
				return 2 * time.Millisecond
			}
			return 3 * time.Second
		}, 2 * time.Millisecond, 3 * time.Second},
		{"sub-base", func(i int) time.Duration { return time.Duration(i%50) * time.Microsecond }, 25 * time.Microsecond, 50 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(statsT0)
			s := NewUpstreamStatsClock(c)
			for i := 0; i < 1000; i++ {
				s.Observe("orders", 200, tc.latency(i))
			}
			snap, ok := s.Snapshot("orders", 10*time.Second)
			if !ok || snap.Requests != 1000 || snap.Errors != 0 {
				t.Fatalf("snapshot %+v, %v", snap, ok)
			}
			if !withinBucket(snap.P50, tc.p50) {
				t.Errorf("p50 = %v, want %v within a bucket", snap.P50, tc.p50)
			}
			if !withinBucket(snap.P99, tc.p99) {
				t.Errorf("p99 = %v, want %v within a bucket", snap.P99, tc.p99)
			}
		})
	}
}

func TestUpstreamStatsErrors(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	for _, st := range []int{200, 201, 404, 429, 499, 500, 502, 503, 504, 200} {
		s.Observe("orders", st, time.Millisecond)
	}
	s.Observe("users", 500, time.Millisecond)
	snap, ok := s.Snapshot("orders", 30*time.Second)
	if !ok || snap.Requests != 10 || snap.Errors != 4 {
		t.Fatalf("orders: %+v, %v; want 10 requests, 4 errors", snap, ok)
	}
	if r := snap.ErrorRate(); r != 0.4 {
		t.Fatalf("ErrorRate = %v", r)
	}
	if snap, _ := s.Snapshot("users", 30*time.Second); snap.Requests != 1 || snap.Errors != 1 {
		t.Fatalf("users: %+v", snap)
	}
	if (UpstreamSnapshot{}).ErrorRate() != 0 {
		t.Fatal("ErrorRate without requests")
	}
}

func TestUpstreamStatsUnknownAndEmpty(t *testing.T) {
	s := NewUpstreamStatsClock(clock.NewFake(statsT0))
	s.Observe("", 500, time.Second) // reached no upstream: ignored
	if _, ok := s.Snapshot("", time.Minute); ok {
		t.Fatal("empty upstream recorded")
	}
	if _, ok := s.Snapshot("nope", time.Minute); ok {
		t.Fatal("unknown upstream reported")
	}
	var nilStats *UpstreamStats
	nilStats.Observe("orders", 200, time.Millisecond)
	if _, ok := nilStats.Snapshot("orders", time.Minute); ok {
		t.Fatal("nil stats reported")
	}
}

func TestUpstreamStatsWindow(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	// 10 s of traffic, second k has k+1 requests, errors in the last 3 s.
	for k := 0; k < 10; k++ {
		for i := 0; i <= k; i++ {
			st := 200
			if k >= 7 {
				st = 503
			}
			s.Observe("orders", st, 10*time.Millisecond)
		}
		if k < 9 {
			c.Advance(time.Second)
		}
	}
	// Now in second 9.
	for _, tc := range []struct {
		window         time.Duration
		requests, errs uint64
		span           time.Duration
	}{
		{time.Second, 10, 10, time.Second},
		{1500 * time.Millisecond, 19, 19, 2 * time.Second}, // rounded up to whole seconds
		{3 * time.Second, 27, 27, 3 * time.Second},
		{5 * time.Second, 40, 27, 5 * time.Second},
		{10 * time.Second, 55, 27, 10 * time.Second},
		{time.Hour, 55, 27, MaxStatsWindow}, // clamped
		{0, 10, 10, time.Second},            // at least the current second
	} {
		snap, ok := s.Snapshot("orders", tc.window)
		if !ok || snap.Requests != tc.requests || snap.Errors != tc.errs || snap.Window != tc.span {
			t.Errorf("window %v: %+v, want %d requests, %d errors over %v", tc.window, snap, tc.requests, tc.errs, tc.span)
		}
	}

	// Time passes without traffic: the seconds leave the window one by one.
	c.Advance(500 * time.Millisecond) // still second 9
	if snap, _ := s.Snapshot("orders", time.Second); snap.Requests != 10 {
		t.Fatalf("same second: %+v", snap)
	}
	c.Advance(500 * time.Millisecond) // second 10
	if snap, _ := s.Snapshot("orders", time.Second); snap.Requests != 0 || snap.P50 != 0 || snap.P99 != 0 {
		t.Fatalf("new second: %+v", snap)
	}
	if snap, _ := s.Snapshot("orders", 10*time.Second); snap.Requests != 54 {
		t.Fatalf("10 s window a second later: %+v, want 54", snap)
	}
	c.Advance(10 * time.Second)
	snap, ok := s.Snapshot("orders", 10*time.Second)
	if !ok || snap.Requests != 0 {
		t.Fatalf("after the window: %+v, %v", snap, ok)
	}
	// The rest of the ring still holds it.
	if snap, _ := s.Snapshot("orders", MaxStatsWindow); snap.Requests != 55 {
		t.Fatalf("max window: %+v, want 55", snap)
	}
}

func TestUpstreamStatsRingReuse(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	s.Observe("orders", 500, time.Second)
	// A whole ring later the same bucket is reused: the old second must not
	// be counted in the new one.
	c.Advance(statsSeconds * time.Second)
	s.Observe("orders", 200, time.Millisecond)
	snap, _ := s.Snapshot("orders", MaxStatsWindow)
	if snap.Requests != 1 || snap.Errors != 0 || !withinBucket(snap.P99, time.Millisecond) {
		t.Fatalf("reused bucket: %+v", snap)
	}
	// Many rings later, with gaps.
	for i := 0; i < 300; i++ {
		c.Advance(7 * time.Second)
		s.Observe("orders", 200, time.Millisecond)
	}
	if snap, _ := s.Snapshot("orders", 60*time.Second); snap.Requests != 9 { // seconds t, t-7, …, t-56
		t.Fatalf("sparse traffic: %+v, want 9", snap)
	}
}

func TestUpstreamStatsObserveAt(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	c.Advance(10 * time.Second)
	s.ObserveAt(c.Now(), "orders", 200, time.Millisecond)
	s.ObserveAt(c.Now().Add(-3*time.Second), "orders", 500, time.Millisecond) // finished 3 s ago
	s.ObserveAt(statsT0.Add(-time.Second), "orders", 500, time.Millisecond)   // before the stats: ignored
	s.ObserveAt(c.Now(), "", 500, time.Millisecond)                           // no upstream: ignored
	for _, tc := range []struct {
		window         time.Duration
		requests, errs uint64
	}{
		{time.Second, 1, 0},
		{3 * time.Second, 1, 0},
		{4 * time.Second, 2, 1},
		{MaxStatsWindow, 2, 1},
	} {
		if snap, _ := s.Snapshot("orders", tc.window); snap.Requests != tc.requests || snap.Errors != tc.errs {
			t.Errorf("window %v: %+v, want %d requests, %d errors", tc.window, snap, tc.requests, tc.errs)
		}
	}

	// On the wall clock, with the monotonic reading of a request's start.
	real := NewUpstreamStats()
	start := time.Now()
	d := time.Since(start)
	real.ObserveAt(start.Add(d), "orders", 200, d)
	if snap, ok := real.Snapshot("orders", time.Second); !ok || snap.Requests != 1 {
		t.Fatalf("wall clock: %+v, %v", snap, ok)
	}
}

func TestUpstreamStatsForgetsIdleUpstreams(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	s.Observe("old", 200, time.Millisecond)
	c.Advance(30 * time.Second)
	s.Observe("recent", 200, time.Millisecond)
	c.Advance(40 * time.Second) // old: idle 70 s; recent: 40 s
	s.Observe("new", 200, time.Millisecond)
	if _, ok := s.Snapshot("old", time.Minute); ok {
		t.Fatal("an upstream idle for over a ring is still kept")
	}
	for _, name := range []string{"recent", "new"} {
		if _, ok := s.Snapshot(name, time.Minute); !ok {
			t.Fatalf("%s dropped", name)
		}
	}
}

// Observers on several upstreams while the clock moves and snapshots are
// read: run with -race. Every request lands in exactly one second.
func TestUpstreamStatsConcurrent(t *testing.T) {
	c := clock.NewFake(statsT0)
	s := NewUpstreamStatsClock(c)
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			up := []string{"a", "b"}[w%2]
			for i := 0; i < per; i++ {
				st := 200
				if i%10 == 0 {
					st = 500
				}
				s.Observe(up, st, time.Duration(i)*time.Microsecond)
			}
		}(w)
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for i := 0; i < 20; i++ {
			c.Advance(time.Second)
		}
	}()
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.Snapshot("a", time.Minute)
			}
		}
	}()
	wg.Wait()
	close(stop)
	bg.Wait()
	var req, errs uint64
	for _, up := range []string{"a", "b"} {
		snap, ok := s.Snapshot(up, MaxStatsWindow)
		if !ok {
			t.Fatalf("%s missing", up)
		}
		req += snap.Requests
		errs += snap.Errors
	}
	if req != workers*per || errs != workers*per/10 {
		t.Fatalf("counted %d requests, %d errors; want %d, %d", req, errs, workers*per, workers*per/10)
	}
}

func BenchmarkUpstreamStatsObserve(b *testing.B) {
	b.Run("real_clock", func(b *testing.B) {
		s := NewUpstreamStats()
		s.Observe("orders", 200, time.Millisecond)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			s.Observe("orders", 200+i%400, time.Duration(i%1000)*time.Millisecond)
		}
	})
	b.Run("observe_at", func(b *testing.B) {
		s := NewUpstreamStats()
		s.Observe("orders", 200, time.Millisecond)
		start := time.Now()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			d := time.Duration(i%1000) * time.Millisecond
			s.ObserveAt(start.Add(time.Duration(i)), "orders", 200+i%400, d)
		}
	})
	b.Run("observe_at_parallel", func(b *testing.B) {
		ups := []string{"orders", "users", "payments", "orders-v2"}
		s := NewUpstreamStats()
		for _, up := range ups {
			s.Observe(up, 200, time.Millisecond)
		}
		start := time.Now()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				s.ObserveAt(start.Add(time.Duration(i)), ups[i%len(ups)], 200, time.Duration(i%1000)*time.Millisecond)
			}
		})
	})
	b.Run("real_clock_parallel", func(b *testing.B) {
		s := NewUpstreamStats()
		for _, up := range []string{"orders", "users", "payments", "orders-v2"} {
			s.Observe(up, 200, time.Millisecond)
		}
		ups := []string{"orders", "users", "payments", "orders-v2"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				s.Observe(ups[i%len(ups)], 200, time.Duration(i%1000)*time.Millisecond)
			}
		})
	})
}

func BenchmarkUpstreamStatsSnapshot(b *testing.B) {
	s := NewUpstreamStats()
	for i := 0; i < 1000; i++ {
		s.Observe("orders", 200, time.Duration(i)*time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Snapshot("orders", time.Minute)
	}
}
