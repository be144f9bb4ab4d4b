package telemetry

import (
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// UpstreamStats counts each upstream's requests, errors and latencies over
// the last minute, for watching a traffic shift: a rollout step reads the
// error rate and p99 of the new upstream over a window and rolls back when
// they are bad.
//
// Each upstream has a ring of per-second buckets; a bucket holds the count
// of requests, of errors (status ≥ 500) and a log-scale latency histogram.
// Observe is a map lookup and a few atomic adds; a bucket is cleared for
// its new second under a per-upstream lock taken once a second. Time is
// counted in whole seconds of the clock's monotonic time since the stats
// were made, so a step of the wall clock does not move the window.
type UpstreamStats struct {
	clock clock.Clock
	base  time.Time
	rings atomic.Pointer[map[string]*upstreamRing] // copy on write
	mu    sync.Mutex                               // serializes adding to rings
}

// UpstreamSnapshot is an upstream's traffic over a window.
type UpstreamSnapshot struct {
	// Window is the span counted: the current second and the whole seconds
	// before it, at most MaxStatsWindow.
	Window   time.Duration
	Requests uint64
	Errors   uint64 // responses with status ≥ 500
	// P50 and P99 are latency percentiles, estimated from Hist (within
	// one bucket, a factor of √2); 0 without requests.
	P50, P99 time.Duration
	// Hist is the window's latency histogram: what snapshots of several
	// nodes are merged by (percentiles do not add up).
	Hist LatencyHistogram
}

// ErrorRate is Errors/Requests, 0 without requests.
func (s UpstreamSnapshot) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

const (
	statsSeconds = 64 // length of each upstream's ring
	// MaxStatsWindow is the longest window a snapshot covers. (One bucket
	// of the ring is the one being reused for the next second.)
	MaxStatsWindow = (statsSeconds - 1) * time.Second

	// latencyBuckets: bucket 0 holds [0, 100 µs); bucket i in 1..39 holds
	// [100 µs·2^((i-1)/2), 100 µs·2^(i/2)); bucket 40 holds everything from
	// 100 µs·2^19.5 ≈ 74 s up.
	latencyBuckets = 41
	latencyBase    = 100 * time.Microsecond
)

var (
	// latencyLow[i] is the lower bound of bucket i, in nanoseconds.
	latencyLow [latencyBuckets]int64
	// latencyGuess[n] is the bucket of 2^(n-1), the least duration of bit
	// length n: a duration's bucket is at most two steps above it.
	latencyGuess [65]uint8
)

func init() {
	for i := 1; i < latencyBuckets; i++ {
		latencyLow[i] = int64(math.Round(float64(latencyBase) * math.Pow(2, float64(i-1)/2)))
	}
	for n := 1; n <= 64; n++ {
		least := uint64(1) << (n - 1)
		i := 0
		for i+1 < latencyBuckets && least >= uint64(latencyLow[i+1]) {
			i++
		}
		latencyGuess[n] = uint8(i)
	}
}

// latencyBucket returns the histogram bucket of d.
func latencyBucket(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	i := int(latencyGuess[bits.Len64(uint64(d))])
	for i+1 < latencyBuckets && int64(d) >= latencyLow[i+1] {
		i++
	}
	return i
}

// upstreamRing is one upstream's last statsSeconds seconds.
type upstreamRing struct {
	mu      sync.Mutex   // taken to clear a bucket for its new second
	last    atomic.Int64 // the newest second a bucket was cleared for
	buckets [statsSeconds]secondBucket
}

type secondBucket struct {
	sec      atomic.Int64 // the second the counts belong to
	requests atomic.Uint64
	errors   atomic.Uint64
	hist     [latencyBuckets]atomic.Uint32
}

// NewUpstreamStats returns empty stats on the wall clock.
func NewUpstreamStats() *UpstreamStats { return NewUpstreamStatsClock(clock.Real()) }

// NewUpstreamStatsClock returns empty stats on c (a clock.Fake in tests).
func NewUpstreamStatsClock(c clock.Clock) *UpstreamStats {
	s := &UpstreamStats{clock: c, base: c.Now()}
	s.rings.Store(&map[string]*upstreamRing{})
	return s
}

// second is the current second since the stats were made.
func (s *UpstreamStats) second() int64 {
	return int64(s.clock.Since(s.base) / time.Second)
}

// Observe counts one request to upstream, finished now: its status and
// latency. An empty upstream (the request reached none) is ignored. Safe
// for concurrent use; nil-safe; it does not allocate for an upstream seen
// in the last minute.
func (s *UpstreamStats) Observe(upstream string, status int, latency time.Duration) {
	if s == nil || upstream == "" {
		return
	}
	s.observe(s.second(), upstream, status, latency)
}

// ObserveAt is Observe for a request that finished at end, a time read from
// the stats' clock (for the wall clock: one carrying a monotonic reading,
// such as start.Add(latency) after latency = time.Since(start)). It spares
// the caller that already knows the time a second clock read, which costs
// more than the rest of Observe.
func (s *UpstreamStats) ObserveAt(end time.Time, upstream string, status int, latency time.Duration) {
	if s == nil || upstream == "" {
		return
	}
	s.observe(int64(end.Sub(s.base)/time.Second), upstream, status, latency)
}

func (s *UpstreamStats) observe(sec int64, upstream string, status int, latency time.Duration) {
	if sec < 0 {
		return
	}
	r := (*s.rings.Load())[upstream]
	if r == nil {
		r = s.add(upstream, sec)
	}
	b := &r.buckets[sec%statsSeconds]
	if b.sec.Load() != sec && !r.start(b, sec) {
		return
	}
	b.requests.Add(1)
	if status >= 500 {
		b.errors.Add(1)
	}
	b.hist[latencyBucket(latency)].Add(1)
}

// start clears b for sec; false when b already holds a later second (the
// caller's observation is more than a ring old and is not counted).
func (r *upstreamRing) start(b *secondBucket, sec int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := b.sec.Load()
	if cur == sec {
		return true // another observer cleared it
	}
	if cur > sec {
		return false
	}
	b.requests.Store(0)
	b.errors.Store(0)
	for i := range b.hist {
		b.hist[i].Store(0)
	}
	b.sec.Store(sec)
	if sec > r.last.Load() {
		r.last.Store(sec)
	}
	return true
}

// add returns the ring of a new upstream. Rings idle for a whole ring are
// dropped on the way, so upstreams removed from the config do not stay.
func (s *UpstreamStats) add(upstream string, sec int64) *upstreamRing {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.rings.Load()
	if r := old[upstream]; r != nil {
		return r
	}
	r := &upstreamRing{}
	// Every bucket starts at second 0 (empty); the first observation
	// clears the current one.
	r.last.Store(sec)
	next := make(map[string]*upstreamRing, len(old)+1)
	for name, o := range old {
		if sec-o.last.Load() < statsSeconds {
			next[name] = o
		}
	}
	next[upstream] = r
	s.rings.Store(&next)
	return r
}

// Snapshot returns upstream's traffic over the current second and the
// whole seconds before it that make up window (at least one second, at most
// MaxStatsWindow). False when the upstream had no request for over a minute
// or never.
func (s *UpstreamStats) Snapshot(upstream string, window time.Duration) (UpstreamSnapshot, bool) {
	if s == nil {
		return UpstreamSnapshot{}, false
	}
	r := (*s.rings.Load())[upstream]
	if r == nil {
		return UpstreamSnapshot{}, false
	}
	n := int64((window + time.Second - 1) / time.Second)
	n = min(max(n, 1), statsSeconds-1)
	out := UpstreamSnapshot{Window: time.Duration(n) * time.Second}
	hist := &out.Hist
	now := s.second()
	for sec := now; sec > now-n && sec >= 0; sec-- {
		b := &r.buckets[sec%statsSeconds]
		if b.sec.Load() != sec {
			continue // no request in that second
		}
		out.Requests += b.requests.Load()
		out.Errors += b.errors.Load()
		for i := range hist {
			hist[i] += uint64(b.hist[i].Load())
		}
	}
	out.P50 = hist.Quantile(0.50)
	out.P99 = hist.Quantile(0.99)
	return out, true
}

// Upstreams names the upstreams with a request in the last minute or so
// (those with a ring), sorted.
func (s *UpstreamStats) Upstreams() []string {
	if s == nil {
		return nil
	}
	m := *s.rings.Load()
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Clock is the clock the stats count their seconds on.
func (s *UpstreamStats) Clock() clock.Clock { return s.clock }
