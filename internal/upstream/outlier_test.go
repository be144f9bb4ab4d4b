package upstream

import (
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

func outlierCfg(n int) config.Upstream {
	return config.Upstream{Endpoints: addrs(n), Outlier: &config.Outlier{
		Consecutive5xx: 2, ConsecutiveConnectErrors: 3,
		BaseEjection: config.Duration(10 * time.Second), MaxEjection: config.Duration(25 * time.Second),
		MaxEjectedPercent: 50,
	}}
}

func fail(e *Endpoint, o Outcome, n int) {
	for range n {
		e.Begin()
		e.Done(time.Millisecond, o)
	}
}

func TestEjectionBackoffAndReturn(t *testing.T) {
	rec := &recorder{}
	u, clk := newTest(t, outlierCfg(4), rec)
	e := u.Endpoints()[0]

	fail(e, ConnectError, 2)
	fail(e, Success, 1) // resets
	fail(e, ConnectError, 2)
	if e.Ejected() {
		t.Fatal("ejected although a success broke the run")
	}
	fail(e, ConnectError, 1)
	if !e.Ejected() || !rec.has("svc 10.0.0.1:80 ejected=true") {
		t.Fatal("not ejected after 3 consecutive connect errors")
	}
	for range 50 {
		if mustPick(t, u, 0) == e {
			t.Fatal("ejected endpoint picked")
		}
	}
	// 1st ejection: 10s; 2nd: 20s; 3rd: 30s capped at 25s.
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second} {
		if i > 0 {
			fail(e, Status5xx(503), 2)
			if !e.Ejected() {
				t.Fatalf("ejection %d: not ejected after 2 5xx", i+1)
			}
		}
		clk.Advance(want - time.Millisecond)
		if !e.Ejected() {
			t.Fatalf("ejection %d returned before %v", i+1, want)
		}
		clk.Advance(time.Millisecond)
		if e.Ejected() {
			t.Fatalf("ejection %d not returned after %v", i+1, want)
		}
	}
	if !rec.has("svc 10.0.0.1:80 ejected=false") {
		t.Fatal("observer not told of return")
	}
	// Staying in for MaxEjection resets the multiplier.
	clk.Advance(25 * time.Second)
	fail(e, Reset, 2) // resets and timeouts count as 5xx
	clk.Advance(10 * time.Second)
	if e.Ejected() {
		t.Fatal("multiplier not reset after a long healthy period")
	}
}

func TestEjectionMaxPercent(t *testing.T) {
	u, _ := newTest(t, outlierCfg(5), nil) // 50% of 5 → 2
	eps := u.Endpoints()
	for _, e := range eps {
		fail(e, Timeout, 2)
	}
	n := 0
	for _, e := range eps {
		if e.Ejected() {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d ejected, want 2 (50%% of 5, rounded down)", n)
	}

	// 10% of 2 rounds to 0, but one may always go when there are ≥ 2.
	cfg := outlierCfg(2)
	cfg.Outlier.MaxEjectedPercent = 10
	u2, _ := newTest(t, cfg, nil)
	for _, e := range u2.Endpoints() {
		fail(e, Status5xx(500), 2)
	}
	if a, b := u2.Endpoints()[0].Ejected(), u2.Endpoints()[1].Ejected(); !a || b {
		t.Fatalf("ejected %v %v, want exactly the first", a, b)
	}

	// A single endpoint is never ejected below 100%.
	u3, _ := newTest(t, outlierCfg(1), nil)
	fail(u3.Endpoints()[0], ConnectError, 10)
	if u3.Endpoints()[0].Ejected() {
		t.Fatal("sole endpoint ejected at 50%")
	}
}

// Without an outlier section, 5xx answers never eject, but a connect
// failure ejects the endpoint at once (nothing listens there: a killed
// instance), for DefaultConnectEjection, within max_ejected_percent.
func TestWithoutOutlierConfigAConnectFailureEjects(t *testing.T) {
	u, clk := newTest(t, config.Upstream{Endpoints: addrs(2)}, nil)
	a, b := u.Endpoints()[0], u.Endpoints()[1]
	fail(a, Status5xx(503), 100)
	if a.Ejected() {
		t.Fatal("ejected for 5xx without outlier config")
	}
	fail(a, ConnectError, 1)
	if !a.Ejected() {
		t.Fatal("not ejected after a connect failure")
	}
	fail(b, ConnectError, 1) // the other is the last one in: kept
	if b.Ejected() {
		t.Fatal("both endpoints ejected")
	}
	clk.Advance(DefaultConnectEjection + time.Millisecond)
	if a.Ejected() {
		t.Fatalf("still ejected after %s", DefaultConnectEjection)
	}
}
