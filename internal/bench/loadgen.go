package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WrkResult is what the harness reads from wrk's text output.
type WrkResult struct {
	Requests     int64   // "N requests in D, ..."
	Seconds      float64 // D
	RPS          float64 // "Requests/sec: X"
	Non2xx       int64   // "Non-2xx or 3xx responses: N"
	SocketErrors int64   // sum of "Socket errors: connect a, read b, write c, timeout d"
}

var (
	wrkReqsRe   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)\b`)
	wrkRPSRe    = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkNon2xxRe = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockRe   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkReqsRe.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output: no \"N requests in\" line")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	d, _ := strconv.ParseFloat(m[2], 64)
	switch m[3] {
	case "us":
		d /= 1e6
	case "ms":
		d /= 1e3
	case "m":
		d *= 60
	case "h":
		d *= 3600
	}
	r.Seconds = d
	m = wrkRPSRe.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output: no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkNon2xxRe.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = wrkSockRe.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SocketErrors += n
		}
	}
	return r, nil
}

// durArg formats a duration for wrk/vegeta flags in whole seconds (at least 1).
func durArg(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10) + "s"
}

// VegetaResult is the part of `vegeta report -type=json` the harness uses.
type VegetaResult struct {
	Latencies struct {
		P50  int64 `json:"50th"`
		P90  int64 `json:"90th"`
		P99  int64 `json:"99th"`
		Max  int64 `json:"max"`
		Mean int64 `json:"mean"`
	} `json:"latencies"` // nanoseconds
	Requests    int64            `json:"requests"`
	Rate        float64          `json:"rate"`
	Throughput  float64          `json:"throughput"`
	Success     float64          `json:"success"`
	StatusCodes map[string]int64 `json:"status_codes"`
	Errors      []string         `json:"errors"`
}

func parseVegeta(data []byte) (VegetaResult, error) {
	var r VegetaResult
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("vegeta report: %v", err)
	}
	if r.Requests == 0 {
		return r, errors.New("vegeta report: no requests")
	}
	return r, nil
}

// P50ms and P99ms are the latency percentiles in milliseconds.
func (r VegetaResult) P50ms() float64 { return float64(r.Latencies.P50) / 1e6 }
func (r VegetaResult) P99ms() float64 { return float64(r.Latencies.P99) / 1e6 }

// SuccessProblem describes failed requests, or "" when all succeeded.
func (r VegetaResult) SuccessProblem() string {
	if r.Success >= 1 {
		return ""
	}
	errs := r.Errors
	if len(errs) > 3 {
		errs = errs[:3]
	}
	return fmt.Sprintf("success ratio %.4f (status codes %v; errors %q)", r.Success, r.StatusCodes, errs)
}

// runVegeta attacks url at a constant rate on the load-generator core and
// returns the JSON report.
func (e *Env) runVegeta(ctx context.Context, vegeta, url string, rate int, d time.Duration) (VegetaResult, error) {
	targets := filepath.Join(e.Tmp, "targets.txt")
	if err := os.WriteFile(targets, []byte("GET "+url+"\n"), 0o644); err != nil {
		return VegetaResult{}, err
	}
	results := filepath.Join(e.Tmp, "results.bin")
	argv := e.pinned(1, vegeta, "attack",
		"-targets="+targets, "-rate="+strconv.Itoa(rate)+"/1s", "-duration="+durArg(d),
		"-keepalive=true", "-timeout=10s", "-output="+results)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return VegetaResult{}, fmt.Errorf("vegeta attack: %v: %s", err, strings.TrimSpace(string(out)))
	}
	rep := exec.CommandContext(ctx, vegeta, "report", "-type=json", results)
	var stderr strings.Builder
	rep.Stderr = &stderr
	out, err := rep.Output()
	if err != nil {
		return VegetaResult{}, fmt.Errorf("vegeta report: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseVegeta(out)
}
