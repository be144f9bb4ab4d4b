package node

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/telemetry"
)

// edge is a running node on loopback for a test, with its config file.
type edge struct {
	t           *testing.T
	path        string
	node        *Node
	accessLines chan string
}

// startEdge writes yaml to a file and starts a node from it. The access log
// is kept in memory for assertions.
func startEdge(t *testing.T, yaml string) *edge {
	t.Helper()
	return startEdgeB(t, t, yaml)
}

// startEdgeB is startEdge for tests and benchmarks alike.
func startEdgeB(tb testing.TB, t *testing.T, yaml string) *edge {
	return startNode(tb, t, yaml, Options{})
}

// startNode starts a node from yaml with opts (its ConfigPath, Logger and
// AccessLog are filled in here).
func startNode(tb testing.TB, t *testing.T, yaml string, opts Options) *edge {
	e := &edge{t: t, path: filepath.Join(tb.TempDir(), "edge.yaml")}
	e.write(yaml)
	pr, pw := io.Pipe()
	lines := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	access := telemetry.NewAccessLog(pw, pw)
	logger := slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.ConfigPath, opts.Logger, opts.AccessLog = e.path, logger, access
	n, err := New(opts)
	if err != nil {
		access.Close()
		tb.Fatalf("start node: %v", err)
	}
	e.node = n
	e.accessLines = lines
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
		access.Close()
	})
	return e
}

func (e *edge) write(yaml string) {
	e.t.Helper()
	tmp := e.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		e.t.Fatal(err)
	}
}

// url of a listener.
func (e *edge) url(listener string) string {
	a := e.node.Addr(listener)
	if a == "" {
		e.t.Fatalf("no listener %q", listener)
	}
	return "http://" + a
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// get does a request and returns status, headers and body.
func get(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
