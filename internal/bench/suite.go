package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Suite is one named benchmark. Run prints its own table and returns its
// JSON fragment, which the report stores under the suite's name. A suite that
// partly failed returns both what it measured and an error.
type Suite struct {
	Name string
	Run  func(ctx context.Context, env *Env) (json.RawMessage, error)
	// Explicit suites run only when BENCH_ONLY names them (make soak).
	Explicit bool
}

// suites is the registry, in run order. Later issues append to it.
var suites = []Suite{
	{Name: "dataplane", Run: runDataplane},
	{Name: "sidecar", Run: runSidecar},
	{Name: "gossip", Run: runGossip},
	{Name: "limits", Run: runLimits},
	{Name: "tracing", Run: runTracing},
	{Name: "auth", Run: runAuth},
	{Name: "transform", Run: runTransform},
	{Name: "aggregate", Run: runAggregate},
	{Name: "cache", Run: runCache},
	{Name: "faults", Run: runFaults},
	{Name: "soak", Run: runSoak, Explicit: true},
}

// Options are the harness settings read from the environment.
type Options struct {
	Only         []string
	JSONPath     string
	Duration     time.Duration // each wrk run
	Rounds       int
	Rate         int           // req/s of the fixed-rate run
	RateDuration time.Duration // each fixed-rate run
	Warmup       time.Duration
	Edge         string // edge binary (default: bin/edge)
}

func optionsFromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		JSONPath:     getenv("BENCH_JSON"),
		Edge:         getenv("BENCH_EDGE"),
		Duration:     10 * time.Second,
		Rounds:       3,
		Rate:         2000,
		RateDuration: 10 * time.Second,
		Warmup:       time.Second,
	}
	for _, name := range strings.Split(getenv("BENCH_ONLY"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			o.Only = append(o.Only, name)
		}
	}
	durs := []struct {
		key string
		dst *time.Duration
	}{{"BENCH_DURATION", &o.Duration}, {"BENCH_RATE_DURATION", &o.RateDuration}}
	for _, d := range durs {
		if v := getenv(d.key); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < time.Second {
				return o, fmt.Errorf("%s=%q: want a duration of at least 1s (like 10s)", d.key, v)
			}
			*d.dst = x
		}
	}
	ints := []struct {
		key string
		dst *int
	}{{"BENCH_ROUNDS", &o.Rounds}, {"BENCH_RATE", &o.Rate}}
	for _, i := range ints {
		if v := getenv(i.key); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil || x < 1 {
				return o, fmt.Errorf("%s=%q: want a positive integer", i.key, v)
			}
			*i.dst = x
		}
	}
	return o, nil
}

// selectSuites returns the registered suites named in only (all when empty),
// in registry order.
func selectSuites(all []Suite, only []string) ([]Suite, error) {
	if len(only) == 0 {
		var out []Suite
		for _, s := range all {
			if !s.Explicit {
				out = append(out, s)
			}
		}
		return out, nil
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	for _, n := range only {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("BENCH_ONLY: unknown suite %q (have: %s)", n, strings.Join(names, ", "))
		}
	}
	var out []Suite
	for _, s := range all {
		if slices.Contains(only, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// mergeJSON builds the report: one object with each suite's fragment under
// its name (keys sorted), indented, newline-terminated.
func mergeJSON(fragments map[string][]byte) ([]byte, error) {
	obj := make(map[string]json.RawMessage, len(fragments))
	for name, f := range fragments {
		if !json.Valid(f) {
			return nil, fmt.Errorf("suite %s: fragment is not valid JSON", name)
		}
		obj[name] = json.RawMessage(f)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(obj); err != nil { // map keys are sorted
		return nil, err
	}
	return buf.Bytes(), nil
}

// logf prints a progress line.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}
