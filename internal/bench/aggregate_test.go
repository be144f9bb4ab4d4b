package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"go.yaml.in/yaml/v3"
)

var aggregateTestParts = []string{"127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"}

// The edge config has the shape of the schema: a composite route of a call
// to each part, a route to each part, an upstream for each.
func TestAggregateEdgeConfig(t *testing.T) {
	data := []byte(aggregateEdgeConfig("127.0.0.1:18000", "127.0.0.1:18009", aggregateTestParts))
	var cfg config.Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	checkAggregateConfig(t, &cfg)

	// And the loader, which validates it.
	loaded, err := config.Parse("aggregate.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	checkAggregateConfig(t, loaded)
	if loaded.Log.Access != "off" || loaded.Admin.Address != "127.0.0.1:18009" {
		t.Errorf("log/admin = %+v / %+v", loaded.Log, loaded.Admin)
	}
}

func checkAggregateConfig(t *testing.T, cfg *config.Config) {
	t.Helper()
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "127.0.0.1:18000" {
		t.Errorf("listeners = %+v", cfg.Listeners)
	}
	if len(cfg.Routes) != 1+len(aggregateParts) || len(cfg.Upstreams) != len(aggregateParts) {
		t.Fatalf("%d routes, %d upstreams", len(cfg.Routes), len(cfg.Upstreams))
	}
	page := cfg.Routes[0]
	if page.Name != "page" || page.Match.Path == nil || page.Match.Path.Exact != "/page" || page.Upstream != "" ||
		page.Aggregate == nil || len(page.Aggregate.Calls) != len(aggregateParts) {
		t.Fatalf("composite route = %+v", page)
	}
	for i, p := range aggregateParts {
		c := page.Aggregate.Calls[i]
		if c.Name != p || c.Upstream != "part-"+p || c.Path != "/"+p || c.IsOptional() {
			t.Errorf("call %d = %+v", i, c)
		}
		r := cfg.Routes[1+i]
		if r.Name != "part-"+p || r.Match.Path == nil || r.Match.Path.Exact != "/"+p || r.Upstream != "part-"+p || r.Aggregate != nil {
			t.Errorf("route %d = %+v", 1+i, r)
		}
		u := cfg.Upstreams[i]
		if u.Name != "part-"+p || len(u.Endpoints) != 1 || u.Endpoints[0].Address != aggregateTestParts[i] {
			t.Errorf("upstream %d = %+v", i, u)
		}
	}
}

// partBody is what the bench backend answers with -json.
func partBody(server string) []byte {
	b, _ := json.Marshal(partDoc{Server: server, Pad: strings.Repeat("x", 990)})
	return b
}

func TestAggregateChecks(t *testing.T) {
	const js = "application/json"
	if err := checkPart(js, partBody(aggregateTestParts[1]), aggregateTestParts[1]); err != nil {
		t.Error(err)
	}
	for _, bad := range []struct {
		ct   string
		body []byte
	}{
		{"text/plain", partBody(aggregateTestParts[1])},
		{js, partBody(aggregateTestParts[0])},
		{js, []byte(strings.Repeat("x", 1024))},
	} {
		if err := checkPart(bad.ct, bad.body, aggregateTestParts[1]); err == nil {
			t.Errorf("part %s %.30s: no error", bad.ct, bad.body)
		}
	}

	doc := func(keys ...string) []byte {
		m := map[string]json.RawMessage{}
		for i, k := range keys {
			m[k] = partBody(aggregateTestParts[i])
		}
		b, _ := json.Marshal(m)
		return b
	}
	if err := checkComposite(js+"; charset=utf-8", doc("a", "b", "c"), aggregateTestParts); err != nil {
		t.Error(err)
	}
	for name, body := range map[string][]byte{
		"a part missing":    doc("a", "b"),
		"parts mixed up":    doc("b", "a", "c"),
		"a part, not three": partBody(aggregateTestParts[0]),
		"not JSON":          []byte("<page/>"),
	} {
		if err := checkComposite(js, body, aggregateTestParts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// delayed is a backend answering after d, and counting its requests.
func delayed(t *testing.T, d time.Duration, status int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(d) // the backend's work, as the bench backend's -delay
		w.WriteHeader(status)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPace(t *testing.T) {
	const delay = 2 * time.Millisecond
	var urls []string
	var counts []*atomic.Int64
	for range 3 {
		srv, n := delayed(t, delay, http.StatusOK)
		urls, counts = append(urls, srv.URL), append(counts, n)
	}
	client := aggregateClient()
	defer client.CloseIdleConnections()

	for _, sequential := range []bool{false, true} {
		res := pace(context.Background(), client, urls, sequential, 100, 200*time.Millisecond)
		if res.started != 20 || res.errors != 0 || len(res.iters) != 20 || res.throughput() <= 0 {
			t.Fatalf("sequential %v: started %d, %d errors (%v), %d timed", sequential, res.started, res.errors, res.firstErr, len(res.iters))
		}
		var calls, iters time.Duration
		for i, c := range res.calls {
			if len(c) != 20 {
				t.Fatalf("sequential %v: url %d timed %d times", sequential, i, len(c))
			}
			for _, d := range c {
				if d < delay {
					t.Errorf("sequential %v: a call of %v, under the backend's %v", sequential, d, delay)
				}
				calls += d
			}
		}
		floor := delay // parallel: the slowest call's
		if sequential {
			floor = 3 * delay // the three calls'
		}
		for _, d := range res.iters {
			iters += d
			if d < floor {
				t.Errorf("sequential %v: an iteration of %v, under %v", sequential, d, floor)
			}
		}
		if sequential && iters != calls {
			t.Errorf("sequential: iterations took %v, their calls %v: not the sum", iters, calls)
		}
	}
	for i, n := range counts {
		if n.Load() != 40 {
			t.Errorf("backend %d: %d requests, want 40", i, n.Load())
		}
	}

	// A failing part fails its iterations, which are not timed.
	bad, _ := delayed(t, 0, http.StatusBadGateway)
	res := pace(context.Background(), client, []string{urls[0], bad.URL}, false, 100, 100*time.Millisecond)
	if res.started != 10 || res.errors != 10 || len(res.iters) != 0 || len(res.calls[0]) != 0 ||
		res.firstErr == nil || !strings.Contains(res.firstErr.Error(), "502") {
		t.Errorf("failing part: started %d, %d errors (%v), %d timed", res.started, res.errors, res.firstErr, len(res.iters))
	}

	// Cancelled: nothing more starts, and pace returns.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := pace(ctx, client, urls, true, 10, time.Hour); res.started > 1 {
		t.Errorf("cancelled: %d iterations started", res.started)
	}
}

func TestPercentileMS(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p50, p99, p100 := percentileMS(ds, 0.5), percentileMS(ds, 0.99), percentileMS(ds, 1); p50 != 50 || p99 != 99 || p100 != 100 {
		t.Errorf("p50 %v, p99 %v, p100 %v", p50, p99, p100)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("percentileMS sorted its argument")
	}
	if one := percentileMS(ds[:1], 0.99); one != 100 {
		t.Errorf("one sample: %v", one)
	}
}

func testAggregateRun(compositeP99 float64) *aggregateRun {
	r := &aggregateRun{rate: 200, problemLog: problemLog{scope: "aggregate"}}
	r.direct, r.composite, r.sequential = aggregateTargets("http://127.0.0.1:18000", aggregateTestParts, nil, nil)
	r.composite.p50, r.composite.p99, r.composite.rps = []float64{5.6, 5.4, 5.5}, []float64{compositeP99}, []float64{199.9}
	r.sequential.p50, r.sequential.p99 = []float64{15.4}, []float64{16.2}
	r.direct.p50, r.direct.partP50 = []float64{5.3}, [][]float64{{5.1}, {5.2, 5.25}, {5.15}}
	return r
}

func TestAggregateJSON(t *testing.T) {
	r := testAggregateRun(6.1)
	frag, err := json.Marshal(aggregateJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"rate": 200.0, "p50_ms_composite": 5.5, "p99_ms_composite": 6.1, "rps_composite": 199.9,
		"p50_ms_sequential": 15.4, "p99_ms_sequential": 16.2, "p50_ms_slowest_part": 5.225, "overhead_p50_ms": 0.275, "p50_ms_direct": 5.3,
		"target_p50_ms_composite": aggregateTargetP50MS, "target_p99_over_p50_composite": aggregateTargetP99OverP50, "target_overhead_p50_ms": aggregateTargetOverheadMS, "rounds": 3.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fragment = %s", frag)
	}

	// Unmeasured values are left out; problems are the error.
	r = &aggregateRun{rate: 200, problemLog: problemLog{scope: "aggregate"}}
	r.direct, r.composite, r.sequential = aggregateTargets("http://127.0.0.1:18000", aggregateTestParts, nil, nil)
	r.direct.partP50 = [][]float64{{5.1}, nil, {5.15}}
	r.problems = []string{"composite: answer check: status 502\nlog tail"}
	frag, _ = json.Marshal(aggregateJSON(r))
	if s := string(frag); s != `{"rate":200,"target_p50_ms_composite":6,"target_p99_over_p50_composite":2,"target_overhead_p50_ms":1,"rounds":0,"error":"composite: answer check: status 502"}` {
		t.Errorf("unmeasured: %s", s)
	}
}

func TestPrintAggregate(t *testing.T) {
	env := &Env{Opts: Options{Rounds: 3, RateDuration: 10 * time.Second}}
	for _, c := range []struct {
		p99  float64
		want []string
	}{
		{10.9, []string{"composite p50 ms           5.500       ≤ 6 ms  PASS", "composite p99 ms          10.900    ≤ 2 × p50  PASS  p99/p50 1.982"}},
		{11.1, []string{"composite p99 ms          11.100    ≤ 2 × p50  MISS  p99/p50 2.018",
			"slowest part p50 ms        5.225                     direct: a 5.100, b 5.225, c 5.150",
			"direct p50 ms              5.300                     the three backends at once without the edge",
			"overhead p50 ms            0.275       ≤ 1 ms  PASS  composite p50 − slowest part p50"}},
	} {
		var b strings.Builder
		printAggregate(&b, env, testAggregateRun(c.p99))
		for _, w := range c.want {
			if !strings.Contains(b.String(), w+"\n") {
				t.Errorf("no line %q in\n%s", w, b.String())
			}
		}
	}
	r := testAggregateRun(6)
	r.composite.p50 = nil
	var b strings.Builder
	printAggregate(&b, env, r)
	if !strings.Contains(b.String(), "composite p50 ms               -       ≤ 6 ms  -\n") {
		t.Errorf("unmeasured composite:\n%s", b.String())
	}
}
