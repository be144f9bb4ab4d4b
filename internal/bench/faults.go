package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/pki"
)

// Suite faults (issue 16): what clients see while a mesh breaks under
// load. Real processes on loopback: an edge, and a service "backend" of two
// instances, each a backend behind its sidecar; the sidecars join the
// edge's cluster, which is how the edge finds them (discovery), over SPIFFE
// mTLS. Every setting is the default (route timeout, retries, probes) but
// the addresses. A client in this process sends GETs at a fixed rate
// (BENCH_FAULTS_RATES, default 300 and 1000 a second) for faultsLoad, and
// faultsAt into the run:
//
//	crash   one sidecar is killed (SIGKILL)
//	hang    one sidecar is stopped (SIGSTOP: its host's kernel still
//	        accepts connections, nothing answers), until the run is over
//	reload  the edge reloads its config (SIGHUP after a change) every
//	        faultsReloadEvery, until the run is over
//	rotation  every process's SVID is replaced by a new one of
//	        faultsRotationTTL (files rewritten, as a SPIFFE helper
//	        does) every faultsRotateEvery, until the run is over; the
//	        long-lived ones are written back after
//	rolling every sidecar in turn is stopped (SIGTERM: it leaves the
//	        cluster and drains) and started again, the next once the
//	        edge has it back in its rotation
//	fleet   a second edge and a third instance join, and all five
//	        nodes are restarted in turn, edges included, the client
//	        using both edges (faults_fleet.go; a run of fleetLoad)
//
// Through reload and rotation, faultsStreams WebSocket connections and as
// many gRPC bidirectional calls stay open through the edge and a sidecar
// to the backend, which echoes them (streams.go, grpcstreams.go); one that
// ends or stops echoing is dropped.
//
// A request fails when it gets anything but 200 (the client waits 60 s, far
// past the route's 15 s timeout, so the edge's answer is what counts). Between
// scenarios the mesh is made whole again and both instances must be in the
// edge's rotation before the next one starts.
//
// Then, on a cluster in this process (detect.go): how long a silent host
// takes to be declared dead, and whether lossy links make the cluster
// declare a healthy member dead.
//
// Not measured here yet (issue 16): restarts of the edge itself.

const (
	faultsTrustDomain = "faults.example"
	faultsEdgeID      = "spiffe://faults.example/edge"
	faultsServiceID   = "spiffe://faults.example/backend"
	faultsLoad        = 20 * time.Second
	faultsAt          = 5 * time.Second
	faultsReloadEvery = 150 * time.Millisecond // 100 reloads in the 15 s after the fault
	faultsRotateEvery = 150 * time.Millisecond // 100 rotations in the 15 s after the fault
	faultsRotationTTL = 5 * time.Second
	faultsStreams     = 20               // WebSocket streams open through reloads and rotations
	faultsWhole       = 60 * time.Second // to have both instances in rotation again
)

var faultsDefaultRates = []int{300, 1000}

// faultsScenarios in run order.
var faultsScenarios = []string{"crash", "hang", "reload", "rotation", "rolling", "fleet"}

// faultsMesh is the suite's processes and where they are.
type faultsMesh struct {
	env        *Env
	dir        string
	edgeBin    string
	scBin      string
	edge       *Proc
	edgeCfg    string
	edgeYAML   func(reload int) string
	public     string // the edge's URL
	publicAddr string // and its address
	admin      string // the edge's admin URL
	sidecars   [2]*Proc
	scCfg      [2]string
	scAdmin    [2]string // the sidecars' admin URLs
	restarts   int
	ca         *pki.CA
	idSpec     map[string]string // identity directory → SPIFFE ID
	ids        map[string]sidecarIdentity
	gossip     string   // the edge's gossip address
	edgeJoin   []string // whom the edge joins (the fleet scenario's second edge)
}

func runFaults(ctx context.Context, env *Env) (json.RawMessage, error) {
	rates, err := faultsRates(os.Getenv)
	if err != nil {
		return nil, err
	}
	lossy, err := lossyDuration(os.Getenv)
	if err != nil {
		return nil, err
	}
	scenarios, err := faultsOnly(os.Getenv)
	if err != nil {
		return nil, err
	}
	m, err := startFaultsMesh(ctx, env)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	r := &faultsRun{problemLog: problemLog{scope: "faults"}, rates: rates, outcomes: map[string]map[int]*loadOutcome{}}
	logf("faults: %d scenarios × %v req/s, %s of GETs each, the fault %s in; edge %s", len(scenarios), rates, durArg(faultsLoad), durArg(faultsAt), m.public)
	for _, rate := range rates {
		for _, sc := range scenarios {
			if ctx.Err() != nil || r.failed() {
				break
			}
			if sc == "detect" { // not a load scenario: after them, below
				continue
			}
			if err := m.whole(ctx); err != nil {
				r.problem("before %s at %d req/s: %v", sc, rate, err)
				break
			}
			var out *loadOutcome
			var err error
			if sc == "fleet" {
				out, err = m.fleet(ctx, rate)
			} else {
				out, err = m.scenario(ctx, sc, rate)
			}
			if err != nil {
				r.problem("%s at %d req/s: %v", sc, rate, err)
				break
			}
			if r.outcomes[sc] == nil {
				r.outcomes[sc] = map[int]*loadOutcome{}
			}
			r.outcomes[sc][rate] = out
			logf("  %-6s at %4d req/s: %d of %d failed%s; %d took over 1 s, the slowest %.1f s%s", sc, rate, out.failedN(), out.sent, out.describe(),
				out.slow, out.max.Seconds(), out.outText())
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	m.stop() // the processes would share the cores with the cluster below
	if !slices.Contains(scenarios, "detect") {
		return r.report("faults", func(w io.Writer) { printFaults(w, r) }, faultsJSON(r))
	}
	logf("faults: a silent host, %d times, and two at once, %d times; then %s of lossy links (%d nodes in this process)",
		detectTrials, detectTrials, durArg(lossy), detectNodes)
	if d, err := measureDetectAndLoss(ctx, lossy); err != nil {
		r.problem("%v", err)
	} else {
		r.detect = d
		logf("  silent host dead everywhere after %s; two at once after %s; lossy links (%.0f %% loss): %d false deaths (%d writes held back by a loss)",
			fmtSeconds(d.detect), fmtSeconds(d.detect2), d.link.Loss*100, d.falseDead, d.delayed)
		if d.falseDead > 0 {
			r.problem("%d false deaths on lossy links (target 0)", d.falseDead)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r.report("faults", func(w io.Writer) { printFaults(w, r) }, faultsJSON(r))
}

// faultsOnly reads BENCH_FAULTS_ONLY, the scenarios to run ("rolling,hang";
// "detect" is the silent host and the lossy links), all when empty.
func faultsOnly(getenv func(string) string) ([]string, error) {
	all := append(slices.Clone(faultsScenarios), "detect")
	v := getenv("BENCH_FAULTS_ONLY")
	if v == "" {
		return all, nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(all, f) {
			return nil, fmt.Errorf("BENCH_FAULTS_ONLY=%q: %q is not one of %s", v, f, strings.Join(all, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// faultsRates reads BENCH_FAULTS_RATES ("300,1000").
func faultsRates(getenv func(string) string) ([]int, error) {
	v := getenv("BENCH_FAULTS_RATES")
	if v == "" {
		return faultsDefaultRates, nil
	}
	var rates []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("BENCH_FAULTS_RATES=%q: want positive request rates separated by commas", v)
		}
		rates = append(rates, n)
	}
	return rates, nil
}

func startFaultsMesh(ctx context.Context, env *Env) (*faultsMesh, error) {
	m := &faultsMesh{env: env, dir: filepath.Join(env.Tmp, "faults"),
		edgeBin: filepath.Join(env.Bin, "edge"), scBin: filepath.Join(env.Bin, "sidecar")}
	if env.Opts.Edge != "" {
		m.edgeBin = env.Opts.Edge
	}
	if _, err := os.Stat(m.scBin); err != nil {
		return nil, fmt.Errorf("%s not built (make build): %v", m.scBin, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("the backend is this binary: %v", err)
	}
	m.idSpec = map[string]string{"edge": faultsEdgeID, "backend-0": faultsServiceID, "backend-1": faultsServiceID,
		"edge-1": faultsEdgeID, "backend-2": faultsServiceID} // the last two for the fleet scenario
	ca, ids, err := writeIdentities(m.dir, faultsTrustDomain, m.idSpec)
	m.ca = ca
	if err != nil {
		return nil, fmt.Errorf("identities: %v", err)
	}
	ports, err := freePorts(12)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	public, admin, gossip := addr(0), addr(1), addr(2)
	m.public, m.admin, m.publicAddr = "http://"+public+"/", "http://"+admin, public
	m.ids, m.gossip = ids, gossip
	m.edgeYAML = func(reload int) string {
		return faultsEdgeYAML("edge", admin, public, gossip, m.edgeJoin, ids["edge"], reload)
	}
	m.edgeCfg = filepath.Join(m.dir, "edge.yaml")
	if err := os.WriteFile(m.edgeCfg, []byte(m.edgeYAML(0)), 0o644); err != nil {
		return nil, err
	}
	for i := range 2 {
		backendAddr := addr(3 + 3*i)
		// The transform suite's backend (this binary): a 1 KiB document,
		// and an echo of WebSocket streams.
		b, err := env.start(fmt.Sprintf("faults-backend-%d", i), []string{transformBackendEnv + "=" + backendAddr}, self)
		if err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, b, "http://"+backendAddr+"/", readyWait); err != nil {
			return nil, fmt.Errorf("backend failed to start: %v\n%s", err, indent(b.LogTail(10)))
		}
		m.scCfg[i] = filepath.Join(m.dir, fmt.Sprintf("sidecar-%d.yaml", i))
		m.scAdmin[i] = "http://" + addr(10+i)
		cfg := faultsSidecarYAML(i, addr(10+i), backendAddr, addr(4+3*i), addr(5+3*i), gossip, ids[fmt.Sprintf("backend-%d", i)])
		if err := os.WriteFile(m.scCfg[i], []byte(cfg), 0o644); err != nil {
			return nil, err
		}
	}
	if m.edge, err = env.start("faults-edge", nil, m.edgeBin, "--config", m.edgeCfg); err != nil {
		return nil, err
	}
	for i := range 2 {
		if err := m.startSidecar(i); err != nil {
			return nil, err
		}
	}
	if err := m.whole(ctx); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// faultsEdgeYAML is the config of an edge of the faults mesh; reload
// numbers the change a reload makes (the X-Config header).
func faultsEdgeYAML(name, admin, public, gossip string, join []string, id sidecarIdentity, reload int) string {
	joinYAML := ""
	if len(join) > 0 {
		joinYAML = "  join: [" + strings.Join(join, ", ") + "]\n"
	}
	return fmt.Sprintf(`# edge of the faults benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: %s
%slisteners:
  - name: public
    address: %s
routes:
  - name: backend
    match:
      path: {prefix: /}
    upstream: backend
    response_headers:
      set: {X-Config: "%d"}
upstreams:
  - name: backend
    service: {name: backend}
    tls: {spiffe_ids: [%s]}
cluster:
  name: %s
  bind: %s
%s`, admin, sidecarIdentityYAML(id), public, reload, faultsServiceID, name, gossip, joinYAML)
}

// faultsSidecarYAML is the config of sidecar i of the faults mesh, in
// front of the backend at app.
func faultsSidecarYAML(i int, admin, app, inbound, gossip, join string, id sidecarIdentity) string {
	return `# a sidecar of the faults benchmark (written by internal/bench).
log:
  access: "off"
  level: warn
admin:
  address: ` + admin + "\n" + sidecarIdentityYAML(id) + fmt.Sprintf(`service:
  name: backend
  app: %s
inbound:
  address: %s
  allow: [%s]
cluster:
  name: sidecar-%d
  bind: %s
  join: [%s]
`, app, inbound, faultsEdgeID, i, gossip, join)
}

func (m *faultsMesh) startSidecar(i int) error {
	name := fmt.Sprintf("faults-sidecar-%d", i)
	if m.sidecars[i] != nil {
		m.restarts++
		name += "-" + strconv.Itoa(m.restarts)
	}
	p, err := m.env.start(name, nil, m.scBin, "--config", m.scCfg[i])
	if err != nil {
		return err
	}
	m.sidecars[i] = p
	return nil
}

func (m *faultsMesh) stop() {
	for _, p := range m.sidecars {
		if p != nil {
			_ = syscall.Kill(-p.Pid(), syscall.SIGCONT)
			p.Stop()
		}
	}
	if m.edge != nil {
		m.edge.Stop()
	}
}

// whole restarts a sidecar that is gone and waits until the edge has both
// instances in rotation and answers through them.
func (m *faultsMesh) whole(ctx context.Context) error {
	for i, p := range m.sidecars {
		if done, _ := p.Exited(); done {
			if err := m.startSidecar(i); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(faultsWhole)
	var last string
	for {
		if done, err := m.edge.Exited(); done {
			return fmt.Errorf("the edge exited: %v\n%s", err, indent(m.edge.LogTail(15)))
		}
		n, err := healthyEndpoints(m.admin, "backend")
		switch {
		case err != nil:
			last = err.Error()
		case n != 2:
			last = fmt.Sprintf("%d of 2 instances in rotation", n)
		default:
			if _, err := waitOK(m.public); err == nil {
				return nil
			} else {
				last = err.Error()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mesh not whole after %v: %s\n  edge:\n%s", faultsWhole, last, indent(m.edge.LogTail(10)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitOK makes one GET and wants 200.
func waitOK(url string) (int, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.StatusCode, nil
}

// healthyEndpoints counts the endpoints of upstream in the edge's rotation:
// exported healthy (meshgate_upstream_endpoint_healthy 1: in discovery,
// passing health checks) and not ejected (meshgate_upstream_endpoint_ejected
// 1: a connect failure or outlier detection took it out on this edge).
func healthyEndpoints(admin, upstream string) (int, error) {
	series, err := scrapeMetrics(admin + "/metrics")
	if err != nil {
		return 0, err
	}
	return countHealthy(series, upstream), nil
}

func countHealthy(series map[string]float64, upstream string) int {
	const healthy, ejected = "meshgate_upstream_endpoint_healthy{", "meshgate_upstream_endpoint_ejected{"
	n := 0
	for s, v := range series {
		labels, ok := strings.CutPrefix(s, healthy)
		if !ok || v != 1 || !strings.Contains(labels, `upstream="`+upstream+`"`) {
			continue
		}
		if series[ejected+labels] != 1 {
			n++
		}
	}
	return n
}

// scenario runs the load with one fault made into it, and mends what the
// fault left (a stopped sidecar is continued, then killed: it was declared
// dead meanwhile, and whole starts it again).
func (m *faultsMesh) scenario(ctx context.Context, name string, rate int) (*loadOutcome, error) {
	victim := m.sidecars[0]
	var faultErr error
	var outAfter time.Duration
	var wg sync.WaitGroup
	stopFault := make(chan struct{})
	fault := func() {
		defer wg.Done()
		select {
		case <-time.After(faultsAt):
		case <-stopFault:
			return
		}
		switch name {
		case "crash", "hang":
			sig := syscall.SIGKILL
			if name == "hang" {
				sig = syscall.SIGSTOP
			}
			faulted := time.Now()
			if faultErr = syscall.Kill(victim.Pid(), sig); faultErr != nil {
				return
			}
			// When the edge takes the victim out of its rotation.
			for {
				if n, err := healthyEndpoints(m.admin, "backend"); err == nil && n < 2 {
					outAfter = time.Since(faulted)
					return
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-stopFault:
					return
				}
			}
		case "rotation":
			for {
				if faultErr = m.rotate(faultsRotationTTL); faultErr != nil {
					return
				}
				select {
				case <-time.After(faultsRotateEvery):
				case <-stopFault:
					return
				}
			}
		case "rolling":
			for i := range m.sidecars {
				if faultErr = m.restartSidecar(i, stopFault); faultErr != nil {
					return
				}
			}
		case "reload":
			for n := 1; ; n++ {
				if faultErr = m.reload(n); faultErr != nil {
					return
				}
				select {
				case <-time.After(faultsReloadEvery):
				case <-stopFault:
					return
				}
			}
		}
	}
	// Reloads and rotations must not drop the streams open through them.
	var st, gst *streams
	if name == "reload" || name == "rotation" {
		var err error
		if st, err = openStreams(m.publicAddr, faultsStreams); err != nil {
			return nil, fmt.Errorf("WebSocket streams: %v", err)
		}
		if gst, err = openGRPCStreams(m.publicAddr, faultsStreams); err != nil {
			st.close()
			return nil, fmt.Errorf("gRPC streams: %v", err)
		}
	}
	wg.Add(1)
	go fault()
	out := fixedRateGets(ctx, m.public, rate, faultsLoad)
	close(stopFault)
	wg.Wait()
	out.out = outAfter
	if st != nil {
		out.streams, out.dropped = st.opened, st.close()
		out.grpcStreams, out.grpcDropped = gst.opened, gst.close()
	}
	switch name {
	case "hang":
		_ = syscall.Kill(victim.Pid(), syscall.SIGCONT)
		victim.Stop() // declared dead while stopped: start it afresh
	case "rotation": // long-lived SVIDs again, before the short ones expire
		if err := m.rotate(sidecarSVIDTTL); err != nil {
			return out, err
		}
	case "reload":
		if cfg, err := lastConfigHeader(m.public); err != nil || cfg == "0" {
			return out, fmt.Errorf("the edge did not take the reloads: X-Config %q, %v", cfg, err)
		}
	}
	return out, faultErr
}

// reload has the edge reload its config, changed to answer X-Config: n.
func (m *faultsMesh) reload(n int) error {
	if err := os.WriteFile(m.edgeCfg, []byte(m.edgeYAML(n)), 0o644); err != nil {
		return err
	}
	return syscall.Kill(m.edge.Pid(), syscall.SIGHUP)
}

// rotate replaces every process's SVID with a new one of ttl.
func (m *faultsMesh) rotate(ttl time.Duration) error {
	_, err := issueIdentities(m.ca, m.dir, m.idSpec, ttl)
	return err
}

// restartSidecar stops sidecar i gracefully, starts it again and waits
// until the edge has both instances in its rotation (or stop closes).
func (m *faultsMesh) restartSidecar(i int, stop <-chan struct{}) error {
	m.sidecars[i].Stop()
	if err := m.startSidecar(i); err != nil {
		return err
	}
	for {
		if n, err := healthyEndpoints(m.admin, "backend"); err == nil && n == 2 {
			if done, _ := m.sidecars[i].Exited(); !done {
				return nil
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-stop:
			return fmt.Errorf("sidecar %d not back in the edge's rotation by the end of the run", i)
		}
	}
}

// lastConfigHeader is the X-Config the edge answers with now.
func lastConfigHeader(url string) (string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Config"), nil
}

// loadOutcome is what the clients of one fixed-rate run got.
type loadOutcome struct {
	sent     int
	failures []loadFailure
	slow     int           // answered after more than a second
	max      time.Duration // the slowest answer
	// out is how long after the fault the edge stopped exporting the
	// victim as healthy (crash and hang; 0: not seen within the run).
	out time.Duration
	// streams were open through the run (reload, rotation); dropped says
	// why each that ended early did.
	streams int
	dropped []string
	// grpcStreams and grpcDropped: the same for the gRPC calls.
	grpcStreams int
	grpcDropped []string
}

// loadFailure is a request that did not get 200: when it was sent (since
// the run's start) and what it got.
type loadFailure struct {
	at   time.Duration
	what string // "503 Service Unavailable: no healthy upstream endpoint", or the client's error
}

func (o *loadOutcome) failedN() int { return len(o.failures) }

func (o *loadOutcome) outText() string {
	t := ""
	if o.out > 0 {
		t = fmt.Sprintf("; out of the edge's rotation %.1f s after the fault", o.out.Seconds())
	}
	if o.streams > 0 {
		t += fmt.Sprintf("; %d of %d WebSocket streams dropped", len(o.dropped), o.streams)
		if len(o.dropped) > 0 {
			t += " (" + o.dropped[0] + ")"
		}
		t += fmt.Sprintf(", %d of %d gRPC streams", len(o.grpcDropped), o.grpcStreams)
		if len(o.grpcDropped) > 0 {
			t += " (" + o.grpcDropped[0] + ")"
		}
	}
	return t
}

// describe sums the failures up: when they were sent, and the commonest
// answers.
func (o *loadOutcome) describe() string {
	if len(o.failures) == 0 {
		return ""
	}
	slices.SortFunc(o.failures, func(a, b loadFailure) int { return int(a.at - b.at) })
	counts := map[string]int{}
	for _, f := range o.failures {
		counts[f.what]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return counts[b] - counts[a] })
	if len(kinds) > 3 {
		kinds = kinds[:3]
	}
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d× %s", counts[k], k)
	}
	return fmt.Sprintf(" (sent %.1f–%.1f s into the run: %s)", o.failures[0].at.Seconds(), o.failures[len(o.failures)-1].at.Seconds(), strings.Join(kinds, "; "))
}

// fixedRateGets sends GETs to url at rate a second for d, each on its own
// goroutine (a hung one does not hold back the next), and waits for every
// answer.
func fixedRateGets(ctx context.Context, url string, rate int, d time.Duration) *loadOutcome {
	return fixedRateGetsWith(ctx, loadClient(nil), url, rate, d)
}

// loadClient is the fixed-rate load's client; with addrs, every
// connection goes to one of them (a random one first, then the others
// in turn, as a client does with a name of several addresses).
func loadClient(addrs []string) *http.Client {
	tr := &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: 30 * time.Second}
	if len(addrs) > 0 {
		d := &net.Dialer{Timeout: 2 * time.Second}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			first := rand.N(len(addrs))
			var err error
			for i := range addrs {
				c, derr := d.DialContext(ctx, network, addrs[(first+i)%len(addrs)])
				if derr == nil {
					return c, nil
				}
				err = derr
			}
			return nil, err
		}
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}
}

// fixedRateGetsWith sends the GETs with client.
func fixedRateGetsWith(ctx context.Context, client *http.Client, url string, rate int, d time.Duration) *loadOutcome {
	defer client.CloseIdleConnections()
	total := int(d.Seconds() * float64(rate))
	out := &loadOutcome{sent: total}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		at := time.Duration(float64(i) / float64(rate) * float64(time.Second))
		if wait := time.Until(start.Add(at)); wait > 0 {
			select {
			case <-ctx.Done():
				out.sent = i
				wg.Wait()
				return out
			case <-time.After(wait):
			}
		}
		wg.Go(func() {
			what := ""
			sent := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				what = err.Error()
			} else {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					what = resp.Status + ": " + errorText(body)

				}
			}
			took := time.Since(sent)
			mu.Lock()
			if what != "" {
				out.failures = append(out.failures, loadFailure{at: at, what: what})
			}
			if took > time.Second {
				out.slow++
			}
			out.max = max(out.max, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// errorText is the reason of the edge's error answer ({"error": …}, its
// request id left out so that equal answers count together), or the body's
// first line.
func errorText(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(firstLines(string(body)))
}

type faultsRun struct {
	problemLog
	rates    []int
	outcomes map[string]map[int]*loadOutcome // scenario → rate → outcome
	detect   *detectRun
}

// faultsJSON is the suite's fragment: <scenario>_failed at the highest rate
// (the issue's keys), <scenario>_failed_<rate> at every rate, the rates and
// the run's shape.
func faultsJSON(r *faultsRun) map[string]any {
	out := map[string]any{"rates": r.rates, "run_s": faultsLoad.Seconds(), "fault_at_s": faultsAt.Seconds()}
	if r.failed() {
		out["error"] = r.summary()
	}
	if d := r.detect; d != nil {
		one, two := seconds(d.detect), seconds(d.detect2)
		out["detect_s_p50"] = round(percentile(one, 50), 2)
		out["detect_s_max"] = round(percentile(one, 100), 2)
		out["detect_trials"] = len(d.detect)
		if len(two) > 0 {
			out["detect_two_s_p50"] = round(percentile(two, 50), 2)
			out["detect_two_s_max"] = round(percentile(two, 100), 2)
		}
		out["false_dead"] = d.falseDead
		out["lossy_s"] = round(d.lossy.Seconds(), 0)
		out["lossy_loss"] = d.link.Loss
		out["lossy_jitter_ms"] = d.link.Jitter.Milliseconds()
	}
	top := slices.Max(r.rates)
	for sc, byRate := range r.outcomes {
		for rate, o := range byRate {
			out[fmt.Sprintf("%s_failed_%d", sc, rate)] = o.failedN()
			out[fmt.Sprintf("%s_slow_%d", sc, rate)] = o.slow
			if o.streams > 0 {
				out[fmt.Sprintf("%s_streams_dropped_%d", sc, rate)] = len(o.dropped)
				out[fmt.Sprintf("%s_grpc_streams_dropped_%d", sc, rate)] = len(o.grpcDropped)
				if rate == top {
					out[sc+"_streams_dropped"] = len(o.dropped)
					out[sc+"_grpc_streams_dropped"] = len(o.grpcDropped)
				}
			}
			out[fmt.Sprintf("%s_max_s_%d", sc, rate)] = round(o.max.Seconds(), 2)
			if o.out > 0 {
				out[fmt.Sprintf("%s_out_s_%d", sc, rate)] = round(o.out.Seconds(), 3)
			}
			if rate == top {
				out[sc+"_failed"] = o.failedN()
			}
		}
	}
	return out
}

func printFaults(w io.Writer, r *faultsRun) {
	fmt.Fprintf(w, "faults: GETs at a fixed rate for %s, the fault %s in; failed = not 200 (target 0)\n", durArg(faultsLoad), durArg(faultsAt))
	fmt.Fprintf(w, "%-8s %6s %14s %10s %9s %18s %16s\n", "fault", "req/s", "failed", "over 1 s", "slowest", "out of rotation", "dropped ws/gRPC")
	for _, rate := range r.rates {
		for _, sc := range faultsScenarios {
			o := r.outcomes[sc][rate]
			if o == nil {
				continue
			}
			out := "-"
			if o.out > 0 {
				out = fmt.Sprintf("%.1f s", o.out.Seconds())
			}
			streams := "-"
			if o.streams > 0 {
				streams = fmt.Sprintf("%d/%d, %d/%d", len(o.dropped), o.streams, len(o.grpcDropped), o.grpcStreams)
			}
			fmt.Fprintf(w, "%-8s %6d %14s %10d %7.1f s %18s %16s\n", sc, rate, fmt.Sprintf("%d/%d", o.failedN(), o.sent), o.slow, o.max.Seconds(), out, streams)
		}
	}
	if d := r.detect; d != nil {
		one, two := seconds(d.detect), seconds(d.detect2)
		fmt.Fprintf(w, "silent host (%d nodes): dead on every node after %.1f s median, %.1f s at most over %d trials (target ≤ 3 s)\n",
			detectNodes, percentile(one, 50), percentile(one, 100), len(one))
		if len(two) > 0 {
			fmt.Fprintf(w, "two silent at once: %.1f s median, %.1f s at most over %d trials\n", percentile(two, 50), percentile(two, 100), len(two))
		}
		fmt.Fprintf(w, "lossy links (%.0f %% loss, %s jitter, %s): %d healthy members declared dead (target 0)\n",
			d.link.Loss*100, d.link.Jitter, durArg(d.lossy.Round(time.Second)), d.falseDead)
	}
}

// fmtSeconds lists durations in seconds, one decimal.
func fmtSeconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return strings.Join(parts, ", ")
}
