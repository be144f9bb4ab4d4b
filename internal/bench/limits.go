package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/ratelimit"
)

// The limits suite (issue 19): does the cluster-wide limit hold under
// bursts, with real memberlist nodes over the mTLS transport (the gossip
// suite's cluster) rather than the ratelimit package's simulated network?
// One key, limit 1,000 per 10 s window:
//
//   - burst: demand of 3× and 100× the limit delivered in the first 10% of
//     a window, 80% on one node; 3 and 10 nodes. Each burst window is
//     followed by an idle one, so that every burst meets an empty previous
//     window (as a burst after a quiet spell does);
//   - steady: 1,000 req/s (10× the limit), 80% on one node, 3 nodes;
//   - spread: the 3× and 100× bursts spread evenly over 10 nodes.
//
// Each ratio is admitted ÷ limit of the worst of 5 windows (the one
// farthest from 1). decision_ns is the mean cost of one Allow on a node
// with peers and a claim to admit within (no network on that path).
//
// Requests are sent in batches every millisecond (a stream at 80,000 req/s
// cannot sleep between requests); admissions are counted per the policy's
// fixed windows.
//
// Environment: BENCH_LIMITS_WINDOWS=5 (windows per case),
// BENCH_LIMITS_CASES=burst_n10,spread (only the cases whose names start
// with one of these; default all), BENCH_LIMITS_VERBOSE=1 (the cluster's
// warnings on stderr). A ratio whose cases were all left out is 0.

const (
	limLimit  = 1000
	limWindow = 10 * time.Second
	limKey    = "tenant"
)

type limitsResult struct {
	BurstN3   float64              `json:"burst_ratio_n3"`
	BurstN10  float64              `json:"burst_ratio_n10"`
	SteadyN3  float64              `json:"steady_ratio_n3"`
	SpreadN10 float64              `json:"spread_ratio_n10"`
	Decision  float64              `json:"decision_ns"`
	Windows   map[string][]float64 `json:"windows"`
}

func runLimits(ctx context.Context, env *Env) (json.RawMessage, error) {
	windows := 5
	if v := os.Getenv("BENCH_LIMITS_WINDOWS"); v != "" {
		if _, err := fmt.Sscan(v, &windows); err != nil || windows < 1 {
			return nil, fmt.Errorf("BENCH_LIMITS_WINDOWS=%q: want a positive integer", v)
		}
	}
	var verbose io.Writer
	if v := os.Getenv("BENCH_LIMITS_VERBOSE"); v != "" && v != "0" {
		verbose = os.Stderr
	}
	res := limitsResult{Windows: map[string][]float64{}}
	log := problemLog{scope: "limits"}
	logf("limits: in-process memberlist nodes over mTLS on loopback; limit %d per %v, one key, %d windows per case", limLimit, limWindow, windows)
	type run struct {
		name      string
		nodes     int
		mult, hot float64 // burst: mult × limit in the first 10%; steady: mult = req/s
		steady    bool
	}
	cases := []run{
		{"burst_n3_3x", 3, 3, 0.8, false}, {"burst_n3_100x", 3, 100, 0.8, false},
		{"steady_n3", 3, 1000, 0.8, true},
		{"burst_n10_3x", 10, 3, 0.8, false}, {"burst_n10_100x", 10, 100, 0.8, false},
		{"spread_n10_3x", 10, 3, 0.1, false}, {"spread_n10_100x", 10, 100, 0.1, false},
	}
	var only []string
	if v := os.Getenv("BENCH_LIMITS_CASES"); v != "" {
		only = strings.Split(v, ",")
	}
	for _, c := range cases {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if only != nil && !slices.ContainsFunc(only, func(p string) bool { return strings.HasPrefix(c.name, strings.TrimSpace(p)) }) {
			continue
		}
		ratios, err := measureLimits(ctx, verbose, c.nodes, c.mult, c.hot, c.steady, windows)
		if err != nil {
			log.problem("%s: %v", c.name, err)
			continue
		}
		res.Windows[c.name] = ratios
		logf("limits: %-16s admitted/limit %s", c.name, fmtRatios(ratios))
		w := worst(ratios)
		switch {
		case strings.HasPrefix(c.name, "burst_n3"):
			res.BurstN3 = worstOf(res.BurstN3, w)
		case strings.HasPrefix(c.name, "burst_n10"):
			res.BurstN10 = worstOf(res.BurstN10, w)
		case strings.HasPrefix(c.name, "steady_n3"):
			res.SteadyN3 = w
		case strings.HasPrefix(c.name, "spread_n10"):
			res.SpreadN10 = worstOf(res.SpreadN10, w)
		}
	}
	res.Decision = decisionNs()
	return log.report("limits", func(w io.Writer) { printLimits(w, &res) }, res)
}

// worst is the ratio farthest from 1; worstOf keeps the farther of two (0:
// none yet).
func worst(xs []float64) float64 {
	var w float64
	for _, x := range xs {
		w = worstOf(w, x)
	}
	return w
}

func worstOf(a, b float64) float64 {
	if a == 0 || abs(b-1) > abs(a-1) {
		return b
	}
	return a
}

func abs(x float64) float64 { return max(x, -x) }

func printLimits(w io.Writer, r *limitsResult) {
	verdict := func(x float64) string {
		if x >= rlRatioLow && x <= rlRatioHigh {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Fprintf(w, "%-22s %8s  %-10s\n", "limits", "value", "target")
	for _, row := range []struct {
		name string
		v    float64
	}{{"burst ratio n=3", r.BurstN3}, {"burst ratio n=10", r.BurstN10}, {"steady ratio n=3", r.SteadyN3}, {"spread ratio n=10", r.SpreadN10}} {
		fmt.Fprintf(w, "%-22s %8.3f  0.95–1.05  %s\n", row.name, row.v, verdict(row.v))
	}
	v := "PASS"
	if r.Decision > 1000 {
		v = "MISS"
	}
	fmt.Fprintf(w, "%-22s %8.0f  ≤ 1000     %s\n", "decision ns", r.Decision, v)
}

// measureLimits runs one case on a fresh cluster of n nodes and returns
// admitted ÷ limit of each measured window.
func measureLimits(ctx context.Context, verbose io.Writer, n int, mult, hot float64, steady bool, windows int) ([]float64, error) {
	g, err := newGCluster(verbose)
	if err != nil {
		return nil, err
	}
	defer g.close()
	if err := g.start(ctx, fmt.Sprintf("m%d", n), n, 30*time.Second+time.Duration(n)*time.Second); err != nil {
		return nil, err
	}
	for _, nd := range g.nodes {
		if err := nd.rl.SetPolicies([]ratelimit.PolicyConfig{{Name: rlPolicy, Limit: limLimit, Window: limWindow}}); err != nil {
			return nil, err
		}
	}
	rates := make([]float64, n)
	total := mult // steady: req/s
	if !steady {
		total = mult * limLimit / (limWindow / 10).Seconds()
	}
	for i := range rates {
		if n == 1 {
			rates[i] = total
		} else if i == 0 {
			rates[i] = hot * total
		} else {
			rates[i] = (1 - hot) * total / float64(n-1)
		}
	}
	start := nextBoundary(limWindow)
	w0 := start.UnixNano() / int64(limWindow)
	// Windows measured: steady, the windows after the first (which has no
	// previous window to weigh); bursts, every other window from the first.
	measured := make([]int64, windows)
	var end time.Time
	active := func(t time.Time) bool { return true }
	if steady {
		for i := range measured {
			measured[i] = w0 + 1 + int64(i)
		}
		end = start.Add(time.Duration(windows+1) * limWindow)
	} else {
		for i := range measured {
			measured[i] = w0 + 2*int64(i)
		}
		end = start.Add(time.Duration(2*windows-1)*limWindow + limWindow/10)
		active = func(t time.Time) bool {
			w := t.UnixNano() / int64(limWindow)
			into := t.UnixNano() - w*int64(limWindow)
			return (w-w0)%2 == 0 && into < int64(limWindow/10)
		}
	}
	counts := make([]map[int64]int64, n)
	var wg sync.WaitGroup
	var delay claimDelay
	wg.Add(1)
	go func() {
		defer wg.Done()
		if sleepCtx(ctx, time.Until(start)) == nil {
			delay.run(ctx, g, 250*time.Millisecond, end)
		}
	}()
	for i, nd := range g.nodes {
		counts[i] = map[int64]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := nd.rl.Policy(rlPolicy)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			sent, owed := 0.0, 0.0
			last := start
			if err := sleepCtx(ctx, time.Until(start)); err != nil {
				return
			}
			for now := time.Now(); now.Before(end); now = time.Now() {
				if active(now) {
					owed += rates[i] * now.Sub(last).Seconds()
				}
				last = now
				for ; sent < owed; sent++ {
					if p.Allow(limKey) {
						counts[i][time.Now().UnixNano()/int64(limWindow)]++
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	logf("limits: n=%d %s", n, &delay)
	var ratios []float64
	for _, w := range measured {
		var a int64
		for _, c := range counts {
			a += c[w]
		}
		ratios = append(ratios, float64(a)/limLimit)
	}
	return ratios, nil
}

// decisionNs is the mean cost of Allow on a node with a peer, within its
// claim: the request path of a clustered node, measured in process.
func decisionNs() float64 {
	l, err := ratelimit.New(ratelimit.Options{Node: "a", Peers: func() int { return 2 }})
	if err != nil {
		return 0
	}
	if err := l.SetPolicies([]ratelimit.PolicyConfig{{Name: rlPolicy, Limit: 1 << 40, Window: time.Hour}}); err != nil {
		return 0
	}
	l.Flush() // samples the peers
	p := l.Policy(rlPolicy)
	const n = 1 << 20
	for range 1000 {
		p.Allow(limKey) // creates the key and its first claims
	}
	t0 := time.Now()
	for range n {
		p.Allow(limKey)
	}
	return float64(time.Since(t0).Nanoseconds()) / n
}
