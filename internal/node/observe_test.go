package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every request gets one JSON access log line with the documented fields.
func TestAccessLogLine(t *testing.T) {
	a := echoBackend(t, "a")
	e := startEdge(t, simpleConfig(addr(a), ""))
	get(t, nil, "GET", e.url("public")+"/some/path?q=1", map[string]string{"X-Request-Id": "req-1", "Host": "api.example.com"})
	rawExchange(t, strings.TrimPrefix(e.url("public"), "http://"), "GET /bad/%00x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

	var lines []map[string]any
	deadline := time.After(5 * time.Second)
	for len(lines) < 2 {
		select {
		case l := <-e.accessLines:
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			lines = append(lines, m)
		case <-deadline:
			t.Fatalf("got %d access log lines", len(lines))
		}
	}
	want := map[string]any{
		"msg": "request", "method": "GET", "host": "api.example.com", "path": "/some/path", "route": "r",
		"upstream": addr(a), "status": float64(200), "request_id": "req-1", "client_ip": "127.0.0.1",
		"listener": "public", "attempts": float64(1),
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("field %s = %v, want %v (line %v)", k, lines[0][k], v, lines[0])
		}
	}
	for _, k := range []string{"time", "duration_ms", "bytes_in", "bytes_out"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}
	if lines[0]["bytes_out"].(float64) <= 0 {
		t.Errorf("bytes_out = %v", lines[0]["bytes_out"])
	}
	if lines[1]["status"] != float64(400) || !strings.Contains(fmt.Sprint(lines[1]["reason"]), "malformed request path") {
		t.Errorf("bad request line: %v", lines[1])
	}
}

func TestMetricsAndAdmin(t *testing.T) {
	a := echoBackend(t, "a")
	cfg := strings.Replace(simpleConfig(addr(a), ""), "log: {access: \"off\"}", "log: {access: \"off\"}\nadmin: {address: \"127.0.0.1:0\"}", 1)
	e := startEdge(t, cfg)
	for i := 0; i < 3; i++ {
		get(t, nil, "GET", e.url("public")+"/x", nil)
	}
	rawExchange(t, strings.TrimPrefix(e.url("public"), "http://"), "GET /%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	admin := "http://" + e.node.AdminAddr()
	status, _, body := get(t, nil, "GET", admin+"/metrics", nil)
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	for _, want := range []string{
		`meshgate_requests_total{code="2xx",route="r"} 3`,
		`meshgate_requests_total{code="4xx",route="none"} 1`,
		`meshgate_request_duration_seconds_bucket{route="r",le="+Inf"} 3`,
		`meshgate_rejected_requests_total{reason="bad_path"} 1`,
		`meshgate_config_reloads_total{result="ok"} 1`,
		`meshgate_config_reloads_total{result="failed"} 0`,
		`meshgate_upstream_endpoint_healthy{endpoint="` + addr(a) + `",upstream="u"} 1`,
		`meshgate_active_connections{listener="public"}`,
		`meshgate_build_info{goversion="go`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if s, _, _ := get(t, nil, "GET", admin+"/healthz", nil); s != 200 {
		t.Errorf("healthz %d", s)
	}
	if s, _, _ := get(t, nil, "GET", admin+"/readyz", nil); s != 200 {
		t.Errorf("readyz %d", s)
	}
	if s, _, _ := get(t, nil, "GET", admin+"/debug/pprof/", nil); s != http.StatusNotFound {
		t.Errorf("pprof served without admin.pprof: %d", s)
	}
}
