package config

import (
	"strings"
	"testing"
)

// MESHGATE_CLUSTER_ADVERTISE gives a node bound to all interfaces the
// address its peers reach (a pod's IP, known only when it starts): a bare
// IP takes the bind's port; the file's own advertise wins.
func TestClusterAdvertiseFromEnv(t *testing.T) {
	for _, tc := range []struct{ env, file, want string }{
		{"10.1.2.3", "", "10.1.2.3:7946"},
		{"fd00::7", "", "[fd00::7]:7946"},
		{"10.1.2.3:9000", "", "10.1.2.3:9000"},
		{"10.1.2.3", "10.9.9.9:7946", "10.9.9.9:7946"},
		{"", "", ""},
	} {
		cl := &Cluster{Bind: "0.0.0.0:7946", Advertise: tc.file}
		clusterFromEnv(cl, func(string) string { return tc.env })
		if cl.Advertise != tc.want {
			t.Errorf("env %q, file %q: advertise %q, want %q", tc.env, tc.file, cl.Advertise, tc.want)
		}
	}

	sidecar := []byte(sidecarIdentity + `
service: {name: payments, app: "127.0.0.1:9000"}
inbound: {address: "0.0.0.0:15443"}
cluster: {bind: "0.0.0.0:7946", join: ["edge-gossip:7946"]}
`)
	t.Setenv(ClusterAdvertiseEnv, "")
	if _, err := ParseSidecar("s.yaml", sidecar); err == nil || !strings.Contains(err.Error(), "set cluster.advertise") {
		t.Fatalf("without the variable: %v", err)
	}
	t.Setenv(ClusterAdvertiseEnv, "10.1.2.3")
	cfg, err := ParseSidecar("s.yaml", sidecar)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Advertise != "10.1.2.3:7946" || cfg.Cluster.Offer.Inbound != "10.1.2.3:15443" {
		t.Fatalf("advertise %q, offered inbound %q", cfg.Cluster.Advertise, cfg.Cluster.Offer.Inbound)
	}
}
