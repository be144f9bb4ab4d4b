package upstream

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// addrs returns n IP-literal endpoints 10.0.0.1:80 … (never dialled).
func addrs(n int) []config.Endpoint {
	eps := make([]config.Endpoint, n)
	for i := range eps {
		eps[i] = config.Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
	}
	return eps
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) EndpointHealth(up, addr string, healthy bool) {
	r.add(fmt.Sprintf("%s %s healthy=%v", up, addr, healthy))
}

func (r *recorder) EndpointEjected(up, addr string, ejected bool) {
	r.add(fmt.Sprintf("%s %s ejected=%v", up, addr, ejected))
}

func (r *recorder) EndpointRemoved(up, addr string) {
	r.add(fmt.Sprintf("%s %s removed", up, addr))
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == s {
			return true
		}
	}
	return false
}

// newTest builds an upstream on a fake clock.
func newTest(t testing.TB, cfg config.Upstream, obs Observer) (*Upstream, *clock.Fake) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	clk := clock.NewFake(t0)
	u, err := New(cfg, Options{Clock: clk, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u, clk
}

func mustPick(t testing.TB, u *Upstream, key uint64, exclude ...*Endpoint) *Endpoint {
	t.Helper()
	e, err := u.Pick(key, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
