package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

func TestAcquireLimits(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(1), MaxConnections: 2, MaxPending: 1}, nil)
	ctx := context.Background()
	r1, err1 := u.Acquire(ctx)
	r2, err2 := u.Acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	got := make(chan error, 1)
	var r3 func()
	go func() {
		var err error
		r3, err = u.Acquire(ctx)
		got <- err
	}()
	eventually(t, "third request pending", func() bool {
		u.lim.mu.Lock()
		defer u.lim.mu.Unlock()
		return len(u.lim.queue) == 1
	})
	if _, err := u.Acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("fourth: %v, want ErrOverloaded", err)
	}
	r1()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if u.Active() != 2 {
		t.Fatalf("active %d", u.Active())
	}
	// A pending request gives up with its context.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := u.Acquire(cctx)
		got <- err
	}()
	eventually(t, "pending again", func() bool { return u.lim.waiting.Load() == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	r2()
	r3()
	if u.Active() != 0 || u.lim.waiting.Load() != 0 {
		t.Fatalf("active %d waiting %d", u.Active(), u.lim.waiting.Load())
	}
	// The limit scales with the endpoints: 2 × 3.
	u.setAddresses([]Address{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}})
	for i := range 6 {
		if _, err := u.Acquire(ctx); err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
	}
	tctx, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	if _, err := u.Acquire(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("7th: %v", err)
	}
}

func TestAcquireConcurrent(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(1), MaxConnections: 4, MaxPending: 1000}, nil)
	var cur, peak, done atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 200 {
				release, err := u.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				cur.Add(-1)
				release()
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 4 {
		t.Fatalf("peak in flight %d > limit 4", peak.Load())
	}
	if done.Load() != 64*200 || u.Active() != 0 {
		t.Fatalf("done %d active %d", done.Load(), u.Active())
	}
}

func TestRetryBudget(t *testing.T) {
	u, clk := newTest(t, config.Upstream{Endpoints: addrs(1), MaxConnections: 1000,
		RetryBudget: config.RetryBudget{Percent: 20, MinPerSecond: 3}}, nil)
	// No traffic: the floor, 3 per second.
	for i := range 3 {
		if !u.RetryAllowed() {
			t.Fatalf("retry %d denied under the per-second floor", i)
		}
	}
	if u.RetryAllowed() {
		t.Fatal("4th retry in one second allowed")
	}
	for range 3 {
		u.RetryDone()
	}
	if u.RetryAllowed() {
		t.Fatal("floor is per second, not per in-flight")
	}
	clk.Advance(time.Second)
	if !u.RetryAllowed() {
		t.Fatal("floor not renewed after a second")
	}
	u.RetryDone()

	// 100 active requests: 20 retries in flight at most.
	for range 100 {
		if _, err := u.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	allowed := 0
	for range 100 {
		if u.RetryAllowed() {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("%d retries allowed with 100 active at 20%%, want 20", allowed)
	}
	u.RetryDone()
	if !u.RetryAllowed() {
		t.Fatal("a finished retry did not free budget")
	}
	if u.RetryAllowed() {
		t.Fatal("budget exceeded")
	}
}

// A retry of a request that never reached an upstream (its connect failed)
// adds no load to any: it is not starved by the retry budget's floor at low
// concurrency, and still bounded — at most one in flight per admitted
// request, so an outage cannot multiply the connection attempts.
func TestConnectRetriesHaveTheirOwnBound(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(2), MaxConnections: 1000,
		RetryBudget: config.RetryBudget{Percent: 20, MinPerSecond: 3}}, nil)
	// One request at a time (300 req/s with ~1 in flight): every connect
	// failure may be retried, far past the floor of 3 a second.
	if _, err := u.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if !u.ConnectRetryAllowed() {
			t.Fatalf("connect retry %d denied with one request in flight", i)
		}
		u.ConnectRetryDone()
	}
	// The bound: one in flight per admitted request.
	if !u.ConnectRetryAllowed() {
		t.Fatal("first concurrent connect retry denied")
	}
	if u.ConnectRetryAllowed() {
		t.Fatal("a second concurrent connect retry for one admitted request")
	}
	u.ConnectRetryDone()
	// And it leaves the general budget alone.
	for i := range 3 {
		if !u.RetryAllowed() {
			t.Fatalf("general retry %d denied", i)
		}
	}
}

// Requests stuck on an endpoint that leaves the upstream (a hung host the
// cluster declared dead) do not take the surviving endpoints' capacity:
// at 1,000 req/s, ~2,000 requests stuck on a hung instance made every new
// request 503 "upstream overloaded" once the instance was removed
// (BENCH_ONLY=faults, hang at 1,000 req/s).
func TestStuckOnRemovedEndpointFreesCapacity(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(2), MaxConnections: 2, MaxPending: -1}, nil)
	gone := u.Endpoints()[0]
	var stuck []func()
	for range 3 { // three requests whose attempts hang on the first endpoint
		r, ok := u.TryAcquire()
		if !ok {
			t.Fatal("under the limit of 2 × 2")
		}
		gone.Begin()
		stuck = append(stuck, r)
	}
	u.setAddresses([]Address{{Addr: u.Endpoints()[1].Addr}}) // it leaves: the limit is 2 × 1
	var admitted []func()
	for i := range 2 {
		r, ok := u.TryAcquire()
		if !ok {
			t.Fatalf("request %d refused: the survivor's 2 slots are taken by requests stuck on the endpoint that left", i+1)
		}
		admitted = append(admitted, r)
	}
	if _, ok := u.TryAcquire(); ok {
		t.Fatal("admitted past the survivor's capacity")
	}
	// The stuck attempts end (their requests are over): the limit is the
	// survivor's again, still full.
	for _, r := range stuck {
		gone.Done(0, Success)
		r()
	}
	if _, ok := u.TryAcquire(); ok {
		t.Fatal("admitted past the survivor's capacity once the stuck requests ended")
	}
	for _, r := range admitted {
		r()
	}
	if _, ok := u.TryAcquire(); !ok {
		t.Fatal("refused with the survivor idle")
	}
}

// An endpoint with max_connections attempts in flight is passed over while
// another has room: a hung instance cannot take its neighbours' share of
// the upstream's admission (BENCH_ONLY=faults: with one of two instances
// hung at 1,000 req/s, ~2,500 requests piled up on it and 1,309 more got
// 503 "upstream overloaded" before it was ejected). With every endpoint
// full the pick still answers (the upstream's limit decides).
func TestFullEndpointPassedOver(t *testing.T) {
	for _, lb := range []string{"round_robin", "least_request", "consistent_hash"} {
		b := config.Balancer{Policy: lb}
		if lb == "consistent_hash" {
			b.HashOn = &config.HashOn{Header: "X-User"}
		}
		u, _ := newTest(t, config.Upstream{Endpoints: addrs(2), MaxConnections: 2, Balancer: b}, nil)
		hung, other := u.Endpoints()[0], u.Endpoints()[1]
		hung.Begin()
		hung.Begin()
		for i := range 8 {
			if e, err := u.Pick(uint64(i+1), nil); err != nil || e != other {
				t.Fatalf("%s: pick %d: %v, %v; want the endpoint with room", lb, i, e == hung, err)
			}
		}
		other.Begin()
		other.Begin()
		if _, err := u.Pick(0, nil); err != nil {
			t.Fatalf("%s: every endpoint full: %v", lb, err)
		}
	}
}
