package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// The OpenTelemetry environment (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER), as the SDKs read it,
// fills what a file's tracing section leaves unset: an operator who injects
// those variables into every workload (as the OpenTelemetry operator does)
// configures meshgate's export the same way. The file wins where it says
// something; the variables never turn tracing on by themselves (the section
// must be there). Signal-specific variables (…_TRACES_…) win over the
// general ones, as the specification says.

// applyTracingEnv reads the environment into a file's tracing section,
// once, before it is defaulted and validated (nil-safe).
func applyTracingEnv(t *Tracing) {
	if t != nil && !t.envApplied {
		t.envProblems, t.envApplied = tracingFromEnv(t, os.Getenv), true
	}
}

// otelEnv reads a variable, the traces-specific one first.
func otelEnv(getenv func(string) string, name string) (value, from string) {
	for _, n := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + name, "OTEL_EXPORTER_OTLP_" + name} {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}

// tracingFromEnv fills t's unset fields from the environment and returns
// what it could not read (each naming its variable).
func tracingFromEnv(t *Tracing, getenv func(string) string) []string {
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	if t.Protocol == "" {
		switch v, from := otelEnv(getenv, "PROTOCOL"); v {
		case "":
		case "grpc":
			t.Protocol = "grpc"
		case "http/protobuf":
			t.Protocol = "http"
		default:
			bad(from, "protocol %q: meshgate exports grpc or http/protobuf", v)
		}
	}
	if t.Endpoint == "" {
		if v, from := otelEnv(getenv, "ENDPOINT"); v != "" {
			if err := endpointFromURL(t, v, from == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); err != nil {
				bad(from, "%v", err)
			}
		}
	}
	if v, _ := otelEnv(getenv, "INSECURE"); strings.EqualFold(v, "true") && t.CAFile == "" {
		t.Insecure = true
	}
	for field, name := range map[*string]string{&t.CAFile: "CERTIFICATE", &t.CertFile: "CLIENT_CERTIFICATE", &t.KeyFile: "CLIENT_KEY"} {
		if *field == "" {
			*field, _ = otelEnv(getenv, name)
		}
	}
	if v, from := otelEnv(getenv, "HEADERS"); v != "" {
		kv, err := parseOTelList(v)
		if err != nil {
			bad(from, "%v", err)
		}
		for k, val := range kv {
			if _, set := t.Headers[k]; !set {
				if t.Headers == nil {
					t.Headers = map[string]string{}
				}
				t.Headers[k] = val
			}
		}
	}
	if v, from := otelEnv(getenv, "TIMEOUT"); v != "" && t.ExportTimeout == 0 {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			bad(from, "timeout %q: want milliseconds, such as 10000", v)
		} else {
			t.ExportTimeout = Duration(time.Duration(ms) * time.Millisecond)
		}
	}
	if t.Compression == "" {
		switch v, from := otelEnv(getenv, "COMPRESSION"); v {
		case "":
		case "gzip", "none":
			t.Compression = v
		default:
			bad(from, "compression %q: want gzip or none", v)
		}
	}
	fileServiceName := t.Resource["service.name"] != ""
	if v := strings.TrimSpace(getenv("OTEL_RESOURCE_ATTRIBUTES")); v != "" {
		kv, err := parseOTelList(v)
		if err != nil {
			bad("OTEL_RESOURCE_ATTRIBUTES", "%v", err)
		}
		for k, val := range kv {
			setResource(t, k, val)
		}
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" && !fileServiceName {
		if t.Resource == nil {
			t.Resource = map[string]string{}
		}
		t.Resource["service.name"] = v // it wins over OTEL_RESOURCE_ATTRIBUTES'
	}
	if t.Sampling.Ratio == nil {
		if r, ok, err := samplerRatio(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG")); err != nil {
			bad("OTEL_TRACES_SAMPLER", "%v", err)
		} else if ok {
			t.Sampling.Ratio = &r
		}
	}
	return problems
}

// setResource adds an attribute the file does not set.
func setResource(t *Tracing, k, v string) {
	if _, set := t.Resource[k]; set {
		return
	}
	if t.Resource == nil {
		t.Resource = map[string]string{}
	}
	t.Resource[k] = v
}

// endpointFromURL sets t's endpoint (and plaintext, and protocol's port
// default) from an OTLP endpoint URL. full: a traces endpoint, whose path is
// the whole path (only /v1/traces, or none, is supported).
func endpointFromURL(t *Tracing, raw string, full bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("endpoint %q: want a URL such as http://collector:4317", raw)
	}
	switch path := strings.TrimSuffix(u.Path, "/"); {
	case path == "":
	case full && path == "/v1/traces":
	default:
		return fmt.Errorf("endpoint %q: meshgate exports to the receiver's /v1/traces; a path is not supported", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "4317"
		if t.Protocol == "http" {
			port = "4318"
		}
	}
	t.Endpoint = net.JoinHostPort(host, port)
	if u.Scheme == "http" && t.CAFile == "" {
		t.Insecure = true
	}
	return nil
}

// parseOTelList reads "k1=v1,k2=v2" with percent-encoded values (W3C
// Baggage octets), as OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES are written.
func parseOTelList(s string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return out, fmt.Errorf("%q is not key=value", item)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return out, fmt.Errorf("%q: bad percent-encoding", item)
		}
		out[k] = dv
	}
	return out, nil
}

// samplerRatio maps OTEL_TRACES_SAMPLER to meshgate's parent-based ratio;
// ok false when it is unset.
func samplerRatio(sampler, arg string) (ratio float64, ok bool, err error) {
	switch strings.TrimSpace(sampler) {
	case "":
		return 0, false, nil
	case "parentbased_always_on", "always_on":
		return 1, true, nil
	case "parentbased_always_off", "always_off":
		return 0, true, nil
	case "parentbased_traceidratio", "traceidratio":
		if strings.TrimSpace(arg) == "" {
			return 1, true, nil // the specification's default argument
		}
		r, perr := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if perr != nil || r < 0 || r > 1 {
			return 0, false, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio 0..1", arg)
		}
		return r, true, nil
	}
	return 0, false, fmt.Errorf("sampler %q: meshgate samples parent-based by trace id ratio (parentbased_traceidratio, parentbased_always_on, parentbased_always_off)", sampler)
}
