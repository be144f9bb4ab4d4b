package node

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// keyRevokeBound is how soon a revoked API key must be refused by every edge.
const keyRevokeBound = time.Second

// keyEdges starts three edges in one cluster, with the cluster's default
// gossip interval (the propagation measured is production's), each
// serving the admin API to /ops and a route that takes API keys in front
// of an echo backend. acme (tier free) has no key in the files.
func keyEdges(t *testing.T) (edges []*edge, admins []adminv1.AdminClient) {
	t.Helper()
	ca := pkitest.NewCA(t, td)
	b := echoBackend(t, "b")
	seed := ""
	for i := range 3 {
		join := ""
		if seed != "" {
			join = fmt.Sprintf(", join: [%q]", seed)
		}
		e := startEdge(t, identityFiles(t, ca, ca.ID(t, fmt.Sprintf("/edge-%d", i+1)))+fmt.Sprintf(`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"]}}
cluster: {bind: "127.0.0.1:0", probe_interval: 200ms%s}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth: {api_keys: [{name: keys, header: X-Api-Key}]}
consumers: [{name: acme, tier: free}]
tiers:
  - {name: default, limits: [{requests: 100000, window: 1m}]}
  - {name: free, limits: [{requests: 100000, window: 1m}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: b, auth: {methods: [keys]}}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, join, addr(b)))
		if seed == "" {
			seed = e.node.Cluster().Addr()
		}
		edges = append(edges, e)
	}
	eventually(t, 10*time.Second, "the three edges see each other", func() bool {
		for _, e := range edges {
			if e.node.Cluster().Peers() != 2 {
				return false
			}
		}
		return true
	})
	ops := pkitest.NewSource(ca.SVID(t, ca.ID(t, "/ops")), ca.Bundle())
	for _, e := range edges {
		conn, err := grpc.NewClient(e.node.AdminAPIAddr(),
			grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(ops, ops, pki.AllowTrustDomain(td)))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		admins = append(admins, adminv1.NewAdminClient(conn))
	}
	return edges, admins
}

// issueKey does what `meshctl keys issue` does: the key is made here and
// only its hash is sent, through admin.
func issueKey(t *testing.T, admin adminv1.AdminClient, consumer string) (key, id string) {
	t.Helper()
	key, hash, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	value, _ := yaml.Marshal(config.APIKey{Consumer: consumer, Hash: hash})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := admin.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: string(value)})
	if err != nil {
		t.Fatalf("issue a key: %v", err)
	}
	return key, r.Name
}

// keyStatus is the status of a request with key through e, and the tier
// the upstream got.
func keyStatus(t *testing.T, e *edge, key string) (int, string) {
	t.Helper()
	code, _, body := get(t, nil, "GET", e.url("public")+"/x", map[string]string{"X-Api-Key": key})
	if code != http.StatusOK {
		return code, ""
	}
	tier := decode(t, body).Headers[config.HeaderTier]
	if len(tier) != 1 {
		return code, ""
	}
	return code, tier[0]
}

// An API key issued through one edge works on another, and its revocation
// through a third is refused by all three within a second; a consumer
// moved to another tier through the cluster gets it on every edge.
func TestAPIKeysAndConsumersAcrossTheCluster(t *testing.T) {
	edges, admins := keyEdges(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var worst time.Duration
	for round := 1; round <= 3; round++ {
		key, id := issueKey(t, admins[0], "acme")
		eventually(t, 5*time.Second, "the key issued through edge 1 works on edge 3", func() bool {
			code, _ := keyStatus(t, edges[2], key)
			return code == 200
		})
		eventually(t, 5*time.Second, "the key works on every edge", func() bool {
			for _, e := range edges {
				if code, _ := keyStatus(t, e, key); code != 200 {
					return false
				}
			}
			return true
		})

		// Revoke through edge 2; poll every edge until each refuses it.
		start := time.Now()
		if r, err := admins[1].DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindAPIKey, Name: id}); err != nil || !r.Deleted {
			t.Fatalf("revoke %s: %v %v", id, r, err)
		}
		refused := make([]time.Duration, len(edges))
		for pending := len(edges); pending > 0; {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("round %d: the revoked key is still accepted after 10 s: %v", round, refused)
			}
			for i, e := range edges {
				if refused[i] != 0 {
					continue
				}
				if code, _ := keyStatus(t, e, key); code == http.StatusUnauthorized {
					refused[i] = time.Since(start)
					pending--
				} else if code != http.StatusOK {
					t.Fatalf("edge %d answered %d", i+1, code)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		all := max(refused[0], refused[1], refused[2])
		worst = max(worst, all)
		t.Logf("round %d: key %s revoked through edge 2, refused by edges 1/2/3 after %v / %v / %v: all within %v",
			round, id, refused[0].Round(time.Millisecond), refused[1].Round(time.Millisecond), refused[2].Round(time.Millisecond), all.Round(time.Millisecond))
		if all > keyRevokeBound {
			t.Errorf("round %d: the revocation took %v to reach every edge, want ≤ %v", round, all, keyRevokeBound)
		}
		// Refused for good.
		for i, e := range edges {
			if code, _ := keyStatus(t, e, key); code != http.StatusUnauthorized {
				t.Fatalf("edge %d accepts the revoked key again: %d", i+1, code)
			}
		}
	}
	t.Logf("revocation → refused on all 3 edges: worst of 3 rounds %v (bound %v)", worst.Round(time.Millisecond), keyRevokeBound)

	// A new tier and acme moved to it through edge 3: every edge sends
	// the upstream X-Meshgate-Tier: gold.
	key, _ := issueKey(t, admins[0], "acme")
	eventually(t, 5*time.Second, "acme is free everywhere", func() bool {
		for _, e := range edges {
			if _, tier := keyStatus(t, e, key); tier != "free" {
				return false
			}
		}
		return true
	})
	if _, err := admins[2].ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindTier,
		Yaml: "name: gold\nlimits: [{requests: 100000, window: 1m}]\n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admins[2].ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindConsumer,
		Yaml: "name: acme\ntier: gold\n"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "acme is gold on every edge, with its key", func() bool {
		for _, e := range edges {
			if code, tier := keyStatus(t, e, key); code != 200 || tier != "gold" {
				return false
			}
		}
		return true
	})
}
