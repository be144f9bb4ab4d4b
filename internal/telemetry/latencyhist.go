package telemetry

import (
	"math"
	"time"
)

// LatencyBuckets is the number of buckets of a LatencyHistogram.
const LatencyBuckets = latencyBuckets

// LatencyHistogram counts latencies in UpstreamStats' log-scale buckets.
// Unlike a percentile, it adds up: the cluster's p99 of an upstream is the
// p99 of the sum of every node's histogram, not a mean of their p99s.
type LatencyHistogram [latencyBuckets]uint64

// Add adds o's counts to h.
func (h *LatencyHistogram) Add(o *LatencyHistogram) {
	for i, c := range o {
		h[i] += c
	}
}

// Total is the number of latencies counted.
func (h *LatencyHistogram) Total() uint64 {
	var total uint64
	for _, c := range h {
		total += c
	}
	return total
}

// Quantile estimates the q-quantile of the histogram, interpolating
// linearly inside the bucket that holds it; 0 when it is empty.
func (h *LatencyHistogram) Quantile(q float64) time.Duration {
	total := h.Total()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total))) // 1-based
	rank = min(max(rank, 1), total)
	var below uint64
	for i, c := range h {
		if below+c < rank {
			below += c
			continue
		}
		lo := latencyLow[i]
		if i == latencyBuckets-1 {
			return time.Duration(lo) // unbounded above: its least value
		}
		hi := latencyLow[i+1]
		frac := (float64(rank-below) - 0.5) / float64(c)
		return time.Duration(float64(lo) + frac*float64(hi-lo))
	}
	return time.Duration(latencyLow[latencyBuckets-1])
}

// Add merges o, another node's snapshot of the same upstream, into s: the
// counts and histograms add up, the percentiles are those of the sum, and
// the window is the longer of the two.
func (s *UpstreamSnapshot) Add(o UpstreamSnapshot) {
	s.Window = max(s.Window, o.Window)
	s.Requests += o.Requests
	s.Errors += o.Errors
	s.Hist.Add(&o.Hist)
	s.P50 = s.Hist.Quantile(0.50)
	s.P99 = s.Hist.Quantile(0.99)
}
