package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// fastCluster is a cluster section for tests: failures detected within a
// couple of seconds.
func fastCluster(join string) string {
	j := ""
	if join != "" {
		j = fmt.Sprintf(", join: [%q]", join)
	}
	return fmt.Sprintf("cluster: {bind: \"127.0.0.1:0\", gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 2s%s}\n", j)
}

// An edge and two sidecars of "orders" (v1, v2) in one cluster over mTLS:
// the edge finds the sidecars by discovery, a route applied through the
// edge reaches every node, a sidecar (not a writer) may not apply one, and
// a sidecar that stops leaves the endpoint set.
func TestClusterDiscoveryAndReplicatedRoutes(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID := ca.ID(t, "/edge")
	apps := map[string]*httptest.Server{}
	for _, v := range []string{"v1", "v2"} {
		v := v
		apps[v] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "orders %s %s", v, r.URL.Path)
		}))
		defer apps[v].Close()
	}
	e := startEdge(t, identityFiles(t, ca, edgeID)+fastCluster("")+`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: orders, listeners: [public], match: {path: {prefix: /orders}}, upstream: orders}]
upstreams:
  - {name: orders, service: {name: orders}}
`)
	seed := e.node.Cluster().Addr()
	sidecars := map[string]*Node{}
	for _, v := range []string{"v1", "v2"} {
		sidecars[v] = startSidecar(t, identityFiles(t, ca, ca.ID(t, "/orders-"+v))+fastCluster(seed)+fmt.Sprintf(`
log: {access: "off"}
service: {name: orders, subset: %s, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
`, v, addr(apps[v])))
	}
	eventually(t, 10*time.Second, "the edge discovers both sidecars", func() bool {
		return len(e.node.Cluster().Service("orders", "").Endpoints()) == 2
	})

	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		code, _, body := get(t, nil, "GET", e.url("public")+"/orders/1", nil)
		if code != 200 {
			t.Fatalf("GET /orders/1: %d %s", code, body)
		}
		seen[strings.Fields(body)[1]]++
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Fatalf("round robin over discovered sidecars: %v", seen)
	}

	// A sidecar is not a writer: it refuses to apply rather than write an
	// item every other node would refuse. Through the edge, a route and an
	// upstream reach every node.
	up := []byte("name: orders-v2\nservice: {name: orders, subset: v2}\n")
	if err := sidecars["v1"].ApplyResource(config.KindUpstream, up); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "this node (spiffe://example.org/orders-v1) may not write a ") {
		t.Fatalf("a sidecar applied: %v", err)
	}
	if err := e.node.ApplyResource(config.KindUpstream, up); err != nil {
		t.Fatal(err)
	}
	rt := []byte("name: canary\nlisteners: [public]\nmatch: {path: {prefix: /canary}}\nupstream: orders-v2\nrewrite: {strip_prefix: /canary}\n")
	if err := e.node.ApplyResource(config.KindRoute, rt); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the edge routes /canary", func() bool {
		code, _, _ := get(t, nil, "GET", e.url("public")+"/canary/x", nil)
		return code == 200
	})
	for i := 0; i < 5; i++ {
		if _, _, body := get(t, nil, "GET", e.url("public")+"/canary/x", nil); !strings.HasPrefix(body, "orders v2 /x") {
			t.Fatalf("canary went to %q", body)
		}
	}
	// An invalid resource is refused where it is applied; one that gets
	// into the cluster anyway (here written to the edge's store directly,
	// past the validation) is left out without holding up the others.
	bad := []byte("name: bad\nlisteners: [public]\nmatch: {path: {prefix: /bad}}\nupstream: nowhere\n")
	if err := e.node.ApplyResource(config.KindRoute, bad); err == nil {
		t.Fatal("route to an unknown upstream accepted")
	}
	if _, err := e.node.mesh.store.Put(config.KindRoute, "bad", bad); err != nil {
		t.Fatal(err)
	}
	rt2 := []byte("name: canary2\nlisteners: [public]\nmatch: {path: {prefix: /canary2}}\nupstream: orders-v2\n")
	if err := e.node.ApplyResource(config.KindRoute, rt2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the edge routes /canary2 despite the bad route", func() bool {
		code, _, _ := get(t, nil, "GET", e.url("public")+"/canary2", nil)
		return code == 200
	})
	if code, _, _ := get(t, nil, "GET", e.url("public")+"/bad", nil); code != 404 {
		t.Fatalf("/bad: %d", code)
	}
	// Every sidecar holds what the edge wrote: its signature verified.
	for v, sc := range sidecars {
		eventually(t, 5*time.Second, "sidecar "+v+" holds the edge's routes", func() bool {
			_, ok1 := sc.mesh.store.Get(config.KindRoute, "canary")
			_, ok2 := sc.mesh.store.Get(config.KindRoute, "bad")
			return ok1 && ok2
		})
		if st := sc.mesh.store.Stats(); st.Refused != 0 {
			t.Errorf("sidecar %s refused %d of the edge's items", v, st.Refused)
		}
	}
	// A delete through the edge reaches everyone, the edge included.
	if ok, err := e.node.DeleteResource(config.KindRoute, "canary"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	eventually(t, 5*time.Second, "/canary is gone", func() bool {
		code, _, _ := get(t, nil, "GET", e.url("public")+"/canary/x", nil)
		return code == 404
	})

	// A sidecar whose app is down is withdrawn; one that stops is dropped.
	apps["v2"].Close()
	eventually(t, 10*time.Second, "the unhealthy v2 sidecar is withdrawn", func() bool {
		eps := e.node.Cluster().Service("orders", "").Endpoints()
		return len(eps) == 1
	})
	for i := 0; i < 10; i++ {
		if code, _, body := get(t, nil, "GET", e.url("public")+"/orders/2", nil); code != 200 || !strings.HasPrefix(body, "orders v1") {
			t.Fatalf("after v2 went down: %d %q", code, body)
		}
	}
}

// A node whose SVID does not chain to the cluster's bundle cannot join, and
// what it writes never reaches the cluster; the refused connections are
// counted.
func TestClusterRefusesNodeWithoutValidIdentity(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	rogue := pkitest.OtherCA(t, td) // same trust domain name, another CA
	listen := "listeners: [{name: public, address: \"127.0.0.1:0\"}]\nlog: {access: \"off\"}\n"
	e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+fastCluster("")+listen)
	intruder := startEdge(t, identityFiles(t, rogue, rogue.ID(t, "/edge"))+fastCluster(e.node.Cluster().Addr())+listen+
		"upstreams: [{name: u, endpoints: [{address: \"127.0.0.1:1\"}]}]\n")
	if err := intruder.node.ApplyResource(config.KindRoute, []byte("name: hijack\nlisteners: [public]\nmatch: {path: {prefix: /}}\nupstream: u\n")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the refusals are counted", func() bool {
		return metricValue(t, e.node, "meshgate_gossip_rejected_connections_total") >= 2
	})
	// The intruder keeps trying to join: once it has been refused again,
	// a late admission would have shown.
	refused := metricValue(t, e.node, "meshgate_gossip_rejected_connections_total")
	eventually(t, 10*time.Second, "the intruder refused again", func() bool {
		return metricValue(t, e.node, "meshgate_gossip_rejected_connections_total") > refused
	})
	if p := e.node.Cluster().Peers(); p != 0 {
		t.Fatalf("the cluster admitted %d peer(s) without a valid SVID", p)
	}
	if code, _, _ := get(t, nil, "GET", e.url("public")+"/x", nil); code != 404 {
		t.Fatalf("the intruder's route reached the edge: %d", code)
	}
}

// A node that joins a cluster opens its listeners once it has joined: an
// edge (re)started beside a running one serves a discovered service from
// its very first request, not "no healthy upstream endpoint".
func TestJoinBeforeServing(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	edgeID := ca.ID(t, "/edge")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "orders") }))
	defer app.Close()
	edgeYAML := `
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: orders, listeners: [public], match: {path: {prefix: /orders}}, upstream: orders}]
upstreams:
  - {name: orders, service: {name: orders}}
`
	first := startEdge(t, identityFiles(t, ca, edgeID)+fastCluster("")+edgeYAML)
	seed := first.node.Cluster().Addr()
	startSidecar(t, identityFiles(t, ca, ca.ID(t, "/orders"))+fastCluster(seed)+fmt.Sprintf(`
log: {access: "off"}
service: {name: orders, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
`, addr(app)))
	eventually(t, 10*time.Second, "the first edge discovers the sidecar", func() bool {
		return len(first.node.Cluster().Service("orders", "").Endpoints()) == 1
	})
	for i := range 3 {
		e := startEdge(t, identityFiles(t, ca, edgeID)+fastCluster(seed)+edgeYAML)
		if code, _, body := get(t, nil, "GET", e.url("public")+"/orders/1", nil); code != 200 {
			t.Fatalf("edge %d's first request: %d %s", i, code, body)
		}
	}
}
