package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The cache suite: what the edge's HTTP cache (routes[].cache) costs and
// saves. One backend (the suites' 1 KiB keep-alive backend, answering
// Cache-Control: max-age=3600) and six proxies, measured in four pairs:
//
//   - hits: an edge whose route caches, every request the same URI, so
//     every one but the first is answered from the store; against nginx
//     with proxy_cache (its cache directory on a tmpfs, /dev/shm, so both
//     answer from memory), every request a HIT. ratio_hit = edge ÷ nginx.
//   - misses: an edge whose route caches, every request a URI of its own
//     (a unique query), so every one is a miss that goes the whole way:
//     lookup, the collapse of concurrent misses (as leader), the forward
//     through the tee, the storable decision, the copy of the body and the
//     store's Put (which evicts once the 64 MiB store is full, after a few
//     seconds); against the same edge without the cache, sent the same
//     unique URIs. ratio_miss = miss ÷ plain. A response that may not be
//     stored (no-store) would skip the body copy and the Put, the part of
//     a miss that costs most, so the backend's answer is storable.
//   - what a miss costs nginx: a second nginx with proxy_cache (its own
//     tmpfs directory, max_size 64m as the edge's store), sent the unique
//     URIs, every request a MISS that it stores, against nginx without a
//     cache sent the same: ratio_miss_nginx = nginx miss ÷ nginx plain,
//     the reference for ratio_miss, whose target is to be no lower (a
//     stored miss costs us, relatively, no more than it costs nginx).
//   - misses against nginx's: ratio_miss_vs_nginx = edge miss ÷ nginx
//     miss, with the hits' target.
//
// As in the dataplane suite, the proxies and the backend run on core 0 (the
// edges at GOMAXPROCS=1, nginx with one worker) and wrk -t1 -c50 on core 1.
// As in the auth and transform suites, each round measures each pair in
// alternating slices (measurePair), the pairs in alternating order, and each
// ratio is the median over rounds (at least five, see pairedRounds) of the
// pair's ratios. The unique URIs come from a wrk Lua script
// (cacheUniqueScript), so that no two requests of any run share one.
//
// Before measuring, each proxy must answer what the measurement assumes:
// the hit edge a stored 1 KiB (Cache-Status: meshgate; hit), nginx a HIT
// (X-Cache-Status, $upstream_cache_status), the miss edge a stored miss
// (fwd=uri-miss, stored), the plain edge no Cache-Status. After the rounds
// the edges' meshgate_cache_requests_total must show that the hit edge went
// upstream only for its first request and that the miss edge never hit.
//
// BENCH_CACHE_PROFILE=dir: after the rounds, a CPU profile of each edge
// under the same load is written to dir/<edge>.pprof (see profileEdges),
// for `go tool pprof -top bin/edge dir/cache-hit.pprof`.

// Lowest acceptable ratios.
const (
	cacheTargetHit         = 0.8 // edge hit ÷ nginx proxy_cache hit
	cacheTargetMissVsNginx = 0.8 // edge miss ÷ nginx proxy_cache miss
)

// cacheControl is the backend's Cache-Control.
const cacheControl = "max-age=3600"

// cachePath is the path every request asks for (the miss runs add a query).
const cachePath = "/item"

// cacheUniqueScript is the wrk script of the miss pair: every request
// /item?u=<run>-<n>, where run is a random UUID of the wrk run (from the
// kernel) and n counts its requests. wrk -t1: one Lua state, one counter.
const cacheUniqueScript = `-- meshgate cache benchmark (written by internal/bench): every request a URI of its own.
local f = assert(io.open("/proc/sys/kernel/random/uuid", "r"))
local run = f:read("*l")
f:close()
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "` + cachePath + `?u=" .. run .. "-" .. n)
end
`

// cacheTarget is one proxy of the suite.
type cacheTarget struct {
	loadEdge
	key  string // JSON suffix: rps_<key>, cpu_us_per_req_<key>, rss_mb_<key>
	what string // printed description
	// check judges a few requests before the rounds.
	check func(ctx context.Context, t *cacheTarget) error
	rss   int64 // peak RSS at the end (nginx: master + children), bytes
}

// cachePair is a measured pair: subject ÷ base.
type cachePair struct {
	key           string // ratio_<key>, target_<key>
	subject, base *cacheTarget
	// target is the lowest acceptable ratio; 0 with targetOf nil: none (a
	// reference).
	target float64
	// targetOf, when set, is another pair whose measured ratio is the
	// target.
	targetOf *cachePair
	ratios   []float64 // one a round
}

// ratio is the median of the pair's rounds.
func (c *cachePair) ratio() (float64, bool) {
	if len(c.ratios) == 0 {
		return 0, false
	}
	return median(c.ratios), true
}

// goal is the pair's target (ok false: none, or its reference was not
// measured).
func (c *cachePair) goal() (float64, bool) {
	if c.targetOf != nil {
		return c.targetOf.ratio()
	}
	return c.target, c.target > 0
}

type cacheRun struct {
	hitEdge, nginx, missEdge, plain *cacheTarget
	nginxMiss, nginxPlain           *cacheTarget
	pairs                           []*cachePair
	nginxTmpfs                      bool // nginx's cache directories are on a tmpfs
	// From the edges' metrics after the rounds (-1: not read).
	hitEdgeMisses, missEdgeHits, missEdgeMisses float64
	problemLog
}

func (r *cacheRun) targets() []*cacheTarget {
	return []*cacheTarget{r.hitEdge, r.nginx, r.missEdge, r.plain, r.nginxMiss, r.nginxPlain}
}

func runCache(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	if err := ensureApt(ctx, map[string]string{"wrk": "wrk", "nginx": "nginx"}); err != nil {
		return nil, err
	}
	bin := filepath.Join(env.Bin, "edge")
	if o.Edge != "" {
		bin = o.Edge
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", bin, err)
	}
	ports, err := freePorts(10)
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
	backend, err := env.startBackend(ctx, "cache-backend", backendAddr, "-cache-control", cacheControl)
	if err != nil {
		return nil, err
	}
	started = append(started, backend)
	script := filepath.Join(env.Tmp, "cache-unique.lua")
	if err := os.WriteFile(script, []byte(cacheUniqueScript), 0o644); err != nil {
		return nil, err
	}

	r := &cacheRun{problemLog: problemLog{scope: "cache"}, hitEdgeMisses: -1, missEdgeHits: -1, missEdgeMisses: -1}
	r.hitEdge = &cacheTarget{loadEdge: loadEdge{name: "cache-hit"}, key: "hit_edge", what: "edge, cache hits", check: checkCacheHitEdge}
	r.nginx = &cacheTarget{loadEdge: loadEdge{name: "cache-nginx"}, key: "hit_nginx", what: "nginx proxy_cache, hits", check: checkCacheNginx}
	r.missEdge = &cacheTarget{loadEdge: loadEdge{name: "cache-miss", script: script}, key: "miss_edge", what: "edge, cache misses (unique URIs)", check: checkCacheMissEdge}
	r.plain = &cacheTarget{loadEdge: loadEdge{name: "cache-plain", script: script}, key: "plain", what: "edge, no cache (unique URIs)", check: checkCachePlain}
	r.nginxMiss = &cacheTarget{loadEdge: loadEdge{name: "cache-nginx-miss", script: script}, key: "miss_nginx", what: "nginx proxy_cache, misses (unique URIs)", check: checkCacheNginxMiss}
	r.nginxPlain = &cacheTarget{loadEdge: loadEdge{name: "cache-nginx-plain", script: script}, key: "plain_nginx", what: "nginx, no cache (unique URIs)", check: checkCachePlain}
	missNginx := &cachePair{key: "miss_nginx", subject: r.nginxMiss, base: r.nginxPlain}
	r.pairs = []*cachePair{
		{key: "hit", subject: r.hitEdge, base: r.nginx, target: cacheTargetHit},
		{key: "miss", subject: r.missEdge, base: r.plain, targetOf: missNginx},
		missNginx,
		{key: "miss_vs_nginx", subject: r.missEdge, base: r.nginxMiss, target: cacheTargetMissVsNginx},
	}

	// The edges.
	for i, t := range []*cacheTarget{r.hitEdge, r.missEdge, r.plain} {
		listen, admin := addr(1+2*i), addr(2+2*i)
		t.url, t.adm = "http://"+listen+cachePath, "http://"+admin
		p, err := env.startEdge(ctx, t.name, bin, cacheEdgeConfig(listen, admin, backendAddr, t != r.plain), t.adm+"/readyz")
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		t.proc = p
	}

	// nginx: for hits and for misses, each its cache on a tmpfs of its
	// own (misses would evict the hits' entry), and without a cache.
	r.nginxTmpfs = true
	for i, t := range []*cacheTarget{r.nginx, r.nginxMiss, r.nginxPlain} {
		listen := addr(7 + i)
		cacheDir := ""
		if t != r.nginxPlain {
			dir, tmpfs, err := nginxCacheDir(env)
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			r.nginxTmpfs = r.nginxTmpfs && tmpfs
			cacheDir = dir
		}
		p, err := startCacheNginx(ctx, env, t.name, listen, backendAddr, cacheDir)
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		t.proc, t.url = p, "http://"+listen+cachePath
		t.pids = func() []int { return append([]int{p.Pid()}, children(p.Pid())...) }
	}

	for _, t := range r.targets() {
		if err := t.check(ctx, t); err != nil {
			t.failed = fmt.Errorf("answer check: %v", err)
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n%s\n", t.name, t.failed, indent(t.proc.LogTail(10)))
		}
	}

	rounds := pairedRounds(o.Rounds)
	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("proxies and backend on core %d, wrk on core %d", serverCore, loadCore)
	}
	where := "tmpfs"
	if !r.nginxTmpfs {
		where = "NOT a tmpfs"
	}
	logf("cache: %d rounds of 4 pairs (edge hit, nginx hit; edge miss, edge without cache; nginx miss, nginx without cache; edge miss, nginx miss); wrk -t1 -c50 -d%s per run; warm-up %s; %s; nginx caches on %s",
		rounds, durArg(o.Duration), o.Warmup, pin, where)
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		for i := range r.pairs {
			c := r.pairs[(round-1+i)%len(r.pairs)]
			if c.subject.failed != nil || c.base.failed != nil || ctx.Err() != nil {
				continue
			}
			pair := [2]*loadEdge{&c.base.loadEdge, &c.subject.loadEdge}
			if (round+i)%2 == 0 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			rps, ok := env.measurePair(ctx, pair, round, &r.problemLog)
			if !ok {
				continue
			}
			if pair[0] != &c.base.loadEdge {
				rps[0], rps[1] = rps[1], rps[0]
			}
			c.ratios = append(c.ratios, rps[1]/rps[0])
			logf("  round %d ratio_%-4s %.3f", round, c.key, rps[1]/rps[0])
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dir := os.Getenv("BENCH_CACHE_PROFILE"); dir != "" {
		env.profileEdges(ctx, []*loadEdge{&r.hitEdge.loadEdge, &r.missEdge.loadEdge, &r.plain.loadEdge}, dir)
	}
	r.readCounts()
	for _, t := range r.targets() {
		if t.failed != nil {
			r.problem("%s: %v", t.name, firstLines(t.failed.Error()))
			continue
		}
		pids := []int{t.proc.Pid()}
		if t.pids != nil {
			pids = t.pids()
		}
		for _, pid := range pids {
			rss, err := peakRSS(pid)
			if err != nil {
				r.problem("%s: peak RSS: %v", t.name, err)
			}
			t.rss += rss
		}
	}
	return r.report("cache", func(w io.Writer) { printCache(w, env, r) }, cacheJSON(r))
}

// readCounts reads the edges' cache counters and checks that the hit edge
// hit and the miss edge missed.
func (r *cacheRun) readCounts() {
	count := func(t *cacheTarget, result string) float64 {
		m, err := scrapeMetrics(t.adm + "/metrics")
		if err != nil {
			r.problem("%s: metrics: %v", t.name, err)
			return -1
		}
		return m[`meshgate_cache_requests_total{result="`+result+`",route="item"}`]
	}
	if r.hitEdge.failed == nil {
		// One miss stored the entry (the check's first request); a few
		// more would be noise, many mean the hits were not hits.
		r.hitEdgeMisses = count(r.hitEdge, "miss")
		if r.hitEdgeMisses > 10 {
			r.problem("cache-hit: %.0f misses: the hit runs went upstream", r.hitEdgeMisses)
		}
	}
	if r.missEdge.failed == nil {
		r.missEdgeHits = count(r.missEdge, "hit") + count(r.missEdge, "collapsed")
		r.missEdgeMisses = count(r.missEdge, "miss")
		if r.missEdgeHits > 0 {
			r.problem("cache-miss: %.0f hits or collapsed requests: the miss runs were not all misses", r.missEdgeHits)
		}
	}
}

// cacheEdgeConfig is an edge with one route, cached or not, to the backend.
func cacheEdgeConfig(listen, admin, backend string, cached bool) string {
	cache := ""
	if cached {
		cache = "    cache: {}\n"
	}
	return fmt.Sprintf(`# meshgate edge config of the cache benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: %s
  pprof: true
listeners:
  - name: http
    address: %s
routes:
  - name: item
    match:
      path: {prefix: /}
    upstream: backend
%supstreams:
  - name: backend
    protocol: http1
    endpoints:
      - address: %s
`, admin, listen, cache, backend)
}

// nginxCacheDir makes nginx's cache directory on /dev/shm when that is a
// tmpfs (it reports whether it is), else in the scratch dir, with a warning.
func nginxCacheDir(env *Env) (string, bool, error) {
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	parent, tmpfs := "/dev/shm", false
	if err := syscall.Statfs(parent, &st); err == nil && st.Type == tmpfsMagic {
		tmpfs = true
	} else if err := syscall.Statfs(env.Tmp, &st); err == nil && st.Type == tmpfsMagic {
		parent, tmpfs = env.Tmp, true
	} else {
		parent = env.Tmp
		fmt.Fprintf(os.Stderr, "bench: warning: cache: no tmpfs at /dev/shm; nginx's cache is on %s (disk, through the page cache)\n", parent)
	}
	dir, err := os.MkdirTemp(parent, "meshgate-bench-nginx-cache-")
	if err != nil {
		return "", false, err
	}
	// nginx's worker runs unprivileged.
	if err := os.Chmod(dir, 0o777); err != nil {
		os.RemoveAll(dir)
		return "", false, err
	}
	return dir, tmpfs, nil
}

// startCacheNginx starts nginx as the dataplane suite's, with proxy_cache
// in cacheDir unless it is "".
func startCacheNginx(ctx context.Context, env *Env, name, listen, backend, cacheDir string) (*Proc, error) {
	prefix := filepath.Join(env.Tmp, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	_ = os.Chmod(env.Tmp, 0o755) // the worker runs unprivileged
	conf := filepath.Join(prefix, "nginx.conf")
	config := nginxConfig(prefix, listen, backend)
	if cacheDir != "" {
		config = nginxCacheConfig(prefix, listen, backend, cacheDir)
	}
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, err
	}
	p, err := env.start(name, nil, env.pinned(serverCore, "nginx",
		"-p", prefix+"/", "-c", conf, "-e", filepath.Join(prefix, "error.log"))...)
	if err != nil {
		return nil, err
	}
	// Ready: the upstream's answer through nginx (this first request also
	// fills the cache).
	if err := waitHTTP(ctx, p, "http://"+listen+cachePath, readyWait); err != nil {
		p.Stop()
		errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		return nil, fmt.Errorf("nginx failed to start: %v\n%s\n%s", err, indent(p.LogTail(10)), indent(string(errLog)))
	}
	return p, nil
}

// nginxCacheConfig is the dataplane suite's nginx (nginxConfig) with a
// proxy_cache in cacheDir: responses kept as their Cache-Control says, the
// cache's verdict in X-Cache-Status.
func nginxCacheConfig(prefix, listen, backend, cacheDir string) string {
	c := nginxConfig(prefix, listen, backend)
	c = strings.Replace(c, "# nginx reverse proxy of the dataplane benchmark", "# nginx caching reverse proxy of the cache benchmark", 1)
	c = strings.Replace(c, "    upstream backend {", fmt.Sprintf(`    # The cache: in memory (a tmpfs), keys and metadata in a shared zone.
    proxy_cache_path %s levels=1:2 keys_zone=bench:8m max_size=64m inactive=1h use_temp_path=off;

    upstream backend {`, cacheDir), 1)
	c = strings.Replace(c, `            proxy_set_header Connection "";`, `            proxy_set_header Connection "";
            proxy_cache bench;
            add_header X-Cache-Status $upstream_cache_status;`, 1)
	return c
}

// cacheGet makes one GET of url and returns its status, header and body.
func cacheGet(ctx context.Context, url string) (int, http.Header, []byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, body, err
}

// checkCacheAnswer GETs url (twice when twice) and judges the last answer:
// 200 with the backend's 1 KiB, and the field name's value by want.
func checkCacheAnswer(ctx context.Context, url string, twice bool, name string, want func(string) bool) error {
	n := 1
	if twice {
		n = 2
	}
	for i := 1; i <= n; i++ {
		code, h, body, err := cacheGet(ctx, url)
		switch {
		case err != nil:
			return err
		case code != http.StatusOK || len(body) != 1024:
			return fmt.Errorf("GET %s: status %d, %d bytes; want 200 and the backend's 1024", url, code, len(body))
		case i == n && !want(h.Get(name)):
			return fmt.Errorf("GET %s (request %d): %s: %q", url, i, name, h.Get(name))
		}
	}
	return nil
}

func checkCacheHitEdge(ctx context.Context, t *cacheTarget) error {
	return checkCacheAnswer(ctx, t.url, true, "Cache-Status", func(v string) bool { return strings.HasPrefix(v, "meshgate; hit") })
}

func checkCacheNginx(ctx context.Context, t *cacheTarget) error {
	return checkCacheAnswer(ctx, t.url, true, "X-Cache-Status", func(v string) bool { return v == "HIT" })
}

func checkCacheMissEdge(ctx context.Context, t *cacheTarget) error {
	for i := range 2 {
		url := fmt.Sprintf("%s?u=check-%d-%d", t.url, time.Now().UnixNano(), i)
		err := checkCacheAnswer(ctx, url, false, "Cache-Status", func(v string) bool {
			return strings.Contains(v, "fwd=uri-miss") && strings.HasSuffix(v, "; stored")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func checkCacheNginxMiss(ctx context.Context, t *cacheTarget) error {
	for i := range 2 {
		url := fmt.Sprintf("%s?u=check-%d-%d", t.url, time.Now().UnixNano(), i)
		if err := checkCacheAnswer(ctx, url, false, "X-Cache-Status", func(v string) bool { return v == "MISS" }); err != nil {
			return err
		}
	}
	return nil
}

// checkCachePlain: no cache's verdict on the answer (an edge's
// Cache-Status, nginx's X-Cache-Status).
func checkCachePlain(ctx context.Context, t *cacheTarget) error {
	return checkCacheAnswer(ctx, t.url+"?u=check", false, "Cache-Status", func(v string) bool { return v == "" })
}

// cacheJSON is the suite's fragment: rps_<key>, cpu_us_per_req_<key> and
// rss_mb_<key> of the four proxies, ratio_hit and ratio_miss with their
// targets, the edges' cache counts, the rounds and the problems.
func cacheJSON(r *cacheRun) map[string]any {
	out := map[string]any{
		"body_bytes":    1024,
		"cache_control": cacheControl,
		"nginx_tmpfs":   r.nginxTmpfs,
	}
	if r.failed() {
		out["error"] = r.summary()
	}
	for _, t := range r.targets() {
		if len(t.rps) > 0 {
			out["rps_"+t.key] = round(median(t.rps), 1)
		}
		if len(t.cpuUS) > 0 {
			out["cpu_us_per_req_"+t.key] = round(median(t.cpuUS), 2)
		}
		if t.rss > 0 {
			out["rss_mb_"+t.key] = round(float64(t.rss)/(1<<20), 1)
		}
	}
	rounds := 0
	for _, c := range r.pairs {
		if g, ok := c.goal(); ok {
			out["target_"+c.key] = round(g, 3)
		}
		if x, ok := c.ratio(); ok {
			out["ratio_"+c.key] = round(x, 3)
			rounds = max(rounds, len(c.ratios))
		}
	}
	out["rounds"] = rounds
	for k, v := range map[string]float64{"hit_edge_misses": r.hitEdgeMisses, "miss_edge_hits": r.missEdgeHits, "miss_edge_misses": r.missEdgeMisses} {
		if v >= 0 {
			out[k] = v
		}
	}
	return out
}

func printCache(w io.Writer, env *Env, r *cacheRun) {
	fmt.Fprintf(w, "cache: medians of %d round(s); req/s from wrk -t1 -c50 -d%s of a %d-byte body (Cache-Control: %s); ratio = median over rounds of the pair's req/s ratio in alternating slices\n",
		pairedRounds(env.Opts.Rounds), durArg(env.Opts.Duration), 1024, cacheControl)
	const row = "%-17s %-40s %9s %10s %8s\n"
	fmt.Fprintf(w, row, "proxy", "answers", "req/s", "CPU µs/req", "RSS MB")
	num := func(xs []float64, format string) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format, median(xs))
	}
	for _, t := range r.targets() {
		rss := "-"
		if t.rss > 0 {
			rss = fmt.Sprintf("%.1f", float64(t.rss)/(1<<20))
		}
		fmt.Fprintf(w, row, t.name, t.what, num(t.rps, "%.0f"), num(t.cpuUS, "%.1f"), rss)
	}
	const vrow = "%-52s %7s %7s  %s\n"
	fmt.Fprintf(w, vrow, "ratio", "value", "target", "")
	for _, c := range r.pairs {
		x, ok := c.ratio()
		g, hasGoal := c.goal()
		target, verdict := "-", "(reference)"
		if hasGoal {
			target, verdict = fmt.Sprintf("≥ %.3g", g), atLeast(x, g, ok)
		}
		fmt.Fprintf(w, vrow, fmt.Sprintf("%s (%s ÷ %s)", c.key, c.subject.name, c.base.name), optNum(x, ok), target, verdict)
	}
	var notes []string
	if r.hitEdgeMisses >= 0 {
		notes = append(notes, fmt.Sprintf("cache-hit went upstream %.0f times", r.hitEdgeMisses))
	}
	if r.missEdgeHits >= 0 {
		notes = append(notes, fmt.Sprintf("cache-miss: %.0f misses, %.0f hits", r.missEdgeMisses, r.missEdgeHits))
	}
	if !r.nginxTmpfs {
		notes = append(notes, "nginx's caches NOT on a tmpfs")
	}
	notes = append(notes, "CPU: the proxy's utime+stime / requests (nginx: master, worker, cache manager and loader)")
	fmt.Fprintln(w, strings.Join(notes, "; "))
	var failed []string
	for _, t := range r.targets() {
		if t.failed != nil {
			failed = append(failed, t.name)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "failed: %s\n", strings.Join(failed, ", "))
	}
}
