package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// The sidecar suite: the memory of a sidecar and the latency it adds on the
// east-west path. Two sidecars run from bin/sidecar with SVIDs of an
// in-memory CA: B in front of the bench backend (mTLS inbound, callers
// allowed: the client's SPIFFE ID) and A beside a caller (a dedicated
// outbound port leading to the mesh service "backend" at B's inbound). The
// backend and both sidecars run on core 0 (GOMAXPROCS=1), vegeta on core 1.
// Per round, at a fixed rate (BENCH_SIDECAR_RATE, default 1000 req/s):
// direct (vegeta → backend) and mesh (vegeta → A → mTLS → B → backend),
// p50/p99 each; the table shows medians over the rounds.
//
// Memory: idle RSS is VmRSS 1 s after the path answered (the larger of A and
// B); load RSS is VmHWM after the runs (the larger of A and B).

const (
	sidecarTrustDomain = "example.org"
	sidecarClientID    = "spiffe://example.org/client"
	sidecarBackendID   = "spiffe://example.org/backend"
	sidecarSVIDTTL     = time.Hour
	sidecarDefaultRate = 1000

	// Targets of the issue.
	sidecarIdleRSSTargetMB  = 15.0
	sidecarLoadRSSTargetMB  = 30.0
	sidecarAddedP99TargetMS = 1.0
)

// sidecarIdentity is where one workload's SVID files are.
type sidecarIdentity struct {
	Cert, Key, Bundle string
}

func identityIn(dir string) sidecarIdentity {
	return sidecarIdentity{
		Cert:   filepath.Join(dir, pki.SVIDCertFile),
		Key:    filepath.Join(dir, pki.SVIDKeyFile),
		Bundle: filepath.Join(dir, pki.SVIDBundleFile),
	}
}

// writeSidecarIdentities creates an in-memory CA for example.org and writes
// the SVIDs of the client and the backend into dir/client and dir/backend.
func writeSidecarIdentities(dir string) (client, backend sidecarIdentity, err error) {
	_, ids, err := writeIdentities(dir, sidecarTrustDomain, map[string]string{"client": sidecarClientID, "backend": sidecarBackendID})
	return ids["client"], ids["backend"], err
}

// writeIdentities creates an in-memory CA for the trust domain td and
// writes an SVID of each SPIFFE ID of ids (directory name → ID) with the
// CA's bundle into dir/<name>.
func writeIdentities(dir, td string, ids map[string]string) (*pki.CA, map[string]sidecarIdentity, error) {
	ca, err := pki.NewCA(spiffeid.RequireTrustDomainFromString(td), pki.InitOptions{})
	if err != nil {
		return nil, nil, err
	}
	out, err := issueIdentities(ca, dir, ids, sidecarSVIDTTL)
	return ca, out, err
}

// issueIdentities writes a new SVID of ttl for each SPIFFE ID of ids
// (directory name → ID), with ca's bundle, into dir/<name>.
func issueIdentities(ca *pki.CA, dir string, ids map[string]string, ttl time.Duration) (map[string]sidecarIdentity, error) {
	out := make(map[string]sidecarIdentity, len(ids))
	for sub, id := range ids {
		svid, err := ca.IssueX509SVID(spiffeid.RequireFromString(id), ttl)
		if err != nil {
			return nil, fmt.Errorf("issue %s: %v", id, err)
		}
		d := filepath.Join(dir, sub)
		if err := pki.WriteSVID(d, svid, ca.Bundle()); err != nil {
			return nil, err
		}
		out[sub] = identityIn(d)
	}
	return out, nil
}

func sidecarIdentityYAML(id sidecarIdentity) string {
	return fmt.Sprintf(`identity:
  files:
    cert_file: %q
    key_file: %q
    bundle_file: %q
`, id.Cert, id.Key, id.Bundle)
}

// sidecarBConfig is the backend's sidecar: mTLS inbound in front of the app,
// callable by the client only.
func sidecarBConfig(id sidecarIdentity, app, inbound string) string {
	return `# sidecar B of the sidecar benchmark (written by internal/bench): in front of the backend.
log:
  access: "off"
  level: warn
` + sidecarIdentityYAML(id) + fmt.Sprintf(`service:
  name: backend
  app: %s
inbound:
  address: %s
  allow: [%s]
`, app, inbound, sidecarClientID)
}

// sidecarAConfig is the caller's sidecar: its app is never called (the
// schema requires one, and an inbound listener); port leads to the mesh
// service "backend" at backendInbound.
func sidecarAConfig(id sidecarIdentity, inbound, outbound, port, backendInbound string) string {
	return `# sidecar A of the sidecar benchmark (written by internal/bench): the caller's.
log:
  access: "off"
  level: warn
` + sidecarIdentityYAML(id) + fmt.Sprintf(`service:
  name: client
  app: 127.0.0.1:1
inbound:
  address: %s
outbound:
  address: %s
  ports:
    - {service: backend, address: %s}
services:
  - name: backend
    spiffe_ids: [%s]
    endpoints: [{address: %s}]
`, inbound, outbound, port, sidecarBackendID, backendInbound)
}

// sidecarRate reads BENCH_SIDECAR_RATE.
func sidecarRate(getenv func(string) string) (int, error) {
	v := getenv("BENCH_SIDECAR_RATE")
	if v == "" {
		return sidecarDefaultRate, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("BENCH_SIDECAR_RATE=%q: want a positive integer", v)
	}
	return n, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago (all are held open until the last is found, so none repeats).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// statusKB reads a "Key:   N kB" line of /proc/PID/status, in bytes.
func statusKB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusKB(f, key)
}

func parseStatusKB(r io.Reader, key string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in status", key)
}

// maxStatus is the largest value of key over procs, and each one's value in
// MiB ("sidecar-a 12.1, sidecar-b 11.8").
func maxStatus(procs []*Proc, key string) (int64, string, error) {
	var top int64
	var each []string
	for _, p := range procs {
		b, err := statusKB(p.Pid(), key)
		if err != nil {
			return 0, "", fmt.Errorf("%s of %s (pid %d): %v", key, p.Name, p.Pid(), err)
		}
		top = max(top, b)
		each = append(each, fmt.Sprintf("%s %.1f", p.Name, float64(b)/(1<<20)))
	}
	return top, strings.Join(each, ", "), nil
}

// waitTCP polls addr until it accepts a connection, the process exits, or
// the deadline passes.
func waitTCP(ctx context.Context, p *Proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("process exited: %v", err)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v: %v", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scTarget is direct or mesh: the URL and the processes on its path.
type scTarget struct {
	name     string
	url      string
	procs    []*Proc
	p50, p99 []float64
}

// sidecarRun is what the suite measured.
type sidecarRun struct {
	rate               int
	idleRSS, loadRSS   int64  // bytes; 0 when not measured
	idleEach, loadEach string // per sidecar, for the table
	direct, mesh       *scTarget
	problemLog
}

func runSidecar(ctx context.Context, env *Env) (json.RawMessage, error) {
	o := env.Opts
	rate, err := sidecarRate(os.Getenv)
	if err != nil {
		return nil, err
	}
	sidecarBin := filepath.Join(env.Bin, "sidecar")
	if _, err := os.Stat(sidecarBin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", sidecarBin, err)
	}
	vegeta, err := env.vegeta(ctx)
	if err != nil {
		return nil, err
	}

	dir := filepath.Join(env.Tmp, "sidecar")
	clientID, backendID, err := writeSidecarIdentities(dir)
	if err != nil {
		return nil, fmt.Errorf("identities: %v", err)
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	backendAddr, bInbound, aInbound, aOutbound, aPort := addr(0), addr(1), addr(2), addr(3), addr(4)

	// The backend.
	var started []*Proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}()
	backend, err := env.startBackend(ctx, "sidecar-backend", backendAddr)
	if err != nil {
		return nil, err
	}
	started = append(started, backend)

	// The sidecars.
	startSidecar := func(name, config string) (*Proc, error) {
		cfg := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
			return nil, err
		}
		p, err := env.start(name, []string{"GOMAXPROCS=1"}, env.pinned(serverCore, sidecarBin, "--config", cfg)...)
		if err != nil {
			return nil, err
		}
		started = append(started, p)
		return p, nil
	}
	sb, err := startSidecar("sidecar-b", sidecarBConfig(backendID, backendAddr, bInbound))
	if err != nil {
		return nil, err
	}
	sa, err := startSidecar("sidecar-a", sidecarAConfig(clientID, aInbound, aOutbound, aPort, bInbound))
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, sb, bInbound, readyWait); err != nil {
		return nil, fmt.Errorf("sidecar B failed to start: %v\n%s", err, indent(sb.LogTail(15)))
	}
	meshURL := "http://" + aPort + "/"
	if err := waitHTTP(ctx, sa, meshURL, readyWait); err != nil {
		return nil, fmt.Errorf("mesh path not ready: %v\n  sidecar A:\n%s\n  sidecar B:\n%s",
			err, indent(sa.LogTail(15)), indent(sb.LogTail(15)))
	}
	sidecars := []*Proc{sa, sb}
	logf("sidecars ready: A pid %d (port %s → backend), B pid %d (inbound %s → %s)",
		sa.Pid(), aPort, sb.Pid(), bInbound, backendAddr)

	r := &sidecarRun{
		problemLog: problemLog{scope: "sidecar"},
		rate:       rate,
		direct:     &scTarget{name: "direct", url: "http://" + backendAddr + "/", procs: []*Proc{backend}},
		mesh:       &scTarget{name: "mesh", url: meshURL, procs: []*Proc{sa, sb, backend}},
	}

	// Idle memory.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Second):
	}
	if r.idleRSS, r.idleEach, err = maxStatus(sidecars, "VmRSS"); err != nil {
		r.problem("idle RSS: %v", err)
	}

	pin := "unpinned"
	if env.Pinned {
		pin = fmt.Sprintf("backend and sidecars on core %d, vegeta on core %d", serverCore, loadCore)
	}
	logf("sidecar: %d rounds; vegeta %d req/s for %s; warm-up %s; %s",
		o.Rounds, rate, durArg(o.RateDuration), o.Warmup, pin)
	for round := 1; round <= o.Rounds && ctx.Err() == nil && !r.failed(); round++ {
		for _, t := range []*scTarget{r.direct, r.mesh} {
			if ctx.Err() != nil || r.failed() {
				break
			}
			r.measure(ctx, env, vegeta, t, round)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if r.loadRSS, r.loadEach, err = maxStatus(sidecars, "VmHWM"); err != nil {
		r.problem("peak RSS: %v", err)
	}

	return r.report("sidecar", func(w io.Writer) { printSidecar(w, env, r) }, sidecarJSON(r))
}

// measure does one round on one target: a warm-up, then the fixed-rate run.
func (r *sidecarRun) measure(ctx context.Context, env *Env, vegeta string, t *scTarget, round int) {
	o := env.Opts
	// dead reports a process of the path that has exited.
	dead := func() bool {
		for _, p := range t.procs {
			if done, err := p.Exited(); done {
				r.problem("%s: %s exited during the run: %v\n%s", t.name, p.Name, err, indent(p.LogTail(10)))
				return true
			}
		}
		return false
	}
	if _, err := env.runVegeta(ctx, vegeta, t.url, r.rate, o.Warmup); err != nil {
		if ctx.Err() == nil && !dead() {
			r.problem("%s: warm-up: %v", t.name, err)
		}
		return
	}
	v, err := env.runVegeta(ctx, vegeta, t.url, r.rate, o.RateDuration)
	if err != nil {
		if ctx.Err() == nil && !dead() {
			r.problem("%s: %v", t.name, err)
		}
		return
	}
	if dead() {
		return
	}
	if p := v.SuccessProblem(); p != "" {
		r.problem("%s: round %d: %s", t.name, round, p)
	}
	if math.Abs(v.Throughput-float64(r.rate)) > 0.05*float64(r.rate) {
		fmt.Fprintf(os.Stderr, "bench: warning: sidecar %s round %d: throughput %.0f req/s, asked %d\n",
			t.name, round, v.Throughput, r.rate)
	}
	t.p50 = append(t.p50, v.P50ms())
	t.p99 = append(t.p99, v.P99ms())
	logf("  round %d %-6s at %d req/s p50 %.3f ms, p99 %.3f ms", round, t.name, r.rate, v.P50ms(), v.P99ms())
}

// sidecarResult is the suite's JSON fragment. A value that was not measured
// is left out; error is set when the suite failed.
type sidecarResult struct {
	IdleRSSMB   *float64 `json:"idle_rss_mb,omitempty"`
	LoadRSSMB   *float64 `json:"load_rss_mb,omitempty"`
	DirectP50ms *float64 `json:"direct_p50_ms,omitempty"`
	DirectP99ms *float64 `json:"direct_p99_ms,omitempty"`
	MeshP50ms   *float64 `json:"mesh_p50_ms,omitempty"`
	MeshP99ms   *float64 `json:"mesh_p99_ms,omitempty"`
	Error       string   `json:"error,omitempty"`
}

func sidecarJSON(r *sidecarRun) sidecarResult {
	ms := func(xs []float64) *float64 {
		if len(xs) == 0 {
			return nil
		}
		v := round(median(xs), 3)
		return &v
	}
	mb := func(b int64) *float64 {
		if b <= 0 {
			return nil
		}
		v := round(float64(b)/(1<<20), 1)
		return &v
	}
	return sidecarResult{
		IdleRSSMB:   mb(r.idleRSS),
		LoadRSSMB:   mb(r.loadRSS),
		DirectP50ms: ms(r.direct.p50),
		DirectP99ms: ms(r.direct.p99),
		MeshP50ms:   ms(r.mesh.p50),
		MeshP99ms:   ms(r.mesh.p99),
		Error:       r.summary(),
	}
}

func printSidecar(w io.Writer, env *Env, r *sidecarRun) {
	fmt.Fprintf(w, "sidecar: medians of %d round(s); latency at %d req/s for %s (vegeta); mesh = A → mTLS → B → backend\n",
		env.Opts.Rounds, r.rate, durArg(env.Opts.RateDuration))
	row := func(w io.Writer, name, value, target, verdict string, note ...string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-14s %9s %10s  %-4s  %s", name, value, target, verdict, strings.Join(note, "")), " "))
	}
	row(w, "measure", "value", "target", "")
	num, verdict := optNum, atMost
	d50, d99, m50, m99 := median(r.direct.p50), median(r.direct.p99), median(r.mesh.p50), median(r.mesh.p99)
	haveD, haveM := len(r.direct.p50) > 0, len(r.mesh.p50) > 0
	row(w, "direct p50 ms", num(d50, haveD), "", "")
	row(w, "direct p99 ms", num(d99, haveD), "", "")
	row(w, "mesh p50 ms", num(m50, haveM), "", "")
	row(w, "mesh p99 ms", num(m99, haveM), "", "")
	row(w, "added p50 ms", num(m50-d50, haveD && haveM), "", "")
	row(w, "added p99 ms", num(m99-d99, haveD && haveM),
		fmt.Sprintf("≤ %g ms", sidecarAddedP99TargetMS), verdict(m99-d99, sidecarAddedP99TargetMS, haveD && haveM))
	mb := func(b int64) (float64, bool) { return float64(b) / (1 << 20), b > 0 }
	idle, haveIdle := mb(r.idleRSS)
	load, haveLoad := mb(r.loadRSS)
	mbs := func(x float64, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.1f", x)
	}
	row(w, "idle RSS MB", mbs(idle, haveIdle),
		fmt.Sprintf("≤ %g MB", sidecarIdleRSSTargetMB), verdict(idle, sidecarIdleRSSTargetMB, haveIdle), r.idleEach)
	row(w, "load RSS MB", mbs(load, haveLoad),
		fmt.Sprintf("≤ %g MB", sidecarLoadRSSTargetMB), verdict(load, sidecarLoadRSSTargetMB, haveLoad), r.loadEach)
	fmt.Fprintf(w, "RSS in MiB: the larger of sidecars A and B; idle = VmRSS 1 s after ready, load = VmHWM after the runs. Targets are for %d req/s.\n",
		sidecarDefaultRate)
}
