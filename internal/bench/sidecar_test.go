package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
)

// The two sidecar files the suite writes must be accepted by the sidecar's
// loader, with the identities it wrote.
func TestSidecarConfigsValid(t *testing.T) {
	dir := t.TempDir()
	client, backend, err := writeSidecarIdentities(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []sidecarIdentity{client, backend} {
		for _, f := range []string{id.Cert, id.Key, id.Bundle} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("identity file: %v", err)
			}
		}
	}
	if client.Cert != filepath.Join(dir, "client", pki.SVIDCertFile) || backend.Key != filepath.Join(dir, "backend", pki.SVIDKeyFile) {
		t.Errorf("identities = %+v, %+v", client, backend)
	}

	b, err := config.ParseSidecar("b.yaml", []byte(sidecarBConfig(backend, "127.0.0.1:18001", "127.0.0.1:18002")))
	if err != nil {
		t.Fatal(err)
	}
	if b.Log.Access != "off" || b.Identity == nil || b.Identity.Files == nil || b.Identity.Files.CertFile != backend.Cert ||
		b.Identity.Files.BundleFile != backend.Bundle {
		t.Errorf("B: log/identity = %+v / %+v", b.Log, b.Identity)
	}
	if len(b.Listeners) != 1 || b.Listeners[0].Name != config.SidecarInbound || b.Listeners[0].Address != "127.0.0.1:18002" ||
		b.Listeners[0].MTLS == nil || !slices.Equal(b.Listeners[0].MTLS.Allow, []string{sidecarClientID}) {
		t.Errorf("B listeners = %+v", b.Listeners)
	}
	if len(b.Upstreams) != 1 || b.Upstreams[0].Name != config.SidecarLocalApp || b.Upstreams[0].Endpoints[0].Address != "127.0.0.1:18001" {
		t.Errorf("B upstreams = %+v", b.Upstreams)
	}

	a, err := config.ParseSidecar("a.yaml", []byte(sidecarAConfig(client, "127.0.0.1:18003", "127.0.0.1:18004", "127.0.0.1:18005", "127.0.0.1:18002")))
	if err != nil {
		t.Fatal(err)
	}
	if a.Log.Access != "off" || a.Identity == nil || a.Identity.Files == nil || a.Identity.Files.KeyFile != client.Key {
		t.Errorf("A: log/identity = %+v / %+v", a.Log, a.Identity)
	}
	listeners := map[string]string{}
	for _, l := range a.Listeners {
		listeners[l.Name] = l.Address
	}
	if listeners["inbound"] != "127.0.0.1:18003" || listeners["outbound"] != "127.0.0.1:18004" || listeners["port-backend"] != "127.0.0.1:18005" {
		t.Errorf("A listeners = %v", listeners)
	}
	var up *config.Upstream
	for i := range a.Upstreams {
		if a.Upstreams[i].Name == "backend" {
			up = &a.Upstreams[i]
		}
	}
	if up == nil || up.TLS == nil || !slices.Equal(up.TLS.SpiffeIDs, []string{sidecarBackendID}) ||
		len(up.Endpoints) != 1 || up.Endpoints[0].Address != "127.0.0.1:18002" {
		t.Errorf("A upstream backend = %+v", up)
	}
	routed := false
	for _, r := range a.Routes {
		if slices.Equal(r.Listeners, []string{"port-backend"}) && r.Upstream == "backend" {
			routed = true
		}
	}
	if !routed {
		t.Errorf("A: no route from port-backend to backend: %+v", a.Routes)
	}
}

func TestSidecarJSON(t *testing.T) {
	r := &sidecarRun{
		rate:    1000,
		idleRSS: 12 << 20,
		loadRSS: 45 << 19, // 22.5 MiB
		direct:  &scTarget{name: "direct", p50: []float64{0.1, 0.3, 0.2}, p99: []float64{0.5, 0.7, 0.6}},
		mesh:    &scTarget{name: "mesh", p50: []float64{0.4, 0.5}, p99: []float64{1.1, 1.3}},
	}
	frag, err := json.Marshal(sidecarJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"idle_rss_mb": 12.0, "load_rss_mb": 22.5, "direct_p50_ms": 0.2, "direct_p99_ms": 0.6,
		"mesh_p50_ms": 0.45, "mesh_p99_ms": 1.2}
	if len(got) != len(want) {
		t.Errorf("keys: got %s, want %v", frag, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, got[k], v, frag)
		}
	}
	if _, err := mergeJSON(map[string][]byte{"sidecar": frag}); err != nil {
		t.Fatal(err)
	}

	// A failed run: what was measured, and the first line of the error.
	r = &sidecarRun{idleRSS: 10 << 20, direct: &scTarget{p50: []float64{0.2}, p99: []float64{0.5}}, mesh: &scTarget{},
		problemLog: problemLog{problems: []string{"mesh: round 1: success ratio 0.9000\n    tail"}}}
	frag, _ = json.Marshal(sidecarJSON(r))
	got = nil
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	if got["error"] != "mesh: round 1: success ratio 0.9000" || got["mesh_p99_ms"] != nil || got["load_rss_mb"] != nil ||
		got["direct_p99_ms"] != 0.5 || got["idle_rss_mb"] != 10.0 {
		t.Errorf("failed run = %s", frag)
	}
}

func TestPrintSidecar(t *testing.T) {
	r := &sidecarRun{rate: 1000, idleRSS: 12 << 20, loadRSS: 40 << 20, loadEach: "sidecar-a 40.0, sidecar-b 9.0",
		direct: &scTarget{p50: []float64{0.2}, p99: []float64{0.5}},
		mesh:   &scTarget{p50: []float64{0.4}, p99: []float64{1.8}}}
	var b strings.Builder
	printSidecar(&b, &Env{Opts: Options{Rounds: 1, RateDuration: 3 * time.Second}}, r)
	out := b.String()
	for _, want := range []string{"added p99 ms       1.300     ≤ 1 ms  MISS", "idle RSS MB         12.0    ≤ 15 MB  PASS",
		"load RSS MB         40.0    ≤ 30 MB  MISS  sidecar-a 40.0, sidecar-b 9.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSidecarRate(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	if n, err := sidecarRate(env("")); err != nil || n != 1000 {
		t.Errorf("default = %d, %v", n, err)
	}
	if n, err := sidecarRate(env("250")); err != nil || n != 250 {
		t.Errorf("250 = %d, %v", n, err)
	}
	for _, bad := range []string{"0", "-1", "x"} {
		if _, err := sidecarRate(env(bad)); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tsidecar\nVmHWM:\t    23104 kB\nVmRSS:\t    12000 kB\n"
	if b, err := parseStatusKB(strings.NewReader(status), "VmRSS"); err != nil || b != 12000*1024 {
		t.Errorf("VmRSS = %d, %v", b, err)
	}
	if b, err := parseStatusKB(strings.NewReader(status), "VmHWM"); err != nil || b != 23104*1024 {
		t.Errorf("VmHWM = %d, %v", b, err)
	}
	if _, err := parseStatusKB(strings.NewReader(status), "VmSwap"); err == nil {
		t.Error("missing key: want error")
	}
	if b, err := statusKB(os.Getpid(), "VmRSS"); err != nil || b <= 0 {
		t.Errorf("statusKB(self) = %d, %v", b, err)
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("ports = %v", ports)
		}
		seen[p] = true
	}
}
