package upstream

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

func TestRoundRobinExact(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(3)}, nil)
	counts := map[string]int{}
	var prev *Endpoint
	for i := range 300 {
		e := mustPick(t, u, 0)
		if e == prev {
			t.Fatalf("pick %d: same endpoint twice in a row with equal weights", i)
		}
		prev = e
		counts[e.Addr]++
	}
	for a, n := range counts {
		if n != 100 {
			t.Errorf("%s: %d picks, want 100", a, n)
		}
	}
	if len(counts) != 3 {
		t.Fatalf("counts %v", counts)
	}
}

func TestRoundRobinWeighted(t *testing.T) {
	eps := addrs(2)
	eps[1].Weight = 3
	u, _ := newTest(t, config.Upstream{Endpoints: eps}, nil)
	counts := map[string]int{}
	var seq string
	for range 400 {
		e := mustPick(t, u, 0)
		counts[e.Addr]++
		if len(seq) < 8 {
			seq += map[string]string{"10.0.0.1:80": "a", "10.0.0.2:80": "b"}[e.Addr]
		}
	}
	if counts["10.0.0.1:80"] != 100 || counts["10.0.0.2:80"] != 300 {
		t.Fatalf("counts %v, want 100:300", counts)
	}
	// Smooth: the light endpoint is interleaved, not batched (nginx: b a b b).
	if seq != "babbbabb" {
		t.Fatalf("sequence %q, want smooth babbbabb", seq)
	}
}

func TestLeastRequestPrefersFastEndpoint(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(3), Balancer: config.Balancer{Policy: "least_request"}}, nil)
	eps := u.Endpoints()
	slow := eps[0]
	for _, e := range eps {
		lat := time.Millisecond
		if e == slow {
			lat = 100 * time.Millisecond
		}
		e.Begin()
		e.Done(lat, Success)
	}
	const n = 10000
	got := 0
	for range n {
		if mustPick(t, u, 0) == slow {
			got++
		}
	}
	if got > n/5 { // random would be ~1/3
		t.Fatalf("slow endpoint got %d of %d picks", got, n)
	}
}

func TestLeastRequestPrefersIdleEndpoint(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(3), Balancer: config.Balancer{Policy: "least_request"}}, nil)
	busy := u.Endpoints()[1]
	for range 10 {
		busy.Begin()
	}
	const n = 3000
	got := 0
	for range n {
		if mustPick(t, u, 0) == busy {
			got++
		}
	}
	if got > n/5 {
		t.Fatalf("busy endpoint got %d of %d picks", got, n)
	}
	// An endpoint never seen takes the average: a new one is tried.
	fresh := 0
	for _, e := range u.Endpoints()[:2] {
		e.Begin()
		e.Done(50*time.Millisecond, Success)
	}
	for range n {
		if mustPick(t, u, 0) == u.Endpoints()[2] {
			fresh++
		}
	}
	if fresh == 0 {
		t.Fatal("unseen endpoint never picked")
	}
}

func TestLeastRequestWeighted(t *testing.T) {
	eps := addrs(2)
	eps[1].Weight = 3
	eps = append(eps, config.Endpoint{Address: "10.0.0.3:80", Weight: 1})
	u, _ := newTest(t, config.Upstream{Endpoints: eps, Balancer: config.Balancer{Policy: "least_request"}}, nil)
	s := u.set.Load()
	counts := make([]int, 3)
	for range 40000 {
		counts[s.randIndex()]++
	}
	// weights 1:3:1 → 8000:24000:8000
	if counts[1] < 22500 || counts[1] > 25500 || counts[0] < 7000 || counts[0] > 9000 {
		t.Fatalf("sampling counts %v, want ≈ 8000:24000:8000", counts)
	}
}

func chashUpstream(t testing.TB, n int) *Upstream {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(n), Balancer: config.Balancer{
		Policy: "consistent_hash", HashOn: &config.HashOn{Header: "X-User"}}}, nil)
	return u
}

func TestConsistentHashStickyAndMinimalMovement(t *testing.T) {
	u := chashUpstream(t, 10)
	const keys = 20000
	before := make([]string, keys)
	perEp := map[string]int{}
	for i := range keys {
		k := hashString(fmt.Sprint("user-", i))
		before[i] = mustPick(t, u, k).Addr
		if again := mustPick(t, u, k).Addr; again != before[i] {
			t.Fatalf("key %d not sticky: %s then %s", i, before[i], again)
		}
		perEp[before[i]]++
	}
	for a, c := range perEp {
		if c < keys/20 || c > keys*3/20 { // 10% ± 5%
			t.Errorf("%s holds %d of %d keys: ring unbalanced", a, c, keys)
		}
	}
	// Add an 11th endpoint: only keys moving to it may move, ≈ 1/11 of all.
	var next []Address
	for _, e := range u.Endpoints() {
		next = append(next, Address{Addr: e.Addr, Weight: 1})
	}
	next = append(next, Address{Addr: "10.0.0.11:80", Weight: 1})
	u.setAddresses(next)
	moved := 0
	for i := range keys {
		a := mustPick(t, u, hashString(fmt.Sprint("user-", i))).Addr
		if a != before[i] {
			moved++
			if a != "10.0.0.11:80" {
				t.Fatalf("key %d moved between old endpoints: %s → %s", i, before[i], a)
			}
		}
	}
	if moved > keys*12/100 || moved < keys*5/100 {
		t.Fatalf("%d of %d keys moved, want ≈ 1/11", moved, keys)
	}
}

func TestConsistentHashSkipsUnavailable(t *testing.T) {
	u := chashUpstream(t, 5)
	k := hashString("alice")
	first := mustPick(t, u, k)
	first.healthy.Store(false)
	second := mustPick(t, u, k)
	if second == first {
		t.Fatal("unhealthy endpoint picked")
	}
	if again := mustPick(t, u, k); again != second {
		t.Fatal("fallback is not sticky")
	}
	first.healthy.Store(true)
	if mustPick(t, u, k) != first {
		t.Fatal("key did not return to its endpoint")
	}
	// A retry walks the ring to the next endpoint.
	if mustPick(t, u, k, first) != second {
		t.Fatal("retry did not go to the next endpoint on the ring")
	}
}

func TestHashKey(t *testing.T) {
	mk := func(h config.HashOn) *Upstream {
		u, _ := newTest(t, config.Upstream{Endpoints: addrs(3), Balancer: config.Balancer{Policy: "consistent_hash", HashOn: &h}}, nil)
		return u
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-User", "alice")
	r.AddCookie(&http.Cookie{Name: "sid", Value: "abc"})

	if k, ok := mk(config.HashOn{Header: "X-User"}).HashKey(r, ""); !ok || k != hashString("alice") {
		t.Fatalf("header: %d %v", k, ok)
	}
	if _, ok := mk(config.HashOn{Header: "X-Other"}).HashKey(r, ""); ok {
		t.Fatal("absent header gave ok")
	}
	if k, ok := mk(config.HashOn{Cookie: "sid"}).HashKey(r, ""); !ok || k != hashString("abc") {
		t.Fatalf("cookie: %d %v", k, ok)
	}
	ip := mk(config.HashOn{ClientIP: true})
	if k, ok := ip.HashKey(r, "198.51.100.1"); !ok || k != hashString("198.51.100.1") {
		t.Fatalf("client ip: %d %v", k, ok)
	}
	if k, ok := ip.HashKey(r, ""); !ok || k != hashString("192.0.2.7") {
		t.Fatalf("remote addr: %d %v", k, ok)
	}
	rr, _ := newTest(t, config.Upstream{Endpoints: addrs(3)}, nil)
	if _, ok := rr.HashKey(r, "1.2.3.4"); ok {
		t.Fatal("round_robin gave a hash key")
	}
	// Key 0 (absent): consistent_hash balances round robin.
	seen := map[*Endpoint]bool{}
	for range 3 {
		seen[mustPick(t, ip, 0)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("key 0 did not round robin: %d distinct", len(seen))
	}
}

func TestExcludeOnRetry(t *testing.T) {
	for _, p := range []string{"round_robin", "least_request", "consistent_hash"} {
		t.Run(p, func(t *testing.T) {
			b := config.Balancer{Policy: p}
			if p == "consistent_hash" {
				b.HashOn = &config.HashOn{Header: "X"}
			}
			u, _ := newTest(t, config.Upstream{Endpoints: addrs(3), Balancer: b}, nil)
			for i := range 200 {
				key := hashString(fmt.Sprint(i))
				a := mustPick(t, u, key)
				b := mustPick(t, u, key, a)
				if b == a {
					t.Fatal("retry picked the excluded endpoint")
				}
				c := mustPick(t, u, key, a, b)
				if c == a || c == b {
					t.Fatal("third attempt picked a tried endpoint")
				}
				// All tried: fall back to one of them rather than fail.
				if d := mustPick(t, u, key, a, b, c); d == nil {
					t.Fatal("nil pick")
				}
			}
			// Tried and available beats untried but unhealthy.
			eps := u.Endpoints()
			eps[1].healthy.Store(false)
			eps[2].healthy.Store(false)
			for range 20 {
				if e := mustPick(t, u, 7, eps[0]); e != eps[0] {
					t.Fatalf("picked unavailable %s over the tried available one", e.Addr)
				}
			}
		})
	}
}

func TestAllUnhealthyFallsBackToAll(t *testing.T) {
	for _, p := range []string{"round_robin", "least_request", "consistent_hash"} {
		t.Run(p, func(t *testing.T) {
			b := config.Balancer{Policy: p}
			if p == "consistent_hash" {
				b.HashOn = &config.HashOn{Header: "X"}
			}
			u, _ := newTest(t, config.Upstream{Endpoints: addrs(3), Balancer: b}, nil)
			eps := u.Endpoints()
			for _, e := range eps {
				e.healthy.Store(false)
			}
			seen := map[*Endpoint]bool{}
			for i := range 300 {
				seen[mustPick(t, u, hashString(fmt.Sprint(i)))] = true
			}
			if len(seen) != 3 {
				t.Fatalf("panic mode used %d endpoints, want all 3", len(seen))
			}
			eps[1].healthy.Store(true)
			for i := range 100 {
				if e := mustPick(t, u, uint64(i+1)); e != eps[1] {
					t.Fatalf("picked unhealthy %s while %s is healthy", e.Addr, eps[1].Addr)
				}
			}
		})
	}
}

func TestNoEndpoint(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(1)}, nil)
	u.setAddresses(nil)
	if _, err := u.Pick(0, nil); err != ErrNoEndpoint {
		t.Fatalf("err = %v", err)
	}
}

func TestSetSwapKeepsState(t *testing.T) {
	u, _ := newTest(t, config.Upstream{Endpoints: addrs(2), Outlier: &config.Outlier{ConsecutiveConnectErrors: 1}}, nil)
	a := u.Endpoints()[0]
	a.Begin()
	a.healthy.Store(false)
	u.setAddresses([]Address{{Addr: a.Addr, Weight: 1}, {Addr: "10.0.0.9:80", Weight: 1}})
	eps := u.Endpoints()
	if eps[0] != a || a.InFlight() != 1 || a.Healthy() {
		t.Fatal("surviving endpoint lost its identity or state")
	}
	// A weight change makes a new Endpoint that inherits health and ejection.
	a.healthy.Store(true)
	a.Done(0, ConnectError) // ejects
	if !a.Ejected() {
		t.Fatal("not ejected")
	}
	u.setAddresses([]Address{{Addr: a.Addr, Weight: 5}, {Addr: "10.0.0.9:80", Weight: 1}})
	b := u.Endpoints()[0]
	if b == a || b.Weight != 5 || !b.Ejected() || !b.Healthy() {
		t.Fatalf("reweighted endpoint: same=%v weight=%d ejected=%v", b == a, b.Weight, b.Ejected())
	}
}

func TestOutcome(t *testing.T) {
	if StatusOutcome(404) != Success || StatusOutcome(503) != Status5xx(503) || !Status5xx(502).Is5xx() {
		t.Fatal("status mapping")
	}
	if Status5xx(503).String() != "status_503" || ConnectError.String() != "connect_error" {
		t.Fatal("String")
	}
}

// An endpoint that discovery takes out is reported removed, so that its
// state stops being exported; one that stays is not.
func TestRemovedEndpointIsReported(t *testing.T) {
	rec := &recorder{}
	u, _ := newTest(t, config.Upstream{Name: "u", Endpoints: addrs(2)}, rec)
	eps := u.Endpoints()
	u.setAddresses([]Address{{Addr: eps[0].Addr, Weight: 1}})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var removed []string
	for _, ev := range rec.events {
		if strings.HasSuffix(ev, " removed") {
			removed = append(removed, ev)
		}
	}
	if len(removed) != 1 || !strings.Contains(removed[0], eps[1].Addr) {
		t.Fatalf("removal events %v, want one for %s", removed, eps[1].Addr)
	}
}
