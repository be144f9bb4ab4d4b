package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[0].Timeout.D(); got != 5*time.Second {
		t.Errorf("timeout = %v", got)
	}
	if got := c.Routes[1].Timeout.D(); got != DefaultRouteTimeout {
		t.Errorf("default timeout = %v", got)
	}
	if c.Upstreams[0].Endpoints[0].Weight != 1 || c.Upstreams[0].Endpoints[1].Weight != 3 {
		t.Errorf("weights = %+v", c.Upstreams[0].Endpoints)
	}
	if h := c.Upstreams[0].HealthCheck; h.HealthyThreshold != 2 || h.Interval.D() != 2*time.Second {
		t.Errorf("health defaults = %+v", h)
	}
	if !*c.Listeners[0].H2C || c.Listeners[0].Protocol != "http" {
		t.Errorf("listener defaults = %+v", c.Listeners[0])
	}
}

// Each bad file must be rejected with the exact file:line:col of the problem.
func TestLoadErrors(t *testing.T) {
	base := "listeners:\n  - name: l\n    address: 127.0.0.1:1\nupstreams:\n  - name: u\n    endpoints: [{address: \"127.0.0.1:2\"}]\n"
	cases := []struct{ name, yaml, want string }{
		{"unknown field", "listeners:\n  - name: l\n    adress: x\n", "f.yaml:3:5: unknown field \"adress\""},
		{"bad duration", base + "routes:\n  - name: r\n    upstream: u\n    timeout: 5 seconds\n", "f.yaml:10:14: invalid duration \"5 seconds\""},
		{"bad size", base + "server:\n  max_header_bytes: lots\n", "f.yaml:8:21: invalid size"},
		{"missing upstream", base + "routes:\n  - name: r\n    upstream: nope\n", "f.yaml:9:15: route \"r\": unknown upstream \"nope\""},
		{"duplicate route", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {prefix: /a}}\n  - name: r\n    upstream: u\n    match: {path: {prefix: /b}}\n", "f.yaml:11:11: duplicate route name \"r\" (first at line 8)"},
		{"same match", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {prefix: /a}}\n  - name: s\n    upstream: u\n    match: {path: {prefix: /a}}\n", "f.yaml:13:12: route \"s\" has the same match as route \"r\" (line 8)"},
		{"two paths", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {prefix: /a, exact: /b}}\n", "exactly one of exact, prefix, template, regex"},
		{"bad regex", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {regex: \"(\"}}\n", "f.yaml:10:27: invalid regex"},
		{"bad template", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {template: \"/a/{x...}/b\"}}\n", "must be the last segment"},
		{"rewrite param", base + "routes:\n  - name: r\n    upstream: u\n    match: {path: {template: \"/a/{id}\"}}\n    rewrite: {path: \"/b/{name}\"}\n", "f.yaml:11:21: rewrite uses {name}"},
		{"wrong kind", "listeners: {name: l}\n", "f.yaml:1:12: listeners: expected a list"},
		{"int expected", base + "routes:\n  - name: r\n    upstream: u\n    retry: {attempts: many}\n", "f.yaml:10:23: routes[0].retry.attempts: expected an integer"},
		{"no listeners", "upstreams: []\n", "at least one listener is required"},
		{"bad policy", "listeners:\n  - name: l\n    address: 127.0.0.1:1\nupstreams:\n  - name: u\n    endpoints: [{address: \"127.0.0.1:2\"}]\n    balancer: {policy: random}\n", "f.yaml:7:24: upstream \"u\": balancer policy \"random\""},
		{"hash without key", "listeners:\n  - name: l\n    address: 127.0.0.1:1\nupstreams:\n  - name: u\n    endpoints: [{address: \"127.0.0.1:2\"}]\n    balancer: {policy: consistent_hash}\n", "consistent_hash needs hash_on"},
		{"yaml syntax", "listeners: [\n", "f.yaml:"},
		{"two documents", "listeners: []\n---\nroutes: []\n", "only one YAML document"},
		{"https without tls", "listeners:\n  - name: l\n    address: 127.0.0.1:1\n    protocol: https\n", "needs tls.certificates"},
		{"tls without identity", "listeners: [{name: l, address: \"127.0.0.1:1\"}]\nupstreams:\n  - {name: u, endpoints: [{address: \"127.0.0.1:2\"}], tls: {spiffe_ids: [\"spiffe://example.org/svc\"]}}\n", "f.yaml:3:59: upstream \"u\": tls needs the node's identity"},
		{"bad spiffe pattern", "identity: {workload_api: \"unix:///tmp/x.sock\"}\nlisteners: [{name: l, address: \"127.0.0.1:1\"}]\nupstreams:\n  - {name: u, endpoints: [{address: \"127.0.0.1:2\"}], tls: {spiffe_ids: [\"spiffe://example.org/a*b\"]}}\n", "f.yaml:4:73: pki: invalid SPIFFE ID pattern"},
		{"identity with both", "identity: {workload_api: \"unix:///x\", files: {cert_file: a}}\nlisteners: [{name: l, address: \"127.0.0.1:1\"}]\n", "identity needs exactly one of workload_api, files"},
		{"identity bad spiffe_id", "identity: {workload_api: \"unix:///x\", spiffe_id: \"edge\"}\nlisteners: [{name: l, address: \"127.0.0.1:1\"}]\n", "f.yaml:1:"},
		{"identity bad address", "identity: {workload_api: \"/tmp/x.sock\"}\nlisteners: [{name: l, address: \"127.0.0.1:1\"}]\n", "must be unix:///path"},
		{"identity missing file", "identity: {files: {cert_file: /nonexistent, key_file: /nonexistent, bundle_file: /nonexistent}}\nlisteners: [{name: l, address: \"127.0.0.1:1\"}]\n", "no such file"},
		{"missing cert file", "listeners:\n  - name: l\n    address: 127.0.0.1:1\n    tls: {certificates: [{cert_file: /nonexistent.pem, key_file: /nonexistent.key}]}\n", "f.yaml:4:26: certificate: open /nonexistent.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error type %T", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestErrorsReportAllAtOnce(t *testing.T) {
	_, err := Parse("f.yaml", []byte("listeners:\n  - name: l\n    a: 1\n    b: 2\n"))
	if es, ok := err.(Errors); !ok || len(es) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "64KiB": 64 << 10, "10MiB": 10 << 20, "1GB": 1e9, "3 B": 3} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q → %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TiB", "x", "99999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzParse: any bytes give either a config or an Errors value; never a
// panic, and an accepted config always has at least one listener.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"listeners:\n  - name: l\n    address: 127.0.0.1:1\n",
		"listeners: [{name: l, address: \"127.0.0.1:1\"}]\nroutes: [{name: r, upstream: u, match: {path: {template: \"/a/{b}\"}}}]\nupstreams: [{name: u, endpoints: [{address: \"h:1\"}]}]\n",
		"a: &x [*x]\n", "listeners: *y\n", "{", "- - -", "routes: [{timeout: 1s}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(c.Listeners) == 0 {
			t.Fatal("accepted a config without listeners")
		}
	})
}
