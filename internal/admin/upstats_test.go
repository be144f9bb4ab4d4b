package admin

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/telemetry"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// statsBackend is a store backend whose node shares upstream stats.
type statsBackend struct {
	storeBackend
	stats *clusterstats.Sharer
}

func (b *statsBackend) ClusterStats() *clusterstats.Sharer { return b.stats }

// UpstreamStats answers with the upstream's figures merged over this node
// and its peers, and each node's own: here this node sent it nothing and
// two peers' errors and slow requests decide.
func TestUpstreamStatsMergesPeers(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	local := telemetry.NewUpstreamStatsClock(clk)
	me := clusterstats.New(clusterstats.Options{Node: "edge-a", Stats: local})
	for i, peer := range []string{"edge-b", "edge-c"} {
		st := telemetry.NewUpstreamStatsClock(clk)
		for range 40 {
			st.Observe("orders-v2", 200, 2*time.Millisecond)
		}
		for range 10 * (i + 1) {
			st.Observe("orders-v2", 503, 800*time.Millisecond)
		}
		p := clusterstats.New(clusterstats.Options{Node: peer, Stats: st, Send: func(_ string, msg []byte) {
			if _, err := me.Merge(msg); err != nil {
				t.Fatal(err)
			}
		}})
		p.Flush()
	}
	base, err := config.Parse("edge.yaml", []byte("listeners: [{name: public, address: \"127.0.0.1:0\"}]\nupstreams: [{name: orders-v2, endpoints: [{address: \"127.0.0.1:1\"}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Backend: &statsBackend{storeBackend{base: base, store: replica.New(replica.Options{Node: "test"})}, me}})

	r, err := s.UpstreamStats(context.Background(), &adminv1.UpstreamStatsRequest{Upstream: "orders-v2"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 110 || r.Errors != 30 || r.P99Ms < 500 || r.WindowMs != 30000 || len(r.Nodes) != 3 {
		t.Fatalf("merged: %+v", r)
	}
	for i, want := range []struct {
		node     string
		requests uint64
	}{{"edge-a", 0}, {"edge-b", 50}, {"edge-c", 60}} {
		if n := r.Nodes[i]; n.Node != want.node || n.Requests != want.requests {
			t.Errorf("node %d: %+v, want %s with %d requests", i, n, want.node, want.requests)
		}
	}
	if r.Nodes[0].Role != "edge" {
		t.Errorf("the answering node's role: %q", r.Nodes[0].Role)
	}

	// local: the answering node's own figures, as before the merge.
	r, err = s.UpstreamStats(context.Background(), &adminv1.UpstreamStatsRequest{Upstream: "orders-v2", Local: true})
	if err != nil || r.Requests != 0 || len(r.Nodes) != 1 {
		t.Fatalf("local: %+v, %v", r, err)
	}
	// An upstream nobody knows is not found (and the known ones named).
	_, err = s.UpstreamStats(context.Background(), &adminv1.UpstreamStatsRequest{Upstream: "ordres-v2"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown upstream: %v", err)
	}
}
