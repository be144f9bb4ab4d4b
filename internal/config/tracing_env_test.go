package config

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The OpenTelemetry environment fills what the file leaves unset; the
// file wins; the traces-specific variables win over the general ones.
func TestTracingFromEnv(t *testing.T) {
	tr := &Tracing{Resource: map[string]string{"deployment.environment": "prod"}, Headers: map[string]string{"x-team": "edge"}}
	problems := tracingFromEnv(tr, envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "https://ignored:4317",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "http://collector.local:4318/v1/traces",
		"OTEL_EXPORTER_OTLP_PROTOCOL":           "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS":            "authorization=Bearer%20abc,x-team=other",
		"OTEL_EXPORTER_OTLP_TIMEOUT":            "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "gzip",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
		"OTEL_RESOURCE_ATTRIBUTES":              "deployment.environment=dev,k8s.pod.name=edge-7,service.name=from-attrs",
		"OTEL_SERVICE_NAME":                     "edge-eu",
		"OTEL_TRACES_SAMPLER":                   "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":               "0.25",
	}))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	switch {
	case tr.Endpoint != "collector.local:4318" || !tr.Insecure || tr.Protocol != "http":
		t.Errorf("endpoint %q insecure %v protocol %q", tr.Endpoint, tr.Insecure, tr.Protocol)
	case tr.Headers["authorization"] != "Bearer abc" || tr.Headers["x-team"] != "edge":
		t.Errorf("headers %v", tr.Headers)
	case tr.ExportTimeout != Duration(2500*time.Millisecond):
		t.Errorf("timeout %v", tr.ExportTimeout)
	case tr.Compression != "none":
		t.Errorf("compression %q", tr.Compression)
	case tr.Resource["deployment.environment"] != "prod" || tr.Resource["k8s.pod.name"] != "edge-7" || tr.Resource["service.name"] != "edge-eu":
		t.Errorf("resource %v", tr.Resource)
	case tr.Sampling.Ratio == nil || *tr.Sampling.Ratio != 0.25:
		t.Errorf("ratio %v", tr.Sampling.Ratio)
	}

	// The file's endpoint, protocol, service name and ratio stay.
	r := 0.5
	tr = &Tracing{Endpoint: "file:4317", Protocol: "grpc", Resource: map[string]string{"service.name": "mine"}, Sampling: TracingSampling{Ratio: &r},
		Compression: "gzip"}
	tracingFromEnv(tr, envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_SERVICE_NAME": "env", "OTEL_TRACES_SAMPLER": "always_on", "OTEL_EXPORTER_OTLP_COMPRESSION": "none"}))
	if tr.Endpoint != "file:4317" || tr.Insecure || tr.Protocol != "grpc" || tr.Resource["service.name"] != "mine" || *tr.Sampling.Ratio != 0.5 ||
		tr.Compression != "gzip" {
		t.Errorf("the file lost: %+v", tr)
	}

	// A base endpoint without a port takes the protocol's.
	tr = &Tracing{}
	tracingFromEnv(tr, envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.com"}))
	if tr.Endpoint != "otel.example.com:4317" || tr.Insecure {
		t.Errorf("endpoint %q insecure %v", tr.Endpoint, tr.Insecure)
	}

	for env, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/json":       "OTEL_EXPORTER_OTLP_PROTOCOL: protocol \"http/json\"",
		"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317":  "want a URL such as http://collector:4317",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:1/otlp": "a path is not supported",
		"OTEL_EXPORTER_OTLP_HEADERS=novalue":          "\"novalue\" is not key=value",
		"OTEL_EXPORTER_OTLP_TIMEOUT=soon":             "want milliseconds",
		"OTEL_EXPORTER_OTLP_COMPRESSION=zstd":         "compression \"zstd\": want gzip or none",
		"OTEL_TRACES_SAMPLER=jaeger_remote":           "meshgate samples parent-based",
		"OTEL_TRACES_SAMPLER_ARG=2":                   "",
	} {
		k, v, _ := strings.Cut(env, "=")
		m := map[string]string{k: v}
		if k == "OTEL_TRACES_SAMPLER_ARG" {
			m["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
			want = "want a ratio 0..1"
		}
		problems := tracingFromEnv(&Tracing{}, envOf(m))
		if len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("%s: %v, want %q", env, problems, want)
		}
	}
}

// Through Parse: the environment completes a section, and what it cannot
// read is an error of the file's tracing section.
func TestTracingEnvThroughParse(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	t.Setenv("OTEL_SERVICE_NAME", "edge-eu")
	cfg, err := Parse("e.yaml", []byte("listeners: [{name: l, address: \"127.0.0.1:1\"}]\ntracing: {sampling: {ratio: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing.Endpoint != "127.0.0.1:4317" || !cfg.Tracing.Insecure || cfg.Tracing.Resource["service.name"] != "edge-eu" {
		t.Errorf("tracing %+v", cfg.Tracing)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, err := Parse("e.yaml", []byte("listeners: [{name: l, address: \"127.0.0.1:1\"}]\ntracing: {}\n")); err == nil ||
		!strings.Contains(err.Error(), "e.yaml:2:10: from the environment: OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Fatalf("err = %v", err)
	}
}

// A sidecar reads the same environment, before its file is checked.
func TestTracingEnvInASidecar(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	cfg, err := ParseSidecar("s.yaml", []byte(sidecarIdentity+`
service: {name: orders, app: "127.0.0.1:9000"}
inbound: {address: "127.0.0.1:0"}
tracing: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if tr := cfg.Tracing; tr.Endpoint != "127.0.0.1:4318" || tr.Protocol != "http" || !tr.Insecure {
		t.Errorf("tracing %+v", tr)
	}
}
