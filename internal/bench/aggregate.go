package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The aggregate suite: what a composite route (routes[].aggregate) costs
// over calling its parts. Three backends, each its own process of the bench
// backend (-json -delay 5ms: 1 KiB of JSON after 5 ms), and one edge with a
// composite route /page whose three calls go to them in parallel, and a
// plain route to each part (/a, /b, /c). At a fixed rate of iterations
// (BENCH_AGGREGATE_RATE, default 200 a second), for BENCH_RATE_DURATION
// after a warm-up, each round measures:
//
//   - direct: each iteration calls the three backends in parallel without
//     the edge, and each call's latency is kept: the slowest part's p50 is
//     what overhead_p50_ms is counted from (the iterations' own p50,
//     p50_ms_direct, the slowest of three calls each time, is a little
//     above it: the floor of the composite's);
//   - composite: each iteration is one GET /page through the edge;
//   - sequential: each iteration is GET /a, then /b, then /c through the
//     edge, its latency their sum: what the client pays without a composite.
//
// The client is this process (pinned to core 1 while it measures; the edge
// and the backends on core 0, GOMAXPROCS=1): open loop, so an iteration
// starts on schedule whether or not earlier ones have ended, each timed
// from its own start, as vegeta does. Before measuring, the composite must
// answer 200 with each backend's document under its call's name, and each
// part route and backend its own document; a run with a failed iteration
// (a transport error, a status other than 200) does not count and fails
// the suite. Targets: composite p50 ≤ 6 ms (the parts' 5 ms of work, 1 ms
// for the network and the edge), p99 ≤ 2 × p50; overhead_p50_ms is the
// composite's p50 less the slowest part's direct p50. A "5 ms" backend
// answers in 5.7–6.3 ms on a shared VM (timer slack), so the 6 ms is also
// judged as what it stands for: overhead_p50_ms ≤ 1 ms over the slowest
// part measured in the same run.

const (
	aggregateDefaultRate = 200
	aggregatePartDelay   = 5 * time.Millisecond
	// Targets of the issue.
	aggregateTargetP50MS      = 6.0
	aggregateTargetP99OverP50 = 2.0
	aggregateTargetOverheadMS = 1.0
	// aggregateTimeout bounds one request of the client.
	aggregateTimeout = 10 * time.Second
)

// aggregateParts are the composite's calls, their routes (/a …) and
// upstreams (part-a …).
var aggregateParts = []string{"a", "b", "c"}

// agTarget is one way of getting the three parts, and what it measured.
type agTarget struct {
	name       string // direct, composite, sequential
	urls       []string
	sequential bool    // the URLs one after another, else in parallel
	procs      []*Proc // on its path
	// check judges the answer of urls[i] before the measurement.
	check func(i int, contentType string, body []byte) error

	p50, p99, rps []float64   // per counted round: ms, ms, iterations/s
	partP50       [][]float64 // per URL, per counted round (ms)
	failed        error       // fatal: no longer measured
}

type aggregateRun struct {
	rate                          int
	direct, composite, sequential *agTarget
	problemLog
}

func (r *aggregateRun) targets() []*agTarget {
	return []*agTarget{r.direct, r.composite, r.sequential}
}

// envInt reads a positive integer from the environment (def when unset).
func envInt(getenv func(string) string, key string, def int) (int, error) {
	v := getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", key, v)
	}
	return n, nil
}

func runAggregate(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	rate, err := envInt(os.Getenv, "BENCH_AGGREGATE_RATE", aggregateDefaultRate)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(env.Bin, "edge")
	if o.Edge != "" {
		bin = o.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", bin, err)
	}
	ports, err := freePorts(len(aggregateParts) + 2)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	var started []*Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()

	partAddrs := make([]string, len(aggregateParts))
	for i, part := range aggregateParts {
		partAddrs[i] = addr(i)
		p, err := env.startBackend(ctx, "aggregate-"+part, partAddrs[i], "-json", "-delay", aggregatePartDelay.String())
		if err != nil {
			return nil, err
		}
		started = append(started, p)
	}
	listen, admin := addr(len(aggregateParts)), addr(len(aggregateParts)+1)
	edge, err := env.startEdge(ctx, "aggregate-edge", bin, aggregateEdgeConfig(listen, admin, partAddrs), "http://"+admin+"/readyz")
	if err != nil {
		return nil, err
	}
	started = append(started, edge)

	r := &aggregateRun{rate: rate, problemLog: problemLog{scope: "aggregate"}}
	r.direct, r.composite, r.sequential = aggregateTargets("http://"+listen, partAddrs, started[:len(partAddrs)], edge)
	client := aggregateClient()
	defer client.CloseIdleConnections()
	for _, t := range r.targets() {
		if err := checkAggregate(ctx, client, t); err != nil {
			t.failed = fmt.Errorf("answer check: %v", err)
			tail := "" // the edge logs why at level warn
			if t != r.direct {
				tail = indent(edge.LogTail(10))
			}
			fmt.Fprintf(os.Stderr, "bench: aggregate %s: %v\n%s\n", t.name, t.failed, tail)
		}
	}

	// The client runs in this process: keep it off the servers' core.
	pin := "unpinned"
	if env.Pinned {
		if err := pinSelf(loadCore); err != nil {
			fmt.Fprintf(os.Stderr, "bench: warning: aggregate: could not pin the client to core %d: %v\n", loadCore, err)
		} else {
			defer unpinSelf()
			pin = fmt.Sprintf("edge and backends on core %d, the client on core %d", serverCore, loadCore)
		}
	}
	logf("aggregate: %d rounds; %d iterations/s for %s; warm-up %s; %s", o.Rounds, rate, durArg(o.RateDuration), o.Warmup, pin)
	for round := 1; round <= o.Rounds && ctx.Err() == nil; round++ {
		for _, t := range r.targets() {
			if t.failed == nil && ctx.Err() == nil {
				r.measure(ctx, env, client, t, round)
			}
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, t := range r.targets() {
		if t.failed != nil {
			r.problem("%s: %v", t.name, firstLines(t.failed.Error()))
		}
	}

	return r.report("aggregate", func(w io.Writer) { printAggregate(w, env, r) }, aggregateJSON(r))
}

// aggregateTargets are the three ways to the parts at partAddrs (served by
// backends) through the edge at edgeURL (edge).
func aggregateTargets(edgeURL string, partAddrs []string, backends []*Proc, edge *Proc) (direct, composite, sequential *agTarget) {
	part := func(i int, ct string, body []byte) error { return checkPart(ct, body, partAddrs[i]) }
	direct = &agTarget{name: "direct", check: part, procs: backends}
	sequential = &agTarget{name: "sequential", sequential: true, check: part, procs: append([]*Proc{edge}, backends...)}
	for i, p := range aggregateParts {
		direct.urls = append(direct.urls, "http://"+partAddrs[i]+"/"+p)
		sequential.urls = append(sequential.urls, edgeURL+"/"+p)
	}
	composite = &agTarget{name: "composite", urls: []string{edgeURL + "/page"}, procs: sequential.procs,
		check: func(_ int, ct string, body []byte) error { return checkComposite(ct, body, partAddrs) }}
	for _, t := range []*agTarget{direct, composite, sequential} {
		t.partP50 = make([][]float64, len(t.urls))
	}
	return direct, composite, sequential
}

// aggregateEdgeConfig is the edge: the composite route /page of a call to
// each part, a route to each part (/a …), an upstream for each (part-a …
// at partAddrs).
func aggregateEdgeConfig(listen, admin string, partAddrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# meshgate edge config of the aggregate benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: %s
listeners:
  - name: http
    address: %s
routes:
  - name: page
    match:
      path: {exact: /page}
    aggregate:
      calls:
`, admin, listen)
	for _, p := range aggregateParts {
		fmt.Fprintf(&b, "        - {name: %s, upstream: part-%[1]s, path: /%[1]s}\n", p)
	}
	for _, p := range aggregateParts {
		fmt.Fprintf(&b, "  - name: part-%s\n    match:\n      path: {exact: /%[1]s}\n    upstream: part-%[1]s\n", p)
	}
	b.WriteString("upstreams:\n")
	for i, p := range aggregateParts {
		fmt.Fprintf(&b, "  - name: part-%s\n    protocol: http1\n    endpoints:\n      - address: %s\n", p, partAddrs[i])
	}
	return b.String()
}

// partDoc is the bench backend's JSON document (-json).
type partDoc struct {
	Server string `json:"server"`
	Pad    string `json:"pad"`
}

// checkPart judges a part's answer: the document of the backend at server.
func checkPart(ct string, body []byte, server string) error {
	if err := wantType(ct, "application/json"); err != nil {
		return err
	}
	var d partDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("body is not JSON: %v", err)
	}
	if d.Server != server || d.Pad == "" {
		return fmt.Errorf("want the document of the backend at %s, got %.80s", server, body)
	}
	return nil
}

// checkComposite judges the composite's answer: a JSON object with each
// part's document under its call's name.
func checkComposite(ct string, body []byte, partAddrs []string) error {
	if err := wantType(ct, "application/json"); err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("body is not a JSON object: %v (%.80s)", err, body)
	}
	for i, p := range aggregateParts {
		raw, ok := doc[p]
		if !ok {
			return fmt.Errorf("no %q in the combined document: %.120s", p, body)
		}
		if err := checkPart("application/json", raw, partAddrs[i]); err != nil {
			return fmt.Errorf("%q: %v", p, err)
		}
	}
	return nil
}

// checkAggregate makes sure each URL of t answers what the measurement
// assumes.
func checkAggregate(ctx context.Context, client *http.Client, t *agTarget) error {
	for i, u := range t.urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %v", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d, want 200: %.200s", u, resp.StatusCode, body)
		}
		if err := t.check(i, resp.Header.Get("Content-Type"), body); err != nil {
			return fmt.Errorf("GET %s: %v", u, err)
		}
	}
	return nil
}

// aggregateClient keeps a connection per request in flight to each host.
func aggregateClient() *http.Client {
	return &http.Client{Timeout: aggregateTimeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 256,
		DisableCompression:  true,
	}}
}

// measure does one round on t: a warm-up, then the measured run.
func (r *aggregateRun) measure(ctx context.Context, env *Env, client *http.Client, t *agTarget, round int) {
	o := env.Opts
	// dead records a process of t's path that has exited.
	dead := func() bool {
		for _, p := range t.procs {
			if done, err := p.Exited(); done {
				t.failed = fmt.Errorf("%s exited during the run: %v\n%s", p.Name, err, indent(p.LogTail(10)))
				return true
			}
		}
		return false
	}
	for run, d := range []time.Duration{o.Warmup, o.RateDuration} {
		res := pace(ctx, client, t.urls, t.sequential, r.rate, d)
		if ctx.Err() != nil || dead() {
			return
		}
		if res.errors > 0 {
			what := "run"
			if run == 0 {
				what = "warm-up"
			}
			r.problem("%s round %d: %s: %d of %d iterations failed (not counted); first: %v",
				t.name, round, what, res.errors, res.started, res.firstErr)
			return
		}
		if run == 0 {
			continue
		}
		rps := res.throughput()
		if math.Abs(rps-float64(r.rate)) > 0.05*float64(r.rate) {
			fmt.Fprintf(os.Stderr, "bench: warning: aggregate %s round %d: %.1f iterations/s, asked %d\n", t.name, round, rps, r.rate)
		}
		p50, p99 := percentileMS(res.iters, 0.5), percentileMS(res.iters, 0.99)
		t.p50, t.p99, t.rps = append(t.p50, p50), append(t.p99, p99), append(t.rps, rps)
		var parts []string
		for i, calls := range res.calls {
			t.partP50[i] = append(t.partP50[i], percentileMS(calls, 0.5))
			parts = append(parts, fmt.Sprintf("%.3f", percentileMS(calls, 0.5)))
		}
		note := ""
		if len(parts) > 1 {
			note = "; each call's p50 " + strings.Join(parts, ", ") + " ms"
		}
		logf("  round %d %-10s at %d/s p50 %.3f ms, p99 %.3f ms, %.1f iterations/s%s", round, t.name, r.rate, p50, p99, rps, note)
	}
}

// paceResult is what one paced run measured.
type paceResult struct {
	iters    []time.Duration   // each successful iteration's latency
	calls    [][]time.Duration // per URL: its latency in each successful iteration
	started  int               // iterations started
	errors   int               // iterations failed
	firstErr error
	elapsed  time.Duration // from the first start to the last end
}

// throughput is successful iterations a second.
func (p paceResult) throughput() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(len(p.iters)) / p.elapsed.Seconds()
}

// pace runs iterations at rate a second for d. Each iteration GETs every
// URL: one after another when sequential (its latency is the sum of
// theirs), else all at once (its latency runs until the last has
// answered). Open loop: iterations start on schedule whether or not the
// earlier ones have ended. An iteration with a transport error or a
// status other than 200 counts in errors and is not timed. Cancelling ctx
// stops the run; pace returns when every iteration started has ended.
func pace(ctx context.Context, client *http.Client, urls []string, sequential bool, rate int, d time.Duration) paceResult {
	res := paceResult{calls: make([][]time.Duration, len(urls))}
	var mu sync.Mutex
	record := func(iter time.Duration, calls []time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if res.errors++; res.firstErr == nil {
				res.firstErr = err
			}
			return
		}
		res.iters = append(res.iters, iter)
		for i, c := range calls {
			res.calls[i] = append(res.calls[i], c)
		}
	}
	n := int(int64(d) * int64(rate) / int64(time.Second))
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
loop:
	for i := range n {
		at := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		}
		res.started++
		wg.Go(func() { record(iterate(ctx, client, urls, sequential)) })
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// iterate does one iteration of pace: its latency, and each call's.
func iterate(ctx context.Context, client *http.Client, urls []string, sequential bool) (time.Duration, []time.Duration, error) {
	calls := make([]time.Duration, len(urls))
	if sequential {
		var sum time.Duration
		for i, u := range urls {
			t0 := time.Now()
			if err := get(ctx, client, u); err != nil {
				return 0, nil, err
			}
			calls[i] = time.Since(t0)
			sum += calls[i]
		}
		return sum, calls, nil
	}
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, u := range urls {
		wg.Go(func() {
			t := time.Now()
			errs[i] = get(ctx, client, u)
			calls[i] = time.Since(t)
		})
	}
	wg.Wait()
	iter := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	return iter, calls, nil
}

// get requests url and reads the answer through; a status other than 200
// is an error.
func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// percentileMS is the p-quantile of ds (nearest rank) in milliseconds,
// NaN when ds is empty.
func percentileMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(max(int(math.Ceil(p*float64(len(s))))-1, 0), len(s)-1)
	return float64(s[i]) / 1e6
}

// slowestPart is the largest of the direct parts' median p50s, and each
// one's ("a 5.081, b 5.102, c 5.090"); ok is false unless every part was
// measured.
func (r *aggregateRun) slowestPart() (float64, string, bool) {
	if len(r.direct.partP50) != len(aggregateParts) {
		return 0, "", false
	}
	top := 0.0
	var each []string
	for i, xs := range r.direct.partP50 {
		if len(xs) == 0 {
			return 0, "", false
		}
		top = max(top, median(xs))
		each = append(each, fmt.Sprintf("%s %.3f", aggregateParts[i], median(xs)))
	}
	return top, strings.Join(each, ", "), true
}

// aggregateResult is the suite's JSON fragment. A value that was not
// measured is left out; error is set when the suite failed.
type aggregateResult struct {
	Rate             int      `json:"rate"`
	P50msComposite   *float64 `json:"p50_ms_composite,omitempty"`
	P99msComposite   *float64 `json:"p99_ms_composite,omitempty"`
	RPSComposite     *float64 `json:"rps_composite,omitempty"`
	P50msSequential  *float64 `json:"p50_ms_sequential,omitempty"`
	P99msSequential  *float64 `json:"p99_ms_sequential,omitempty"`
	P50msSlowestPart *float64 `json:"p50_ms_slowest_part,omitempty"`
	P50msDirect      *float64 `json:"p50_ms_direct,omitempty"`
	OverheadP50ms    *float64 `json:"overhead_p50_ms,omitempty"`
	TargetP50ms      float64  `json:"target_p50_ms_composite"`
	TargetP99OverP50 float64  `json:"target_p99_over_p50_composite"`
	TargetOverheadMS float64  `json:"target_overhead_p50_ms"`
	Rounds           int      `json:"rounds"`
	Error            string   `json:"error,omitempty"`
}

func aggregateJSON(r *aggregateRun) aggregateResult {
	val := func(x float64, ok bool, digits int) *float64 {
		if !ok {
			return nil
		}
		v := round(x, digits)
		return &v
	}
	ms := func(xs []float64) *float64 { return val(median(xs), len(xs) > 0, 3) }
	c, s := r.composite, r.sequential
	slowest, _, haveSlowest := r.slowestPart()
	return aggregateResult{
		Rate:             r.rate,
		P50msComposite:   ms(c.p50),
		P99msComposite:   ms(c.p99),
		RPSComposite:     val(median(c.rps), len(c.rps) > 0, 1),
		P50msSequential:  ms(s.p50),
		P99msSequential:  ms(s.p99),
		P50msSlowestPart: val(slowest, haveSlowest, 3),
		P50msDirect:      ms(r.direct.p50),
		OverheadP50ms:    val(median(c.p50)-slowest, haveSlowest && len(c.p50) > 0, 3),
		TargetP50ms:      aggregateTargetP50MS,
		TargetP99OverP50: aggregateTargetP99OverP50,
		TargetOverheadMS: aggregateTargetOverheadMS,
		Rounds:           len(c.p50),
		Error:            r.summary(),
	}
}

func printAggregate(w io.Writer, env *Env, r *aggregateRun) {
	fmt.Fprintf(w, "aggregate: medians of %d round(s); %d backends answering 1 KiB of JSON after %v; %d iterations/s for %s (open loop, from this process)\n",
		env.Opts.Rounds, len(aggregateParts), aggregatePartDelay, r.rate, durArg(env.Opts.RateDuration))
	row := func(name, value, target, verdict string, note ...string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-22s %9s %12s  %-4s  %s", name, value, target, verdict, strings.Join(note, "")), " "))
	}
	num, verdict := optNum, atMost
	c, s := r.composite, r.sequential
	c50, c99, haveC := median(c.p50), median(c.p99), len(c.p50) > 0
	slowest, each, haveSlowest := r.slowestPart()
	row("measure", "value", "target", "")
	row("composite p50 ms", num(c50, haveC), fmt.Sprintf("≤ %g ms", aggregateTargetP50MS), verdict(c50, aggregateTargetP50MS, haveC))
	row("composite p99 ms", num(c99, haveC), fmt.Sprintf("≤ %g × p50", aggregateTargetP99OverP50),
		verdict(c99, aggregateTargetP99OverP50*c50, haveC), fmt.Sprintf("p99/p50 %s", num(c99/c50, haveC)))
	row("composite iter/s", num(median(c.rps), len(c.rps) > 0), "", "")
	row("sequential p50 ms", num(median(s.p50), len(s.p50) > 0), "", "", "/a, /b, /c one after another through the edge")
	row("sequential p99 ms", num(median(s.p99), len(s.p99) > 0), "", "")
	if haveSlowest {
		each = "direct: " + each
	}
	row("slowest part p50 ms", num(slowest, haveSlowest), "", "", each)
	row("direct p50 ms", num(median(r.direct.p50), len(r.direct.p50) > 0), "", "", "the three backends at once without the edge")
	row("overhead p50 ms", num(c50-slowest, haveC && haveSlowest), fmt.Sprintf("≤ %g ms", aggregateTargetOverheadMS),
		verdict(c50-slowest, aggregateTargetOverheadMS, haveC && haveSlowest), "composite p50 − slowest part p50")
	for _, t := range r.targets() {
		if t.failed != nil {
			fmt.Fprintf(w, "%s: %s\n", t.name, firstLines(t.failed.Error()))
		}
	}
}
