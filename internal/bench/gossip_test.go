package main

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/route"
)

func TestPercentile(t *testing.T) {
	var xs []float64
	for i := 20; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, float64(i))
	}
	for _, c := range []struct{ p, want float64 }{{50, 10}, {99, 20}, {95, 19}, {100, 20}, {0, 1}, {1, 1}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("p%g of 1..20 = %g, want %g", c.p, got, c.want)
		}
	}
	if xs[0] != 20 {
		t.Error("percentile sorted its argument")
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("p99 of one = %g", got)
	}
	if !math.IsNaN(percentile(nil, 50)) || !math.IsNaN(mean(nil)) {
		t.Error("empty: want NaN")
	}
	if got := mean([]float64{0.98, 1.02, 1.03}); math.Abs(got-1.01) > 1e-9 {
		t.Errorf("mean = %g", got)
	}
}

func TestRateLimitScaling(t *testing.T) {
	for _, c := range []struct {
		w    time.Duration
		want int64
	}{{6 * time.Second, 100}, {time.Minute, 1000}, {time.Second, 17}, {30 * time.Second, 500}} {
		if got := rlLimitFor(c.w); got != c.want {
			t.Errorf("limit for %v = %d, want %d", c.w, got, c.want)
		}
	}
	r := skewedRates(50, 10)
	var sum float64
	for _, x := range r {
		sum += x
	}
	if math.Abs(sum-50) > 1e-9 || r[0] != 40 || math.Abs(r[9]-10.0/9) > 1e-9 {
		t.Errorf("skewed rates %v (sum %g)", r, sum)
	}
	if r := skewedRates(5, 1); r[0] != 5 {
		t.Errorf("one node: %v", r)
	}
	// Demand starts just after a boundary of the policy's windows.
	b := nextBoundary(6 * time.Second)
	if off := b.UnixNano() % int64(6*time.Second); off != int64(20*time.Millisecond) {
		t.Errorf("boundary offset %v", time.Duration(off))
	}
}

// The routes the suite writes must overlay the base config and compile:
// otherwise every node would reject them and the suite would time out
// rather than say why.
func TestRouteResourcesCompile(t *testing.T) {
	base, err := config.Parse("base.yaml", []byte(routeBaseYAML()))
	if err != nil {
		t.Fatal(err)
	}
	res := []config.Resource{
		{Kind: config.KindRoute, Name: "bench-0", Value: routeValue("bench-0", 0)},
		{Kind: config.KindRoute, Name: "bench-1", Value: routeValue("bench-1", 1)},
	}
	cfg, err := config.Overlay(base, res)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := route.Compile(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Routes()); n != baseRoutes+2 {
		t.Fatalf("%d routes, want %d", n, baseRoutes+2)
	}
}

func TestLatest(t *testing.T) {
	at := time.Unix(100, 0)
	ts := []time.Time{at.Add(-time.Millisecond), at.Add(30 * time.Millisecond), at.Add(10 * time.Millisecond)}
	if d, ok := latest(at, ts); !ok || d != 30*time.Millisecond {
		t.Errorf("latest = %v %v", d, ok)
	}
	ts[2] = time.Time{}
	if _, ok := latest(at, ts); ok {
		t.Error("a node without the change: want not done")
	}
	c := &routeChange{seen: []time.Time{at, at}, compiled: []time.Time{at, {}}}
	if c.done() {
		t.Error("done with a node not compiled")
	}
	c.compiled[1] = at
	if !c.done() {
		t.Error("not done")
	}
}

func TestGossipOptsFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	o, err := gossipOptsFromEnv(env())
	if err != nil || o.quick || len(o.sizes) != 3 || o.sizes[2] != 50 || o.changes != 20 || o.rlWindow != 6*time.Second ||
		o.breakerReps != 10 || o.rlWindows < 3 || o.verbose != nil {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	o, err = gossipOptsFromEnv(env("BENCH_GOSSIP_QUICK", "1", "BENCH_GOSSIP_RL_WINDOW", "12s"))
	if err != nil || !o.quick || len(o.sizes) != 2 || o.changes >= 20 || o.rlWindow != 12*time.Second {
		t.Errorf("quick = %+v, %v", o, err)
	}
	o, err = gossipOptsFromEnv(env("BENCH_GOSSIP_ONLY", "ratelimit, partition"))
	if err != nil || o.takes("route") || o.takes("breaker") || !o.takes("ratelimit") || !o.takes("partition") {
		t.Errorf("only = %v, %v", o.only, err)
	}
	if _, err := gossipOptsFromEnv(env("BENCH_GOSSIP_ONLY", "routes")); err == nil {
		t.Error("unknown measurement: want error")
	}
	for _, bad := range []string{"500ms", "x", "1.5ms"} {
		if _, err := gossipOptsFromEnv(env("BENCH_GOSSIP_RL_WINDOW", bad)); err == nil {
			t.Errorf("window %q: want error", bad)
		}
	}
}

// sampleGossipRun is a run with every part measured: n=10 passes, n=50
// lost a change, the kill run over-admits.
func sampleGossipRun() *gossipRun {
	o, _ := gossipOptsFromEnv(func(string) string { return "" })
	return &gossipRun{
		opts: o,
		routes: []*routeRun{
			{nodes: 3, changes: 2, storeMs: []float64{80, 100}, compiledMs: []float64{90, 110}, compileMs: 0.5},
			{nodes: 10, changes: 3, storeMs: []float64{200, 300, 250}, compiledMs: []float64{210, 320, 260}, compileMs: 0.6},
			{nodes: 50, changes: 3, storeMs: []float64{400, 500}, compiledMs: []float64{420, 530}, unconverged: 1},
		},
		breaker: &breakerRun{nodes: 10, reps: 3, quorumMs: []float64{150, 180, 1200}, evidenceMs: []float64{90, 95, 99}},
		rl3:     &rlRun{nodes: 3, limit: 100, window: 6 * time.Second, ratios: []float64{1.0, 0.99, 1.01}, killedAt: -1},
		rl10:    &rlRun{nodes: 10, limit: 100, window: 6 * time.Second, ratios: []float64{1.02, 1.03, 1.01}, killedAt: -1},
		rlKill: &rlRun{nodes: 10, limit: 100, window: 6 * time.Second, ratios: []float64{1.02, 1.2, 1.04}, killedAt: 1,
			killed: "l10-0"},
		partition: &partitionRun{nodes: 6, routesConverged: true, healRoutesMs: 4321, membersConverged: true, healMembersMs: 2100,
			splitSideRatios: []float64{1.01, 0.99}, afterRatios: []float64{1.03, 1.0}, healWindowRatio: 0.7, beforeRatio: 1},
	}
}

func TestGossipJSON(t *testing.T) {
	frag, err := json.Marshal(gossipJSON(sampleGossipRun()))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"route_p99_ms_n3": 110.0, "route_p99_ms_n10": 320.0, "route_p99_ms_n50": nil,
		"breaker_p99_ms_n10": 1200.0, "ratelimit_ratio_n3": 1.0, "ratelimit_ratio_n10": 1.02,
		"ratelimit_ratio_n10_kill": 1.087, "route_p50_ms_n10": 260.0, "route_store_p99_ms_n10": 300.0,
		"route_unconverged_n50": 1.0, "breaker_evidence_p99_ms_n10": 99.0, "partition_heal_routes_ms": 4321.0,
		"partition_after_ratio_max": 1.03, "partition_side_ratio_max": 1.01}
	for k, v := range want {
		gv, ok := got[k]
		if !ok || gv != v {
			t.Errorf("%s = %v (present %v), want %v\n%s", k, gv, ok, v, frag)
		}
	}
	if _, ok := got["error"]; ok {
		t.Errorf("error without problems: %s", frag)
	}
	if _, err := mergeJSON(map[string][]byte{"gossip": frag}); err != nil {
		t.Fatal(err)
	}

	// Nothing measured but an error: only the error.
	frag, _ = json.Marshal(gossipJSON(&gossipRun{problemLog: problemLog{problems: []string{"route convergence n=3: boom\n  detail"}}}))
	if string(frag) != `{"error":"route convergence n=3: boom"}` {
		t.Errorf("failed run = %s", frag)
	}
}

func TestPrintGossip(t *testing.T) {
	var b strings.Builder
	printGossip(&b, sampleGossipRun())
	out := b.String()
	for _, want := range []string{
		"route p99 ms n=3                 110                       store only 100 ms",
		"route p99 ms n=10                320      ≤ 1000 ms  PASS",
		"route p99 ms n=50              never      ≤ 3000 ms  MISS  store only 500 ms; overlay+compile 0.00 ms; 1 of 3 never converged",
		"breaker p99 ms n=10             1200      ≤ 1000 ms  MISS  quorum 2 tripped; p50 180 ms",
		"ratelimit ratio n=3            1.000      0.95–1.05  PASS  windows [1.00 0.99 1.01]",
		"ratelimit ratio n=10 kill      1.087      0.95–1.05  MISS  windows [1.02 1.20 1.04] (l10-0 killed mid-window 2)",
		"partition heal routes ms        4321",
		"partition after ratio max      1.030         ≤ 1.05  PASS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestGossipSmoke runs a tiny version of the suite on real nodes (three
// nodes over mTLS): two route changes, one breaker repetition, one
// one-second rate-limit window, so `go test` exercises the code path the
// benchmark takes. The numbers are not checked, only that everything
// converged and the report is whole.
func TestGossipSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gossip clusters")
	}
	o, err := gossipOptsFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	o.sizes, o.changes, o.routeGap, o.settle = []int{3}, 2, 100*time.Millisecond, 0
	o.breakerNodes, o.breakerReps = 3, 1
	o.rlWindow, o.rlWindows = time.Second, 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	rr, err := measureRoutes(ctx, o, 3, o.changes)
	if err != nil {
		t.Fatal(err)
	}
	if rr.unconverged != 0 || len(rr.compiledMs) != 2 || len(rr.storeMs) != 2 || rr.compileMs <= 0 {
		t.Fatalf("routes: %+v", rr)
	}
	for i := range rr.storeMs {
		if rr.storeMs[i] > rr.compiledMs[i] {
			t.Errorf("change %d stored after compiled: %+v", i, rr)
		}
	}
	br, err := measureBreaker(ctx, o, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if br.quorumMissed+br.evidenceMissed != 0 || len(br.quorumMs) != 1 || len(br.evidenceMs) != 1 {
		t.Fatalf("breaker: %+v", br)
	}
	rl, err := measureRateLimit(ctx, o, 3, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.ratios) != 1 || rl.ratios[0] <= 0 {
		t.Fatalf("rate limit: %+v", rl)
	}
	r := &gossipRun{opts: o, routes: []*routeRun{rr}, breaker: br, rl3: rl}
	var b strings.Builder
	printGossip(&b, r)
	frag, err := json.Marshal(gossipJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", b.String(), frag)
	for _, k := range []string{`"route_p99_ms_n3":`, `"breaker_p99_ms_n3":`, `"ratelimit_ratio_n3":`} {
		if !strings.Contains(string(frag), k) {
			t.Errorf("JSON lacks %s: %s", k, frag)
		}
	}
}
