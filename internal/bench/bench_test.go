package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

const wrkOut = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.62ms  210.33us   9.87ms   91.02%
    Req/Sec    30.91k     1.02k   32.50k    78.00%
  307612 requests in 10.00s, 362.14MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:  30758.84
Transfer/sec:     36.21MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{Requests: 307612, Seconds: 10, RPS: 30758.84, Non2xx: 12, SocketErrors: 6}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}

	short := "Running 1s test @ http://x/\n  1 threads and 5 connections\n" +
		"  1495 requests in 999.50ms, 759.36KB read\nRequests/sec:   1491.56\nTransfer/sec:    757.61KB"
	r, err = parseWrk(short)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 1495 || r.Seconds != 0.9995 || r.RPS != 1491.56 || r.Non2xx != 0 || r.SocketErrors != 0 {
		t.Fatalf("got %+v", r)
	}

	for _, bad := range []string{"", "unable to connect to 127.0.0.1:1 Connection refused", "  10 requests in 1.00s, 1KB read\n"} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q): want error", bad)
		}
	}
}

const vegetaOK = `{"latencies":{"total":114661344,"mean":2293226,"50th":2195782,"90th":2815777,"95th":3439094,"99th":3563678,"max":3563678,"min":1782891},"bytes_in":{"total":140350,"mean":2807},"bytes_out":{"total":0,"mean":0},"earliest":"2026-11-28T04:50:12.403407462Z","latest":"2026-11-28T04:50:13.383673188Z","end":"2026-11-28T04:50:13.385898932Z","duration":980265726,"wait":2225744,"requests":50,"rate":51.00657778174732,"throughput":50.8910270742605,"success":1,"status_codes":{"200":50},"errors":[]}`

const vegetaFail = `{"latencies":{"total":3275716,"mean":655143,"50th":489147,"90th":1331865,"95th":1331865,"99th":1331865,"max":1331865,"min":457681},"bytes_in":{"total":0,"mean":0},"bytes_out":{"total":0,"mean":0},"earliest":"2026-11-28T04:50:13.601596668Z","latest":"2026-11-28T04:50:14.40197594Z","end":"2026-11-28T04:50:14.402465087Z","duration":800379272,"wait":489147,"requests":5,"rate":6.247038341592634,"throughput":0,"success":0.4,"status_codes":{"0":3,"200":2},"errors":["Get \"http://127.0.0.1:1/\": dial tcp 0.0.0.0:0-\u003e127.0.0.1:1: connect: connection refused"]}`

func TestParseVegeta(t *testing.T) {
	r, err := parseVegeta([]byte(vegetaOK))
	if err != nil {
		t.Fatal(err)
	}
	if r.P50ms() != 2.195782 || r.P99ms() != 3.563678 || r.Requests != 50 || r.Success != 1 {
		t.Fatalf("got %+v", r)
	}
	if p := r.SuccessProblem(); p != "" {
		t.Fatalf("SuccessProblem = %q, want none", p)
	}

	r, err = parseVegeta([]byte(vegetaFail))
	if err != nil {
		t.Fatal(err)
	}
	p := r.SuccessProblem()
	if !strings.Contains(p, "success ratio 0.4000") || !strings.Contains(p, "connection refused") {
		t.Fatalf("SuccessProblem = %q", p)
	}

	for _, bad := range []string{"", "not json", `{"requests":0}`} {
		if _, err := parseVegeta([]byte(bad)); err == nil {
			t.Errorf("parseVegeta(%q): want error", bad)
		}
	}
}

func TestMergeJSON(t *testing.T) {
	out, err := mergeJSON(map[string][]byte{
		"zeta":      []byte(`{"x":1}`),
		"dataplane": []byte(`{"direct":{"rps":100},"edge":{"rps":90,"cpu_us_per_req":12.5}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "}\n") {
		t.Errorf("report not newline-terminated: %q", out)
	}
	if strings.Index(string(out), `"dataplane"`) > strings.Index(string(out), `"zeta"`) {
		t.Errorf("keys not sorted:\n%s", out)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var dp map[string]map[string]float64
	if err := json.Unmarshal(got["dataplane"], &dp); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || dp["edge"]["cpu_us_per_req"] != 12.5 || dp["direct"]["rps"] != 100 {
		t.Errorf("got %s", out)
	}

	if _, err := mergeJSON(map[string][]byte{"bad": []byte(`{"x":`)}); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("invalid fragment: err = %v", err)
	}
	out, err = mergeJSON(nil)
	if err != nil || strings.TrimSpace(string(out)) != "{}" {
		t.Errorf("empty merge = %q, %v", out, err)
	}
}

func TestDataplaneJSON(t *testing.T) {
	targets := []*dpTarget{
		{name: "direct", rps: []float64{100, 300, 200}, p50: []float64{0.1, 0.2, 0.3}, p99: []float64{1, 2, 3},
			cpuUS: []float64{9}, rssBytes: 10 << 20},
		{name: "edge", proxy: true, rps: []float64{50, 70}, cpuUS: []float64{10, 20}, p50: []float64{1, 2}, p99: []float64{3, 4}, rssBytes: 3 << 19},
		{name: "nginx", proxy: true, err: errString("nginx failed to start: boom\n    log tail")},
	}
	frag, err := json.Marshal(dataplaneJSON(targets))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	if d := got["direct"]; d["rps"] != 200.0 || d["p50_ms"] != 0.2 || d["p99_ms"] != 2.0 || d["rss_mb"] != 10.0 {
		t.Errorf("direct = %v", d)
	}
	if _, ok := got["direct"]["cpu_us_per_req"]; ok {
		t.Errorf("direct has cpu_us_per_req: %v", got["direct"])
	}
	if e := got["edge"]; e["rps"] != 60.0 || e["cpu_us_per_req"] != 15.0 || e["p50_ms"] != 1.5 || e["rss_mb"] != 1.5 {
		t.Errorf("edge = %v", e)
	}
	if n := got["nginx"]; n["error"] != "nginx failed to start: boom" || n["rps"] != nil {
		t.Errorf("nginx = %v", n)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestOptionsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	o, err := optionsFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Duration != 10*time.Second || o.Rounds != 3 || o.Rate != 2000 || o.RateDuration != 10*time.Second || o.Only != nil {
		t.Errorf("defaults = %+v", o)
	}
	o, err = optionsFromEnv(env(map[string]string{"BENCH_DURATION": "2s", "BENCH_ROUNDS": "1",
		"BENCH_RATE": "500", "BENCH_RATE_DURATION": "3s", "BENCH_ONLY": " dataplane, x ", "BENCH_JSON": "/tmp/o.json"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Duration != 2*time.Second || o.Rounds != 1 || o.Rate != 500 || o.RateDuration != 3*time.Second ||
		strings.Join(o.Only, "|") != "dataplane|x" || o.JSONPath != "/tmp/o.json" {
		t.Errorf("overrides = %+v", o)
	}
	for _, bad := range []map[string]string{{"BENCH_DURATION": "10"}, {"BENCH_DURATION": "500ms"}, {"BENCH_ROUNDS": "0"}, {"BENCH_RATE": "x"}} {
		if _, err := optionsFromEnv(env(bad)); err == nil {
			t.Errorf("%v: want error", bad)
		}
	}
}

func TestSelectSuites(t *testing.T) {
	all := []Suite{{Name: "dataplane"}, {Name: "mesh"}}
	got, err := selectSuites(all, []string{"mesh", "dataplane"})
	if err != nil || len(got) != 2 || got[0].Name != "dataplane" {
		t.Errorf("got %v, %v", got, err)
	}
	if got, _ := selectSuites(all, nil); len(got) != 2 {
		t.Errorf("all: got %v", got)
	}
	if _, err := selectSuites(all, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "dataplane, mesh") {
		t.Errorf("unknown suite: err = %v", err)
	}
	if len(suites) == 0 || suites[0].Name != "dataplane" {
		t.Errorf("registry = %v", suites)
	}
}

func TestProcParsers(t *testing.T) {
	stat := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 27 0 0 20 0 3 0 100 12345678 900 18446744073709551615\n"
	n, err := parseStatCPU(stat)
	if err != nil || n != 177 {
		t.Errorf("parseStatCPU = %d, %v; want 177", n, err)
	}
	if p := statPPid(stat); p != 1 {
		t.Errorf("statPPid = %d", p)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("parseStatCPU(garbage): want error")
	}

	status := "Name:\tnginx\nVmPeak:\t  60000 kB\nVmHWM:\t    13104 kB\nVmRSS:\t    12000 kB\n"
	b, err := parseVmHWM(strings.NewReader(status))
	if err != nil || b != 13104*1024 {
		t.Errorf("parseVmHWM = %d, %v", b, err)
	}
	if _, err := parseVmHWM(strings.NewReader("Name:\tx\n")); err == nil {
		t.Error("parseVmHWM without VmHWM: want error")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// The edge config the harness writes must be accepted by the edge's loader.
func TestEdgeConfigValid(t *testing.T) {
	cfg, err := config.Parse("edge.yaml", []byte(edgeConfig("127.0.0.1:18000", "127.0.0.1:18001")))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Name != "http" || cfg.Log.Access != "off" ||
		len(cfg.Upstreams) != 1 || cfg.Upstreams[0].Protocol != "http1" || cfg.Routes[0].Match.Path.Prefix != "/" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestNginxConfig(t *testing.T) {
	c := nginxConfig("/tmp/p", "127.0.0.1:1", "127.0.0.1:2")
	for _, want := range []string{"worker_processes 1;", "daemon off;", "access_log off;", "pid /tmp/p/nginx.pid;",
		"server 127.0.0.1:2;", "listen 127.0.0.1:1;", "keepalive 128;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`} {
		if !strings.Contains(c, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	if strings.Count(c, "keepalive_requests") != 2 {
		t.Errorf("keepalive_requests must be raised on client and upstream side:\n%s", c)
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Errorf("unbalanced braces:\n%s", c)
	}
}
