// Package demo runs the meshgate demo topology on loopback: the edge
// (bin/edge) in front of demo services (bin/demosvc), as child processes.
//
// The topology comes from one file, demo/edge.yaml (embedded as EdgeYAML):
// the runner starts one demo service per upstream endpoint there, then the
// edge on it, waits until every service's /healthz and the edge's /readyz
// answer, and hands back a Topology whose Stop ends every child. Examples
// lists the requests the banner prints as curl commands; the package's test
// performs exactly those requests and checks their expectations.
//
// bin/meshdemo (demo/meshdemo) is a thin main over Run. The package is for
// Unix: each child runs in its own process group, stopped with SIGTERM to the
// group, then SIGKILL after StopTimeout.
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

	"github.com/meshgate/meshgate/internal/config"
)

// Options configure Start.
type Options struct {
	// BinDir holds the edge and demosvc binaries.
	BinDir string
	// Config is the edge config source; nil: EdgeYAML.
	Config []byte
	// PortBase shifts every 127.0.0.1:18xxx address of the config to
	// PortBase+xxx; 0: DefaultPortBase (the addresses as written).
	PortBase int
	// LogDir receives one log file per child, the rendered edge.yaml and
	// a pids file; created if missing. Empty: a new temporary directory.
	LogDir string
	// ReadyTimeout bounds the wait for every child to answer; 0: 20s.
	ReadyTimeout time.Duration
	// Log is the runner's own log; nil: discarded.
	Log *slog.Logger
}

// Topology is a running demo.
type Topology struct {
	Layout
	LogDir     string
	ConfigPath string

	log      *slog.Logger
	edge     *proc
	services []*proc

	stopOnce sync.Once
	stopErr  error
}

// Start starts the services, then the edge, and returns once all of them
// answer. On any failure it stops whatever it started and returns an error
// that says which child failed and shows the end of its log.
func Start(ctx context.Context, opts Options) (*Topology, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := opts.Config
	if src == nil {
		src = EdgeYAML
	}
	rendered, err := RenderConfig(src, opts.PortBase)
	if err != nil {
		return nil, err
	}
	logDir := opts.LogDir
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
	cfgPath := filepath.Join(logDir, "edge.yaml")
	if err := os.WriteFile(cfgPath, rendered, 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(cfgPath, rendered)
	if err != nil {
		return nil, fmt.Errorf("invalid edge config:\n%w", err)
	}
	layout, err := LayoutOf(cfg)
	if err != nil {
		return nil, err
	}
	// A busy port would let another process answer the readiness checks.
	if err := checkFree(layout.Addrs()); err != nil {
		return nil, err
	}
	edgeBin, svcBin := filepath.Join(opts.BinDir, "edge"), filepath.Join(opts.BinDir, "demosvc")
	for _, bin := range []string{edgeBin, svcBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s not found (run `make build` first): %w", bin, err)
		}
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	t := &Topology{Layout: layout, LogDir: logDir, ConfigPath: cfgPath, log: log}
	fail := func(err error) (*Topology, error) {
		if stopErr := t.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	for _, s := range layout.Services {
		p, err := startProc(s.Label(), logDir, svcBin, "--name", s.Name, "--version", s.Version, "--listen", s.Addr)
		if err != nil {
			return fail(err)
		}
		log.Info("started", "child", p.label, "pid", p.pid())
		t.services = append(t.services, p)
	}
	for i, s := range layout.Services {
		if err := waitReady(ctx, t.services[i], "http://"+s.Addr+"/healthz"); err != nil {
			return fail(err)
		}
	}
	p, err := startProc("edge", logDir, edgeBin, "--config", cfgPath)
	if err != nil {
		return fail(err)
	}
	log.Info("started", "child", p.label, "pid", p.pid())
	t.edge = p
	if err := waitReady(ctx, p, "http://"+layout.Admin+"/readyz"); err != nil {
		return fail(err)
	}
	for _, p := range t.all() {
		if p.exited() {
			return fail(p.exitError())
		}
	}
	if err := os.WriteFile(filepath.Join(logDir, "pids"), []byte(pidList(t.PIDs())+"\n"), 0o644); err != nil {
		return fail(err)
	}
	return t, nil
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

// waitReady polls url until it answers 200, p exits, or ctx ends.
func waitReady(ctx context.Context, p *proc, url string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := readyClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
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
	ps := append([]*proc{}, t.services...)
	if t.edge != nil {
		ps = append(ps, t.edge)
	}
	return ps
}

// PIDs are the process ids of every child (each also leads its own group).
func (t *Topology) PIDs() []int {
	var pids []int
	for _, p := range t.all() {
		pids = append(pids, p.pid())
	}
	return pids
}

// Exited returns a channel that receives an error for the first child that
// exits before Stop.
func (t *Topology) Exited() <-chan error {
	ch := make(chan error, len(t.all()))
	for _, p := range t.all() {
		go func() {
			<-p.done
			ch <- p.exitError()
		}()
	}
	return ch
}

// Stop stops the edge, then every service: SIGTERM to each process group,
// SIGKILL after StopTimeout. It returns once every child is reaped; calling
// it again returns the first result.
func (t *Topology) Stop() error {
	t.stopOnce.Do(func() {
		var errs []error
		if t.edge != nil {
			errs = append(errs, t.edge.stop(StopTimeout))
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range t.services {
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
		t.stopErr = errors.Join(errs...)
	})
	return t.stopErr
}

// BannerEnd is the last line of the banner: the demo is up.
const BannerEnd = "Press Ctrl-C to stop everything."

// PrintBanner writes where everything runs and the examples to try.
func (t *Topology) PrintBanner(w io.Writer) {
	var b strings.Builder
	b.WriteString("\nmeshgate demo is running.\n\n")
	fmt.Fprintf(&b, "  %-9s http://%s  (public listener)\n", "edge", t.Public)
	fmt.Fprintf(&b, "  %-9s http://%s  (admin: /metrics /healthz /readyz)\n", "", t.Admin)
	for _, s := range t.Services {
		fmt.Fprintf(&b, "  %-9s %s at %s  (upstream %s)\n", s.Name, s.Version, s.Addr, s.Upstream)
	}
	fmt.Fprintf(&b, "  %-9s %s\n", "config", t.ConfigPath)
	fmt.Fprintf(&b, "  %-9s %s\n", "logs", t.LogDir)
	fmt.Fprintf(&b, "  pids: %s\n\nTry:\n\n", pidList(t.PIDs()))
	for i, e := range Examples() {
		fmt.Fprintf(&b, "%2d. %s\n    %s\n    expect: %s\n\n", i+1, e.Title, e.Curl(t.Public, t.Admin), e.Describe())
	}
	b.WriteString(BannerEnd + "\n")
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
// a child exits; then it stops every child.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	t, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	t.PrintBanner(out)
	var runErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping…")
	case runErr = <-t.Exited():
		fmt.Fprintf(out, "\na child stopped on its own; stopping the others\n")
	}
	return errors.Join(runErr, t.Stop())
}
