package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The dataplane suite: one loopback backend (1 KiB body, keep-alive) and three
// targets measured in interleaved rounds: direct (load → backend), edge
// (load → bin/edge → backend) and nginx (load → nginx → backend). Servers run
// on core 0 with one thread of work each (GOMAXPROCS=1, worker_processes 1),
// load generators on core 1. Per target and round: a saturation run with
// wrk -t1 -c50 (req/s and the proxy's CPU per request) and a fixed-rate run
// with vegeta (p50/p99 latency).

const (
	serverCore = 0
	loadCore   = 1
	readyWait  = 15 * time.Second
)

// dpTarget is one thing the load is pointed at.
type dpTarget struct {
	name string
	url  string
	proc *Proc // the proxy (the backend for direct)
	// proxy is false for direct: no CPU per request is reported.
	proxy bool
	// pids lists the processes whose CPU and RSS count for this target.
	pids func() []int

	err        error // fatal: the target is no longer measured
	problemLog       // non-fatal: reported, and the run fails

	rps, cpuUS, p50, p99 []float64
	rssBytes             int64
}

func (t *dpTarget) fail(err error) {
	t.err = err
	fmt.Fprintf(os.Stderr, "bench: %s: %v\n", t.name, err)
}

func runDataplane(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	if err := ensureApt(ctx, map[string]string{"wrk": "wrk"}); err != nil {
		return nil, err
	}
	vegeta, err := env.vegeta(ctx)
	if err != nil {
		return nil, err
	}

	// Backend.
	bport, err := freePort()
	if err != nil {
		return nil, err
	}
	backendAddr := "127.0.0.1:" + strconv.Itoa(bport)
	backend, err := env.startBackend(ctx, "backend", backendAddr)
	if err != nil {
		return nil, err
	}

	direct := &dpTarget{name: "direct", url: "http://" + backendAddr + "/", proc: backend,
		pids: func() []int { return []int{backend.Pid()} }}
	edge := startEdge(ctx, env, backendAddr)
	nginx := startNginx(ctx, env, backendAddr)
	targets := []*dpTarget{direct, edge, nginx}
	for _, t := range targets {
		t.scope = t.name
	}

	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("servers on core %d, load generator on core %d", serverCore, loadCore)
	}
	logf("dataplane: %d rounds; wrk -t1 -c50 -d%s; vegeta %d req/s for %s; warm-up %s; %s",
		o.Rounds, durArg(o.Duration), o.Rate, durArg(o.RateDuration), o.Warmup, pin)

	for round := 1; round <= o.Rounds && ctx.Err() == nil; round++ {
		for _, t := range targets {
			if t.err != nil || ctx.Err() != nil {
				continue
			}
			measureRound(ctx, env, vegeta, t, round)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, t := range targets {
		if t.err != nil {
			continue
		}
		var sum int64
		for _, pid := range t.pids() {
			rss, err := peakRSS(pid)
			if err != nil {
				t.problem("peak RSS: %v", err)
			}
			sum += rss
		}
		t.rssBytes = sum
	}

	fmt.Println()
	printDataplane(os.Stdout, env, targets)
	frag, err := json.Marshal(dataplaneJSON(targets))
	if err != nil {
		return nil, err
	}
	var failed []string
	for _, t := range targets {
		if t.err != nil || t.failed() {
			failed = append(failed, t.name)
		}
	}
	if len(failed) > 0 {
		return frag, fmt.Errorf("failed targets: %s", strings.Join(failed, ", "))
	}
	return frag, nil
}

// measureRound does one round on one target: warm-up, wrk with CPU sampling,
// warm-up, vegeta.
func measureRound(ctx context.Context, env *Env, vegeta string, t *dpTarget, round int) {
	o := env.Opts
	// alive records a dead process as the failure; a run error is only the
	// target's fault when the process is alive and the run not interrupted.
	alive := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if done, err := t.proc.Exited(); done {
			t.fail(fmt.Errorf("process exited during the run: %v\n%s", err, t.proc.LogTail(10)))
			return false
		}
		return true
	}

	if _, err := env.runWrk(ctx, t.url, o.Warmup); err != nil {
		if alive() {
			t.fail(fmt.Errorf("warm-up: %v", err))
		}
		return
	}
	cpu0, err := cpuOf(t.pids())
	if err != nil {
		t.fail(err)
		return
	}
	w, err := env.runWrk(ctx, t.url, o.Duration)
	if err != nil {
		if alive() {
			t.fail(err)
		}
		return
	}
	cpu1, err := cpuOf(t.pids())
	if err != nil {
		t.fail(err)
		return
	}
	if !alive() {
		return
	}
	if w.Non2xx > 0 {
		t.problem("round %d: wrk saw %d non-2xx/3xx responses of %d", round, w.Non2xx, w.Requests)
	}
	if w.SocketErrors > 0 {
		fmt.Fprintf(os.Stderr, "bench: warning: %s round %d: wrk saw %d socket errors\n", t.name, round, w.SocketErrors)
	}
	t.rps = append(t.rps, w.RPS)
	cpuNote := ""
	if t.proxy && w.Requests > 0 {
		us := float64(cpu1-cpu0) / float64(env.ClkTck) * 1e6 / float64(w.Requests)
		t.cpuUS = append(t.cpuUS, us)
		cpuNote = fmt.Sprintf(", %.1f µs CPU/req", us)
	}

	if _, err := env.runVegeta(ctx, vegeta, t.url, o.Rate, o.Warmup); err != nil {
		if alive() {
			t.fail(fmt.Errorf("fixed-rate warm-up: %v", err))
		}
		return
	}
	v, err := env.runVegeta(ctx, vegeta, t.url, o.Rate, o.RateDuration)
	if err != nil {
		if alive() {
			t.fail(err)
		}
		return
	}
	if p := v.SuccessProblem(); p != "" {
		t.problem("round %d: fixed-rate run: %s", round, p)
	}
	if math.Abs(v.Throughput-float64(o.Rate)) > 0.05*float64(o.Rate) {
		fmt.Fprintf(os.Stderr, "bench: warning: %s round %d: fixed-rate throughput %.0f req/s, asked %d\n",
			t.name, round, v.Throughput, o.Rate)
	}
	t.p50 = append(t.p50, v.P50ms())
	t.p99 = append(t.p99, v.P99ms())
	logf("  round %d %-6s %9.0f req/s%s; at %d req/s p50 %.3f ms, p99 %.3f ms",
		round, t.name, w.RPS, cpuNote, o.Rate, v.P50ms(), v.P99ms())
}

// cpuOf sums utime+stime (in ticks) over pids.
func cpuOf(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		n, err := cpuTicks(pid)
		if err != nil {
			return 0, fmt.Errorf("CPU time of pid %d: %v", pid, err)
		}
		sum += n
	}
	return sum, nil
}

// startEdge writes an edge config and starts bin/edge. Any failure is
// recorded on the returned target, which is then skipped.
func startEdge(ctx context.Context, env *Env, backendAddr string) *dpTarget {
	t := &dpTarget{name: "edge", proxy: true}
	failed := func(err error) *dpTarget {
		t.err = fmt.Errorf("edge failed to start: %v", err)
		fmt.Fprintf(os.Stderr, "bench: %v\n", t.err)
		return t
	}
	bin := filepath.Join(env.Bin, "edge")
	if env.Opts.Edge != "" {
		bin = env.Opts.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return failed(fmt.Errorf("%s not built (make build): %v", bin, err))
	}
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := filepath.Join(env.Tmp, "edge.yaml")
	if err := os.WriteFile(cfg, []byte(edgeConfig(addr, backendAddr)), 0o644); err != nil {
		return failed(err)
	}
	p, err := env.start("edge", []string{"GOMAXPROCS=1"}, env.pinned(serverCore, bin, "--config", cfg)...)
	if err != nil {
		return failed(err)
	}
	t.proc, t.url = p, "http://"+addr+"/"
	t.pids = func() []int { return []int{p.Pid()} }
	if err := waitHTTP(ctx, p, t.url, readyWait); err != nil {
		p.Stop()
		return failed(fmt.Errorf("%v\n%s", err, indent(p.LogTail(15))))
	}
	logf("edge ready on %s (pid %d)", addr, p.Pid())
	return t
}

func edgeConfig(listen, backend string) string {
	return fmt.Sprintf(`# meshgate edge config of the dataplane benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
listeners:
  - name: http
    address: %s
    protocol: http
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
`, listen, backend)
}

// startNginx installs nginx when missing, writes its config into a prefix
// dir under the scratch dir and starts it in the foreground.
func startNginx(ctx context.Context, env *Env, backendAddr string) *dpTarget {
	t := &dpTarget{name: "nginx", proxy: true}
	failed := func(err error) *dpTarget {
		t.err = fmt.Errorf("nginx failed to start: %v", err)
		fmt.Fprintf(os.Stderr, "bench: %v\n", t.err)
		return t
	}
	if err := ensureApt(ctx, map[string]string{"nginx": "nginx"}); err != nil {
		return failed(err)
	}
	prefix := filepath.Join(env.Tmp, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return failed(err)
	}
	// The worker runs unprivileged; let it into the scratch dir.
	_ = os.Chmod(env.Tmp, 0o755)
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(prefix, addr, backendAddr)), 0o644); err != nil {
		return failed(err)
	}
	p, err := env.start("nginx", nil, env.pinned(serverCore, "nginx",
		"-p", prefix+"/", "-c", conf, "-e", filepath.Join(prefix, "error.log"))...)
	if err != nil {
		return failed(err)
	}
	t.proc, t.url = p, "http://"+addr+"/"
	t.pids = func() []int { return append([]int{p.Pid()}, children(p.Pid())...) }
	if err := waitHTTP(ctx, p, t.url, readyWait); err != nil {
		p.Stop()
		errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		return failed(fmt.Errorf("%v\n%s\n%s", err, indent(p.LogTail(10)), indent(string(errLog))))
	}
	logf("nginx ready on %s (master pid %d, workers %v)", addr, p.Pid(), children(p.Pid()))
	return t
}

func nginxConfig(prefix, listen, backend string) string {
	return fmt.Sprintf(`# nginx reverse proxy of the dataplane benchmark (written by internal/bench).
worker_processes 1;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    # Client side keep-alive.
    keepalive_timeout 300s;
    keepalive_requests 10000000;

    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    upstream backend {
        server %[3]s;
        # Upstream side keep-alive.
        keepalive 128;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }

    server {
        listen %[2]s;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, prefix, listen, backend)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// median of xs (NaN when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// dpResult is one target's JSON entry.
type dpResult struct {
	RPS         *float64 `json:"rps,omitempty"`
	CPUUSPerReq *float64 `json:"cpu_us_per_req,omitempty"`
	P50ms       *float64 `json:"p50_ms,omitempty"`
	P99ms       *float64 `json:"p99_ms,omitempty"`
	RSSMB       *float64 `json:"rss_mb,omitempty"`
	Rounds      int      `json:"rounds"`
	Error       string   `json:"error,omitempty"`
}

func dataplaneJSON(targets []*dpTarget) map[string]dpResult {
	val := func(xs []float64, digits int) *float64 {
		if len(xs) == 0 {
			return nil
		}
		v := round(median(xs), digits)
		return &v
	}
	out := map[string]dpResult{}
	for _, t := range targets {
		r := dpResult{
			RPS:    val(t.rps, 1),
			P50ms:  val(t.p50, 3),
			P99ms:  val(t.p99, 3),
			Rounds: len(t.rps),
		}
		if t.proxy {
			r.CPUUSPerReq = val(t.cpuUS, 2)
		}
		if t.rssBytes > 0 {
			v := round(float64(t.rssBytes)/(1<<20), 1)
			r.RSSMB = &v
		}
		var errs []string
		if t.err != nil {
			errs = append(errs, t.err.Error())
		}
		errs = append(errs, t.problems...)
		r.Error = firstLines(strings.Join(errs, "; "))
		out[t.name] = r
	}
	return out
}

// firstLines keeps an error message to its first line (log tails stay on
// the terminal, out of the JSON).
func firstLines(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func printDataplane(w *os.File, env *Env, targets []*dpTarget) {
	byName := map[string]*dpTarget{}
	for _, t := range targets {
		byName[t.name] = t
	}
	ratio := func(t *dpTarget, base string) string {
		b := byName[base]
		if b == nil || len(b.rps) == 0 || len(t.rps) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", median(t.rps)/median(b.rps))
	}
	num := func(xs []float64, format string) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format, median(xs))
	}
	o := env.Opts
	fmt.Fprintf(w, "dataplane: medians of %d round(s); req/s from wrk -t1 -c50 -d%s; latency at %d req/s for %s (vegeta)\n",
		o.Rounds, durArg(o.Duration), o.Rate, durArg(o.RateDuration))
	const row = "%-8s %9s %9s %8s %10s %8s %8s %12s\n"
	fmt.Fprintf(w, row, "target", "req/s", "vs direct", "vs nginx", "CPU µs/req", "p50 ms", "p99 ms", "peak RSS MB")
	for _, t := range targets {
		if t.err != nil && len(t.rps) == 0 {
			fmt.Fprintf(w, "%-8s %9s\n", t.name, "failed")
			continue
		}
		cpu := "-"
		if t.proxy {
			cpu = num(t.cpuUS, "%.1f")
		}
		rss := "-"
		if t.rssBytes > 0 {
			rss = fmt.Sprintf("%.1f", float64(t.rssBytes)/(1<<20))
			if !t.proxy {
				rss += " (backend)"
			}
		}
		fmt.Fprintf(w, row, t.name, num(t.rps, "%.0f"), ratio(t, "direct"), ratio(t, "nginx"),
			cpu, num(t.p50, "%.3f"), num(t.p99, "%.3f"), rss)
	}
	fmt.Fprintln(w, "CPU: the proxy's utime+stime over the wrk run / requests (nginx: master + worker). RSS: VmHWM at the end.")
	for _, t := range targets {
		if t.err != nil {
			fmt.Fprintf(w, "%s: %s\n", t.name, firstLines(t.err.Error()))
		}
	}
}
