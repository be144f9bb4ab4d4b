package sharedstate

import (
	"runtime"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ratelimit"
)

// Without a cluster the state is node-local: breakers and a limiter that
// decide alone, and Stop ends the limiter's goroutine.
func TestLocal(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Limits.SetPolicies([]ratelimit.PolicyConfig{{Name: "p", Limit: 2, Window: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	p := s.Limits.Policy("p")
	if !p.Allow("k") || !p.Allow("k") || p.Allow("k") {
		t.Fatal("a node-local limit of 2 did not admit exactly 2")
	}
	if s.Breakers == nil {
		t.Fatal("no breakers")
	}
	s.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Stop, %d before", n, before)
	}
}
