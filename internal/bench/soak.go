package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/meshtest"
)

// Suite soak (issue 16; `make soak`, not part of `make bench`'s default
// run): the faults suite's mesh (an edge, two instances behind sidecars,
// discovery through the cluster) under GETs at a fixed rate
// (BENCH_SOAK_RATE, default 300 a second) for BENCH_SOAK_DURATION (default
// 10m), with, every BENCH_SOAK_EVERY (default 1m): a reload of the edge, a
// rotation of every SVID, and one member leaving and joining again (the
// second sidecar restarted: SIGTERM, then started). Every soakSample the
// edge's and the first sidecar's (the processes that live through the
// run) goroutines, open fds, RSS and heap in use are read from their
// /metrics. After the first fifth of the run (warm-up), each series' least
// squares line must not grow more over the rest of the run than its
// tolerance (soakTolerances); a failed request fails the soak too.
// Meanwhile a cluster of its own in this process runs on the faults
// suite's lossy links (5 % loss, 20 ms jitter; detect.go) for the whole
// run: a healthy member declared dead fails the soak (false_dead).

const (
	soakDefaultRate     = 300
	soakDefaultDuration = 10 * time.Minute
	soakDefaultEvery    = time.Minute
	soakSample          = 5 * time.Second
)

// soakSeries are the gauges sampled, by their Prometheus names.
var soakSeries = []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes"}

// soakTolerance is how much a series may grow over the measured part of
// the run: the larger of abs (in its unit) and rel × its mean.
type soakTolerance struct {
	abs, rel float64
}

var soakTolerances = map[string]soakTolerance{
	"go_goroutines":                 {abs: 20, rel: 0.10},
	"process_open_fds":              {abs: 20, rel: 0.10},
	"process_resident_memory_bytes": {abs: 8 << 20, rel: 0.20},
	"go_memstats_heap_inuse_bytes":  {abs: 8 << 20, rel: 0.25},
}

type soakOpts struct {
	rate  int
	d     time.Duration
	every time.Duration
}

func soakOptsFromEnv(getenv func(string) string) (soakOpts, error) {
	o := soakOpts{rate: soakDefaultRate, d: soakDefaultDuration, every: soakDefaultEvery}
	if v := getenv("BENCH_SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("BENCH_SOAK_RATE=%q: want a positive request rate", v)
		}
		o.rate = n
	}
	for _, e := range []struct {
		name string
		dst  *time.Duration
		min  time.Duration
	}{{"BENCH_SOAK_DURATION", &o.d, 30 * time.Second}, {"BENCH_SOAK_EVERY", &o.every, 5 * time.Second}} {
		if v := getenv(e.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < e.min {
				return o, fmt.Errorf("%s=%q: want a duration of at least %s", e.name, v, e.min)
			}
			*e.dst = d
		}
	}
	return o, nil
}

// soakProc is one process sampled through the run.
type soakProc struct {
	name    string
	metrics string // its /metrics URL
	at      []float64
	values  map[string][]float64 // series → samples (NaN-free: a failed scrape is skipped)
}

type soakRun struct {
	problemLog
	o       soakOpts
	load    *loadOutcome
	events  int
	procs   []*soakProc
	results []soakResult

	link      meshtest.Link
	lossy     time.Duration // how long the lossy-link cluster ran
	falseDead int           // members it declared dead (target 0)
}

// soakResult is one series' verdict.
type soakResult struct {
	Proc, Series string
	First, Last  float64 // the fitted line at the start and the end of the measured part
	Growth, Max  float64 // its growth, and the tolerance
	Samples      int
}

func runSoak(ctx context.Context, env *Env) (json.RawMessage, error) {
	o, err := soakOptsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	m, err := startFaultsMesh(ctx, env)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	r := &soakRun{problemLog: problemLog{scope: "soak"}, o: o, procs: []*soakProc{
		{name: "edge", metrics: m.admin + "/metrics", values: map[string][]float64{}},
		{name: "sidecar-0", metrics: m.scAdmin[0] + "/metrics", values: map[string][]float64{}},
	}}
	logf("soak: %d req/s for %s through the edge and sidecars; every %s a reload, an SVID rotation and a member leaving and joining again", o.rate, durArg(o.d), durArg(o.every))
	// Meanwhile, the faults suite's lossy links for the whole run: a
	// cluster of its own in this process (detect.go).
	tune, err := detectTimings(os.Getenv)
	if err != nil {
		return nil, err
	}
	link, err := lossyLinkFrom(os.Getenv)
	if err != nil {
		return nil, err
	}
	lossy, err := startLossy(ctx, link, tune, nil)
	if err != nil {
		return nil, fmt.Errorf("lossy links: %w", err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() { r.sample(start, stop) })
	var eventErr error
	wg.Go(func() { r.events, eventErr = m.soakEvents(o.every, stop) })
	r.load = fixedRateGets(ctx, m.public, o.rate, o.d)
	close(stop)
	wg.Wait()
	r.link = link
	r.lossy, r.falseDead, _ = lossy.stopLossy()
	if r.falseDead > 0 {
		r.problem("lossy links: %d healthy members declared dead (target 0)", r.falseDead)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if eventErr != nil {
		r.problem("events: %v", eventErr)
	}
	if n := r.load.failedN(); n > 0 {
		r.problem("%d of %d requests failed%s", n, r.load.sent, r.load.describe())
	}
	r.judge()
	return r.report("soak", func(w io.Writer) { printSoak(w, r) }, soakJSON(r))
}

// soakEvents makes the minute's changes until stop: a reload, a rotation,
// and sidecar 1 leaving and joining again. It returns how many rounds ran.
func (m *faultsMesh) soakEvents(every time.Duration, stop <-chan struct{}) (int, error) {
	for n := 1; ; n++ {
		select {
		case <-time.After(every):
		case <-stop:
			return n - 1, nil
		}
		if err := m.reload(n); err != nil {
			return n, fmt.Errorf("reload: %v", err)
		}
		if err := m.rotate(sidecarSVIDTTL); err != nil {
			return n, fmt.Errorf("rotation: %v", err)
		}
		if err := m.restartSidecar(1, stop); err != nil {
			select {
			case <-stop: // the run ended while it rejoined
				return n, nil
			default:
			}
			return n, fmt.Errorf("leave and rejoin: %v", err)
		}
	}
}

// sample reads every process's series every soakSample until stop.
func (r *soakRun) sample(start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(soakSample)
	defer t.Stop()
	for {
		for _, p := range r.procs {
			vals, err := scrapeMetrics(p.metrics)
			if err != nil || !hasAll(vals, soakSeries) {
				continue
			}
			p.at = append(p.at, time.Since(start).Minutes())
			for _, s := range soakSeries {
				p.values[s] = append(p.values[s], vals[s])
			}
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// hasAll: every one of names is in series.
func hasAll(series map[string]float64, names []string) bool {
	for _, n := range names {
		if _, ok := series[n]; !ok {
			return false
		}
	}
	return true
}

// judge fits each series after the warm-up and compares its growth with
// the tolerance.
func (r *soakRun) judge() {
	warm := r.o.d.Minutes() / 5
	for _, p := range r.procs {
		var xs []float64
		first := len(p.at)
		for i, x := range p.at {
			if x >= warm {
				first = i
				break
			}
		}
		xs = p.at[first:]
		if len(xs) < 4 {
			r.problem("%s: %d samples after the warm-up, too few to judge", p.name, len(xs))
			continue
		}
		for _, s := range soakSeries {
			ys := p.values[s][first:]
			slope, icept := leastSquares(xs, ys)
			res := soakResult{Proc: p.name, Series: s, Samples: len(xs),
				First: icept + slope*xs[0], Last: icept + slope*xs[len(xs)-1]}
			res.Growth = res.Last - res.First
			tol := soakTolerances[s]
			res.Max = max(tol.abs, tol.rel*mean(ys))
			if res.Growth > res.Max {
				r.problem("%s: %s grew %s over the run (%s → %s; tolerance %s)", p.name, s,
					soakUnit(s, res.Growth), soakUnit(s, res.First), soakUnit(s, res.Last), soakUnit(s, res.Max))
			}
			r.results = append(r.results, res)
		}
	}
}

// leastSquares fits y = slope·x + intercept.
func leastSquares(xs, ys []float64) (slope, intercept float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / d
	return slope, (sy - slope*sx) / n
}

func soakUnit(series string, v float64) string {
	if strings.HasSuffix(series, "_bytes") {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.1f", v)
}

func soakJSON(r *soakRun) map[string]any {
	out := map[string]any{"rate": r.o.rate, "duration_s": r.o.d.Seconds(), "every_s": r.o.every.Seconds(), "event_rounds": r.events}
	if r.load != nil {
		out["requests"], out["failed"] = r.load.sent, r.load.failedN()
	}
	if r.lossy > 0 {
		out["false_dead"], out["lossy_s"] = r.falseDead, round(r.lossy.Seconds(), 0)
	}
	for _, res := range r.results {
		key := strings.ReplaceAll(res.Proc, "-", "_") + "_" + res.Series
		out[key+"_growth"] = round(res.Growth, 1)
		out[key+"_tolerance"] = round(res.Max, 1)
	}
	if r.failed() {
		out["error"] = r.summary()
	}
	return out
}

func printSoak(w io.Writer, r *soakRun) {
	if r.load != nil {
		fmt.Fprintf(w, "soak: %d req/s for %s, %d of %d failed; %d rounds of reload + rotation + leave/rejoin\n",
			r.o.rate, durArg(r.o.d), r.load.failedN(), r.load.sent, r.events)
	}
	if r.lossy > 0 {
		fmt.Fprintf(w, "lossy links (%d nodes, %.0f %% loss, %s jitter) for %s: %d healthy members declared dead\n",
			detectNodes, r.link.Loss*100, r.link.Jitter, durArg(r.lossy.Round(time.Second)), r.falseDead)
	}
	fmt.Fprintf(w, "%-10s %-30s %12s %12s %12s %12s  %s\n", "process", "series", "start", "end", "growth", "tolerance", "")
	for _, res := range r.results {
		verdict := "flat"
		if res.Growth > res.Max {
			verdict = "GROWS"
		}
		fmt.Fprintf(w, "%-10s %-30s %12s %12s %12s %12s  %s\n", res.Proc, res.Series,
			soakUnit(res.Series, res.First), soakUnit(res.Series, res.Last), soakUnit(res.Series, res.Growth), soakUnit(res.Series, res.Max), verdict)
	}
}
