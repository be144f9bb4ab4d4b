// Command bench is the benchmark harness behind `make bench`.
//
// It runs registered suites (see suites below) and prints a table per suite.
// With BENCH_JSON=path it also writes one JSON object whose keys are the suite
// names and whose values are each suite's fragment. BENCH_ONLY=a,b runs only
// the named suites.
//
// Environment:
//
//	BENCH_ONLY           comma-separated suite names (default: all)
//	BENCH_JSON           path of the JSON report (default: none)
//	BENCH_DURATION       length of each wrk (saturation) run (default 10s)
//	BENCH_ROUNDS         interleaved rounds per suite (default 3; at least 5 in
//	                     the paired suites auth, transform, tracing and cache
//	                     unless 1)
//	BENCH_RATE           fixed request rate of the latency run, req/s (default 2000)
//	BENCH_RATE_DURATION  length of each fixed-rate run (default 10s)
//	BENCH_EDGE           edge binary to measure (default bin/edge)
//	BENCH_AGGREGATE_RATE fixed rate of the aggregate suite, iterations/s (default
//	                     200; an iteration is a composite request, or its parts)
//
// The harness exits 1 when a suite or a target failed (after printing and
// writing whatever was measured).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts, err := optionsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	selected, err := selectSuites(suites, opts.Only)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	env, err := newEnv(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	defer env.Close()

	failed := false
	fragments := map[string][]byte{}
	for _, s := range selected {
		fmt.Printf("== suite %s\n", s.Name)
		frag, err := s.Run(ctx, env)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: suite %s: %v\n", s.Name, err)
			failed = true
		}
		if frag != nil {
			fragments[s.Name] = frag
		}
		if ctx.Err() != nil {
			break
		}
	}

	if opts.JSONPath != "" {
		out, err := mergeJSON(fragments)
		if err == nil {
			err = os.WriteFile(opts.JSONPath, out, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: writing %s: %v\n", opts.JSONPath, err)
			return 1
		}
		fmt.Printf("wrote %s\n", opts.JSONPath)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		return 130
	}
	if failed {
		return 1
	}
	return 0
}
