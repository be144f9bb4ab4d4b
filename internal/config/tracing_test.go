package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tracingBase = "listeners: [{name: l, address: \"127.0.0.1:1\"}]\n"

// Defaults of a tracing section: grpc, ratio 0.01, queue 2048, 10s; a
// ratio of 0 stays 0; no section is tracing off.
func TestTracingDefaults(t *testing.T) {
	c, err := Parse("f.yaml", []byte(tracingBase+"tracing: {endpoint: \"collector:4317\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Tracing
	if tr.Protocol != "grpc" || *tr.Sampling.Ratio != DefaultTracingRatio || tr.QueueSize != 2048 ||
		tr.ExportTimeout.D() != 10*time.Second || tr.Insecure || tr.MeshService != "" || tr.Compression != "gzip" {
		t.Errorf("defaults %+v (ratio %v)", tr, *tr.Sampling.Ratio)
	}
	c, err = Parse("f.yaml", []byte(tracingBase+"tracing: {endpoint: \"127.0.0.1:4317\", insecure: true, sampling: {ratio: 0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Compression != "none" {
		t.Errorf("a collector on loopback: compression %q, want none", c.Tracing.Compression)
	}
	for ep, want := range map[string]string{"localhost:4317": "none", "[::1]:4317": "none", "10.0.0.1:4317": "gzip", "127.example:4317": "gzip"} {
		if loopbackEndpoint(ep) != (want == "none") {
			t.Errorf("%s: loopback %v", ep, loopbackEndpoint(ep))
		}
	}
	if *c.Tracing.Sampling.Ratio != 0 {
		t.Errorf("ratio 0 became %v", *c.Tracing.Sampling.Ratio)
	}
	if c, err = Parse("f.yaml", []byte(tracingBase)); err != nil || c.Tracing != nil {
		t.Errorf("no section: %+v %v", c.Tracing, err)
	}
}

// Every rule of the section reports at the line of the value concerned.
func TestTracingErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, yaml, want string }{
		{"no endpoint", "tracing: {protocol: grpc}\n", "f.yaml:2:10: tracing.endpoint (the OTLP receiver's host:port) is required"},
		{"url endpoint", "tracing:\n  endpoint: \"http://collector:4317\"\n", "f.yaml:3:13: tracing.endpoint \"http://collector:4317\" must be host:port"},
		{"no port", "tracing:\n  endpoint: collector\n", "f.yaml:3:13: tracing.endpoint \"collector\" must be host:port"},
		{"port 0", "tracing:\n  endpoint: \"collector:0\"\n", "f.yaml:3:13: tracing.endpoint \"collector:0\": invalid port"},
		{"protocol", "tracing:\n  endpoint: \"c:4317\"\n  protocol: thrift\n", "f.yaml:4:13: tracing.protocol \"thrift\" must be grpc or http"},
		{"ratio", "tracing:\n  endpoint: \"c:4317\"\n  sampling: {ratio: 1.5}\n", "f.yaml:4:21: tracing.sampling.ratio 1.5 must be within 0..1"},
		{"ratio kind", "tracing:\n  endpoint: \"c:4317\"\n  sampling: {ratio: all}\n", "f.yaml:4:"},
		{"insecure and ca", "tracing:\n  endpoint: \"c:4317\"\n  insecure: true\n  ca_file: /etc/ca.pem\n", "f.yaml:5:12: tracing: set insecure (plaintext) or ca_file (TLS), not both"},
		{"missing ca", "tracing:\n  endpoint: \"c:4317\"\n  ca_file: /nonexistent/ca.pem\n", "f.yaml:4:12: open /nonexistent/ca.pem"},
		{"ca not pem", "tracing:\n  endpoint: \"c:4317\"\n  ca_file: " + notPEM + "\n", "no PEM certificate found"},
		{"header name", "tracing:\n  endpoint: \"c:4317\"\n  headers: {\"bad header\": x}\n", "f.yaml:4:27: invalid header name \"bad header\""},
		{"grpc header name", "tracing:\n  endpoint: \"c:4317\"\n  headers: {\"X-Key!\": x}\n", "f.yaml:4:23: invalid header name \"X-Key!\": letters, digits"},
		{"reserved header", "tracing:\n  endpoint: \"c:4317\"\n  headers: {Content-Type: x}\n", "f.yaml:4:27: header \"Content-Type\" is set by the exporter itself"},
		{"grpc- header", "tracing:\n  endpoint: \"c:4317\"\n  headers: {grpc-timeout: 1S}\n", "header \"grpc-timeout\" is set by the exporter itself"},
		{"header value", "tracing:\n  endpoint: \"c:4317\"\n  headers: {authorization: \"Bearer \\x7f\"}\n", "header \"authorization\": the value must be printable ASCII"},
		{"header value utf-8", "tracing:\n  endpoint: \"c:4317\"\n  headers: {authorization: \"é\"}\n", "the value must be printable ASCII"},
		{"bad host", "tracing:\n  endpoint: \"bad host:4317\"\n", "f.yaml:3:13: tracing.endpoint \"bad host:4317\": \"bad host\" is neither an IP address nor a host name"},
		{"cert without key", "tracing:\n  endpoint: \"c:4317\"\n  cert_file: /etc/c.pem\n", "f.yaml:4:14: tracing: cert_file and key_file go together"},
		{"cert and insecure", "tracing:\n  endpoint: \"c:4317\"\n  insecure: true\n  cert_file: /etc/c.pem\n  key_file: /etc/k.pem\n", "f.yaml:5:14: tracing: a client certificate needs TLS; remove insecure"},
		{"cert missing", "tracing:\n  endpoint: \"c:4317\"\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n", "f.yaml:4:14: tracing client certificate: open /nonexistent/c.pem"},
		{"server name and insecure", "tracing:\n  endpoint: \"c:4317\"\n  insecure: true\n  server_name: collector\n", "f.yaml:5:16: tracing: server_name is verified over TLS; remove insecure"},
		{"queue", "tracing:\n  endpoint: \"c:4317\"\n  queue_size: -1\n", "f.yaml:4:15: tracing.queue_size -1 must be 1..1048576"},
		{"timeout", "tracing:\n  endpoint: \"c:4317\"\n  export_timeout: 1h\n", "f.yaml:4:19: tracing.export_timeout 1h0m0s must be at most 5m"},
		{"compression", "tracing:\n  endpoint: \"c:4317\"\n  compression: zstd\n", "f.yaml:4:16: tracing.compression \"zstd\" must be gzip or none"},
		{"unknown field", "tracing:\n  endpoint: \"c:4317\"\n  tls: {}\n", "f.yaml:4:3: unknown field \"tls\" in tracing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tracingBase+tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

// A sidecar's tracing section is validated at its own lines and carries
// the service's name to the engine config.
func TestSidecarTracing(t *testing.T) {
	base := sidecarIdentity + "service: {name: payments, app: \"127.0.0.1:9000\"}\ninbound: {address: \"127.0.0.1:15443\"}\n"
	cfg, err := ParseSidecar("s.yaml", []byte(base+"tracing: {endpoint: \"127.0.0.1:4317\", insecure: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing == nil || cfg.Tracing.MeshService != "payments" || cfg.Tracing.Protocol != "grpc" {
		t.Fatalf("tracing %+v", cfg.Tracing)
	}
	_, err = ParseSidecar("s.yaml", []byte(base+"tracing:\n  endpoint: \"127.0.0.1:4317\"\n  protocol: udp\n"))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:6:13: tracing.protocol \"udp\" must be grpc or http") {
		t.Fatalf("error %v", err)
	}
	_, err = ParseSidecar("s.yaml", []byte(base+"tracing:\n  endpoint: \"127.0.0.1:4317\"\n  sampling: {follow_clients: false}\n"))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:6:30: tracing.sampling.follow_clients is an edge's") {
		t.Fatalf("error %v", err)
	}
}
