package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/tracetest"
)

// The tracing suite: what tracing costs the edge. Three edges with the
// same routes to the same 1 KiB backend: one without tracing, one with
// tracing at 100 % sampling, exporting over OTLP/gRPC to a collector in
// this process that takes every export and discards it undecoded (so the
// export's cost to the edge is real and the collector's is not counted),
// and one with tracing at ratio 0 (context carried on, no spans: the cost
// at the low ratios of production). Edges and backend on core 0
// (GOMAXPROCS=1), wrk and this process (the collector) on core 1. Each
// round measures the traced and the unsampled edge in a pair with the
// untraced one, alternating in slices (runPairs); req/s from wrk -t1 -c50.
//
// BENCH_TRACING_PROFILE=dir: after the rounds, a CPU profile of each edge
// under the same load is written to dir/<edge>.pprof (profileEdges), for
// `go tool pprof -top -diff_base dir/edge-untraced.pprof bin/edge
// dir/edge-traced.pprof`.

// tracingRatioTarget is the lowest acceptable traced/untraced req/s.
const tracingRatioTarget = 0.9

type tracingRun struct {
	off, on, unsampled *loadEdge
	exported, dropped  float64
	collectorBytes     int64
	collectorExports   int64
	problemLog
}

func runTracing(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	if err := ensureApt(ctx, map[string]string{"wrk": "wrk"}); err != nil {
		return nil, err
	}
	bin := filepath.Join(env.Bin, "edge")
	if o.Edge != "" {
		bin = o.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", bin, err)
	}
	// The collector runs in this process: keep it off the servers' core.
	if env.Pinned {
		if err := pinSelf(loadCore); err != nil {
			fmt.Fprintf(os.Stderr, "bench: warning: tracing: could not pin the collector to core %d: %v\n", loadCore, err)
		} else {
			defer unpinSelf()
		}
	}
	col, err := tracetest.StartDiscardCollector()
	if err != nil {
		return nil, fmt.Errorf("collector: %v", err)
	}
	defer col.Stop()

	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	backendAddr := addr(0)
	var started []*Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()
	backend, err := env.startBackend(ctx, "tracing-backend", backendAddr)
	if err != nil {
		return nil, err
	}
	started = append(started, backend)

	r := &tracingRun{problemLog: problemLog{scope: "tracing"}}
	startOne := func(name, listen, admin, tracing string) (*loadEdge, error) {
		p, err := env.startEdge(ctx, name, bin, tracingEdgeConfig(listen, admin, backendAddr, tracing), "http://"+listen+"/")
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		return &loadEdge{name: name, url: "http://" + listen + "/", adm: "http://" + admin, proc: p}, nil
	}
	if r.off, err = startOne("edge-untraced", addr(1), addr(2), ""); err != nil {
		return nil, err
	}
	tracing := fmt.Sprintf("tracing: {endpoint: %q, insecure: true, sampling: {ratio: 1}}\n", col.Addr())
	if r.on, err = startOne("edge-traced", addr(3), addr(4), tracing); err != nil {
		return nil, err
	}
	unsampled := fmt.Sprintf("tracing: {endpoint: %q, insecure: true, sampling: {ratio: 0}}\n", col.Addr())
	if r.unsampled, err = startOne("edge-unsampled", addr(5), addr(6), unsampled); err != nil {
		return nil, err
	}
	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("edges and backend on core %d, wrk and the collector on core %d", serverCore, loadCore)
	}
	rounds := pairedRounds(o.Rounds)
	logf("tracing: %d rounds of 2 pairs (untraced, traced or unsampled); wrk -t1 -c50 -d%s per run; warm-up %s; %s", rounds, durArg(o.Duration), o.Warmup, pin)
	env.runPairs(ctx, rounds, r.off, []*loadEdge{r.on, r.unsampled}, &r.problemLog)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dir := os.Getenv("BENCH_TRACING_PROFILE"); dir != "" {
		env.profileEdges(ctx, []*loadEdge{r.off, r.on, r.unsampled}, dir)
	}
	for _, t := range []*loadEdge{r.off, r.on, r.unsampled} {
		if t.failed != nil {
			r.problem("%s: %v", t.name, firstLines(t.failed.Error()))
		}
	}
	if m, err := scrapeMetrics(r.on.adm + "/metrics"); err != nil {
		r.problem("traced edge's metrics: %v", err)
	} else {
		r.exported = m["meshgate_tracing_spans_exported_total"]
		for k, v := range m {
			if strings.HasPrefix(k, "meshgate_tracing_spans_dropped_total") {
				r.dropped += v
			}
		}
		if r.exported == 0 {
			r.problem("the traced edge exported no spans")
		}
	}
	r.collectorBytes, r.collectorExports = col.Bytes(), col.Exports()

	return r.report("tracing", func(w io.Writer) { printTracing(w, env, r) }, tracingJSON(r))
}

func tracingEdgeConfig(listen, admin, backend, tracing string) string {
	return fmt.Sprintf(`# meshgate edge config of the tracing benchmark (written by internal/bench).
%slog:
  access: "off"
  level: warn
admin:
  address: %s
  pprof: true
listeners:
  - name: http
    address: %s
routes:
  - name: all
    match:
      path: {prefix: /}
    upstream: backend
upstreams:
  - name: backend
    protocol: http1
    endpoints:
      - address: %s
`, tracing, admin, listen, backend)
}

// pinSelf moves every thread of this process to one core.
func pinSelf(core int) error {
	return exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(core), strconv.Itoa(os.Getpid())).Run()
}

func unpinSelf() {
	_ = exec.Command("taskset", "-a", "-p", "-c", "0-"+strconv.Itoa(runtime.NumCPU()-1), strconv.Itoa(os.Getpid())).Run()
}

// scrapeMetrics reads a Prometheus text exposition: series → value.
func scrapeMetrics(url string) (map[string]float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// parseMetrics reads the series of a Prometheus text exposition (a series
// is the name with its labels as written, `name{a="x"}`) and their values.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// tracingResult is the suite's JSON fragment.
type tracingResult struct {
	RPSOn    *float64 `json:"rps_on,omitempty"`
	RPSOff   *float64 `json:"rps_off,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Target   float64  `json:"target"`
	CPUUSOn  *float64 `json:"cpu_us_per_req_on,omitempty"`
	CPUUSOff *float64 `json:"cpu_us_per_req_off,omitempty"`
	// Unsampled: tracing on, nothing sampled (ratio 0): the context is
	// carried on, no span recorded — the cost at low sampling ratios.
	RPSUnsampled   *float64 `json:"rps_unsampled,omitempty"`
	RatioUnsampled *float64 `json:"ratio_unsampled,omitempty"`
	Rounds         int      `json:"rounds"`
	SpansExported  float64  `json:"spans_exported"`
	SpansDropped   float64  `json:"spans_dropped"`
	Error          string   `json:"error,omitempty"`
}

func tracingJSON(r *tracingRun) tracingResult {
	val := func(xs []float64, digits int) *float64 {
		if len(xs) == 0 {
			return nil
		}
		v := round(median(xs), digits)
		return &v
	}
	res := tracingResult{
		RPSOn: val(r.on.rps, 1), RPSOff: val(r.off.rps, 1), Target: tracingRatioTarget,
		CPUUSOn: val(r.on.cpuUS, 2), CPUUSOff: val(r.off.cpuUS, 2),
		Rounds: len(r.on.ratios), SpansExported: r.exported, SpansDropped: r.dropped,
		Error: r.summary(),
	}
	if x, ok := r.on.ratio(); ok {
		v := round(x, 3)
		res.Ratio = &v
	}
	res.RPSUnsampled = val(r.unsampled.rps, 1)
	if x, ok := r.unsampled.ratio(); ok {
		v := round(x, 3)
		res.RatioUnsampled = &v
	}
	return res
}

func printTracing(w io.Writer, env *Env, r *tracingRun) {
	fmt.Fprintf(w, "tracing: medians of %d round(s); req/s from wrk -t1 -c50 -d%s; traced = every request sampled, exported over OTLP/gRPC; unsampled = tracing on at ratio 0\n",
		pairedRounds(env.Opts.Rounds), durArg(env.Opts.Duration))
	const row = "%-14s %9s %10s\n"
	fmt.Fprintf(w, row, "edge", "req/s", "CPU µs/req")
	num := func(xs []float64, format string) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format, median(xs))
	}
	for _, t := range []*loadEdge{r.off, r.on, r.unsampled} {
		fmt.Fprintf(w, row, t.name, num(t.rps, "%.0f"), num(t.cpuUS, "%.1f"))
	}
	verdict, ratio := "-", "-"
	if x, ok := r.on.ratio(); ok {
		ratio = fmt.Sprintf("%.3f", x)
		verdict = "PASS"
		if x < tracingRatioTarget {
			verdict = "MISS"
		}
	}
	fmt.Fprintf(w, "ratio traced/untraced req/s (median of the rounds' ratios): %s (target ≥ %g) %s\n", ratio, tracingRatioTarget, verdict)
	if x, ok := r.unsampled.ratio(); ok {
		fmt.Fprintf(w, "ratio unsampled/untraced req/s (tracing on, ratio 0: context carried on, no spans): %.3f\n", x)
	}
	fmt.Fprintf(w, "spans exported %.0f, dropped %.0f; the collector took %d exports, %.1f MiB\n",
		r.exported, r.dropped, r.collectorExports, float64(r.collectorBytes)/(1<<20))
}
