package config

import (
	"strings"
	"testing"
)

// cluster.kind_writers names kinds the cluster replicates, each with a
// non-empty list of patterns; every problem is reported at its line.
func TestKindWritersErrors(t *testing.T) {
	base := "listeners: [{name: l, address: \"127.0.0.1:1\"}]\n" +
		"identity: {files: {cert_file: /c.pem, key_file: /k.pem, bundle_file: /b.pem}}\n"
	ok := base + "cluster:\n  bind: \"127.0.0.1:7946\"\n  kind_writers:\n    apikey: [\"spiffe://example.org/keysvc\"]\n    cache-purge: [\"spiffe://example.org/ns/*/sa/publisher\"]\n  accept_unsigned: true\n"
	c, err := Parse("f.yaml", []byte(ok))
	if err != nil && !strings.Contains(err.Error(), "/c.pem") {
		t.Fatalf("a valid section: %v", err)
	}
	if err == nil && (len(c.Cluster.KindWriters) != 2 || !c.Cluster.AcceptUnsigned) {
		t.Fatalf("decoded %+v", c.Cluster)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown kind", "  kind_writers:\n    routes: [\"spiffe://example.org/x\"]\n", "f.yaml:6:13: cluster.kind_writers: unknown kind \"routes\" (kinds: upstream, route, tier, consumer, apikey, cache-purge)"},
		{"empty list", "  kind_writers:\n    route: []\n", "f.yaml:6:12: cluster.kind_writers.route is empty"},
		{"bad pattern", "  kind_writers:\n    route: [\"http://x\"]\n", "f.yaml:6:13: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(base+"cluster:\n  bind: \"127.0.0.1:7946\"\n"+tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

// cluster.suspicion_mult defaults to DefaultSuspicionMult and is refused
// outside 1..20 at its line.
func TestSuspicionMult(t *testing.T) {
	base := "listeners: [{name: l, address: \"127.0.0.1:1\"}]\n" +
		"identity: {workload_api: \"unix:///run/agent.sock\"}\n" +
		"cluster:\n  bind: \"127.0.0.1:7946\"\n"
	for _, tc := range []struct {
		yaml string
		want int
	}{{"", DefaultSuspicionMult}, {"  suspicion_mult: 5\n", 5}} {
		c, err := Parse("f.yaml", []byte(base+tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if c.Cluster.SuspicionMult != tc.want || c.Cluster.ProbeInterval.D() != DefaultProbeInterval {
			t.Errorf("%q: suspicion_mult %d, probe_interval %v", tc.yaml, c.Cluster.SuspicionMult, c.Cluster.ProbeInterval.D())
		}
	}
	for _, bad := range []string{"-1", "21"} {
		_, err := Parse("f.yaml", []byte(base+"  suspicion_mult: "+bad+"\n"))
		if want := "f.yaml:5:19: cluster.suspicion_mult " + bad + ": want 1 to 20"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("suspicion_mult %s: %v; want %s", bad, err, want)
		}
	}
}
