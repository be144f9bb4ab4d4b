package upstream

import (
	"errors"
	"testing"

	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
)

// An endpoint whose breaker opens gets no picks, not even in panic mode;
// when every breaker is open Pick says so; half-open admits one probe.
func TestBreakerGatesPicks(t *testing.T) {
	clk := clock.NewFake(t0)
	reg, err := breaker.New(breaker.Options{Node: "n", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Upstream{Name: "svc", Endpoints: addrs(2),
		Breaker: &config.Breaker{ConsecutiveFailures: 2, OpenTimeout: config.Duration(10e9)}}
	u, err := New(cfg, Options{Clock: clk, Breakers: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	bad := u.Endpoints()[0]
	for i := 0; i < 2; i++ {
		tk, err := bad.Admit()
		if err != nil {
			t.Fatal(err)
		}
		Finish(tk, ConnectError)
	}
	// Mark the other one unhealthy too: panic mode still must not pick bad.
	u.Endpoints()[1].healthy.Store(false)
	for i := 0; i < 10; i++ {
		if e := mustPick(t, u, 0); e == bad {
			t.Fatal("picked an endpoint whose breaker is open")
		}
	}
	other := u.Endpoints()[1]
	for i := 0; i < 2; i++ {
		tk, _ := other.Admit()
		Finish(tk, Status5xx(503))
	}
	if _, err := u.Pick(0, nil); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("every breaker open: %v, want ErrCircuitOpen", err)
	}
	clk.Advance(11e9)
	tk, err := bad.Admit()
	if err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if _, err := bad.Admit(); err == nil {
		t.Fatal("a second probe admitted while the first is out")
	}
	Finish(tk, Success)
	if bad.brk.State() != breaker.Closed {
		t.Fatalf("after a good probe: %v", bad.brk.State())
	}
}
