// Package demo runs the meshgate demo topology on one machine: the edge
// (bin/edge) in front of demo services (bin/demosvc), each behind its own
// sidecar (bin/sidecar), all in one gossip cluster, every hop between
// meshgate processes SPIFFE mTLS — as child processes of one runner.
//
// The topology comes from two files, demo/edge.yaml and demo/sidecars.yaml
// (embedded as EdgeYAML and SidecarsYAML): the runner renders them (ports,
// socket paths), starts a demo service and a sidecar per document of
// sidecars.yaml and the edge, and serves every node's identity itself: a CA
// of trust domain demo.meshgate in the log directory, and the SPIFFE
// Workload API (pkg pki/workload), one unix socket per node. meshctl gets an
// operator SVID as files. When the edge's tracing.endpoint is one of the
// demo's ports, the runner is the trace backend too (traces.go): every node
// exports its spans to it over OTLP/HTTP, and it shows a trace as a tree.
// Likewise, when an auth.jwt issuer of the edge is one of the demo's ports,
// the runner is that token issuer (issuer.go): it serves OIDC discovery and
// a JWKS, and mints JWTs for the tour's consumers; and it makes the API keys
// whose hashes the configs hold ({{.APIKeyHash "NAME"}}). Start returns once every process answers and the edge and every sidecar
// have discovered the services they call.
//
// Tour lists what the banner suggests trying — curl lines, meshctl
// commands, signals to payments — and each Step's Try performs exactly
// that and checks its printed expectation: the package's test runs the
// whole tour.
//
// bin/meshdemo (demo/meshdemo) is a thin main over Run. The package is for
// Unix: each child runs in its own process group, stopped with SIGTERM to
// the group, then SIGKILL after StopTimeout.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Options configure Start.
type Options struct {
	// BinDir holds the edge, sidecar and demosvc binaries (and meshctl,
	// which the banner's commands run).
	BinDir string
	// Edge and Sidecars are the config sources; nil: EdgeYAML, SidecarsYAML.
	Edge, Sidecars []byte
	// PortBase shifts every 127.0.0.1:18xxx address of the configs to
	// PortBase+xxx; 0: DefaultPortBase (the addresses as written).
	PortBase int
	// LogDir receives one log and one pid file per child, the rendered
	// configs, the CA (kept for the next run), meshctl's SVID, the runner's
	// own log and a pids file; created if missing. Empty: a new temporary
	// directory.
	LogDir string
	// ReadyTimeout bounds the wait for every child to answer and the mesh
	// to form; 0: 30s.
	ReadyTimeout time.Duration
	// Log also receives the runner's log (it always goes to
	// LogDir/meshdemo.log).
	Log *slog.Logger
}

// Topology is a running demo.
type Topology struct {
	Layout
	LogDir  string
	BinDir  string
	Sockets string // the Workload API sockets' directory
	// Meshctl's SVID files.
	MeshctlCert, MeshctlKey, MeshctlBundle string

	log      *slog.Logger
	logFile  *os.File
	lock     *os.File // held while the demo runs
	ids      *identities
	traces   *traceReceiver // nil without one
	issuer   *issuer        // nil without one
	edge     *proc
	apps     []*proc // by instance, as Layout.Instances
	sidecars []*proc

	stopOnce sync.Once
	stopErr  error
}

// Start starts the demo services, then the edge and the sidecars, and
// returns once all of them answer and the mesh has formed. On any failure
// it stops whatever it started and returns an error that says which child
// failed and shows the end of its log.
func Start(ctx context.Context, opts Options) (*Topology, error) {
	edgeSrc, sidecarsSrc := opts.Edge, opts.Sidecars
	if edgeSrc == nil {
		edgeSrc = EdgeYAML
	}
	if sidecarsSrc == nil {
		sidecarsSrc = SidecarsYAML
	}
	// A first rendering checks the files and measures the socket paths.
	probe, err := Render(edgeSrc, sidecarsSrc, opts.PortBase, Paths{})
	if err != nil {
		return nil, err
	}
	if err := probe.checkUpstreams(); err != nil {
		return nil, err
	}
	// A busy port would let another process answer the readiness checks.
	if err := checkFree(probe.Addrs()); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, name := range []string{"edge", "sidecar", "demosvc"} {
		bins[name] = filepath.Join(opts.BinDir, name)
		if _, err := os.Stat(bins[name]); err != nil {
			return nil, fmt.Errorf("%s not found (run `make build` first): %w", bins[name], err)
		}
	}
	t, err := open(opts)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Topology, error) {
		if stopErr := t.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	if err := t.prepare(edgeSrc, sidecarsSrc, opts.PortBase, probe); err != nil {
		return fail(err)
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := t.launch(ctx, bins); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(t.LogDir, "pids"), []byte(pidList(t.PIDs())+"\n"), 0o644); err != nil {
		return fail(err)
	}
	t.log.Info("the demo is up", "log_dir", t.LogDir)
	return t, nil
}

// open makes the log directory, takes its lock (one demo per directory:
// its files and sockets are this run's) and starts the runner's log.
func open(opts Options) (*Topology, error) {
	logDir := opts.LogDir
	var err error
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "meshdemo-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	if logDir, err = filepath.Abs(logDir); err != nil {
		return nil, err
	}
	t := &Topology{LogDir: logDir, BinDir: opts.BinDir}
	if t.lock, err = lockDir(logDir); err != nil {
		return nil, err
	}
	if t.logFile, err = os.OpenFile(filepath.Join(logDir, "meshdemo.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
		t.lock.Close()
		return nil, err
	}
	handlers := []slog.Handler{slog.NewTextHandler(t.logFile, nil)}
	if opts.Log != nil {
		handlers = append(handlers, opts.Log.Handler())
	}
	t.log = slog.New(slog.NewMultiHandler(handlers...))
	return t, nil
}

// prepare renders the configs with the sockets' directory, serves the
// identities and writes the configs the children run with.
func (t *Topology) prepare(edgeSrc, sidecarsSrc []byte, base int, probe Layout) error {
	longest := len(probe.Edge.Socket)
	for _, in := range probe.Instances {
		longest = max(longest, len(in.Socket))
	}
	sockDir, tempSockets, err := socketDir(t.LogDir, longest)
	if err != nil {
		return err
	}
	t.Sockets = sockDir
	if t.Layout, err = Render(edgeSrc, sidecarsSrc, base, Paths{Sockets: sockDir}); err != nil {
		if tempSockets {
			os.RemoveAll(sockDir)
		}
		return err
	}
	sockets := map[string]spiffeid.ID{t.Edge.Socket: spiffeid.RequireFromString(SpiffeID("edge"))}
	for _, in := range t.Instances {
		sockets[in.Socket] = spiffeid.RequireFromString(SpiffeID(in.Service))
	}
	if t.ids, err = startIdentities(t.LogDir, sockDir, tempSockets, sockets, t.log); err != nil {
		return err
	}
	t.MeshctlCert, t.MeshctlKey, t.MeshctlBundle = t.ids.meshctlFiles()
	return t.writeConfigs()
}

// launch starts the trace receiver, the token issuer and the children, and
// waits until the mesh has formed.
func (t *Topology) launch(ctx context.Context, bins map[string]string) error {
	if t.Edge.Traces != "" {
		var err error
		if t.traces, err = startTraceReceiver(t.Edge.Traces, t.log); err != nil {
			return err
		}
	}
	// Before the edge, which fetches the issuer's keys as it starts.
	if t.Edge.Issuer != nil {
		var err error
		if t.issuer, err = startIssuer(*t.Edge.Issuer, t.log); err != nil {
			return err
		}
	}
	start := func(label, bin string, args ...string) (*proc, error) {
		p, err := startProc(label, t.LogDir, bin, args...)
		if err != nil {
			return nil, err
		}
		t.log.Info("started", "child", label, "pid", p.pid())
		return p, nil
	}
	// The apps first: a sidecar offers its service as healthy only once
	// its app accepts connections.
	for _, in := range t.Instances {
		args := []string{"--name", in.Service, "--version", in.Subset, "--listen", in.App}
		if in.Outbound != "" {
			args = append(args, "--outbound", "http://"+in.Outbound)
		}
		p, err := start(in.Name, bins["demosvc"], args...)
		if err != nil {
			return err
		}
		t.apps = append(t.apps, p)
	}
	for i, in := range t.Instances {
		if err := waitReady(ctx, t.apps[i], "http://"+in.App+"/healthz"); err != nil {
			return err
		}
	}
	// The edge is the cluster's seed; the sidecars join it (and retry).
	var err error
	if t.edge, err = start("edge", bins["edge"], "--config", filepath.Join(t.LogDir, "edge.yaml")); err != nil {
		return err
	}
	for _, in := range t.Instances {
		p, err := start(in.SidecarLabel(), bins["sidecar"], "--config", filepath.Join(t.LogDir, in.SidecarLabel()+".yaml"))
		if err != nil {
			return err
		}
		t.sidecars = append(t.sidecars, p)
	}
	if err := waitReady(ctx, t.edge, "http://"+t.Edge.Admin+"/readyz"); err != nil {
		return err
	}
	for i, in := range t.Instances {
		if err := waitReady(ctx, t.sidecars[i], "http://"+in.Admin+"/readyz"); err != nil {
			return err
		}
	}
	if err := t.waitMesh(ctx); err != nil {
		return err
	}
	for _, p := range t.all() {
		if p.exited() {
			return p.exitError()
		}
	}
	return nil
}

// checkUpstreams wants every upstream of the edge to find an instance.
func (l Layout) checkUpstreams() error {
	for _, u := range l.Edge.Upstreams {
		if len(l.endpointsOf(u)) == 0 {
			return fmt.Errorf("edge upstream %q: no instance of service %s (subset %q) in sidecars.yaml", u.Name, u.Service, u.Subset)
		}
	}
	return nil
}

// endpointsOf are the sidecars' inbound addresses an upstream discovers.
func (l Layout) endpointsOf(u ServiceUpstream) []string {
	var out []string
	for _, in := range l.Instances {
		if in.Service == u.Service && (u.Subset == "" || in.Subset == u.Subset) {
			out = append(out, in.Inbound)
		}
	}
	return out
}

// writeConfigs writes the rendered edge.yaml and NAME-sidecar.yaml files
// the children run with.
func (t *Topology) writeConfigs() error {
	edge := fmt.Appendf(nil, "# Rendered by bin/meshdemo from demo/edge.yaml: edit that file, not this copy.\n%s", t.Edge.Config)
	if err := os.WriteFile(filepath.Join(t.LogDir, "edge.yaml"), edge, 0o644); err != nil {
		return err
	}
	for _, in := range t.Instances {
		data := fmt.Appendf(nil, "# Instance %s, rendered by bin/meshdemo from demo/sidecars.yaml: edit that file, not this copy.\n%s",
			in.Name, in.Config)
		if err := os.WriteFile(filepath.Join(t.LogDir, in.SidecarLabel()+".yaml"), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitMesh waits until the mesh has formed: the edge's upstreams hold every
// sidecar they should discover (its metrics list each endpoint), and every
// sidecar's outbound listener reaches every service it calls.
func (t *Topology) waitMesh(ctx context.Context) error {
	var want []string
	for _, u := range t.Edge.Upstreams {
		for _, ep := range t.endpointsOf(u) {
			want = append(want, fmt.Sprintf(`endpoint="%s",upstream="%s"`, ep, u.Name))
		}
	}
	err := t.poll(ctx, "the edge to discover every sidecar", func() (bool, string) {
		body, err := get(ctx, "http://"+t.Edge.Admin+"/metrics", "")
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, "meshgate_upstream_endpoint_healthy{"+w+"} 1") {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, "missing " + strings.Join(missing, "; ")
	})
	if err != nil {
		return err
	}
	for _, in := range t.Instances {
		for _, svc := range in.Calls {
			what := fmt.Sprintf("%s's sidecar to reach %s", in.Name, svc)
			err := t.poll(ctx, what, func() (bool, string) {
				// Any answer of the service's sidecar will do (even a 403):
				// 502 and 503 come from this sidecar, which has not found it.
				code, err := status(ctx, "http://"+in.Outbound+"/healthz", svc)
				if err != nil {
					return false, err.Error()
				}
				return code != http.StatusBadGateway && code != http.StatusServiceUnavailable, strconv.Itoa(code)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// poll calls probe every 50 ms until it is satisfied, a child exits, or
// ctx ends.
func (t *Topology) poll(ctx context.Context, what string, probe func() (bool, string)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := probe()
		if ok {
			return nil
		}
		for _, p := range t.all() {
			if p.exited() {
				return p.exitError()
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (last: %s): %w; see the logs in %s", what, last, context.Cause(ctx), t.LogDir)
		case <-tick.C:
		}
	}
}

// checkFree fails if any of addrs cannot be listened on now.
func checkFree(addrs []string) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is not free (is another demo running? choose another port base): %w", a, err)
		}
		ln.Close()
	}
	return nil
}

// readyClient polls without keeping connections, so that nothing of the
// runner lingers in a child's connection count.
var readyClient = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

func status(ctx context.Context, url, host string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func get(ctx context.Context, url, host string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	return string(b), err
}

// waitReady polls url until it answers 200, p exits, or ctx ends.
func waitReady(ctx context.Context, p *proc, url string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		code, err := status(ctx, url, "")
		if err == nil {
			if code == http.StatusOK {
				return nil
			}
			last = strconv.Itoa(code)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%s (pid %d) did not answer %s in time (last: %s): %w\n--- last lines of %s ---\n%s",
				p.label, p.pid(), url, last, context.Cause(ctx), p.logPath, tail(p.logPath, 15))
		case <-tick.C:
		}
	}
}

func (t *Topology) all() []*proc {
	ps := append([]*proc{}, t.apps...)
	if t.edge != nil {
		ps = append(ps, t.edge)
	}
	return append(ps, t.sidecars...)
}

// PIDs are the process ids of every child (each also leads its own group).
func (t *Topology) PIDs() []int {
	var pids []int
	for _, p := range t.all() {
		pids = append(pids, p.pid())
	}
	return pids
}

// Exit is a child that exited before Stop.
type Exit struct {
	Label string
	PID   int
	// Edge: the edge exited, without which nothing works.
	Edge bool
	Err  error // with the end of its log
}

// Exited returns a channel that receives every child that exits before
// Stop.
func (t *Topology) Exited() <-chan Exit {
	ps := t.all()
	ch := make(chan Exit, len(ps))
	for _, p := range ps {
		go func() {
			<-p.done
			ch <- Exit{Label: p.label, PID: p.pid(), Edge: p == t.edge, Err: p.exitError()}
		}()
	}
	return ch
}

// Stop stops every child at once (SIGTERM to each process group, SIGKILL
// after StopTimeout), then the trace receiver, the token issuer and the
// identities. It
// returns once every child is reaped; calling it again returns the first
// result.
func (t *Topology) Stop() error {
	t.stopOnce.Do(func() {
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, p := range t.all() {
			wg.Go(func() {
				err := p.stop(StopTimeout)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, p := range t.all() {
			t.log.Info("stopped", "child", p.label, "pid", p.pid(), "exit", fmt.Sprint(p.err))
		}
		// After the children: they export their last spans as they stop.
		if t.traces != nil {
			errs = append(errs, t.traces.close())
		}
		if t.issuer != nil {
			errs = append(errs, t.issuer.close())
		}
		if t.ids != nil {
			errs = append(errs, t.ids.close())
		}
		if t.logFile != nil {
			t.logFile.Close()
		}
		if t.lock != nil {
			t.lock.Close() // releases the lock
		}
		t.stopErr = errors.Join(errs...)
	})
	return t.stopErr
}

// Env is what the tour's commands are written against, printed relative to
// the current directory where that is shorter.
func (t *Topology) Env() Env {
	env := Env{
		Public: t.Edge.Public, Admin: t.Edge.Admin,
		Meshctl: display(filepath.Join(t.BinDir, "meshctl")),
		MeshctlEnv: []string{"MESHCTL_ADMIN=" + t.Edge.AdminAPI, "MESHCTL_CERT=" + t.MeshctlCert,
			"MESHCTL_KEY=" + t.MeshctlKey, "MESHCTL_BUNDLE=" + t.MeshctlBundle},
		Members: []string{"edge"},
		Tracing: t.Edge.Tracing, Traces: t.Edge.Traces,
		APIKey: t.APIKeys[FreeConsumer],
	}
	if t.Edge.Issuer != nil {
		env.Issuer = t.Edge.Issuer.Addr
	}
	for _, in := range t.Instances {
		env.Members = append(env.Members, in.Name)
		if in.Outbound != "" && env.Outbound == "" {
			env.Outbound = in.Outbound
		}
	}
	if p, ok := t.Instance("payments"); ok {
		env.PaymentsPID = display(filepath.Join(t.LogDir, p.Name+".pid"))
		env.PaymentsBreaker, env.PaymentsMember = p.Inbound, p.Name
	}
	return env
}

// display is path relative to the current directory when it lies below it
// (bin/meshctl), else absolute.
func display(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}

// BannerEnd is the last line of the banner: the demo is up.
const BannerEnd = "Press Ctrl-C to stop everything."

// PrintBanner writes where everything runs and the tour to try.
func (t *Topology) PrintBanner(w io.Writer) {
	env := t.Env()
	var b strings.Builder
	fmt.Fprintf(&b, "\nmeshgate demo is running: an edge and %d service instances, each behind its sidecar, in one\n"+
		"gossip cluster; every hop between them is SPIFFE mTLS (trust domain %s, identities\n"+
		"served by this runner over the Workload API).\n\n", len(t.Instances), TrustDomain)
	fmt.Fprintf(&b, "  %-13s http://%s  admin http://%s  admin API %s  gossip %s\n", "edge", t.Edge.Public, t.Edge.Admin, t.Edge.AdminAPI, t.Edge.Gossip)
	for _, in := range t.Instances {
		fmt.Fprintf(&b, "  %-13s app %s  sidecar %s  %s", in.Name, in.App, in.Inbound, SpiffeID(in.Service))
		if in.Outbound != "" {
			fmt.Fprintf(&b, "  outbound %s", in.Outbound)
		}
		b.WriteString("\n")
	}
	if t.Edge.Traces != "" {
		fmt.Fprintf(&b, "  %-13s http://%s/traces/TRACE-ID  (every node's spans, over OTLP/HTTP; the latest at /traces)\n", "traces", t.Edge.Traces)
	}
	if t.Edge.Issuer != nil {
		fmt.Fprintf(&b, "  %-13s %s  (this runner: OIDC discovery, JWKS; POST /token?consumer=NAME mints a JWT)\n", "issuer", t.Edge.Issuer.Issuer)
	}
	for _, c := range sortedKeys(t.APIKeys) {
		fmt.Fprintf(&b, "  %-13s %s  (%s's API key, made at start; the edge's config holds its SHA-256 only)\n", "api key", t.APIKeys[c], c)
	}
	fmt.Fprintf(&b, "  %-13s %s  (one per process; configs, pids, ca/, meshctl/)\n\n", "logs", display(t.LogDir))
	fmt.Fprintf(&b, "meshctl acts as %s, an operator of the edge's admin API:\n\n  %s\n\nTry:\n", SpiffeID("meshctl"), env.ExportLine())
	for i, sec := range Tour(env) {
		fmt.Fprintf(&b, "\n%d. %s\n", i+1, sec.Title)
		for j, s := range sec.Steps {
			lead := "   "
			if len(sec.Steps) > 1 {
				lead = fmt.Sprintf("%c. ", 'a'+j)
			}
			if s.Title != "" {
				fmt.Fprintf(&b, "   %s%s\n", lead, s.Title)
				lead = "   "
			}
			for _, l := range s.Lines {
				fmt.Fprintf(&b, "   %s%s\n", lead, l)
				lead = "   "
			}
			if s.Expect != "" {
				fmt.Fprintf(&b, "      → %s\n", s.Expect)
			}
		}
	}
	b.WriteString("\n" + BannerEnd + "\n")
	io.WriteString(w, b.String())
}

func pidList(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, " ")
}

// Run starts the demo, prints the banner to out, and runs until ctx ends or
// the edge exits; then it stops every child. A service or sidecar that
// exits (the tour stops payments) is reported and the rest keeps running.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	t, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	t.PrintBanner(out)
	exited := t.Exited()
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nstopping…")
			break wait
		case ex := <-exited:
			if ex.Edge {
				fmt.Fprintf(out, "\nthe edge stopped on its own; stopping the others\n")
				runErr = ex.Err
				break wait
			}
			fmt.Fprintf(out, "\n%s (pid %d) exited (see %s); the rest keeps running\n", ex.Label, ex.PID,
				display(filepath.Join(t.LogDir, ex.Label+".log")))
		}
	}
	return errors.Join(runErr, t.Stop())
}
