package node

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/urfave/cli/v2"
)

// Runtime tunes the Go runtime of a node binary; GOGC and GOMEMLIMIT in the
// environment override it.
type Runtime struct {
	// GCPercent: a proxy's live heap is a few MiB of pools and tables while
	// every request makes short-lived garbage, so the edge collects less
	// often (400) to save CPU and tail latency.
	GCPercent int
	// MemoryLimit (bytes, 0: none) is a soft limit: the sidecar runs beside
	// every service, where its footprint matters more than its GC CPU.
	MemoryLimit int64
	// TrimAfterStart drops the executable's pages only start-up touched
	// (see trimStartupPages), for the same reason.
	TrimAfterStart bool
}

// cacheHeadroom is the memory a caching node may take beyond twice its
// cache: pools, tables, buffers in flight.
const cacheHeadroom = 64 << 20

// memoryLimit is the soft memory limit of a node whose routes may fill a
// cache of cacheBytes (0: none). A GCPercent of 400 lets the heap grow to
// five times what is live: harmless for a proxy's few MiB, but a full cache
// is live heap too, and 64 MiB of it would let the process grow past 300
// MiB. So a caching node's limit is twice its cache plus headroom: the
// collector runs when the heap nears it, which is seldom, as the cache is
// most of the heap and does not turn into garbage.
func (rt Runtime) memoryLimit(cacheBytes int64) int64 {
	if cacheBytes <= 0 {
		if rt.MemoryLimit > 0 {
			return rt.MemoryLimit
		}
		return math.MaxInt64 // none: the runtime's default
	}
	return max(rt.MemoryLimit, 2*cacheBytes+cacheHeadroom)
}

// EdgeRuntime and SidecarRuntime are the defaults of the two binaries.
var (
	EdgeRuntime    = Runtime{GCPercent: 400}
	SidecarRuntime = Runtime{GCPercent: 100, MemoryLimit: 24 << 20, TrimAfterStart: true}
)

// App is the command line of a node binary (edge or sidecar): `NAME --config
// FILE` serves, `NAME validate --config FILE` checks a file. load reads the
// binary's kind of file.
func App(name, usage string, load func(string) (*config.Config, error), rt Runtime) *cli.App {
	configFlag := &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE` (YAML)", EnvVars: []string{"MESHGATE_CONFIG"}}
	return &cli.App{
		Name:    name,
		Usage:   usage,
		Version: buildinfo.Version,
		Flags: []cli.Flag{configFlag,
			&cli.StringFlag{Name: "log-level", Usage: "process log level: debug, info, warn, error (overrides the file)"},
		},
		Action: func(c *cli.Context) error { return run(c, name, load, rt) },
		Commands: []*cli.Command{{
			Name:  "validate",
			Usage: "check a configuration file and exit non-zero with its errors",
			Flags: []cli.Flag{configFlag},
			Action: func(c *cli.Context) error {
				if c.String("config") == "" {
					return cli.Exit(name+" validate: --config FILE is required", 2)
				}
				if _, err := load(c.String("config")); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Printf("%s: ok\n", c.String("config"))
				return nil
			},
		}},
	}
}

func run(c *cli.Context, name string, load func(string) (*config.Config, error), rt Runtime) error {
	if os.Getenv("GOGC") == "" && rt.GCPercent > 0 {
		debug.SetGCPercent(rt.GCPercent)
	}
	var onCacheSize func(int64)
	if os.Getenv("GOMEMLIMIT") == "" {
		if rt.MemoryLimit > 0 {
			debug.SetMemoryLimit(rt.MemoryLimit)
		}
		onCacheSize = func(cacheBytes int64) { debug.SetMemoryLimit(rt.memoryLimit(cacheBytes)) }
	}
	path := c.String("config")
	if path == "" {
		return cli.Exit(name+": --config FILE is required (see "+name+" --help)", 2)
	}
	cfg, err := load(path)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	level := cfg.Log.Level
	if l := c.String("log-level"); l != "" {
		level = l
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return cli.Exit(fmt.Sprintf("invalid log level %q", level), 2)
	}
	// The process log goes to stderr so that stdout can carry the access log.
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	n, err := New(Options{ConfigPath: path, Load: load, Logger: logger, Role: name, OnCacheSize: onCacheSize})
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	logger.Info(name+" started", "version", buildinfo.Version, "config", path)
	if rt.TrimAfterStart {
		if n, err := trimStartupPages(); err != nil {
			logger.Warn("could not release start-up pages", "err", err)
		} else {
			logger.Debug("released start-up pages", "mapped_bytes", n)
		}
	}
	return n.Run(ctx)
}
