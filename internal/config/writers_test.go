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
