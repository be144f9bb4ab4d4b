// Command meshdemo runs the meshgate demo: the whole mesh on one machine —
// the edge, demo services each behind a sidecar, one gossip cluster, SPIFFE
// identities served over the Workload API, a trace receiver every node
// exports its spans to (see demo/edge.yaml and demo/sidecars.yaml) — prints
// what to try (curl, meshctl, a trace, stopping a service), and stops every
// child on Ctrl-C.
//
//	make demo                      # builds bin/, then runs bin/meshdemo
//	bin/meshdemo --port-base 0     # pick free ports instead of 18xxx
//
// It finds bin/edge, bin/sidecar, bin/demosvc and bin/meshctl next to its
// own executable. The children's logs go to files (--logs), not the terminal.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/demo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "meshdemo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("meshdemo", flag.ContinueOnError)
	base := fs.Int("port-base", demo.DefaultPortBase, "shift the 18xxx ports of the config to BASE+xxx; 0 picks a free base")
	logs := fs.String("logs", "", "directory for the children's logs, configs, pids and the demo's CA (default: demo/.logs under the module root when run from it, else a temporary directory)")
	edgeFile := fs.String("config", "", "edge config to run instead of the embedded demo/edge.yaml")
	sidecarsFile := fs.String("sidecars", "", "sidecar configs (YAML documents) to run instead of the embedded demo/sidecars.yaml")
	readyTimeout := fs.Duration("ready-timeout", 30*time.Second, "how long to wait for every child to answer and the mesh to form")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// The runner's own log goes to LOGS/meshdemo.log; the terminal gets
	// its warnings only.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	opts := demo.Options{
		BinDir:       filepath.Dir(exe),
		PortBase:     *base,
		LogDir:       *logs,
		ReadyTimeout: *readyTimeout,
		Log:          log,
	}
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{*edgeFile, &opts.Edge}, {*sidecarsFile, &opts.Sidecars}} {
		if f.path != "" {
			if *f.dst, err = os.ReadFile(f.path); err != nil {
				return err
			}
		}
	}
	if opts.PortBase == 0 {
		edge, sidecars := opts.Edge, opts.Sidecars
		if edge == nil {
			edge = demo.EdgeYAML
		}
		if sidecars == nil {
			sidecars = demo.SidecarsYAML
		}
		if opts.PortBase, err = demo.PickPortBase(edge, sidecars); err != nil {
			return err
		}
	}
	if opts.LogDir == "" {
		if _, err := os.Stat(filepath.Join("demo", "edge.yaml")); err == nil {
			opts.LogDir = filepath.Join("demo", ".logs")
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the runner at once (on Linux the kernel then sends the children SIGTERM)
	}()
	fmt.Println("starting the meshgate demo…")
	err = demo.Run(ctx, opts, os.Stdout)
	if err != nil && strings.Contains(err.Error(), "is not free") {
		err = fmt.Errorf("%w\n(run with --port-base 0 to pick free ports)", err)
	}
	return err
}
