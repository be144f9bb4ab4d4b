package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// purgeBound is how soon a purge made through one node must have taken
// effect on every edge.
const purgeBound = time.Second

// purgeEdges starts two edges in one cluster (production's gossip
// interval), each caching two routes of one origin and serving the admin
// API to /ops (operator) and /viewer; it returns the edges and clients of
// edge 0's API as each role.
func purgeEdges(t *testing.T) (edges []*edge, ops, viewer adminv1.AdminClient) {
	t.Helper()
	ca := pkitest.NewCA(t, td)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "%s at %d", r.URL.Path, time.Now().UnixNano())
	}))
	t.Cleanup(origin.Close)
	seed := ""
	for i := range 2 {
		join := ""
		if seed != "" {
			join = fmt.Sprintf(", join: [%q]", seed)
		}
		e := startEdge(t, identityFiles(t, ca, ca.ID(t, fmt.Sprintf("/edge-%d", i+1)))+fmt.Sprintf(`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"], viewers: ["spiffe://example.org/viewer"]}}
cluster: {bind: "127.0.0.1:0", probe_interval: 200ms%s}
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: o, endpoints: [{address: %q}]}]
routes:
  - {name: pages, match: {path: {prefix: /pages}}, upstream: o, cache: {}}
  - {name: docs, match: {path: {prefix: /docs}}, upstream: o, cache: {}}
`, join, addr(origin)))
		if seed == "" {
			seed = e.node.Cluster().Addr()
		}
		edges = append(edges, e)
	}
	eventually(t, 10*time.Second, "the edges see each other", func() bool {
		return edges[0].node.Cluster().Peers() == 1 && edges[1].node.Cluster().Peers() == 1
	})
	client := func(path string) adminv1.AdminClient {
		src := pkitest.NewSource(ca.SVID(t, ca.ID(t, path)), ca.Bundle())
		conn, err := grpc.NewClient(edges[0].node.AdminAPIAddr(),
			grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(src, src, pki.AllowTrustDomain(td)))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return adminv1.NewAdminClient(conn)
	}
	return edges, client("/ops"), client("/viewer")
}

// cacheStatus is the Cache-Status of a GET of path through e.
func cacheStatus(t *testing.T, e *edge, path string) string {
	t.Helper()
	code, hdr, body := get(t, nil, "GET", e.url("public")+path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return hdr.Get("Cache-Status")
}

func isHit(s string) bool { return strings.HasPrefix(s, "meshgate; hit") }

// A purge through one edge's admin API reaches the other edge within a
// second: the purged path is a miss on both, other paths and routes are
// still hits. A viewer may not purge.
func TestCachePurgeReachesEveryEdge(t *testing.T) {
	edges, ops, viewer := purgeEdges(t)
	paths := []string{"/pages/a", "/pages/a?v=2", "/pages/b", "/docs/a"}
	for _, e := range edges {
		for _, p := range paths {
			cacheStatus(t, e, p) // stored
			if s := cacheStatus(t, e, p); !isHit(s) {
				t.Fatalf("%s not cached: %s", p, s)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := viewer.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "pages", Mode: cache.PurgeAll}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a viewer purged: %v", err)
	}
	for _, e := range edges {
		if !isHit(cacheStatus(t, e, "/pages/b")) {
			t.Fatal("a viewer's refused purge removed an entry")
		}
	}

	start := time.Now()
	r, err := ops.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "pages", Mode: cache.PurgePath, Value: "/pages/a"})
	if err != nil {
		t.Fatal(err)
	}
	if r.PurgedHere != 2 { // the path with and without its query
		t.Errorf("the answering edge removed %d entries, want 2", r.PurgedHere)
	}
	// Watched through the stores, not by requests, which would store the
	// path again.
	eventually(t, purgeBound, "the other edge applies the purge", func() bool {
		return edges[1].node.caches.Stats()["pages"].Entries == 1
	})
	t.Logf("purge applied on the other edge after %v", time.Since(start))
	for i, e := range edges {
		for _, p := range paths {
			s := cacheStatus(t, e, p)
			purged := strings.HasPrefix(p, "/pages/a")
			if purged && !strings.Contains(s, "fwd=uri-miss") || !purged && !isHit(s) {
				t.Errorf("edge %d, %s after the purge: %s", i, p, s)
			}
		}
	}

	st, err := viewer.CacheStats(ctx, &adminv1.CacheStatsRequest{Route: "pages"})
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Routes[0]; p.Entries != 3 || p.EvictionsByReason["purged"] != 2 || p.Misses != 5 || p.Hits < 4 {
		t.Errorf("stats of pages on edge 0: %v", p)
	}
}

// A purge that reaches a node late, or again, spares what the node stored
// since: the cluster's full state merged again applies nothing, nor does
// the item handed to the node a second time, and a first application long
// after the purge was issued removes only what was stored by then.
func TestCachePurgeLateOrAgainSparesNewerEntries(t *testing.T) {
	edges, ops, _ := purgeEdges(t)
	other := edges[1]
	cacheStatus(t, other, "/pages/a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := ops.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "pages", Mode: cache.PurgePrefix, Value: "/pages/"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, purgeBound, "the other edge applies the purge", func() bool {
		return other.node.caches.Stats()["pages"].Entries == 0
	})
	cacheStatus(t, other, "/pages/a") // stored again, after the purge
	if !isHit(cacheStatus(t, other, "/pages/a")) {
		t.Fatal("not stored again")
	}

	// Again: anti-entropy, then the item itself.
	if err := other.node.mesh.store.MergeState(edges[0].node.mesh.store.LocalState()); err != nil {
		t.Fatal(err)
	}
	it, ok := other.node.mesh.store.Get(kindCachePurge, r.Id)
	if !ok {
		t.Fatal("the purge is not in the other edge's state")
	}
	other.node.purges.onApplied([]replica.Item{it})
	if !isHit(cacheStatus(t, other, "/pages/a")) {
		t.Fatal("a purge seen again removed an entry stored after it")
	}

	// Late: a node that first sees a purge issued well before it stored
	// an entry (beyond the clock-skew margin) keeps the entry.
	p, err := cache.DecodePurge(it.Value)
	if err != nil {
		t.Fatal(err)
	}
	p.At = time.Now().Add(-2 * purgeClockSkew)
	if n := other.node.purges.apply("late", p); n != 0 {
		t.Fatalf("a late purge removed %d entries stored after it", n)
	}
	if !isHit(cacheStatus(t, other, "/pages/a")) {
		t.Fatal("a late purge removed an entry stored after it")
	}
	// An entry stored before that time goes.
	p.At = time.Now()
	if n := other.node.purges.apply("now", p); n != 1 {
		t.Fatalf("a purge removed %d entries stored before it, want 1", n)
	}
}
