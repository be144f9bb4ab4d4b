package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The gossip suite: how fast and how exactly the cluster shares state. All
// nodes run in this process on loopback, each a real memberlist member on
// its own mTLS transport (real TCP and mutual TLS between every pair), with
// gossip.Config's default intervals (gossip 100 ms, probe 1 s, push/pull
// 15 s). Four measurements (see gossip_route.go, gossip_breaker.go,
// gossip_ratelimit.go, gossip_partition.go for how each is taken):
//
//  1. route convergence at 3, 10 and 50 nodes: Put on a random node →
//     every node has compiled a route table with it; p50/p99 over the
//     changes;
//  2. breaker propagation at 10 nodes: a quorum of breakers trips → every
//     node's breaker is open; p99 over the repetitions;
//  3. rate-limit accuracy at 3 and 10 nodes, and at 10 with the hot node
//     killed mid-window: admitted / limit per window, mean over the
//     windows after the first;
//  4. partition 3/3 and heal at 6 nodes: time to converge after the heal,
//     and admitted / limit per window after it.
//
// All the nodes share the process's CPUs (two, on the reference machine):
// 50 nodes' TLS, gossip and compiles run on the same cores, which only
// makes the numbers pessimistic.
//
// Environment:
//
//	BENCH_GOSSIP_QUICK=1       a short run (3 and 10 nodes, 5 changes, 3 breaker repetitions, 2 windows)
//	BENCH_GOSSIP_RL_WINDOW=6s  the rate-limit window (limit scaled to 1,000 per minute)
//	BENCH_GOSSIP_VERBOSE=1     the cluster's warnings on stderr
//	BENCH_GOSSIP_ONLY=a,b      only these measurements: route, breaker, ratelimit, partition

// Targets of the issue.
const (
	routeP99TargetN10       = 1000.0 // ms
	routeP99TargetN50       = 3000.0 // ms
	breakerP99TargetMS      = 1000.0
	rlRatioLow, rlRatioHigh = 0.95, 1.05
)

// gossipOpts are the suite's settings.
type gossipOpts struct {
	quick        bool
	sizes        []int // route convergence cluster sizes
	changes      int   // route changes per size
	routeGap     time.Duration
	settle       time.Duration // after the cluster formed, before measuring
	convergeWait time.Duration // how long a change may take before it counts as never converged
	breakerNodes int
	breakerReps  int
	breakerGap   time.Duration
	rlWindow     time.Duration
	rlWindows    int // measured windows after the first
	splitWindows int // partition: windows the split lasts
	afterWindows int // partition: measured windows after the heal's own
	verbose      io.Writer
	only         map[string]bool // measurements to take; nil: all
}

// gossipMeasures are the names BENCH_GOSSIP_ONLY accepts.
var gossipMeasures = []string{"route", "breaker", "ratelimit", "partition"}

// takes reports whether measurement m is to be taken.
func (o gossipOpts) takes(m string) bool { return o.only == nil || o.only[m] }

func gossipOptsFromEnv(getenv func(string) string) (gossipOpts, error) {
	o := gossipOpts{
		sizes:        []int{3, 10, 50},
		changes:      20,
		routeGap:     300 * time.Millisecond,
		settle:       time.Second,
		convergeWait: 15 * time.Second,
		breakerNodes: 10,
		breakerReps:  10,
		breakerGap:   300 * time.Millisecond,
		rlWindow:     6 * time.Second,
		rlWindows:    4,
		splitWindows: 3,
		afterWindows: 2,
	}
	if v := getenv("BENCH_GOSSIP_QUICK"); v != "" && v != "0" {
		o.quick = true
		o.sizes = []int{3, 10}
		o.changes = 5
		o.breakerReps = 3
		o.rlWindows = 2
		o.afterWindows = 1
	}
	if v := getenv("BENCH_GOSSIP_RL_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d%time.Millisecond != 0 {
			return o, fmt.Errorf("BENCH_GOSSIP_RL_WINDOW=%q: want whole milliseconds, at least 1s (like 6s)", v)
		}
		o.rlWindow = d
	}
	if v := getenv("BENCH_GOSSIP_VERBOSE"); v != "" && v != "0" {
		o.verbose = os.Stderr
	}
	if v := getenv("BENCH_GOSSIP_ONLY"); v != "" {
		o.only = map[string]bool{}
		for _, m := range strings.Split(v, ",") {
			m = strings.TrimSpace(m)
			if !slices.Contains(gossipMeasures, m) {
				return o, fmt.Errorf("BENCH_GOSSIP_ONLY: unknown measurement %q (have: %s)", m, strings.Join(gossipMeasures, ", "))
			}
			o.only[m] = true
		}
	}
	return o, nil
}

// joinTimeout is how long n nodes may take to find each other.
func (o gossipOpts) joinTimeout(n int) time.Duration {
	// 50 nodes form in about 3 s on an idle machine; a loaded one (the
	// nodes share its cores with everything else) takes much longer.
	return 30*time.Second + time.Duration(n)*time.Second
}

// gossipRun is everything the suite measured; nil parts were not.
type gossipRun struct {
	opts      gossipOpts
	routes    []*routeRun
	breaker   *breakerRun
	rl3, rl10 *rlRun
	rlKill    *rlRun
	partition *partitionRun
	problemLog
}

func runGossip(ctx context.Context, env *Env) (json.RawMessage, error) {
	o, err := gossipOptsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	r := runGossipWith(ctx, o)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r.report("gossip", func(w io.Writer) { printGossip(w, r) }, gossipJSON(r))
}

// runGossipWith takes every measurement o asks for; a failed one is noted
// and the next still runs.
func runGossipWith(ctx context.Context, o gossipOpts) *gossipRun {
	r := &gossipRun{opts: o, problemLog: problemLog{scope: "gossip"}}
	logf("gossip: in-process memberlist nodes over mTLS on loopback; gossip 100ms, probe 1s, push/pull 15s")
	for _, n := range o.sizes {
		if ctx.Err() != nil || !o.takes("route") {
			break
		}
		rr, err := measureRoutes(ctx, o, n, o.changes)
		if err != nil && ctx.Err() == nil {
			r.problem("route convergence n=%d: %v", n, err)
		}
		if rr != nil {
			r.routes = append(r.routes, rr)
			logf("  route n=%d: %d changes, p50 %.0f ms, p99 %.0f ms (store only: p99 %.0f ms); %d never converged; overlay+compile %.2f ms; %d cluster warnings; load %s",
				n, rr.changes, percentile(rr.compiledMs, 50), percentile(rr.compiledMs, 99), percentile(rr.storeMs, 99),
				rr.unconverged, rr.compileMs, rr.warnings, loadAvg())
		}
	}
	if ctx.Err() == nil && o.breakerNodes > 0 && o.takes("breaker") {
		br, err := measureBreaker(ctx, o, o.breakerNodes, o.breakerReps)
		if err != nil && ctx.Err() == nil {
			r.problem("breaker propagation: %v", err)
		}
		if br != nil {
			r.breaker = br
			logf("  breaker n=%d: quorum of %d p50 %.0f ms p99 %.0f ms (%d missed); one trip + evidence p99 %.0f ms (%d missed); %d cluster warnings; load %s",
				br.nodes, breakerQuorum, percentile(br.quorumMs, 50), percentile(br.quorumMs, 99), br.quorumMissed,
				percentile(br.evidenceMs, 99), br.evidenceMissed, br.warnings, loadAvg())
		}
	}
	limit := rlLimitFor(o.rlWindow)
	if o.takes("ratelimit") {
		logf("  rate limit: %d per %v (1,000/min rate), demand %.0f× (%.0f%% on one node), %d measured windows after the first",
			limit, o.rlWindow, rlOverdrive, rlHot*100, o.rlWindows)
	}
	for _, c := range []struct {
		n    int
		kill bool
		dst  **rlRun
	}{{3, false, &r.rl3}, {10, false, &r.rl10}, {10, true, &r.rlKill}} {
		if ctx.Err() != nil || !o.takes("ratelimit") {
			break
		}
		rl, err := measureRateLimit(ctx, o, c.n, o.rlWindows, c.kill)
		if err != nil && ctx.Err() == nil {
			r.problem("rate limit n=%d kill=%v: %v", c.n, c.kill, err)
		}
		if rl != nil {
			*c.dst = rl
			logf("  rate limit n=%d%s: admitted/limit per window %s, mean %.3f; %d cluster warnings; load %s",
				c.n, killNote(rl), fmtRatios(rl.ratios), mean(rl.ratios), rl.warnings, loadAvg())
		}
	}
	if ctx.Err() == nil && o.takes("partition") {
		p, err := measurePartition(ctx, o)
		if err != nil && ctx.Err() == nil {
			r.problem("partition: %v", err)
		}
		if p != nil {
			r.partition = p
			logf("  partition n=%d 3/3 for %d windows (sides saw each other failed: %v): routes converged %v after heal in %.0f ms, members in %.0f ms; load %s",
				p.nodes, o.splitWindows, p.splitSeen, p.routesConverged, p.healRoutesMs, p.healMembersMs, loadAvg())
			logf("  partition rate limit (%d per %v, demand 3× spread evenly): before %.2f, per side while split %s, heal window %.2f, after %s",
				limit, o.rlWindow, p.beforeRatio, fmtRatios(p.splitSideRatios), p.healWindowRatio, fmtRatios(p.afterRatios))
			if !p.routesConverged || !p.membersConverged {
				r.problem("partition: no convergence within %v of the heal (routes %v, members %v)",
					o.convergeWait+10*time.Second, p.routesConverged, p.membersConverged)
			}
		}
	}
	return r
}

func killNote(r *rlRun) string {
	if r.killedAt < 0 {
		return ""
	}
	return fmt.Sprintf(" (%s killed mid-window %d)", r.killed, r.killedAt+1)
}

func fmtRatios(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// percentile is the nearest-rank percentile of xs (NaN when empty): the
// smallest value with at least p% of the values at or below it. With 20
// samples p99 is the largest, which is what a target on p99 should see.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// mean of xs (NaN when empty).
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// routeFor returns the route run of n nodes.
func (r *gossipRun) routeFor(n int) *routeRun {
	for _, rr := range r.routes {
		if rr.nodes == n {
			return rr
		}
	}
	return nil
}

// routeP99 is the headline: the p99 of time to every node's compiled
// table, or +Inf when a change never converged (a p99 that hides a lost
// change would flatter the cluster).
func routeP99(rr *routeRun) float64 {
	if rr.unconverged > 0 {
		return math.Inf(1)
	}
	return percentile(rr.compiledMs, 99)
}

// gossipJSON is the suite's fragment: the keys, plus extras. A
// value that was not measured is left out; a change that never converged
// makes its p99 null (JSON has no infinity) and is counted.
func gossipJSON(r *gossipRun) map[string]any {
	out := map[string]any{}
	num := func(key string, x float64, digits int) {
		switch {
		case math.IsNaN(x):
		case math.IsInf(x, 0):
			out[key] = nil
		default:
			out[key] = round(x, digits)
		}
	}
	for _, rr := range r.routes {
		sfx := fmt.Sprintf("_n%d", rr.nodes)
		num("route_p99_ms"+sfx, routeP99(rr), 1)
		num("route_p50_ms"+sfx, percentile(rr.compiledMs, 50), 1)
		num("route_store_p99_ms"+sfx, percentile(rr.storeMs, 99), 1)
		num("route_compile_ms"+sfx, rr.compileMs, 3)
		if rr.unconverged > 0 {
			out["route_unconverged"+sfx] = rr.unconverged
		}
	}
	if b := r.breaker; b != nil {
		sfx := fmt.Sprintf("_n%d", b.nodes)
		p99 := percentile(b.quorumMs, 99)
		if b.quorumMissed > 0 {
			p99 = math.Inf(1)
		}
		num("breaker_p99_ms"+sfx, p99, 1)
		num("breaker_p50_ms"+sfx, percentile(b.quorumMs, 50), 1)
		out["breaker_quorum"] = breakerQuorum
		ev := percentile(b.evidenceMs, 99)
		if b.evidenceMissed > 0 {
			ev = math.Inf(1)
		}
		num("breaker_evidence_p99_ms"+sfx, ev, 1)
	}
	for _, c := range []struct {
		key string
		run *rlRun
	}{{"ratelimit_ratio_n3", r.rl3}, {"ratelimit_ratio_n10", r.rl10}, {"ratelimit_ratio_n10_kill", r.rlKill}} {
		if c.run == nil || len(c.run.ratios) == 0 {
			continue
		}
		num(c.key, mean(c.run.ratios), 3)
		rs := make([]float64, len(c.run.ratios))
		for i, x := range c.run.ratios {
			rs[i] = round(x, 3)
		}
		out[c.key+"_windows"] = rs
	}
	if r.rl3 != nil {
		out["ratelimit_window_s"] = r.rl3.window.Seconds()
		out["ratelimit_limit"] = r.rl3.limit
	}
	if p := r.partition; p != nil {
		if p.routesConverged {
			num("partition_heal_routes_ms", p.healRoutesMs, 1)
		} else {
			out["partition_heal_routes_ms"] = nil
		}
		if p.membersConverged {
			num("partition_heal_members_ms", p.healMembersMs, 1)
		} else {
			out["partition_heal_members_ms"] = nil
		}
		num("partition_side_ratio_max", maxOf(p.splitSideRatios), 3)
		num("partition_after_ratio_max", maxOf(p.afterRatios), 3)
		num("partition_heal_window_ratio", p.healWindowRatio, 3)
	}
	if r.failed() {
		out["error"] = r.summary()
	}
	return out
}

// printGossip prints the suite's table: measure, value, target, verdict.
func printGossip(w io.Writer, r *gossipRun) {
	o := r.opts
	fmt.Fprintf(w, "gossip: in-process memberlist over mTLS on loopback; route = Put → every node compiled it (%d changes %v apart); "+
		"breaker = quorum of %d tripped → all open (%d reps); rate limit = admitted/limit per %v window, mean of windows after the first\n",
		o.changes, o.routeGap, breakerQuorum, o.breakerReps, o.rlWindow)
	row := func(name, value, target, verdict string, note ...string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-26s %9s %14s  %-4s  %s", name, value, target, verdict, strings.Join(note, "")), " "))
	}
	row("measure", "value", "target", "")
	msv := func(x float64) string {
		switch {
		case math.IsNaN(x):
			return "-"
		case math.IsInf(x, 1):
			return "never"
		}
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	atMost := func(x, limit float64) string {
		switch {
		case math.IsNaN(x):
			return "-"
		case x <= limit:
			return "PASS"
		}
		return "MISS"
	}
	within := func(x float64) string {
		switch {
		case math.IsNaN(x):
			return "-"
		case x >= rlRatioLow && x <= rlRatioHigh:
			return "PASS"
		}
		return "MISS"
	}
	for _, rr := range r.routes {
		target, verdict := "", ""
		switch rr.nodes {
		case 10:
			target, verdict = fmt.Sprintf("≤ %g ms", routeP99TargetN10), atMost(routeP99(rr), routeP99TargetN10)
		case 50:
			target, verdict = fmt.Sprintf("≤ %g ms", routeP99TargetN50), atMost(routeP99(rr), routeP99TargetN50)
		}
		row(fmt.Sprintf("route p50 ms n=%d", rr.nodes), msv(percentile(rr.compiledMs, 50)), "", "")
		note := fmt.Sprintf("store only %s ms; overlay+compile %.2f ms", msv(percentile(rr.storeMs, 99)), rr.compileMs)
		if rr.unconverged > 0 {
			note += fmt.Sprintf("; %d of %d never converged", rr.unconverged, rr.changes)
		}
		row(fmt.Sprintf("route p99 ms n=%d", rr.nodes), msv(routeP99(rr)), target, verdict, note)
	}
	if b := r.breaker; b != nil {
		p99 := percentile(b.quorumMs, 99)
		if b.quorumMissed > 0 {
			p99 = math.Inf(1)
		}
		row(fmt.Sprintf("breaker p99 ms n=%d", b.nodes), msv(p99), fmt.Sprintf("≤ %g ms", breakerP99TargetMS),
			atMost(p99, breakerP99TargetMS), fmt.Sprintf("quorum %d tripped; p50 %s ms", breakerQuorum, msv(percentile(b.quorumMs, 50))))
		ev := percentile(b.evidenceMs, 99)
		if b.evidenceMissed > 0 {
			ev = math.Inf(1)
		}
		row(fmt.Sprintf("breaker 1+evidence p99 n=%d", b.nodes), msv(ev), "", "", "one tripped, the others had one failure each")
	}
	for _, c := range []struct {
		name string
		run  *rlRun
	}{{"ratelimit ratio n=3", r.rl3}, {"ratelimit ratio n=10", r.rl10}, {"ratelimit ratio n=10 kill", r.rlKill}} {
		if c.run == nil {
			continue
		}
		m := mean(c.run.ratios)
		row(c.name, fmt.Sprintf("%.3f", round(m, 3)), fmt.Sprintf("%.2f–%.2f", rlRatioLow, rlRatioHigh), within(m),
			"windows "+fmtRatios(c.run.ratios)+killNote(c.run))
	}
	if p := r.partition; p != nil {
		heal := math.Inf(1)
		if p.routesConverged {
			heal = p.healRoutesMs
		}
		row("partition heal routes ms", msv(heal), "", "", fmt.Sprintf("6 nodes split 3/3 for %d windows; members alive again after %s ms",
			o.splitWindows, msv(map[bool]float64{true: p.healMembersMs, false: math.Inf(1)}[p.membersConverged])))
		side := maxOf(p.splitSideRatios)
		row("partition side ratio max", fmt.Sprintf("%.3f", round(side, 3)), fmt.Sprintf("≤ %.2f", rlRatioHigh),
			atMost(side, rlRatioHigh), "per side while split "+fmtRatios(p.splitSideRatios))
		after := maxOf(p.afterRatios)
		row("partition after ratio max", fmt.Sprintf("%.3f", round(after, 3)), fmt.Sprintf("≤ %.2f", rlRatioHigh),
			atMost(after, rlRatioHigh), fmt.Sprintf("cluster after the heal %s; heal window %.2f; before %.2f",
				fmtRatios(p.afterRatios), p.healWindowRatio, p.beforeRatio))
	}
}
