package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/demo"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/meshtest"
	"go.uber.org/goleak"
)

// binDir holds the binaries the tests build, once per run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshdemo-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	// As every package's tests (issue 16): no test leaves a goroutine
	// behind — the tour's runner, its issuer and trace receiver included.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type buildResult struct {
	once sync.Once
	err  error
}

var builds sync.Map // package list → *buildResult

// build runs `go build -o binDir/ pkgs...` from the module root, once per
// package list, and fails the test if the build fails.
func build(t *testing.T, pkgs ...string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(strings.Join(pkgs, " "), &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			goBin = "go"
		}
		gomod, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err != nil {
			b.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd := exec.Command(goBin, append([]string{"build", "-o", binDir + string(filepath.Separator)}, pkgs...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return binDir
}

// allBinaries are what the demo runs and what its banner's commands use.
func allBinaries(t *testing.T) string {
	return build(t, "./edge", "./sidecar", "./meshctl", "./demo/demosvc", "./demo/meshdemo")
}

func TestDemoConfigValid(t *testing.T) {
	// demo/edge.yaml as the runner writes it (its API key hashes filled
	// in) must validate as a file.
	l, err := demo.Render(demo.EdgeYAML, demo.SidecarsYAML, 0, demo.Paths{Sockets: "/run/mgd"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(path, l.Edge.Config, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("demo/edge.yaml, rendered, does not validate:\n%v", err)
	}
	// The runner's rendering at another base must stay valid and move every
	// address, and the layout must be the documented one.
	l, err = demo.Render(demo.EdgeYAML, demo.SidecarsYAML, 25000, demo.Paths{Sockets: "/run/mgd"})
	if err != nil {
		t.Fatal(err)
	}
	// The runner issues the JWTs and makes free-app's API key, whose hash
	// alone is in the config.
	if is := l.Edge.Issuer; is == nil || *is != (demo.DemoIssuer{Addr: "127.0.0.1:25098", Issuer: "http://127.0.0.1:25098", Audience: "meshgate-demo"}) {
		t.Errorf("issuer = %+v", is)
	}
	key := l.APIKeys[demo.FreeConsumer]
	if len(l.APIKeys) != 1 || !strings.HasPrefix(key, "mgk_") {
		t.Errorf("API keys %v, want one for %s", l.APIKeys, demo.FreeConsumer)
	}
	if sum := sha256.Sum256([]byte(key)); !bytes.Contains(l.Edge.Config, []byte("sha256:"+hex.EncodeToString(sum[:]))) || bytes.Contains(l.Edge.Config, []byte(key)) {
		t.Errorf("the rendered edge.yaml should hold the hash of %s's key, not the key", demo.FreeConsumer)
	}
	again, err := demo.Render(demo.EdgeYAML, demo.SidecarsYAML, 0, demo.Paths{Sockets: "/s", APIKeys: map[string]string{demo.FreeConsumer: "mgk_given"}})
	if err != nil || again.APIKeys[demo.FreeConsumer] != "mgk_given" {
		t.Errorf("Render with a given key: %v, keys %v; want the given key kept", err, again.APIKeys)
	}
	stale := regexp.MustCompile(`127\.0\.0\.1:18[0-9]{3}|\{\{`)
	for _, cfg := range append([][]byte{l.Edge.Config}, func() (c [][]byte) {
		for _, in := range l.Instances {
			c = append(c, in.Config)
		}
		return c
	}()...) {
		if stale.Match(cfg) {
			t.Errorf("rendered config still holds an 18xxx port or a template field:\n%s", cfg)
		}
	}
	e := l.Edge
	if e.Public != "127.0.0.1:25080" || e.Admin != "127.0.0.1:25081" || e.AdminAPI != "127.0.0.1:25082" ||
		e.Gossip != "127.0.0.1:25090" || e.Socket != "/run/mgd/edge.sock" || !e.Tracing || e.Traces != "127.0.0.1:25099" {
		t.Errorf("edge = %+v", e)
	}
	var got []string
	for _, in := range l.Instances {
		if in.Traces != e.Traces {
			t.Errorf("%s exports traces to %q, want the runner's receiver %s", in.Name, in.Traces, e.Traces)
		}
		got = append(got, fmt.Sprintf("%s %s/%s app %s inbound %s admin %s outbound %q calls %v socket %s",
			in.Name, in.Service, in.Subset, in.App, in.Inbound, in.Admin, in.Outbound, in.Calls, in.Socket))
	}
	want := []string{
		`catalog-v1-1 catalog/v1 app 127.0.0.1:25101 inbound 127.0.0.1:25111 admin 127.0.0.1:25121 outbound "" calls [] socket /run/mgd/catalog-v1-1.sock`,
		`catalog-v1-2 catalog/v1 app 127.0.0.1:25102 inbound 127.0.0.1:25112 admin 127.0.0.1:25122 outbound "" calls [] socket /run/mgd/catalog-v1-2.sock`,
		`catalog-v2 catalog/v2 app 127.0.0.1:25103 inbound 127.0.0.1:25113 admin 127.0.0.1:25123 outbound "" calls [] socket /run/mgd/catalog-v2.sock`,
		`orders-v1 orders/v1 app 127.0.0.1:25201 inbound 127.0.0.1:25211 admin 127.0.0.1:25221 outbound "127.0.0.1:25241" calls [payments catalog] socket /run/mgd/orders-v1.sock`,
		`orders-v2 orders/v2 app 127.0.0.1:25202 inbound 127.0.0.1:25212 admin 127.0.0.1:25222 outbound "127.0.0.1:25242" calls [payments catalog] socket /run/mgd/orders-v2.sock`,
		`payments-v1 payments/v1 app 127.0.0.1:25301 inbound 127.0.0.1:25311 admin 127.0.0.1:25321 outbound "" calls [] socket /run/mgd/payments-v1.sock`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("instances:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every port is distinct.
	seen := map[string]bool{}
	for _, a := range l.Addrs() {
		if seen[a] {
			t.Errorf("address %s is used twice", a)
		}
		seen[a] = true
	}
}

// TestRenderErrors: a broken sidecar document is reported at its line in
// sidecars.yaml.
func TestRenderErrors(t *testing.T) {
	bad := bytes.Replace(demo.SidecarsYAML, []byte("app: 127.0.0.1:18202"), []byte("app: nowhere"), 1)
	line := bytes.Count(bad[:bytes.Index(bad, []byte("app: nowhere"))], []byte("\n")) + 1
	_, err := demo.Render(demo.EdgeYAML, bad, 0, demo.Paths{Sockets: "/s"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("sidecars.yaml:%d:", line)) {
		t.Errorf("Render with a bad service.app: %v; want an error at sidecars.yaml:%d", err, line)
	}
	if _, err := demo.Render(demo.EdgeYAML, []byte("# nothing\n"), 0, demo.Paths{}); err == nil {
		t.Error("Render without sidecars: no error")
	}
	// The runner's trace receiver speaks OTLP/HTTP, at the edge's endpoint.
	grpc := bytes.Replace(demo.EdgeYAML, []byte("protocol: http"), []byte("protocol: grpc"), 1)
	if _, err := demo.Render(grpc, demo.SidecarsYAML, 0, demo.Paths{Sockets: "/s"}); err == nil || !strings.Contains(err.Error(), "OTLP/HTTP") {
		t.Errorf("Render with tracing over gRPC to the runner: %v; want an error that says it speaks OTLP/HTTP", err)
	}
	other := bytes.Replace(demo.SidecarsYAML, []byte("endpoint: 127.0.0.1:18099"), []byte("endpoint: 127.0.0.1:18097"), 1)
	if _, err := demo.Render(demo.EdgeYAML, other, 0, demo.Paths{Sockets: "/s"}); err == nil || !strings.Contains(err.Error(), "the edge's tracing.endpoint") {
		t.Errorf("Render with a sidecar tracing to another demo port: %v; want an error", err)
	}
	// The runner's issuer signs ES256 and serves its keys itself.
	rs256 := bytes.Replace(demo.EdgeYAML, []byte("algorithms: [ES256]"), []byte("algorithms: [RS256]"), 1)
	if _, err := demo.Render(rs256, demo.SidecarsYAML, 0, demo.Paths{Sockets: "/s"}); err == nil || !strings.Contains(err.Error(), "signs ES256") {
		t.Errorf("Render with the runner's issuer and RS256: %v; want an error that says it signs ES256", err)
	}
	jwks := bytes.Replace(demo.EdgeYAML, []byte("issuer: http://127.0.0.1:18098"), []byte("issuer: http://127.0.0.1:18098\n      jwks_uri: http://127.0.0.1:18098/keys"), 1)
	if _, err := demo.Render(jwks, demo.SidecarsYAML, 0, demo.Paths{Sockets: "/s"}); err == nil || !strings.Contains(err.Error(), "/jwks.json") {
		t.Errorf("Render with a jwks_uri the runner does not serve: %v; want an error", err)
	}
	// Your own collector (not a demo port) is yours: no receiver, no error.
	own := bytes.ReplaceAll(demo.SidecarsYAML, []byte("endpoint: 127.0.0.1:18099"), []byte("endpoint: 127.0.0.1:4318"))
	l, err := demo.Render(bytes.Replace(demo.EdgeYAML, []byte("endpoint: 127.0.0.1:18099"), []byte("endpoint: 127.0.0.1:4318"), 1), own, 0, demo.Paths{Sockets: "/s"})
	if err != nil || l.Edge.Traces != "" || !l.Edge.Tracing {
		t.Errorf("Render with tracing to 127.0.0.1:4318: %v, Traces %q, Tracing %v; want no receiver, tracing on", err, l.Edge.Traces, l.Edge.Tracing)
	}
}

var curlEnv = demo.Env{Public: "P", Admin: "A", Outbound: "O", Meshctl: "bin/meshctl",
	PaymentsPID: "logs/payments-v1.pid", PaymentsBreaker: "B", PaymentsMember: "payments-v1", Members: []string{"edge"},
	Tracing: true, Traces: "T", Issuer: "I", APIKey: "K"}

func TestCurlLines(t *testing.T) {
	want := map[string]string{
		"/products/42 GET":    "curl -i http://P/products/42",
		"/products/42 GET 2":  "curl -i -H 'X-Api-Version: 2' http://P/products/42",
		"/products/1 GET":     "for i in $(seq 4); do curl -s http://P/products/1; echo; done",
		"/api/products/7 GET": "curl -i http://P/api/products/7",
		"/orders POST":        `curl -i -H 'Content-Type: application/json' -d '{"item":"book","qty":2}' http://P/orders`,
		"/orders POST traced": `curl -i -H 'Content-Type: application/json' -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'` +
			` -d '{"item":"pen","qty":1}' http://P/orders`,
		"/traces/4bf92f3577b34da6a3ce929d0e0e4736 GET": "curl -s http://T/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"/orders DELETE":                        "curl -i -X DELETE http://P/orders",
		"/products/1 GET catalog":               "curl -i -H 'Host: catalog' http://O/products/1",
		"/metrics GET":                          "curl -s http://A/metrics | grep meshgate_breaker_state",
		"/orders GET":                           `for i in $(seq 10); do curl -s http://P/orders; echo; done | grep -o '"version":"[^"]*"' | sort | uniq -c`,
		"/products/7 GET":                       "for i in $(seq 5); do curl -s -o /dev/null http://P/products/7; done",
		"/payments/p-1 GET 5":                   "for i in $(seq 5); do curl -s -o /dev/null -w '%{http_code} ' http://P/payments/p-1; done; echo",
		"/payments/p-1 GET":                     "curl -i http://P/payments/p-1",
		"/status/payments/p-1 GET":              "curl -i http://P/status/payments/p-1",
		"/status/payments/p-2 GET":              "curl -i http://P/status/payments/p-2",
		"/cached/products/7 GET":                "curl -i http://P/cached/products/7",
		"/partner/products/7 GET":               "curl -i http://P/partner/products/7",
		"/partner/products/7 GET K":             "curl -i -H 'X-Api-Key: K' http://P/partner/products/7",
		"/partner/products/7 GET K 5":           "for i in $(seq 5); do curl -s -o /dev/null -w '%{http_code} ' -H 'X-Api-Key: K' http://P/partner/products/7; done; echo",
		"/partner/products/7 GET token":         `curl -i -H "Authorization: Bearer $(curl -s -X POST 'http://I/token?consumer=paid-app')" http://P/partner/products/7`,
		"/legacy/orders POST":                   `curl -i -H 'Content-Type: application/json' -d '{"customer_id":7,"line_items":[{"sku":"A1","quantity":2}]}' http://P/legacy/orders`,
		"/legacy/orders POST 400":               "curl -i -d customer_id=7 http://P/legacy/orders",
		"/feed/products/42 GET":                 "curl -i http://P/feed/products/42",
		"/shop/products/42 GET application/xml": "curl -i -H 'Accept: application/xml' http://P/shop/products/42",
		"/shop/products/42 GET":                 "curl -i http://P/shop/products/42",
		"/page/products/42 GET mobile":          "curl -i -H 'X-Client: mobile' http://P/page/products/42",
		"/web/page/products/42 GET":             "curl -i http://P/web/page/products/42",
		"/page/products/42 GET mobile traced": "curl -i -H 'X-Client: mobile' -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'" +
			" http://P/page/products/42",
		"/traces/0af7651916cd43dd8448eb211c80319c GET": "curl -s http://T/traces/0af7651916cd43dd8448eb211c80319c",
	}
	seen := map[string]bool{}
	for _, e := range demo.Examples(curlEnv) {
		key := e.Path + " " + e.Method
		if len(e.Headers) > 0 && e.Method == "GET" {
			key += " " + e.Headers[0][1]
		}
		if e.Codes {
			key += " 5"
		}
		if e.Token != "" {
			key += " token"
		}
		if e.Expect.Status == 400 {
			key += " 400"
		}
		if slices.ContainsFunc(e.Headers, func(h [2]string) bool { return h[0] == "traceparent" }) {
			key += " traced"
		}
		seen[key] = true
		w, ok := want[key]
		if !ok {
			t.Errorf("no expected curl line for %s", key)
			continue
		}
		if got := e.Curl(curlEnv); got != w {
			t.Errorf("%s:\n got %s\nwant %s", key, got, w)
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("no example for %s", key)
		}
	}
}

// TestTourLines pins the non-curl lines: meshctl commands, signals.
func TestTourLines(t *testing.T) {
	var lines []string
	for _, sec := range demo.Tour(curlEnv) {
		for _, s := range sec.Steps {
			if s.HTTP == nil {
				lines = append(lines, s.Lines...)
			}
		}
	}
	want := []string{
		"grpcurl -plaintext P grpc.health.v1.Health/Check",
		"bin/meshctl members",
		"bin/meshctl traffic shift orders --to v2 --weight 10",
		"bin/meshctl traffic show orders",
		"bin/meshctl tap --consumer free-app --count 1 -o json",
		`curl -s -o /dev/null -H "Authorization: Bearer $(curl -s -X POST 'http://I/token?consumer=paid-app')" http://P/partner/products/7`,
		"curl -s -o /dev/null -H 'X-Api-Key: K' http://P/partner/products/7",
		"kill -STOP $(cat logs/payments-v1.pid)",
		"bin/meshctl breakers list",
		"kill -CONT $(cat logs/payments-v1.pid) && bin/meshctl breakers reset B",
		"bin/meshctl cache stats products-cached",
		"bin/meshctl cache purge products-cached --path /cached/products/7",
		"bin/meshctl routes list --bff mobile",
		"kill -STOP $(cat logs/payments-v1.pid)",
		"kill -CONT $(cat logs/payments-v1.pid)",
		"kill $(cat logs/payments-v1.pid)",
		"bin/meshctl members",
		"bin/meshctl inject --systemd --service orders --app-port 8080 --address 10.0.0.7",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("tour lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	env := curlEnv
	env.MeshctlEnv = []string{"MESHCTL_ADMIN=127.0.0.1:1", "MESHCTL_CERT=/a b/svid.pem"}
	if got, want := env.ExportLine(), "export MESHCTL_ADMIN=127.0.0.1:1 MESHCTL_CERT='/a b/svid.pem'"; got != want {
		t.Errorf("export line %q, want %q", got, want)
	}
}

// TestTour runs the whole demo on free ports, checks that the banner prints
// every line of the tour, performs the tour step by step as printed — curl
// lines with net/http, meshctl and kill lines with sh and the banner's
// exports — checks each printed expectation, and checks that Stop leaves
// no child behind.
func TestTour(t *testing.T) {
	bin := allBinaries(t)
	base, err := demo.PickPortBase(demo.EdgeYAML, demo.SidecarsYAML)
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	started := time.Now()
	topo, err := demo.Start(ctx, demo.Options{BinDir: bin, PortBase: base, LogDir: logDir, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("the demo was up in %s", time.Since(started).Round(time.Millisecond))
	pids := topo.PIDs()
	stopped := false
	defer func() {
		if !stopped {
			topo.Stop()
		}
	}()
	defer dumpLogsOnFailure(t, logDir)

	var banner bytes.Buffer
	topo.PrintBanner(&banner)
	t.Logf("banner:\n%s", banner.String())
	env := topo.Env()
	if !strings.Contains(banner.String(), env.ExportLine()) {
		t.Errorf("the banner does not print the export line %s", env.ExportLine())
	}
	env.Client = &http.Client{Timeout: 5 * time.Second}
	for i, sec := range demo.Tour(env) {
		for j, s := range sec.Steps {
			for _, l := range s.Lines {
				if !strings.Contains(banner.String(), l) {
					t.Errorf("the banner does not print step %d%c's line %s", i+1, 'a'+j, l)
				}
			}
			if s.Expect != "" && !strings.Contains(banner.String(), s.Expect) {
				t.Errorf("the banner does not print step %d%c's expectation %s", i+1, 'a'+j, s.Expect)
			}
			name := fmt.Sprintf("%d%c", i+1, 'a'+j)
			if !t.Run(name, func(t *testing.T) {
				if err := s.Try(ctx, env); err != nil {
					t.Error(err)
				}
			}) {
				t.Fatalf("step %s failed; the later steps build on it", name)
			}
		}
	}

	stopped = true
	if err := topo.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	for _, pid := range pids {
		if demo.Alive(pid) {
			t.Errorf("child pid %d (or its group) is still alive after Stop", pid)
		}
	}
	if entries, _ := os.ReadDir(topo.Sockets); len(entries) > 0 {
		t.Errorf("Workload API sockets left in %s: %v", topo.Sockets, entries)
	}
}

// TestCtrlC runs bin/meshdemo, waits for its banner, stops payments as the
// tour does (the runner reports it and keeps the rest running), then sends
// SIGINT and checks that it exits cleanly and that none of its children is
// left.
func TestCtrlC(t *testing.T) {
	bin := allBinaries(t)
	logDir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "meshdemo"), "--port-base", "0", "--logs", logDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr meshtest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	defer dumpLogsOnFailure(t, logDir)

	var out []string
	// waitLine reads stdout until a line satisfies ok.
	waitLine := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.NewTimer(45 * time.Second)
		defer deadline.Stop()
		for {
			select {
			case line, open := <-lines:
				if !open {
					t.Fatalf("meshdemo ended before %s\nstdout:\n%s\nstderr:\n%s", what, strings.Join(out, "\n"), stderr.String())
				}
				out = append(out, line)
				if ok(line) {
					return
				}
			case <-deadline.C:
				t.Fatalf("no %s within 45s\nstdout:\n%s\nstderr:\n%s", what, strings.Join(out, "\n"), stderr.String())
			}
		}
	}
	waitLine("banner", func(l string) bool { return l == demo.BannerEnd })
	if stderr.String() != "" {
		t.Errorf("meshdemo wrote to stderr (the children's logs belong in files):\n%s", stderr.String())
	}

	data, err := os.ReadFile(filepath.Join(logDir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pids file %q", data)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 13 {
		t.Fatalf("pids file lists %v, want 13 children (6 services, 6 sidecars, the edge)", pids)
	}
	for _, pid := range pids {
		if !demo.Alive(pid) {
			t.Fatalf("child %d is not running while the banner is up", pid)
		}
	}

	// The tour's last part stops payments: the demo goes on without it.
	pidData, err := os.ReadFile(filepath.Join(logDir, "payments-v1.pid"))
	if err != nil {
		t.Fatal(err)
	}
	payments, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil || !slices.Contains(pids, payments) {
		t.Fatalf("payments-v1.pid = %q, not one of %v", pidData, pids)
	}
	if err := syscall.Kill(payments, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine("a note that payments exited", func(l string) bool {
		return strings.HasPrefix(l, fmt.Sprintf("payments-v1 (pid %d) exited", payments)) && strings.HasSuffix(l, "the rest keeps running")
	})
	for _, pid := range pids {
		if pid != payments && !demo.Alive(pid) {
			t.Errorf("child %d stopped with payments", pid)
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines { // keep draining so that the runner never blocks on stdout
		}
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("meshdemo exited with %v after SIGINT\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(3 * demo.StopTimeout):
		t.Fatalf("meshdemo still running %s after SIGINT\nstderr:\n%s", 3*demo.StopTimeout, stderr.String())
	}
	for _, pid := range pids {
		if demo.Alive(pid) {
			t.Errorf("child pid %d (or its group) is still alive after meshdemo exited", pid)
		}
	}
}

// TestStartFailsClearly runs the real services and sidecars with a
// stand-in edge that crashes or never gets ready: Start must say which
// child failed and leave no child behind.
func TestStartFailsClearly(t *testing.T) {
	realBin := allBinaries(t)
	for _, tc := range []struct {
		name, script, want string
	}{
		{"crash", "#!/bin/sh\necho 'edge: boom' >&2\nexit 3\n", "edge: boom"},
		{"never ready", "#!/bin/sh\nexec sleep 600\n", "did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, b := range []string{"demosvc", "sidecar"} {
				if err := os.Symlink(filepath.Join(realBin, b), filepath.Join(dir, b)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "edge"), []byte(tc.script), 0o755); err != nil {
				t.Fatal(err)
			}
			base, err := demo.PickPortBase(demo.EdgeYAML, demo.SidecarsYAML)
			if err != nil {
				t.Fatal(err)
			}
			var logs meshtest.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			_, err = demo.Start(context.Background(), demo.Options{
				BinDir: dir, PortBase: base, LogDir: t.TempDir(), ReadyTimeout: 2 * time.Second, Log: log,
			})
			if err == nil {
				t.Fatal("Start succeeded with a broken edge")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "edge") {
				t.Errorf("error %q does not name the edge and show %q", err, tc.want)
			}
			pids := startedPIDs(t, logs.String())
			if len(pids) != 13 {
				t.Fatalf("started %v, want 13 children; runner log:\n%s", pids, logs.String())
			}
			for _, pid := range pids {
				if demo.Alive(pid) {
					t.Errorf("child pid %d is still alive after a failed Start", pid)
				}
			}
		})
	}
}

func TestStartNeedsBinaries(t *testing.T) {
	_, err := demo.Start(context.Background(), demo.Options{BinDir: t.TempDir(), PortBase: 30000, LogDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("Start without binaries: %v; want an error that says to run make build", err)
	}
}

// startedPIDs reads the pids from the runner's "started" log lines.
func startedPIDs(t *testing.T, log string) []int {
	var pids []int
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "msg=started") {
			continue
		}
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				pid, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("bad log line %q", line)
				}
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dumpLogsOnFailure logs the end of every child's log if the test failed.
func dumpLogsOnFailure(t *testing.T, dir string) {
	if !t.Failed() {
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		t.Logf("--- %s ---\n%s", filepath.Base(f), data)
	}
}

// TestCheck shows that Check catches each kind of miss.
func TestCheck(t *testing.T) {
	byKey := map[string]demo.Example{}
	for _, e := range demo.Examples(curlEnv) {
		key := e.Via + e.Path + " " + e.Method
		if e.Codes {
			key += " codes"
		}
		byKey[key] = e
	}
	ok := func(body string) demo.Response {
		return demo.Response{Status: 200, Header: http.Header{"X-Served-By": {"meshgate"}}, Body: []byte(body)}
	}
	lb := byKey["/products/1 GET"]
	same := ok(`{"service":"catalog","version":"v1","instance":"a"}`)
	other := ok(`{"service":"catalog","version":"v1","instance":"b"}`)
	if err := lb.Check([]demo.Response{same, other, same, other}); err != nil {
		t.Errorf("alternating instances: %v", err)
	}
	if err := lb.Check([]demo.Response{same, same, same, same}); err == nil {
		t.Error("one instance only: no error")
	}
	del := byKey["/orders DELETE"]
	if err := del.Check([]demo.Response{{Status: 405, Header: http.Header{"Allow": {"POST, GET"}}}}); err != nil {
		t.Errorf("405 with Allow: %v", err)
	}
	if err := del.Check([]demo.Response{{Status: 405, Header: http.Header{"Allow": {"GET"}}}}); err == nil {
		t.Error("Allow without POST: no error")
	}
	v2 := byKey["/products/42 GET"]
	if err := v2.Check([]demo.Response{{Status: 200, Body: []byte(`{"service":"catalog","version":"v1","product":{"id":"42"}}`)}}); err == nil {
		t.Error("missing X-Served-By: no error")
	}
	if err := v2.Check([]demo.Response{{Status: 502}}); err == nil {
		t.Error("502: no error")
	}
	canary := byKey["/orders GET"]
	v := func(ver string) demo.Response { return ok(`{"service":"orders","version":"` + ver + `"}`) }
	tenth := []demo.Response{v("v1"), v("v1"), v("v1"), v("v2"), v("v1"), v("v1"), v("v1"), v("v1"), v("v1"), v("v1")}
	if err := canary.Check(tenth); err != nil {
		t.Errorf("9 v1, 1 v2: %v", err)
	}
	if err := canary.Check(append(tenth[1:], v("v2"))); err == nil {
		t.Error("8 v1, 2 v2: no error")
	}
	brk := byKey["/payments/p-1 GET codes"]
	code := func(s int, body string) demo.Response { return demo.Response{Status: s, Body: []byte(body)} }
	timeouts := []demo.Response{code(504, ""), code(504, ""), code(504, "")}
	if err := brk.Check(append(timeouts, code(503, ""), code(503, `{"error":"circuit open"}`))); err != nil {
		t.Errorf("504 ×3, 503 circuit open ×2: %v", err)
	}
	if err := brk.Check(append(timeouts, code(503, ""), code(503, `{"error":"no healthy upstream endpoint"}`))); err == nil {
		t.Error("503 without circuit open: no error")
	}
	if err := brk.Check(append(timeouts, code(504, ""), code(503, `{"error":"circuit open"}`))); err == nil {
		t.Error("a fourth 504: no error")
	}
	// A tier's refusal: "…" in an expected header token stands for the rest.
	var refusal demo.Example
	for _, e := range demo.Examples(curlEnv) {
		if e.Expect.Status == 429 {
			refusal = e
		}
	}
	tierHeaders := func(retry, rl string) http.Header {
		h := http.Header{"Ratelimit-Policy": {`"free-1m";q=5;w=60`}, "Ratelimit": {rl}}
		if retry != "" {
			h.Set("Retry-After", retry)
		}
		return h
	}
	tierBody := []byte(`{"error":"rate limited: tier free allows 5 requests per 1m"}`)
	if err := refusal.Check([]demo.Response{{Status: 429, Header: tierHeaders("41", `"free-1m";r=0;t=41`), Body: tierBody}}); err != nil {
		t.Errorf("429 with Retry-After, RateLimit-Policy, RateLimit r=0: %v", err)
	}
	if err := refusal.Check([]demo.Response{{Status: 429, Header: tierHeaders("", `"free-1m";r=0;t=41`), Body: tierBody}}); err == nil {
		t.Error("429 without Retry-After: no error")
	}
	if err := refusal.Check([]demo.Response{{Status: 429, Header: tierHeaders("41", `"free-1m";r=1;t=41`), Body: tierBody}}); err == nil {
		t.Error("429 with RateLimit r=1: no error")
	}
	// The legacy order: mapped as received, and without the hidden field.
	var legacy, partial demo.Example
	for _, e := range demo.Examples(curlEnv) {
		switch {
		case len(e.Expect.NoBody) > 0 && e.Path == "/legacy/orders":
			legacy = e
		case len(e.Expect.Header["Meshgate-Partial"]) > 0:
			partial = e
		}
	}
	quote := func(extra string) []demo.Response {
		return []demo.Response{{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"service":"orders","headers":{"X-Api-Version":"legacy"},"quote":{"customer":7,` + extra + `"total":19.98,"units":2},` +
				`"received":{"order":{"items":[{"sku":"A1","qty":2}],"customer":{"id":7}}}}`)}}
	}
	if legacy.Path != "/legacy/orders" {
		t.Fatalf("no example with NoBody on /legacy/orders: %+v", legacy)
	}
	if err := legacy.Check(quote("")); err != nil {
		t.Errorf("the mapped order, no internal cost: %v", err)
	}
	if err := legacy.Check(quote(`"internal_cost":12.3,`)); err == nil || !strings.Contains(err.Error(), "body has internal_cost") {
		t.Errorf("the internal cost shown: %v; want an error that says so", err)
	}
	// The product page without payments: 200, the part named, not cached,
	// and no payment in it.
	if partial.Path != demo.PagePath {
		t.Fatalf("no example with Meshgate-Partial on %s: %+v", demo.PagePath, partial)
	}
	page := func(partialHeader, body string) []demo.Response {
		h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}
		if partialHeader != "" {
			h.Set("Meshgate-Partial", partialHeader)
		}
		return []demo.Response{{Status: 200, Header: h, Body: []byte(body)}}
	}
	if err := partial.Check(page("payment", demo.MobilePagePart)); err != nil {
		t.Errorf("the page without payment: %v", err)
	}
	for name, rs := range map[string][]demo.Response{
		"no Meshgate-Partial":    page("", demo.MobilePagePart),
		"another part missing":   page("orders", demo.MobilePagePart),
		"the payment still here": page("payment", demo.MobilePage),
		"the page failed":        {{Status: 502, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"error":"aggregate: call payment failed"}`)}},
	} {
		if err := partial.Check(rs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
