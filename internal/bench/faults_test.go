package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An endpoint is in the edge's rotation when it is exported healthy and
// not ejected; other upstreams' endpoints do not count.
func TestCountHealthy(t *testing.T) {
	metrics := `# HELP meshgate_upstream_endpoint_healthy 1 when the endpoint passes its health checks.
meshgate_upstream_endpoint_ejected{endpoint="127.0.0.1:1",upstream="backend"} 0
meshgate_upstream_endpoint_ejected{endpoint="127.0.0.1:2",upstream="backend"} 1
meshgate_upstream_endpoint_healthy{endpoint="127.0.0.1:1",upstream="backend"} 1
meshgate_upstream_endpoint_healthy{endpoint="127.0.0.1:2",upstream="backend"} 1
meshgate_upstream_endpoint_healthy{endpoint="127.0.0.1:3",upstream="backend"} 0
meshgate_upstream_endpoint_healthy{endpoint="127.0.0.1:4",upstream="backend-2"} 1
`
	series, err := parseMetrics(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	if n := countHealthy(series, "backend"); n != 1 {
		t.Fatalf("in rotation: %d; want 1 (the other is ejected, the third unhealthy)", n)
	}
}

func TestFaultsReport(t *testing.T) {
	r := &faultsRun{rates: []int{300, 1000}, outcomes: map[string]map[int]*loadOutcome{
		"crash": {300: {sent: 6000}, 1000: {sent: 20000, failures: []loadFailure{{at: 6 * time.Second, what: "503 Service Unavailable: upstream overloaded"}}, out: 5300 * time.Millisecond}},
	}}
	frag, err := json.Marshal(faultsJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	if got["crash_failed"] != 1.0 || got["crash_failed_300"] != 0.0 || got["crash_out_s_1000"] != 5.3 || got["run_s"] != 20.0 {
		t.Errorf("fragment = %s", frag)
	}
	if _, ok := got["hang_failed"]; ok {
		t.Errorf("a scenario not run is reported: %s", frag)
	}
	if got := errorText([]byte(`{"status":503,"error":"upstream overloaded","request_id":"x"}`)); got != "upstream overloaded" {
		t.Errorf("errorText = %q", got)
	}
	if rates, err := faultsRates(func(string) string { return "100, 200" }); err != nil || len(rates) != 2 || rates[1] != 200 {
		t.Errorf("faultsRates = %v, %v", rates, err)
	}
	if _, err := faultsRates(func(string) string { return "fast" }); err == nil {
		t.Error("faultsRates accepted a word")
	}
	if only, err := faultsOnly(func(string) string { return "rolling, detect" }); err != nil || len(only) != 2 || only[1] != "detect" {
		t.Errorf("faultsOnly = %v, %v", only, err)
	}
	if all, err := faultsOnly(func(string) string { return "" }); err != nil || len(all) != len(faultsScenarios)+1 {
		t.Errorf("faultsOnly() = %v, %v", all, err)
	}
	if _, err := faultsOnly(func(string) string { return "crash,flood" }); err == nil {
		t.Error("faultsOnly accepted an unknown scenario")
	}
}
