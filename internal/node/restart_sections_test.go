package node

import (
	"context"
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

// Sections read only at start (tracing here; cluster alike) warn on every
// reload whose file differs from what runs, and stop warning when the
// file is back to it: the comparison is with the start, not the last file.
func TestReloadWarnsOfSectionsReadAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edge.yaml")
	write := func(ratio string) {
		yaml := "listeners: [{name: l, address: \"127.0.0.1:0\"}]\n" +
			"tracing: {endpoint: \"127.0.0.1:4317\", insecure: true, sampling: {ratio: " + ratio + "}}\n"
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0.5")
	var logs meshtest.SyncBuffer
	access := telemetry.NewAccessLog(io.Discard, io.NopCloser(nil))
	defer access.Close() // after the node's Shutdown below (defers run last first)
	n, err := New(Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		AccessLog: access, TraceExporter: newSpanSink()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	}()
	const warning = "the tracing section changed"
	for i, step := range []struct {
		ratio string
		warns bool
	}{{"0.5", false}, {"1", true}, {"1", true}, {"0.5", false}} {
		write(step.ratio)
		before := strings.Count(logs.String(), warning)
		if err := n.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got := strings.Count(logs.String(), warning) > before; got != step.warns {
			t.Fatalf("reload %d (ratio %s): warned %v, want %v\n%s", i, step.ratio, got, step.warns, logs.String())
		}
	}
}
