package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/meshtest"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// duplicateKey returns the first key that appears twice in one object of
// the JSON text line ("" when none), or an error if it is not JSON.
func duplicateKey(line string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.key {
				if top.seen[v] {
					return v, nil
				}
				top.seen[v] = true
				top.key = false
				continue
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

func TestDuplicateKeyDetector(t *testing.T) {
	for line, want := range map[string]string{
		`{"a":1,"b":{"a":2},"c":[{"a":1}]}`: "",
		`{"a":1,"b":2,"a":3}`:               "a",
		`{"x":{"k":1,"k":2}}`:               "k",
		`{"x":[1,"a"],"a":1}`:               "",
	} {
		if got, err := duplicateKey(line); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", line, got, err, want)
		}
	}
}

// Every line of the process log is JSON with each key once (an upstream's
// lines named it twice: "upstream" from the node and from the upstream).
func TestProcessLogLinesHaveUniqueKeys(t *testing.T) {
	a := echoBackend(t, "a")
	dir := t.TempDir()
	path := filepath.Join(dir, "edge.yaml")
	yaml := fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(a))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out meshtest.SyncBuffer
	access := telemetry.NewAccessLog(io.Discard, io.NopCloser(nil))
	defer access.Close()
	n, err := New(Options{ConfigPath: path, AccessLog: access,
		Logger: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	sawUpstream := false
	for _, line := range lines {
		key, err := duplicateKey(line)
		if err != nil {
			t.Errorf("not JSON: %v: %s", err, line)
			continue
		}
		if key != "" {
			t.Errorf("key %q twice in: %s", key, line)
		}
		sawUpstream = sawUpstream || strings.Contains(line, `"upstream":"u"`)
	}
	if !sawUpstream {
		t.Fatalf("no line of upstream u in the log:\n%s", out.String())
	}
}
