package dataplane

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// target is a split target that counts its requests.
type target struct {
	mu sync.Mutex
	n  int
}

func (t *target) ServeHTTP(http.ResponseWriter, *http.Request) {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func seqString(seq []uint8) string {
	var b strings.Builder
	for _, i := range seq {
		b.WriteByte('a' + i)
	}
	return b.String()
}

func TestSmoothSequence(t *testing.T) {
	cases := []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "aabacaa"}, // nginx's own example
		{[]int{90, 10}, "aaaaabaaaa"},
		{[]int{50, 50}, "ab"},
		{[]int{1, 1, 1}, "abc"},
		{[]int{1, 99}, "b" + strings.Repeat("b", 48) + "a" + strings.Repeat("b", 50)},
		{[]int{100}, "a"},
		{[]int{2, 3}, "babab"},
	}
	for _, tc := range cases {
		if got := seqString(smoothSequence(tc.weights)); got != tc.want {
			t.Errorf("weights %v: sequence %q, want %q", tc.weights, got, tc.want)
		}
	}
}

// Over one period every target gets exactly its weight, and at any prefix
// of the sequence a target is within one request of its share.
func TestSmoothSequenceShares(t *testing.T) {
	for _, ws := range [][]int{{90, 10}, {1, 99}, {33, 33, 34}, {7, 1, 100, 13, 2, 55, 89, 34, 21, 8}, {100, 100, 100, 100, 100, 100, 100, 100, 100, 99}} {
		seq := smoothSequence(ws)
		g, total := 0, 0
		for _, w := range ws {
			g = gcd(g, w)
			total += w
		}
		if len(seq) != total/g {
			t.Fatalf("weights %v: period %d, want %d", ws, len(seq), total/g)
		}
		counts := make([]int, len(ws))
		for n, i := range seq {
			counts[i]++
			for j, w := range ws {
				ideal := float64(n+1) * float64(w) / float64(total)
				if d := float64(counts[j]) - ideal; d > float64(len(ws)) || d < -float64(len(ws)) {
					t.Fatalf("weights %v: after %d picks target %d has %d, ideal %.1f", ws, n+1, j, counts[j], ideal)
				}
			}
		}
		for j, w := range ws {
			if counts[j] != w/g {
				t.Errorf("weights %v: target %d got %d in a period, want %d", ws, j, counts[j], w/g)
			}
		}
	}
}

// 10,000 requests at 90/10, sent from many goroutines, from any starting
// position: exactly 9,000 and 1,000.
func TestSplitterExactUnderConcurrency(t *testing.T) {
	for _, start := range []uint64{0, 3, 1<<64 - 5} {
		a, b := &target{}, &target{}
		s := newSplitter([]http.Handler{a, b}, []int{90, 10}, start)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 10_000 / 8 {
					s.ServeHTTP(nil, nil)
				}
			})
		}
		wg.Wait()
		if a.n != 9000 || b.n != 1000 {
			t.Errorf("start %d: %d/%d, want 9000/1000", start, a.n, b.n)
		}
	}
}

func TestSplitterPickDoesNotAllocate(t *testing.T) {
	s := newSplitter([]http.Handler{http.NotFoundHandler(), http.NotFoundHandler()}, []int{90, 10}, 0)
	if n := testing.AllocsPerRun(1000, func() { _ = s.pick() }); n != 0 {
		t.Fatalf("pick allocates %v times", n)
	}
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	s = newSplitter([]http.Handler{noop, noop, noop}, []int{5, 1, 1}, 0)
	w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
	if n := testing.AllocsPerRun(1000, func() { s.ServeHTTP(w, r) }); n != 0 {
		t.Fatalf("ServeHTTP allocates %v times", n)
	}
}

func BenchmarkSplitPick(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	s := newSplitter([]http.Handler{noop, noop}, []int{90, 10}, 0)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.pick()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = s.pick()
			}
		})
	})
}
