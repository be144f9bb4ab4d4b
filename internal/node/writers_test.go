package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/replica/itemsig"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

const writersListen = "log: {access: \"off\"}\nlisteners: [{name: public, address: \"127.0.0.1:0\"}]\n" +
	"upstreams: [{name: u, endpoints: [{address: \"127.0.0.1:1\"}]}]\n"

// A member with a valid SVID of the trust domain that is not a writer
// (admitted by the default join set) writes a route straight into its
// replica store, past its own admin check, as a modified node would: the
// item is broadcast and offered in push/pull, and no other node applies it;
// each refusal is counted. It also forges items in an edge's name: its own
// signature with the edge's ID claimed, and the edge's real signature over
// a changed value. An edge's write through the admin API still reaches
// every node, the non-writer included, and the non-writer's own admin API
// refuses writes with FAILED_PRECONDITION.
func TestNonWriterMemberCannotWrite(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	admin := "admin: {api: {address: \"127.0.0.1:0\", operators: [\"spiffe://example.org/ops\"]}}\n"
	e1 := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge-1"))+fastCluster("")+writersListen+admin)
	seed := e1.node.Cluster().Addr()
	e2 := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge-2"))+fastCluster(seed)+writersListen)
	workerSVID := ca.SVID(t, ca.ID(t, "/ns/prod/sa/worker"))
	w := startEdge(t, identityFiles(t, ca, workerSVID.ID)+fastCluster(seed)+writersListen+admin)
	eventually(t, 10*time.Second, "three members", func() bool {
		return e1.node.Cluster().Peers() == 2 && e2.node.Cluster().Peers() == 2 && w.node.Cluster().Peers() == 2
	})

	hijack := []byte("name: hijack\nlisteners: [public]\nmatch: {path: {prefix: /}}\nupstream: u\n")
	if _, err := w.node.mesh.store.Put(config.KindRoute, "hijack", hijack); err != nil {
		t.Fatal(err)
	}
	if _, err := w.node.mesh.store.Put(kindCachePurge, "0123456789abcdef01234567", nil); err != nil {
		t.Fatal(err)
	}

	// An edge writes through its admin API, as an operator.
	ops := adminClient(t, ca, e1.node.AdminAPIAddr(), "/ops")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindRoute,
		Yaml: "name: orders\nlisteners: [public]\nmatch: {path: {prefix: /orders}}\nupstream: u\n"}); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*edge{e1, e2, w} {
		eventually(t, 5*time.Second, fmt.Sprintf("node %d applies the edge's route", i), func() bool {
			_, ok := n.node.mesh.store.Get(config.KindRoute, "orders")
			return ok
		})
	}

	// Forgeries in edge-1's name, as the edges would receive them from the
	// worker (handed to their stores here: the cluster's sender is fixed
	// once it runs).
	legit, _ := e1.node.mesh.store.Get(config.KindRoute, "orders")
	forge := func(node string, sign func(*replica.Item) error) {
		t.Helper()
		f := replica.New(replica.Options{Node: node, Sign: sign})
		_ = f.MergeState(e1.node.mesh.store.LocalState()) // its clock past edge-1's
		if _, err := f.Put(config.KindRoute, "orders", hijack); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*edge{e1, e2} {
			if err := n.node.mesh.store.MergeState(f.LocalState()); !errors.Is(err, replica.ErrRefused) {
				t.Errorf("a forgery from %s: %v", node, err)
			}
		}
	}
	forge("edge-1", func(it *replica.Item) error { // the worker's key, the edge's name
		return itemsig.Sign(it, workerSVID.PrivateKey, "spiffe://example.org/edge-1", workerSVID.Certificates, time.Now())
	})
	forge("zz", func(it *replica.Item) error { // the edge's signature, another value
		it.Ext = legit.Ext
		return nil
	})

	// Refused by broadcast and again by push/pull (every 2 s here), counted.
	for i, n := range []*edge{e1, e2} {
		eventually(t, 10*time.Second, fmt.Sprintf("edge %d refuses the items, by broadcast and push/pull", i+1), func() bool {
			return n.node.mesh.store.Stats().Refused >= 6 && metricValue(t, n.node, "meshgate_cluster_items_refused_total") >= 6
		})
		if _, ok := n.node.mesh.store.Get(config.KindRoute, "hijack"); ok {
			t.Errorf("edge %d applied the worker's route", i+1)
		}
		if it, _ := n.node.mesh.store.Get(config.KindRoute, "orders"); string(it.Value) == string(hijack) {
			t.Errorf("edge %d applied a forged orders route", i+1)
		}
		if code, _, _ := get(t, nil, "GET", n.url("public")+"/x", nil); code != 404 {
			t.Errorf("edge %d routes the worker's route: %d", i+1, code)
		}
	}

	// The worker's own admin API refuses changes: it is not a writer.
	wops := adminClient(t, ca, w.node.AdminAPIAddr(), "/ops")
	_, err := wops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindRoute,
		Yaml: "name: x\nlisteners: [public]\nmatch: {path: {prefix: /x}}\nupstream: u\n"})
	if status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "this node (spiffe://example.org/ns/prod/sa/worker) may not write a ") {
		t.Errorf("a non-writer's admin API applied: %v", err)
	}
	if _, err := wops.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindRoute, Name: "orders"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a non-writer's admin API deleted: %v", err)
	}
	if _, err := wops.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "orders", Mode: "all"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a non-writer's admin API purged: %v", err)
	}
}

// cluster.writers replaces the default: here the worker writes, the edges'
// default IDs do not.
func TestClusterWritersExplicit(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	writers := "cluster: {bind: \"127.0.0.1:0\", gossip_interval: 50ms, probe_interval: 200ms, writers: [\"spiffe://example.org/ns/*/sa/worker\"]%s}\n"
	e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+fmt.Sprintf(writers, "")+writersListen)
	w := startEdge(t, identityFiles(t, ca, ca.ID(t, "/ns/prod/sa/worker"))+fmt.Sprintf(writers, fmt.Sprintf(", join: [%q]", e.node.Cluster().Addr()))+writersListen)
	eventually(t, 10*time.Second, "two members", func() bool { return e.node.Cluster().Peers() == 1 })
	route := []byte("name: r\nlisteners: [public]\nmatch: {path: {prefix: /r}}\nupstream: u\n")
	if err := e.node.ApplyResource(config.KindRoute, route); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("the edge, not a writer here, applied: %v", err)
	}
	if err := w.node.ApplyResource(config.KindRoute, route); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the edge applies the writer's route", func() bool {
		_, ok := e.node.mesh.store.Get(config.KindRoute, "r")
		return ok
	})
}

// The default join set leaves out the identities this node's admin API
// names: a viewer's (or an operator's) SVID, valid in the trust domain,
// cannot join; another workload can; an explicit cluster.allow decides.
func TestAdminIdentitiesCannotJoinByDefault(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+fastCluster("")+writersListen+
		"admin: {api: {address: \"127.0.0.1:0\", operators: [\"spiffe://example.org/ops\"], viewers: [\"spiffe://example.org/viewer\"]}}\n")
	seed := e.node.Cluster().Addr()
	for _, path := range []string{"/viewer", "/ops"} {
		n := startEdge(t, identityFiles(t, ca, ca.ID(t, path))+fastCluster(seed)+writersListen)
		before := metricValue(t, e.node, "meshgate_gossip_rejected_connections_total")
		eventually(t, 5*time.Second, path+"'s connections are refused", func() bool {
			return metricValue(t, e.node, "meshgate_gossip_rejected_connections_total") >= before+1
		})
		// The refused connection was the join's: a join has no other way in.
		if p := e.node.Cluster().Peers(); p != 0 {
			t.Fatalf("%s joined: %d peers", path, p)
		}
		if _, err := n.node.mesh.store.Put(config.KindRoute, "x", []byte("name: x\n")); err != nil {
			t.Fatal(err)
		}
		n.node.Shutdown(context.Background())
	}
	// Another workload of the trust domain joins (and may not write).
	w := startEdge(t, identityFiles(t, ca, ca.ID(t, "/payments"))+fastCluster(seed)+writersListen)
	eventually(t, 10*time.Second, "a workload joins", func() bool { return e.node.Cluster().Peers() == 1 && w.node.Cluster().Peers() == 1 })
	if _, ok := e.node.mesh.store.Get(config.KindRoute, "x"); ok {
		t.Error("an admin identity's route reached the edge")
	}
}

// adminClient is an admin API client as the SVID of path.
func adminClient(t *testing.T, ca *pkitest.CA, addr, path string) adminv1.AdminClient {
	t.Helper()
	src := pkitest.NewSource(ca.SVID(t, ca.ID(t, path)), ca.Bundle())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(src, src, pki.AllowTrustDomain(td)))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return adminv1.NewAdminClient(conn)
}

func TestIsEdgeID(t *testing.T) {
	for id, want := range map[string]bool{
		"spiffe://example.org/edge": true, "spiffe://example.org/edge-eu-1": true, "spiffe://example.org/ns/gw/sa/edge": true,
		"spiffe://example.org/edge-": false, "spiffe://example.org/edges": false, "spiffe://example.org/edge/x": false,
		"spiffe://example.org/meshctl": false, "spiffe://example.org/my-edge": false,
	} {
		if got := isEdgeID(spiffeid.RequireFromString(id)); got != want {
			t.Errorf("%s: %v", id, got)
		}
	}
}

// cluster.kind_writers replaces cluster.writers for the kinds it names: here
// a key service writes API keys and only it; the edge still writes routes
// but no longer keys. A member that writes one kind may join.
func TestKindWriters(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	cl := "cluster: {bind: \"127.0.0.1:0\", gossip_interval: 50ms, probe_interval: 200ms, kind_writers: {apikey: [\"spiffe://example.org/keysvc\"]}%s}\n"
	auth := "tiers: [{name: free, limits: [{requests: 5, window: 1m}]}]\n"
	e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+fmt.Sprintf(cl, "")+writersListen+auth)
	k := startEdge(t, identityFiles(t, ca, ca.ID(t, "/keysvc"))+fmt.Sprintf(cl, fmt.Sprintf(", join: [%q]", e.node.Cluster().Addr()))+writersListen+auth)
	eventually(t, 10*time.Second, "two members", func() bool { return e.node.Cluster().Peers() == 1 })

	consumer := []byte("name: acme\ntier: free\n")
	if err := e.node.ApplyResource(config.KindConsumer, consumer); err != nil {
		t.Fatalf("the edge writes consumers (cluster.writers' default): %v", err)
	}
	key := []byte("consumer: acme\nhash: sha256:" + strings.Repeat("ab", 32) + "\n")
	if err := e.node.ApplyResource(config.KindAPIKey, key); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "not in cluster.kind_writers.apikey") {
		t.Fatalf("the edge wrote an API key, kind_writers.apikey names only the key service: %v", err)
	}
	if err := k.node.ApplyResource(config.KindRoute, []byte("name: r\nlisteners: [public]\nmatch: {path: {prefix: /r}}\nupstream: u\n")); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("the key service wrote a route: %v", err)
	}
	eventually(t, 5*time.Second, "the key service has the edge's consumer", func() bool {
		_, ok := k.node.mesh.store.Get(config.KindConsumer, "acme")
		return ok
	})
	if err := k.node.ApplyResource(config.KindAPIKey, key); err != nil {
		t.Fatalf("the key service may write keys: %v", err)
	}
	eventually(t, 5*time.Second, "the edge applies the key service's key", func() bool {
		return len(e.node.mesh.store.List(config.KindAPIKey)) == 1
	})
}

// cluster.accept_unsigned applies a peer's unsigned item (a release before
// signatures wrote it) and counts it; without it the item is refused. A
// signed item by a non-writer is refused either way.
func TestAcceptUnsigned(t *testing.T) {
	ca := pkitest.NewCA(t, td)
	for _, accept := range []bool{false, true} {
		t.Run(fmt.Sprint("accept_unsigned=", accept), func(t *testing.T) {
			cl := fmt.Sprintf("cluster: {bind: \"127.0.0.1:0\", accept_unsigned: %v}\n", accept)
			e := startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge"))+cl+writersListen)
			old := replica.New(replica.Options{Node: "old-edge"}) // no Sign: an unsigned item
			if _, err := old.Put(config.KindRoute, "legacy", []byte("name: legacy\nlisteners: [public]\nmatch: {path: {prefix: /legacy}}\nupstream: u\n")); err != nil {
				t.Fatal(err)
			}
			err := e.node.mesh.store.MergeState(old.LocalState())
			_, applied := e.node.mesh.store.Get(config.KindRoute, "legacy")
			unsigned := metricValue(t, e.node, "meshgate_cluster_items_unsigned_total")
			if accept != applied || accept != (err == nil) || accept != (unsigned == 1) {
				t.Fatalf("applied %v (merge: %v), unsigned_total %v", applied, err, unsigned)
			}
			worker := ca.SVID(t, ca.ID(t, "/ns/prod/sa/worker"))
			forged := replica.New(replica.Options{Node: "worker", Sign: func(it *replica.Item) error {
				return itemsig.Sign(it, worker.PrivateKey, worker.ID.String(), worker.Certificates, time.Now())
			}})
			if _, err := forged.Put(config.KindRoute, "w", []byte("name: w\nlisteners: [public]\nmatch: {path: {prefix: /w}}\nupstream: u\n")); err != nil {
				t.Fatal(err)
			}
			if err := e.node.mesh.store.MergeState(forged.LocalState()); !errors.Is(err, replica.ErrRefused) {
				t.Fatalf("a non-writer's signed item: %v", err)
			}
		})
	}
}
