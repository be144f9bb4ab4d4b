package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// flipServer answers /health with the status it holds.
func flipServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv, &status
}

func TestHealthCheckThresholds(t *testing.T) {
	srvA, statusA := flipServer(t)
	srvB, _ := flipServer(t)
	rec := &recorder{}
	cfg := config.Upstream{
		Endpoints: []config.Endpoint{
			{Address: strings.TrimPrefix(srvA.URL, "http://")},
			{Address: strings.TrimPrefix(srvB.URL, "http://")},
		},
		HealthCheck: &config.HealthCheck{Path: "/health", Interval: config.Duration(time.Minute),
			Timeout: config.Duration(time.Second), HealthyThreshold: 2, UnhealthyThreshold: 3, ExpectedStatus: "200-299"},
	}
	u, clk := newTest(t, cfg, rec)
	clk.BlockUntil(1) // the loop's first round is over and its timer armed
	a := u.Endpoints()[0]
	ctx := context.Background()

	statusA.Store(503)
	for i := 1; i <= 2; i++ {
		u.CheckHealth(ctx)
		if !a.Healthy() {
			t.Fatalf("unhealthy after %d failures, threshold 3", i)
		}
	}
	u.CheckHealth(ctx)
	if a.Healthy() {
		t.Fatal("still healthy after 3 failures")
	}
	if !rec.has("svc " + a.Addr + " healthy=false") {
		t.Fatalf("observer not told: %v", rec.events)
	}
	for range 20 {
		if mustPick(t, u, 0) == a {
			t.Fatal("unhealthy endpoint picked")
		}
	}
	statusA.Store(302) // outside 200-299
	u.CheckHealth(ctx)
	statusA.Store(200)
	u.CheckHealth(ctx)
	if a.Healthy() {
		t.Fatal("healthy after 1 success, threshold 2")
	}
	u.CheckHealth(ctx)
	if !a.Healthy() || !u.Endpoints()[1].Healthy() {
		t.Fatal("not healthy after 2 successes")
	}
	if !rec.has("svc " + a.Addr + " healthy=true") {
		t.Fatal("observer not told of recovery")
	}

	// The loop runs on the injected clock.
	statusA.Store(500)
	for range 3 {
		clk.BlockUntil(1)
		clk.Advance(time.Minute)
	}
	eventually(t, "loop marks endpoint unhealthy", func() bool { return !a.Healthy() })
}

func TestHealthCheckLoopRealClock(t *testing.T) {
	srv, status := flipServer(t)
	cfg := config.Upstream{
		Name:      "real",
		Endpoints: []config.Endpoint{{Address: strings.TrimPrefix(srv.URL, "http://")}},
		HealthCheck: &config.HealthCheck{Path: "/health", Interval: config.Duration(20 * time.Millisecond),
			Timeout: config.Duration(20 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: 2},
	}
	u, err := New(cfg, Options{Clock: clock.Real()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	e := u.Endpoints()[0]
	status.Store(500)
	eventually(t, "unhealthy", func() bool { return !e.Healthy() })
	status.Store(204)
	eventually(t, "healthy again", e.Healthy)
	srv.Close() // connection refused counts as failure
	eventually(t, "unhealthy when down", func() bool { return !e.Healthy() })
	u.Close()
	u.Close() // idempotent
}
