// Command meshdemo runs the meshgate demo: the edge in front of demo
// services on loopback (see demo/edge.yaml), prints the curl commands to try,
// and stops every child on Ctrl-C.
//
//	make demo                      # builds bin/, then runs bin/meshdemo
//	bin/meshdemo --port-base 0     # pick free ports instead of 18xxx
//
// It finds bin/edge and bin/demosvc next to its own executable.
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
	logs := fs.String("logs", "", "directory for the children's logs (default: demo/.logs under the module root when run from it, else a temporary directory)")
	cfgFile := fs.String("config", "", "edge config to run instead of the embedded demo/edge.yaml")
	readyTimeout := fs.Duration("ready-timeout", 20*time.Second, "how long to wait for every child to answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

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
	if *cfgFile != "" {
		if opts.Config, err = os.ReadFile(*cfgFile); err != nil {
			return err
		}
	}
	if opts.PortBase == 0 {
		src := opts.Config
		if src == nil {
			src = demo.EdgeYAML
		}
		if opts.PortBase, err = demo.PickPortBase(src); err != nil {
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
	err = demo.Run(ctx, opts, os.Stdout)
	if err != nil && strings.Contains(err.Error(), "is not free") {
		err = fmt.Errorf("%w\n(run with --port-base 0 to pick free ports)", err)
	}
	return err
}
