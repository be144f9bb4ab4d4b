package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLeastSquares(t *testing.T) {
	slope, icept := leastSquares([]float64{0, 1, 2, 3}, []float64{10, 12, 14, 16})
	if math.Abs(slope-2) > 1e-9 || math.Abs(icept-10) > 1e-9 {
		t.Fatalf("fit %v·x + %v, want 2·x + 10", slope, icept)
	}
	if slope, icept := leastSquares([]float64{1, 1}, []float64{3, 5}); slope != 0 || icept != 4 {
		t.Fatalf("one x: %v·x + %v", slope, icept)
	}
}

// The soak's series are read with the suites' exposition parser: the
// unlabelled gauges by name.
func TestSoakSeriesParsed(t *testing.T) {
	page := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_gc_duration_seconds{quantile="0"} 1e-05
process_open_fds 17
process_resident_memory_bytes 3.3554432e+07
`
	got, err := parseMetrics(strings.NewReader(page))
	if err != nil || got["go_goroutines"] != 42 || got["process_open_fds"] != 17 || got["process_resident_memory_bytes"] != 32<<20 || hasAll(got, soakSeries) {
		t.Fatalf("parseMetrics = %v, %v (the heap series is missing)", got, err)
	}
	got["go_memstats_heap_inuse_bytes"] = 1
	if !hasAll(got, soakSeries) {
		t.Fatalf("hasAll(%v)", got)
	}
}

// A series that grows past its tolerance after the warm-up fails the soak;
// one that grows only during the warm-up, or stays within it, does not.
func TestSoakJudge(t *testing.T) {
	r := &soakRun{problemLog: problemLog{scope: "soak"}, o: soakOpts{d: 10 * time.Minute}}
	p := &soakProc{name: "edge", values: map[string][]float64{}}
	for i := range 11 { // a sample a minute
		p.at = append(p.at, float64(i))
		p.values["go_goroutines"] = append(p.values["go_goroutines"], float64(100+10*i)) // +80 after the warm-up
		p.values["process_open_fds"] = append(p.values["process_open_fds"], float64(min(30, 10+10*i)))
		p.values["process_resident_memory_bytes"] = append(p.values["process_resident_memory_bytes"], 30<<20)
		p.values["go_memstats_heap_inuse_bytes"] = append(p.values["go_memstats_heap_inuse_bytes"], float64(8<<20+i*(512<<10)))
	}
	r.procs = []*soakProc{p}
	r.judge()
	if len(r.problems) != 1 || !strings.Contains(r.problems[0], "go_goroutines grew") {
		t.Fatalf("problems %q, want the goroutines alone", r.problems)
	}
	if i := slices.IndexFunc(r.results, func(x soakResult) bool { return x.Series == "go_memstats_heap_inuse_bytes" }); i < 0 || r.results[i].Growth > r.results[i].Max {
		t.Fatalf("heap: %+v", r.results)
	}
}

func TestSoakIsExplicit(t *testing.T) {
	all, err := selectSuites(suites, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == "soak" {
			t.Fatal("make bench runs the soak")
		}
	}
	only, err := selectSuites(suites, []string{"soak"})
	if err != nil || len(only) != 1 || only[0].Name != "soak" {
		t.Fatalf("BENCH_ONLY=soak: %v, %v", only, err)
	}
}
