package breaker

import (
	"testing"

	"github.com/sony/gobreaker/v2"
)

// Benchmarks use the wall clock, as production does. The gobreaker ones are
// the baseline: the same closed-path work done directly.

func benchBreaker(b *testing.B) *Breaker {
	r, err := New(Options{Node: "n0", Send: func(string, []byte) {}})
	if err != nil {
		b.Fatal(err)
	}
	return r.Breaker(ep, Settings{})
}

func BenchmarkAllowClosed(b *testing.B) {
	br := benchBreaker(b)
	b.ReportAllocs()
	for b.Loop() {
		tk, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		tk.Done(true)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	br := benchBreaker(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			tk.Done(true)
		}
	})
}

// BenchmarkAllowParallelEndpoints: requests spread over 16 endpoints, as a
// proxy's traffic is; each breaker's lock sees a share of the contention.
func BenchmarkAllowParallelEndpoints(b *testing.B) {
	r, err := New(Options{Node: "n0"})
	if err != nil {
		b.Fatal(err)
	}
	var brs [16]*Breaker
	for i := range brs {
		brs[i] = r.Breaker(string(rune('a'+i))+":80", Settings{})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			tk, err := brs[i%len(brs)].Allow()
			if err != nil {
				b.Error(err)
				return
			}
			tk.Done(true)
		}
	})
}

func BenchmarkAllowOpen(b *testing.B) {
	br := benchBreaker(b)
	for range defaultConsecutive {
		tk, _ := br.Allow()
		tk.Done(false)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(); err == nil {
			b.Fatal("open breaker allowed")
		}
	}
}

// BenchmarkLookup is Registry.Breaker on the fast path (same settings).
func BenchmarkLookup(b *testing.B) {
	r, err := New(Options{Node: "n0"})
	if err != nil {
		b.Fatal(err)
	}
	r.Breaker(ep, testSettings)
	b.ReportAllocs()
	for b.Loop() {
		r.Breaker(ep, testSettings)
	}
}

func BenchmarkGobreakerTwoStep(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{})
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

func BenchmarkGobreakerTwoStepParallel(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, err := cb.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			done(nil)
		}
	})
}
