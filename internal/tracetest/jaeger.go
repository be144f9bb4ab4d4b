// Package tracetest runs a real Jaeger on loopback for the tracing tests:
// the OTLP backend that meshgate's spans go to, queried back over Jaeger's
// HTTP API so a test can assert on what actually arrived.
//
//	j := tracetest.StartJaeger(t)           // skips without bin/jaeger (make jaeger)
//	exp, _ := otlptracegrpc.New(ctx, otlptracegrpc.WithInsecure(),
//		otlptracegrpc.WithEndpoint(j.OTLPEndpoint()))
//	... emit spans, flush ...
//	tr := j.WaitTrace(t, traceID, func(tr *tracetest.Trace) bool { return len(tr.Spans) == 2 }, 10*time.Second)
//	child := tr.SpanByName("child")
//	parent := tr.Parent(child)
//
// The binary is Jaeger v2 (cmd/jaeger v1.76.0, built on the OpenTelemetry
// collector), pinned in the tools module internal/tools/jaeger and built
// into bin/jaeger by `make jaeger`. StartJaeger gives each call its own
// process with its own config: in-memory storage, an OTLP receiver (gRPC
// and HTTP), the query service (HTTP API and its gRPC API, which Jaeger
// always opens), each on a free 127.0.0.1 port and nothing else: no UI
// (a `go build` has none), no health, metrics, sampling or other receivers.
//
// Storage is asynchronous with respect to an export: a span an exporter has
// flushed is not necessarily queryable yet, so assertions poll (WaitTrace).
package tracetest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/meshtest"
	"github.com/meshgate/meshgate/internal/testenv"
)

// rootModule is the module path whose go.mod marks the repository root,
// under which `make jaeger` puts bin/jaeger.
const rootModule = "github.com/meshgate/meshgate"

// startTimeout bounds how long StartJaeger waits for Jaeger's listeners.
const startTimeout = 30 * time.Second

// Jaeger is a running Jaeger process owned by one test. Its methods are
// safe for concurrent use.
type Jaeger struct {
	otlpGRPC string // host:port of the OTLP gRPC receiver
	otlpHTTP string // host:port of the OTLP HTTP receiver
	query    string // base URL of the query HTTP API, no trailing slash
	client   *http.Client
}

// OTLPEndpoint is the host:port of the OTLP gRPC receiver (plaintext), as
// otlptracegrpc.WithEndpoint takes it.
func (j *Jaeger) OTLPEndpoint() string { return j.otlpGRPC }

// OTLPHTTPEndpoint is the host:port of the OTLP HTTP receiver (plaintext,
// path /v1/traces), as otlptracehttp.WithEndpoint takes it.
func (j *Jaeger) OTLPHTTPEndpoint() string { return j.otlpHTTP }

// QueryURL is the base URL of the query service's HTTP API, for example
// "http://127.0.0.1:41001"; the API lives under /api.
func (j *Jaeger) QueryURL() string { return j.query }

// StartJaeger starts bin/jaeger on loopback for t, waits until its receiver
// and query API accept connections, and stops it when t's cleanups run.
// It skips t, naming `make jaeger`, when the binary is missing or does not
// start. Jaeger's log is printed if t fails.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin := jaegerBin(t)
	// A free port is only free until someone else takes it: on a bind
	// failure, try again with new ports.
	var lastErr error
	for range 3 {
		j, err := start(t, bin)
		if err == nil {
			return j
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	testenv.Unavailable(t, "tracetest: bin/jaeger cannot start here (rebuild it with `make jaeger`): %v", lastErr)
	return nil
}

// jaegerBin finds bin/jaeger at the repository root: the first directory up
// from the working directory (a test's is its package's) whose go.mod is
// the root module's.
func jaegerBin(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		testenv.Unavailable(t, "tracetest: no working directory to find bin/jaeger from: %v", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isRootModule(filepath.Join(d, "go.mod")) {
			p := filepath.Join(d, "bin", "jaeger")
			if _, err := os.Stat(p); err != nil {
				testenv.Unavailable(t, "tracetest: Jaeger is not built (%s missing): run `make jaeger` (builds Jaeger v1.76.0 from internal/tools/jaeger)", p)
			}
			return p
		}
		if filepath.Dir(d) == d {
			testenv.Unavailable(t, "tracetest: no go.mod of %s above %s to find bin/jaeger in (run `make jaeger` at the repository root)", rootModule, dir)
		}
	}
}

func isRootModule(gomod string) bool {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == rootModule
		}
	}
	return false
}

var errAddrInUse = errors.New("address already in use")

// start runs one attempt: config with fresh ports, process, readiness.
func start(t testing.TB, bin string) (*Jaeger, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	queryHTTP, queryGRPC, otlpGRPC, otlpHTTP := addr(0), addr(1), addr(2), addr(3)

	dir := t.TempDir()
	conf := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(conf, []byte(config(queryHTTP, queryGRPC, otlpGRPC, otlpHTTP)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", conf)
	cmd.Dir = dir
	log := &meshtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}

	j := &Jaeger{
		otlpGRPC: otlpGRPC,
		otlpHTTP: otlpHTTP,
		query:    "http://" + queryHTTP,
		client: &http.Client{
			Transport: &http.Transport{Proxy: nil, DisableCompression: true},
			Timeout:   10 * time.Second,
		},
	}
	if err := j.waitReady(exited, otlpGRPC, otlpHTTP); err != nil {
		stop()
		out := log.String()
		if strings.Contains(out, "address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, fmt.Errorf("%v\njaeger log:\n%s", err, out)
	}
	t.Cleanup(func() {
		stop()
		j.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("tracetest: jaeger log:\n%s", log.String())
		}
	})
	return j, nil
}

// config is Jaeger's whole configuration: every listener on 127.0.0.1, and
// only the components the tests use. Without --config Jaeger would run its
// all-in-one setup on every interface with a dozen ports.
func config(queryHTTP, queryGRPC, otlpGRPC, otlpHTTP string) string {
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, queryHTTP, queryGRPC, otlpGRPC, otlpHTTP)
}

// waitReady polls until the query API answers and both receivers accept
// connections (the collector starts extensions before receivers), or the
// process exits, or startTimeout passes.
func (j *Jaeger) waitReady(exited <-chan struct{}, receivers ...string) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = j.ready(receivers); last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("jaeger exited during startup (last check: %v)", last)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jaeger not ready after %v: %v", startTimeout, last)
		}
	}
}

func (j *Jaeger) ready(receivers []string) error {
	for _, a := range receivers {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	resp, err := j.client.Get(j.query + "/api/services")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/services: %s", resp.Status)
	}
	return nil
}

// freePorts reserves n distinct loopback ports by listening on them, then
// releases them for Jaeger to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
