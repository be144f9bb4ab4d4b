package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fallbackBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams:
  - {name: u, endpoints: [{address: "127.0.0.1:2"}]}
  - {name: standby, endpoints: [{address: "127.0.0.1:3"}]}
routes:
  - name: r
    upstream: u
    match: {path: {prefix: /}}
    fallback:
`

func TestFallbackDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "degraded.json")
	if err := os.WriteFile(file, []byte(`{"degraded":"{request_id}"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("f.yaml", []byte(fallbackBase+"      upstream: standby\n      response: {body_file: "+file+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Routes[0].Fallback
	if !slices.Equal(f.On, DefaultFallbackOn) || f.Response.Status != 503 || f.Response.Body != `{"degraded":"{request_id}"}` || f.Upstream != "standby" {
		t.Errorf("fallback = %+v, response %+v", f, f.Response)
	}
}

func TestFallbackErrors(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		line         int
		want         string
	}{
		{"nothing", "on: [timeout]", 10, `route "r": fallback needs stale, an upstream or a response`},
		{"stale without a cache", "stale: 1h", 10, `route "r": fallback stale answers from the route's cache: add a cache section (routes[].cache)`},
		{"unknown condition", "on: [timeouts]\nresponse: {}", 10, `unknown fallback condition "timeouts" (circuit-open, no-endpoint, connect-failure, reset, timeout, overloaded, 5xx or a status 500..599)`},
		{"4xx", "on: [404]\nresponse: {}", 10, "fallback on 404: a 4xx is the upstream's answer to the request, and is never replaced"},
		{"not 5xx", "on: [302]\nresponse: {}", 10, "fallback on status 302: only 500..599"},
		{"unknown upstream", "upstream: standbye", 10, `route "r": unknown fallback upstream "standbye"`},
		{"own upstream", "upstream: u", 10, `fallback upstream "u" is one the route already sends to; name another`},
		{"status", "response: {status: 199}", 10, "fallback status 199 must be 200..599"},
		{"body twice", "response: {body: x, body_file: y}", 10, "set fallback body or body_file, not both"},
		{"header name", "response: {headers: {\"X A\": b}}", 10, `invalid header name "X A"`},
		{"missing file", "response: {body_file: /nonexistent/fallback.json}", 10, "cannot read the fallback body: open /nonexistent/fallback.json: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOneError(t, fallbackBase+indent(tc.fields, "      ")+"\n", tc.line, tc.want)
		})
	}
}

func TestFallbackNotOnComposites(t *testing.T) {
	y := `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
routes:
  - name: page
    match: {path: {exact: /page}}
    aggregate:
      calls: [{name: a, upstream: u, path: /a}]
    fallback: {response: {body: "{}"}}
`
	_, err := Parse("c.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "fallback does not apply to a composite route") {
		t.Fatalf("err = %v", err)
	}
}
