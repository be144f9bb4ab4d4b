package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// addEdge starts a second edge in m's cluster, without an admin API: the
// same route from its file, a shift's split from the cluster. It returns
// its public URL.
func (m *mesh) addEdge(t *testing.T) string {
	t.Helper()
	b := startNode(t, m.dir, "edge-b", m.edgeID+fmt.Sprintf(`
log: {access: "off"}
cluster: {bind: "127.0.0.1:0", join: [%q], %s}
`, m.edge.Cluster().Addr(), fastCluster)+edgeRoutes, config.Load, "edge")
	waitFor(t, "edge b discovers both sidecars", func() bool {
		return len(b.Cluster().Service("orders", "").Endpoints()) == 2
	})
	return "http://" + b.Addr("public")
}

// The new subset is judged on the whole cluster's traffic: with every
// request on edge B, a progressive shift driven through edge A's admin API
// sees B's errors (gossiped) and rolls back, saying whose stats it merged.
func TestProgressiveShiftJudgesEveryEdge(t *testing.T) {
	m := startMeshWith(t, map[string]bool{"v2": true})
	public := m.addEdge(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // steady traffic through edge B only
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if resp, err := http.Get(public + "/x"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	out, err := m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v2", "--steps", "20,50,100",
		"--interval", "8s", "--min-requests", "10", "--max-error-rate", "0.05")
	close(stop)
	<-done
	if err == nil || !strings.Contains(err.Error(), "rolled back orders to 0% for v2: error rate") ||
		!strings.Contains(err.Error(), "(merged from 2 edges)") {
		t.Fatalf("shift judged on edge A alone: %v\n%s", err, out)
	}
	if !strings.Contains(out, "step 1/3: 20%") || strings.Contains(out, "step 2/3") {
		t.Fatalf("steps taken:\n%s", out)
	}
	t.Logf("%s%v", out, err)
}
