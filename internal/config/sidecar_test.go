package config

import (
	"strings"
	"testing"
)

const sidecarIdentity = "identity: {workload_api: \"unix:///tmp/agent.sock\"}\n"

func TestParseSidecar(t *testing.T) {
	cfg, err := ParseSidecar("s.yaml", []byte(sidecarIdentity+`
service: {name: payments, subset: v1, app: "127.0.0.1:9000"}
inbound: {address: "0.0.0.0:15443", allow: ["spiffe://example.org/edge", "spiffe://example.org/ns/*/orders"]}
outbound:
  address: "127.0.0.1:15001"
  ports: [{service: catalog, address: "127.0.0.1:15002"}]
services:
  - {name: catalog, spiffe_ids: ["spiffe://example.org/catalog"], endpoints: [{address: "10.0.0.5:15443"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	names := func() (out []string) {
		for _, l := range cfg.Listeners {
			out = append(out, l.Name+"="+l.Address)
		}
		return out
	}()
	if got := strings.Join(names, " "); got != "inbound=0.0.0.0:15443 outbound=127.0.0.1:15001 port-catalog=127.0.0.1:15002" {
		t.Fatalf("listeners: %s", got)
	}
	if in := cfg.Listeners[0]; in.MTLS == nil || len(in.MTLS.Allow) != 2 || in.Protocol != "https" {
		t.Fatalf("inbound: %+v", in)
	}
	var catalog *Upstream
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Name == "catalog" {
			catalog = &cfg.Upstreams[i]
		}
	}
	if catalog == nil || catalog.TLS == nil || catalog.TLS.SpiffeIDs[0] != "spiffe://example.org/catalog" {
		t.Fatalf("catalog upstream: %+v", catalog)
	}
	if r := cfg.Routes[1]; r.Match.Hosts[0] != "catalog" || r.Upstream != "catalog" {
		t.Fatalf("outbound route: %+v", r)
	}
}

func TestParseSidecarErrors(t *testing.T) {
	base := "service: {name: payments, app: \"127.0.0.1:9000\"}\ninbound: {address: \"127.0.0.1:15443\"}\n"
	cases := []struct{ name, yaml, want string }{
		{"no identity", base, "s.yaml: a sidecar needs identity"},
		{"unknown field", sidecarIdentity + base + "outbund: {}\n", "s.yaml:4:1: unknown field \"outbund\""},
		{"bad allow", sidecarIdentity + "service: {name: p, app: \"127.0.0.1:1\"}\ninbound: {address: \"127.0.0.1:2\", allow: [\"spiffe://example.org/a*\"]}\n", "s.yaml:3:43: pki: invalid SPIFFE ID pattern"},
		{"port to unknown service", sidecarIdentity + base + "outbound: {ports: [{service: ghost, address: \"127.0.0.1:3\"}]}\n", "s.yaml:4:30: unknown service \"ghost\""},
		{"reserved name", sidecarIdentity + base + "services: [{name: local-app, spiffe_ids: [\"spiffe://example.org/x\"], endpoints: [{address: \"127.0.0.1:4\"}]}]\n", "is reserved"},
		{"no app", sidecarIdentity + "service: {name: p}\ninbound: {address: \"127.0.0.1:2\"}\n", "service.app"},
		{"service without ids", sidecarIdentity + base + "services: [{name: catalog, endpoints: [{address: \"127.0.0.1:4\"}]}]\n", "spiffe_ids must name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSidecar("s.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %s", err, tc.want)
			}
		})
	}
}

// FuzzParseSidecar: any bytes give a config or an Errors value, never a
// panic; an accepted file always yields an mTLS inbound listener.
func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte(sidecarIdentity + "service: {name: p, app: \"127.0.0.1:1\"}\ninbound: {address: \"127.0.0.1:2\"}\n"))
	f.Add([]byte("services: [{name: a}]\noutbound: {ports: [{service: a}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseSidecar("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if cfg.Listeners[0].MTLS == nil {
			t.Fatal("accepted a sidecar without an mTLS inbound")
		}
	})
}
