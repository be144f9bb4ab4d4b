package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// loadEdge is one edge process that a load suite (auth, transform,
// tracing) drives with wrk, and what it measured there.
type loadEdge struct {
	name    string // process name, printed
	url     string // what wrk requests
	adm     string // admin listener (metrics, pprof)
	proc    *Proc
	headers []string // wrk -H "Name: value" on every request
	script  string   // wrk -s: a Lua script of the requests ("": none)
	// pids lists the processes whose CPU counts for the edge (nil: proc
	// alone; nginx: its master and children).
	pids func() []int

	rps, cpuUS []float64 // one per counted run
	ratios     []float64 // per round: req/s over the baseline's in the pair
	failed     error     // fatal: the edge is no longer measured
}

// minPairedRounds is the fewest rounds a paired suite runs unless asked
// for a single quick one. Runs on a shared VM drift by ±15 % (and, now
// and then, by half) from one 10 s window to the next, more than the
// effects measured; the median of five paired ratios shrugs off two bad
// pairs, the median of three only one.
const minPairedRounds = 5

// pairedRounds is how many rounds a paired suite runs when asked for n.
func pairedRounds(n int) int {
	if n <= 1 {
		return n
	}
	return max(n, minPairedRounds)
}

// pairSlices is how many slices each edge of a pair is measured in. The
// two edges alternate slice by slice (AB BA AB ...), so that a change of
// the machine's speed, which on a shared VM comes in bursts of seconds
// (an identical edge measured 10 s apart gave 10,500 and 20,300 req/s),
// falls on both alike instead of on one run of the pair.
const pairSlices = 5

// measurePair measures a pair of edges in alternating slices, after a
// warm-up of each, and returns their req/s; false when the pair does not
// count (t.failed is set on an edge that can no longer be measured, a
// problem is logged when only this pair is void).
func (e *Env) measurePair(ctx context.Context, pair [2]*loadEdge, round int, problems *problemLog) ([2]float64, bool) {
	var rps [2]float64
	for _, t := range pair {
		if _, err := e.wrkEdge(ctx, t, e.Opts.Warmup); err != nil {
			if ctx.Err() == nil {
				t.failed = t.died(fmt.Errorf("warm-up: %v", err))
			}
			return rps, false
		}
	}
	slice := max(e.Opts.Duration/pairSlices, time.Second)
	var requests [2]int64
	var seconds [2]float64
	var ticks [2]int64
	for s := range pairSlices {
		for k := range 2 {
			j := k
			if s%2 == 1 {
				j = 1 - k
			}
			t := pair[j]
			w, cpu, ok := e.measureSlice(ctx, t, slice, round, problems)
			if !ok {
				return rps, false
			}
			requests[j] += w.Requests
			seconds[j] += w.Seconds
			ticks[j] += cpu
		}
	}
	for j, t := range pair {
		if seconds[j] <= 0 || requests[j] == 0 {
			problems.problem("%s round %d: no requests measured", t.name, round)
			return rps, false
		}
		rps[j] = float64(requests[j]) / seconds[j]
		us := float64(ticks[j]) / float64(e.ClkTck) * 1e6 / float64(requests[j])
		t.rps = append(t.rps, rps[j])
		t.cpuUS = append(t.cpuUS, us)
		logf("  round %d %-16s %9.0f req/s, %.1f µs CPU/req", round, t.name, rps[j], us)
	}
	return rps, true
}

// measureSlice is one measured wrk run of d on t, with the edge's CPU
// ticks around it.
func (e *Env) measureSlice(ctx context.Context, t *loadEdge, d time.Duration, round int, problems *problemLog) (WrkResult, int64, bool) {
	cpu0, err := t.cpuTicks()
	if err != nil {
		t.failed = t.died(err)
		return WrkResult{}, 0, false
	}
	w, err := e.wrkEdge(ctx, t, d)
	if err != nil {
		if ctx.Err() == nil {
			t.failed = t.died(err)
		}
		return WrkResult{}, 0, false
	}
	cpu1, err := t.cpuTicks()
	if err != nil {
		t.failed = t.died(err)
		return WrkResult{}, 0, false
	}
	if w.Non2xx > 0 {
		problems.problem("%s round %d: %d non-2xx responses of %d (not counted)", t.name, round, w.Non2xx, w.Requests)
		if tail := t.proc.LogTail(5); tail != "" { // the edge logs why at level warn
			fmt.Fprintf(os.Stderr, "%s\n", indent(tail))
		}
		return WrkResult{}, 0, false
	}
	if w.SocketErrors > 0 {
		fmt.Fprintf(os.Stderr, "bench: warning: %s round %d: wrk saw %d socket errors\n", t.name, round, w.SocketErrors)
	}
	return w, int64(cpu1 - cpu0), true
}

// cpuTicks is the CPU time of t's processes, in clock ticks.
func (t *loadEdge) cpuTicks() (int64, error) {
	if t.pids != nil {
		return cpuOf(t.pids())
	}
	return cpuTicks(t.proc.Pid())
}

// died is err, or why t's process exited if it did.
func (t *loadEdge) died(err error) error {
	if done, perr := t.proc.Exited(); done {
		return fmt.Errorf("process exited: %v\n%s", perr, t.proc.LogTail(10))
	}
	return err
}

// runPairs measures each of others against plain in pairs (measurePair),
// rounds times, and appends each pair's ratio (other's req/s over plain's)
// to the other's ratios. Pairing cancels the machine's drift, which a
// ratio of two medians does not. The order rotates from round to round
// and plain goes first or last alternately, so that no edge is always
// measured right after another or at the same point of a round.
func (e *Env) runPairs(ctx context.Context, rounds int, plain *loadEdge, others []*loadEdge, problems *problemLog) {
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		k := (round - 1) % len(others)
		order := append(others[k:len(others):len(others)], others[:k]...)
		for i, t := range order {
			if t.failed != nil || plain.failed != nil || ctx.Err() != nil {
				continue
			}
			pair := [2]*loadEdge{plain, t}
			if (round+(k+i)%len(others))%2 == 0 {
				pair[0], pair[1] = t, plain
			}
			rps, ok := e.measurePair(ctx, pair, round, problems)
			if !ok {
				continue
			}
			if pair[0] != plain {
				rps[0], rps[1] = rps[1], rps[0]
			}
			t.ratios = append(t.ratios, rps[1]/rps[0])
			logf("  round %d %-16s ratio %.3f", round, t.name, rps[1]/rps[0])
		}
	}
}

// ratio is the median of t's paired ratios.
func (t *loadEdge) ratio() (float64, bool) {
	if len(t.ratios) == 0 {
		return 0, false
	}
	return median(t.ratios), true
}

// profileEdges writes a CPU profile of each edge still measured, under
// wrk's load, to dir/<edge>.pprof (BENCH_<SUITE>_PROFILE=dir), and prints
// the rate it was taken under.
func (e *Env) profileEdges(ctx context.Context, edges []*loadEdge, dir string) {
	for _, t := range edges {
		if t.failed == nil && ctx.Err() == nil {
			if err := e.profileEdge(ctx, t, dir); err != nil {
				fmt.Fprintf(os.Stderr, "bench: warning: %s: profile: %v\n", t.name, err)
			}
		}
	}
}

func (e *Env) profileEdge(ctx context.Context, t *loadEdge, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := int(e.Opts.Duration / time.Second)
	done := make(chan error, 1)
	var load WrkResult
	go func() {
		var err error
		load, err = e.wrkEdge(ctx, t, e.Opts.Duration+2*time.Second)
		done <- err
	}()
	select { // let the load start
	case err := <-done:
		return err
	case <-time.After(time.Second):
	}
	client := &http.Client{Timeout: e.Opts.Duration + 30*time.Second}
	resp, err := client.Get(t.adm + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
	if err == nil {
		defer resp.Body.Close()
		var data []byte
		if data, err = io.ReadAll(resp.Body); err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("pprof: %s", resp.Status)
		}
		if err == nil {
			path := filepath.Join(dir, t.name+".pprof")
			err = os.WriteFile(path, data, 0o644)
		}
	}
	if werr := <-done; err == nil {
		err = werr
	}
	if err == nil {
		// With the rate, a profile's samples divide into time per request.
		logf("  %s: CPU profile of %ds in %s, under %.0f req/s", t.name, secs, filepath.Join(dir, t.name+".pprof"), load.RPS)
	}
	return err
}

// wrkEdge runs wrk on t: its URL, headers and script.
func (e *Env) wrkEdge(ctx context.Context, t *loadEdge, d time.Duration) (WrkResult, error) {
	return e.runWrkScript(ctx, t.url, d, t.script, t.headers...)
}

// runWrk runs wrk -t1 -c50 on the load-generator core, with request
// headers ("Name: value") if any.
func (e *Env) runWrk(ctx context.Context, url string, d time.Duration, headers ...string) (WrkResult, error) {
	return e.runWrkScript(ctx, url, d, "", headers...)
}

// runWrkScript is runWrk with a Lua script (wrk -s) unless script is "".
func (e *Env) runWrkScript(ctx context.Context, url string, d time.Duration, script string, headers ...string) (WrkResult, error) {
	argv := e.pinned(loadCore, "wrk", "-t1", "-c50", "-d"+durArg(d))
	if script != "" {
		argv = append(argv, "-s", script)
	}
	for _, h := range headers {
		argv = append(argv, "-H", h)
	}
	argv = append(argv, url)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return parseWrk(string(out))
}
