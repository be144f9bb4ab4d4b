package demo_test

import (
	"bufio"
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/meshgate/meshgate/demo"
	"github.com/meshgate/meshgate/internal/config"
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

func TestDemoConfigValid(t *testing.T) {
	if _, err := config.Load("edge.yaml"); err != nil {
		t.Fatalf("demo/edge.yaml does not validate:\n%v", err)
	}
	// The runner's rendering at another base must stay valid and move every
	// address, and the layout must be the documented one.
	out, err := demo.RenderConfig(demo.EdgeYAML, 25000)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`127\.0\.0\.1:18[0-9]{3}`).Match(out) {
		t.Errorf("rendered config still holds an 18xxx port:\n%s", out)
	}
	cfg, err := config.Parse("rendered", out)
	if err != nil {
		t.Fatalf("rendered config does not validate:\n%v", err)
	}
	l, err := demo.LayoutOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range l.Services {
		got = append(got, s.Label())
	}
	want := []string{"catalog-v1-25101", "catalog-v1-25102", "catalog-v2-25103", "orders-v1-25201"}
	if l.Public != "127.0.0.1:25080" || l.Admin != "127.0.0.1:25081" || !slices.Equal(got, want) {
		t.Errorf("layout = public %s admin %s services %v; want public 127.0.0.1:25080 admin 127.0.0.1:25081 services %v",
			l.Public, l.Admin, got, want)
	}
}

func TestCurlLines(t *testing.T) {
	want := map[string]string{
		"/products/42 GET":    "curl -i http://P/products/42",
		"/products/42 GET 2":  "curl -i -H 'X-Api-Version: 2' http://P/products/42",
		"/orders POST":        `curl -i -H 'Content-Type: application/json' -d '{"item":"book","qty":2}' http://P/orders`,
		"/orders DELETE":      "curl -i -X DELETE http://P/orders",
		"/products/1 GET":     "for i in $(seq 4); do curl -s http://P/products/1; echo; done",
		"/metrics GET":        "curl -s http://A/metrics | grep meshgate_",
		"/api/products/7 GET": "curl -i http://P/api/products/7",
		"/orders GET":         "curl -i http://P/orders",
	}
	seen := map[string]bool{}
	for _, e := range demo.Examples() {
		key := e.Path + " " + e.Method
		if len(e.Headers) > 0 && e.Method == "GET" {
			key += " " + e.Headers[0][1]
		}
		seen[key] = true
		w, ok := want[key]
		if !ok {
			t.Errorf("no expected curl line for example %q (%s)", e.Title, key)
			continue
		}
		if got := e.Curl("P", "A"); got != w {
			t.Errorf("%s:\n got %s\nwant %s", e.Title, got, w)
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("no example for %s", key)
		}
	}
}

// TestExamples runs the whole demo on free ports, performs every example the
// banner prints, checks its expectation, and checks that Stop leaves no
// child behind.
func TestExamples(t *testing.T) {
	bin := build(t, "./demo/demosvc", "./demo/meshdemo")
	build(t, "./edge")
	base, err := demo.PickPortBase(demo.EdgeYAML)
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	topo, err := demo.Start(ctx, demo.Options{BinDir: bin, PortBase: base, LogDir: logDir, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
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
	client := &http.Client{Timeout: 5 * time.Second}
	for i, e := range demo.Examples() {
		if !strings.Contains(banner.String(), e.Curl(topo.Public, topo.Admin)) {
			t.Errorf("the banner does not print example %d's curl line", i+1)
		}
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			rs, err := e.Do(ctx, client, topo.Public, topo.Admin)
			if err != nil {
				t.Fatalf("%s: %v", e.Title, err)
			}
			if err := e.Check(rs); err != nil {
				t.Error(err)
			}
		})
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
}

// TestCtrlC runs bin/meshdemo, waits for its banner, sends SIGINT and checks
// that it exits cleanly and that none of its children is left.
func TestCtrlC(t *testing.T) {
	bin := build(t, "./demo/demosvc", "./demo/meshdemo")
	build(t, "./edge")
	logDir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "meshdemo"), "--port-base", "0", "--logs", logDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
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

	var pids []int
	deadline := time.NewTimer(45 * time.Second)
	defer deadline.Stop()
	var out []string
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("meshdemo ended before its banner\nstdout:\n%s\nstderr:\n%s", strings.Join(out, "\n"), stderr.String())
			}
			out = append(out, line)
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "pids:"); ok {
				for f := range strings.FieldsSeq(rest) {
					pid, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("bad pids line %q", line)
					}
					pids = append(pids, pid)
				}
			}
			if line == demo.BannerEnd {
				break wait
			}
		case <-deadline.C:
			t.Fatalf("no banner within 45s\nstdout:\n%s\nstderr:\n%s", strings.Join(out, "\n"), stderr.String())
		}
	}
	if len(pids) != 5 {
		t.Fatalf("pids line lists %v, want 5 children (4 services and the edge)", pids)
	}
	data, err := os.ReadFile(filepath.Join(logDir, "pids"))
	if err != nil || strings.TrimSpace(string(data)) != strings.Trim(fmt.Sprint(pids), "[]") {
		t.Errorf("pids file = %q (%v), want %v", data, err, pids)
	}
	for _, pid := range pids {
		if !demo.Alive(pid) {
			t.Fatalf("child %d is not running while the banner is up", pid)
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

// TestStartFailsClearly runs the real services with a stand-in edge that
// crashes or never gets ready: Start must say which child failed and leave
// no child behind. It needs no real edge.
func TestStartFailsClearly(t *testing.T) {
	svcDir := build(t, "./demo/demosvc", "./demo/meshdemo")
	for _, tc := range []struct {
		name, script, want string
	}{
		{"crash", "#!/bin/sh\necho 'edge: boom' >&2\nexit 3\n", "edge: boom"},
		{"never ready", "#!/bin/sh\nexec sleep 600\n", "did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(filepath.Join(svcDir, "demosvc"), filepath.Join(dir, "demosvc")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "edge"), []byte(tc.script), 0o755); err != nil {
				t.Fatal(err)
			}
			base, err := demo.PickPortBase(demo.EdgeYAML)
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
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
			if len(pids) != 5 {
				t.Fatalf("started %v, want 5 children; runner log:\n%s", pids, logs.String())
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCheck shows that Check catches each kind of miss.
func TestCheck(t *testing.T) {
	byTitle := map[string]demo.Example{}
	for _, e := range demo.Examples() {
		byTitle[e.Path+" "+e.Method] = e
	}
	ok := func(body string) demo.Response {
		return demo.Response{Status: 200, Header: http.Header{"X-Served-By": {"meshgate"}}, Body: []byte(body)}
	}
	lb := byTitle["/products/1 GET"]
	same := ok(`{"service":"catalog","version":"v1","instance":"a"}`)
	other := ok(`{"service":"catalog","version":"v1","instance":"b"}`)
	if err := lb.Check([]demo.Response{same, other, same, other}); err != nil {
		t.Errorf("alternating instances: %v", err)
	}
	if err := lb.Check([]demo.Response{same, same, same, same}); err == nil {
		t.Error("one instance only: no error")
	}
	del := byTitle["/orders DELETE"]
	if err := del.Check([]demo.Response{{Status: 405, Header: http.Header{"Allow": {"POST, GET"}}}}); err != nil {
		t.Errorf("405 with Allow: %v", err)
	}
	if err := del.Check([]demo.Response{{Status: 405, Header: http.Header{"Allow": {"GET"}}}}); err == nil {
		t.Error("Allow without POST: no error")
	}
	v2 := byTitle["/products/42 GET"]
	if err := v2.Check([]demo.Response{{Status: 200, Body: []byte(`{"service":"catalog","version":"v1","product":{"id":"42"}}`)}}); err == nil {
		t.Error("missing X-Served-By: no error")
	}
	if err := v2.Check([]demo.Response{{Status: 502}}); err == nil {
		t.Error("502: no error")
	}
}
