package dataplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/ratelimit"
)

// tierT0 is a multiple of every window the tests use, so that each test
// starts at the beginning of its windows with nothing counted before.
var tierT0 = time.Unix(1_700_000_040, 0)

func win(d time.Duration) config.Duration { return config.Duration(d) }

var testTiers = []config.Tier{
	{Name: "free", Limits: []config.TierLimit{{Requests: 100, Window: win(time.Minute)}}},
	{Name: "paid", Limits: []config.TierLimit{{Requests: 1000, Window: win(time.Minute)}}},
	{Name: config.TierAnonymous, Limits: []config.TierLimit{{Requests: 2, Window: win(time.Minute)}}},
	// burst: listed long window first; decided short window first.
	{Name: "burst", Limits: []config.TierLimit{{Requests: 100, Window: win(time.Minute)}, {Requests: 5, Window: win(time.Second)}}},
	// quota: the long window is the tight one.
	{Name: "quota", Limits: []config.TierLimit{{Requests: 10, Window: win(time.Second)}, {Requests: 3, Window: win(time.Minute)}}, OnIsolation: "closed"},
}

// fakeAuth is an auth stage that believes the test's headers.
func fakeAuth() policy.Builder {
	return policy.Of("auth", func(r *config.Route) *config.RouteAuth { return r.Auth },
		func(_ *config.RouteAuth, _ policy.Env, next http.Handler) (http.Handler, error) {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				x := exchange.From(r.Context())
				x.Consumer, x.Tier = r.Header.Get("X-Test-Consumer"), r.Header.Get("X-Test-Tier")
				next.ServeHTTP(w, r)
			}), nil
		})
}

type tierHarness struct {
	t        *testing.T
	clk      *clock.Fake
	l        *ratelimit.Limiter
	h        http.Handler
	upstream atomic.Int64
}

func newTierHarness(t *testing.T, tiers []config.Tier, auth *config.RouteAuth) *tierHarness {
	t.Helper()
	th := &tierHarness{t: t, clk: clock.NewFake(tierT0)}
	var err error
	if th.l, err = ratelimit.New(ratelimit.Options{Node: "n1", Clock: th.clk}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Tiers: tiers}
	if err := th.l.SetPolicies(RateLimitPolicies(cfg)); err != nil {
		t.Fatal(err)
	}
	th.h = th.route("orders", tiers, auth)
	return th
}

// route is the handler chain of a route with auth on th's limiter.
func (th *tierHarness) route(name string, tiers []config.Tier, auth *config.RouteAuth) http.Handler {
	th.t.Helper()
	// Given out of order: Sorted puts auth first.
	builders, err := policy.Sorted([]policy.Builder{TierLimit(th.l, tiers), fakeAuth()})
	if err != nil {
		th.t.Fatal(err)
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		th.upstream.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	rt := &config.Route{Name: name, Upstream: name, Auth: auth}
	h, err := policy.Chain(builders, rt, policy.Env{Route: name}, upstream)
	if err != nil {
		th.t.Fatal(err)
	}
	return h
}

func (th *tierHarness) do(consumer, tier, ip string) (*httptest.ResponseRecorder, *exchange.Exchange) {
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("X-Test-Consumer", consumer)
	req.Header.Set("X-Test-Tier", tier)
	x := &exchange.Exchange{ClientIP: ip}
	req = req.WithContext(exchange.With(req.Context(), x))
	rec := httptest.NewRecorder()
	th.h.ServeHTTP(rec, req)
	return rec, x
}

// admitN sends n requests that must all be admitted.
func (th *tierHarness) admitN(n int, consumer, tier, ip string) {
	th.t.Helper()
	for i := range n {
		if rec, _ := th.do(consumer, tier, ip); rec.Code != http.StatusOK {
			th.t.Fatalf("%s/%s/%s request %d: status %d, want 200 (%s)", consumer, tier, ip, i+1, rec.Code, rec.Body)
		}
	}
}

func (th *tierHarness) refused(consumer, tier, ip string) (*httptest.ResponseRecorder, *exchange.Exchange) {
	th.t.Helper()
	before := th.upstream.Load()
	rec, x := th.do(consumer, tier, ip)
	if rec.Code != http.StatusTooManyRequests {
		th.t.Fatalf("%s/%s/%s: status %d, want 429", consumer, tier, ip, rec.Code)
	}
	if th.upstream.Load() != before {
		th.t.Fatalf("a refused request reached the upstream")
	}
	if x.Error != exchange.TierLimited {
		th.t.Fatalf("exchange error %v, want tier_limited", x.Error)
	}
	return rec, x
}

// sfMember is one member of a structured-field List of Strings with
// Integer parameters, all these headers hold.
type sfMember struct {
	id     string
	params map[string]int64
}

func parseSFList(t *testing.T, v string) []sfMember {
	t.Helper()
	var out []sfMember
	for raw := range strings.SplitSeq(v, ",") {
		raw = strings.TrimLeft(raw, " \t")
		if len(out) > 0 && raw == "" {
			t.Fatalf("%q: empty list member", v)
		}
		parts := strings.Split(raw, ";")
		id, err := strconv.Unquote(parts[0])
		if err != nil || !strings.HasPrefix(parts[0], `"`) {
			t.Fatalf("%q: member %q is not a String", v, parts[0])
		}
		m := sfMember{id: id, params: map[string]int64{}}
		for _, p := range parts[1:] {
			k, val, ok := strings.Cut(p, "=")
			n, err := strconv.ParseInt(val, 10, 64)
			if !ok || err != nil || n < 0 {
				t.Fatalf("%q: parameter %q is not a non-negative Integer", v, p)
			}
			m.params[k] = n
		}
		out = append(out, m)
	}
	return out
}

// checkHeaders checks RateLimit-Policy against want (id → q, w) and returns
// the RateLimit member.
func checkHeaders(t *testing.T, h http.Header, want ...sfMember) sfMember {
	t.Helper()
	if len(h.Values("RateLimit-Policy")) != 1 || len(h.Values("RateLimit")) != 1 {
		t.Fatalf("want one RateLimit-Policy and one RateLimit field, got %q and %q", h.Values("RateLimit-Policy"), h.Values("RateLimit"))
	}
	pol := parseSFList(t, h.Get("RateLimit-Policy"))
	if len(pol) != len(want) {
		t.Fatalf("RateLimit-Policy %q: want %d members", h.Get("RateLimit-Policy"), len(want))
	}
	for i, m := range pol {
		if m.id != want[i].id || len(m.params) != 2 || m.params["q"] != want[i].params["q"] || m.params["w"] != want[i].params["w"] {
			t.Fatalf("RateLimit-Policy %q: member %d is %+v, want %+v (no pk)", h.Get("RateLimit-Policy"), i, m, want[i])
		}
	}
	rl := parseSFList(t, h.Get("RateLimit"))
	if len(rl) != 1 || len(rl[0].params) != 2 {
		t.Fatalf("RateLimit %q: want one member with r and t", h.Get("RateLimit"))
	}
	if _, ok := rl[0].params["r"]; !ok {
		t.Fatalf("RateLimit %q: no r", h.Get("RateLimit"))
	}
	if _, ok := rl[0].params["t"]; !ok {
		t.Fatalf("RateLimit %q: no t", h.Get("RateLimit"))
	}
	return rl[0]
}

func pol(id string, q, w int64) sfMember {
	return sfMember{id: id, params: map[string]int64{"q": q, "w": w}}
}

func TestTierLimitFreeConsumer(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	th.admitN(100, "alice", "free", "10.0.0.1")
	rec, x := th.refused("alice", "free", "10.0.0.1")
	if th.upstream.Load() != 100 {
		t.Fatalf("upstream saw %d requests, want 100", th.upstream.Load())
	}
	h := rec.Header()
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	// The window is full and the previous one empty: the estimate admits
	// again 0.6s into the next window (100×(1-f)+1 ≤ 100).
	if err != nil || retry != 61 {
		t.Fatalf("Retry-After %q, want 61", h.Get("Retry-After"))
	}
	rl := checkHeaders(t, h, pol("free-1m", 100, 60))
	if rl.id != "free-1m" || rl.params["r"] != 0 || rl.params["t"] != 60 {
		t.Fatalf("RateLimit %q, want \"free-1m\";r=0;t=60", h.Get("RateLimit"))
	}
	want := "rate limited: tier free allows 100 requests per 1m"
	var body struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Status != 429 || body.Error != want || x.Reason != want {
		t.Fatalf("body %s (reason %q), want error %q", rec.Body, x.Reason, want)
	}
	if want != exchange.TierLimited.Text {
		t.Fatalf("reason %q differs from the error table's example %q", want, exchange.TierLimited.Text)
	}

	// Still refused just before Retry-After, admitted at it.
	th.clk.Advance(time.Duration(retry)*time.Second - 500*time.Millisecond)
	th.refused("alice", "free", "10.0.0.1")
	th.clk.Advance(500 * time.Millisecond)
	th.admitN(1, "alice", "free", "10.0.0.1")
}

func TestTierLimitCountsPerConsumer(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	th.admitN(100, "alice", "free", "10.0.0.1")
	th.refused("alice", "free", "10.0.0.1")
	// Same tier, another consumer, even from alice's address.
	th.admitN(100, "bob", "free", "10.0.0.1")
	th.refused("bob", "free", "10.0.0.1")
	// Another tier is not spent by free's counts.
	th.admitN(150, "carol", "paid", "10.0.0.1")
	// A consumer whose tier changed to paid has a budget of its own there.
	th.admitN(1, "alice", "paid", "10.0.0.1")
	th.refused("alice", "free", "10.0.0.1")
}

func TestTierLimitSharedAcrossRoutes(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	th.admitN(60, "alice", "free", "10.0.0.1")
	th.h = th.route("users", testTiers, &config.RouteAuth{RateLimitHeaders: true})
	th.admitN(40, "alice", "free", "10.0.0.1")
	th.refused("alice", "free", "10.0.0.1")
}

func TestTierLimitAnonymousPerIP(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{Anonymous: true})
	const anon, tier = config.ConsumerAnonymous, config.TierAnonymous
	th.admitN(2, anon, tier, "192.0.2.1")
	rec, _ := th.refused(anon, tier, "192.0.2.1")
	rl := checkHeaders(t, rec.Header(), pol("anonymous-1m", 2, 60))
	if rl.params["r"] != 0 {
		t.Fatalf("RateLimit %q: want r=0", rec.Header().Get("RateLimit"))
	}
	th.admitN(2, anon, tier, "192.0.2.2")
	th.admitN(2, anon, tier, "2001:db8::1")
	th.refused(anon, tier, "2001:db8::1")
	// A consumer named like the address is not counted with its anonymous
	// callers.
	th.admitN(2, "192.0.2.1", config.TierAnonymous, "192.0.2.1")
}

func TestTierLimitTwoWindows(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	burst := []sfMember{pol("burst-1s", 5, 1), pol("burst-1m", 100, 60)}

	// The 1s window is the tighter: it refuses the 6th request.
	th.admitN(5, "dave", "burst", "10.0.0.1")
	for range 10 {
		rec, x := th.refused("dave", "burst", "10.0.0.1")
		rl := checkHeaders(t, rec.Header(), burst...)
		if rl.id != "burst-1s" || rl.params["r"] != 0 || rl.params["t"] != 1 || rec.Header().Get("Retry-After") != "2" {
			// Retry-After: 5×(1-f)+1 ≤ 5 from f = 0.2 into the next second.
			t.Fatalf("RateLimit %q, Retry-After %q: want \"burst-1s\";r=0;t=1 and 2", rec.Header().Get("RateLimit"), rec.Header().Get("Retry-After"))
		}
		if x.Reason != "rate limited: tier burst allows 5 requests per 1s" {
			t.Fatalf("reason %q", x.Reason)
		}
	}
	// Refusals by the short window cost nothing in the long one.
	if d := th.l.Policy("tier:burst:1m0s").Decide("dave", 0); d.Remaining != 95 {
		t.Fatalf("1m window has %d left, want 95", d.Remaining)
	}

	// The 1m window is the tighter: the 4th request is refused by it, and
	// has cost one count in the 1s window, decided first.
	th.admitN(3, "erin", "quota", "10.0.0.1")
	rec, x := th.refused("erin", "quota", "10.0.0.1")
	rl := checkHeaders(t, rec.Header(), pol("quota-1s", 10, 1), pol("quota-1m", 3, 60))
	if rl.id != "quota-1m" || rl.params["r"] != 0 || rl.params["t"] != 60 {
		t.Fatalf("RateLimit %q: want \"quota-1m\";r=0;t=60", rec.Header().Get("RateLimit"))
	}
	if x.Reason != "rate limited: tier quota allows 3 requests per 1m" {
		t.Fatalf("reason %q", x.Reason)
	}
	if d := th.l.Policy("tier:quota:1s").Decide("erin", 0); d.Remaining != 6 {
		t.Fatalf("1s window has %d left, want 6", d.Remaining)
	}
}

func TestTierLimitOff(t *testing.T) {
	off := false
	th := newTierHarness(t, testTiers, &config.RouteAuth{TierLimits: &off, RateLimitHeaders: true})
	th.admitN(150, "alice", "free", "10.0.0.1")
	rec, _ := th.do("alice", "free", "10.0.0.1")
	if rec.Header().Get("RateLimit") != "" || rec.Header().Get("RateLimit-Policy") != "" {
		t.Fatalf("a route without tier limits sent %q", rec.Header())
	}
	// And nothing was counted: a route with limits still admits 100.
	th.h = th.route("users", testTiers, &config.RouteAuth{})
	th.admitN(100, "alice", "free", "10.0.0.1")
	th.refused("alice", "free", "10.0.0.1")
}

func TestTierLimitUnknownTierPasses(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	th.admitN(150, "frank", "", "10.0.0.1")
	th.admitN(150, "frank", "gold", "10.0.0.1")
	// No auth section at all: no stage.
	h, err := TierLimit(th.l, testTiers).Build(&config.Route{Name: "open"}, policy.Env{Route: "open"}, http.NotFoundHandler())
	if _, ok := h.(*tierStage); ok || err != nil {
		t.Fatalf("route without auth got a tier stage (%v)", err)
	}
	// No tiers configured: no stage either.
	h, err = TierLimit(th.l, nil).Build(&config.Route{Name: "orders", Auth: &config.RouteAuth{}}, policy.Env{Route: "orders"}, http.NotFoundHandler())
	if _, ok := h.(*tierStage); ok || err != nil {
		t.Fatalf("config without tiers got a tier stage (%v)", err)
	}
}

func TestTierLimitHeadersOnAdmitted(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{RateLimitHeaders: true})
	for i := range 100 {
		rec, _ := th.do("alice", "free", "10.0.0.1")
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, rec.Code)
		}
		if rec.Header().Get("Retry-After") != "" {
			t.Fatalf("admitted response with Retry-After")
		}
		rl := checkHeaders(t, rec.Header(), pol("free-1m", 100, 60))
		if rl.id != "free-1m" || rl.params["r"] != int64(99-i) || rl.params["t"] != 60 {
			t.Fatalf("request %d: RateLimit %q, want r=%d;t=60", i+1, rec.Header().Get("RateLimit"), 99-i)
		}
	}
	th.refused("alice", "free", "10.0.0.1")

	// Two windows: the one with the least left is reported, and t follows
	// the clock.
	th.clk.Advance(1500 * time.Millisecond)
	rec, _ := th.do("dave", "burst", "10.0.0.1")
	rl := checkHeaders(t, rec.Header(), pol("burst-1s", 5, 1), pol("burst-1m", 100, 60))
	if rl.id != "burst-1s" || rl.params["r"] != 4 || rl.params["t"] != 1 {
		t.Fatalf("RateLimit %q: want \"burst-1s\";r=4;t=1", rec.Header().Get("RateLimit"))
	}
	for range 2 {
		th.do("erin", "quota", "10.0.0.1")
	}
	rec, _ = th.do("erin", "quota", "10.0.0.1")
	rl = checkHeaders(t, rec.Header(), pol("quota-1s", 10, 1), pol("quota-1m", 3, 60))
	if rl.id != "quota-1m" || rl.params["r"] != 0 || rl.params["t"] != 59 {
		t.Fatalf("RateLimit %q: want \"quota-1m\";r=0;t=59", rec.Header().Get("RateLimit"))
	}

	// Without rate_limit_headers admitted responses carry none.
	quiet := newTierHarness(t, testTiers, &config.RouteAuth{})
	rec, _ = quiet.do("alice", "free", "10.0.0.1")
	if rec.Code != http.StatusOK || rec.Header().Get("RateLimit") != "" || rec.Header().Get("RateLimit-Policy") != "" {
		t.Fatalf("admitted response without rate_limit_headers: %d %q", rec.Code, rec.Header())
	}
}

func TestTierLimitConcurrent(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 40 {
				switch rec, _ := th.do("alice", "free", "10.0.0.1"); rec.Code {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 || refused.Load() != 220 || th.upstream.Load() != 100 {
		t.Fatalf("admitted %d, refused %d, upstream %d: want 100, 220, 100", ok.Load(), refused.Load(), th.upstream.Load())
	}
}

func TestTierLimitGRPCRefusal(t *testing.T) {
	th := newTierHarness(t, testTiers, &config.RouteAuth{})
	th.admitN(2, config.ConsumerAnonymous, config.TierAnonymous, "192.0.2.9")
	req := httptest.NewRequest(http.MethodPost, "/orders", nil)
	req.Header.Set("X-Test-Consumer", config.ConsumerAnonymous)
	req.Header.Set("X-Test-Tier", config.TierAnonymous)
	x := &exchange.Exchange{ClientIP: "192.0.2.9", GRPC: true}
	rec := httptest.NewRecorder()
	th.h.ServeHTTP(rec, req.WithContext(exchange.With(req.Context(), x)))
	if rec.Header().Get("Grpc-Status") != "8" || rec.Header().Get("Retry-After") == "" || x.Status != http.StatusTooManyRequests {
		t.Fatalf("gRPC refusal: %d %q", rec.Code, rec.Header())
	}
}

func TestTierLimitMissingPolicy(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Options{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = TierLimit(l, testTiers).Build(&config.Route{Name: "orders", Auth: &config.RouteAuth{}}, policy.Env{Route: "orders"}, http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), `"tier:`) {
		t.Fatalf("build without the tier policies: %v", err)
	}
}

func TestRateLimitPoliciesTiers(t *testing.T) {
	long1 := strings.Repeat("t", 300) + "a"
	long2 := strings.Repeat("t", 300) + "b"
	cfg := &config.Config{
		Routes: []config.Route{{Name: "orders", RateLimit: &config.RateLimit{Requests: 5, Window: win(time.Second)}}},
		Tiers: append(testTiers[:len(testTiers):len(testTiers)],
			config.Tier{Name: long1, Limits: []config.TierLimit{{Requests: 1, Window: win(24 * time.Hour)}}},
			config.Tier{Name: long2, Limits: []config.TierLimit{{Requests: 1, Window: win(24 * time.Hour)}}},
		),
	}
	got := map[string]ratelimit.PolicyConfig{}
	for _, p := range RateLimitPolicies(cfg) {
		got[p.Name] = p
	}
	for _, w := range []ratelimit.PolicyConfig{
		{Name: "orders", Limit: 5, Window: time.Second},
		{Name: "tier:free:1m0s", Limit: 100, Window: time.Minute},
		{Name: "tier:paid:1m0s", Limit: 1000, Window: time.Minute},
		{Name: "tier:anonymous:1m0s", Limit: 2, Window: time.Minute},
		{Name: "tier:burst:1m0s", Limit: 100, Window: time.Minute},
		{Name: "tier:burst:1s", Limit: 5, Window: time.Second},
		{Name: "tier:quota:1s", Limit: 10, Window: time.Second, Isolation: ratelimit.Closed},
		{Name: "tier:quota:1m0s", Limit: 3, Window: time.Minute, Isolation: ratelimit.Closed},
	} {
		if got[w.Name] != w {
			t.Errorf("policy %q: %+v, want %+v", w.Name, got[w.Name], w)
		}
	}
	if len(got) != 10 {
		t.Errorf("%d policies, want 10: %v", len(got), got)
	}
	// Over-long names are shortened, stay apart and pass the limiter.
	n1, n2 := tierPolicyName(long1, 24*time.Hour), tierPolicyName(long2, 24*time.Hour)
	if len(n1) != 255 || len(n2) != 255 || n1 == n2 || !strings.HasPrefix(n1, "tier:ttt") || !strings.HasSuffix(n1, ":24h0m0s") {
		t.Errorf("long names %q, %q", n1, n2)
	}
	if n1 != tierPolicyName(long1, 24*time.Hour) {
		t.Errorf("shortened name is not deterministic")
	}
	l, err := ratelimit.New(ratelimit.Options{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetPolicies(RateLimitPolicies(cfg)); err != nil {
		t.Fatal(err)
	}
	if _, err := TierLimit(l, cfg.Tiers).Build(&config.Route{Name: "orders", Auth: &config.RouteAuth{}}, policy.Env{Route: "orders"}, http.NotFoundHandler()); err != nil {
		t.Fatal(err)
	}
}

func TestSFString(t *testing.T) {
	for in, want := range map[string]string{
		"free-1m": `"free-1m"`,
		`a"b\c`:   `"a\"b\\c"`,
		"é\n":     `"___"`,
	} {
		if got := sfString(in); got != want {
			t.Errorf("sfString(%q) = %s, want %s", in, got, want)
		}
	}
}

// benchWriter is a ResponseWriter that keeps nothing, reusing its header
// map.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

func BenchmarkTierLimitAdmitted(b *testing.B) {
	for _, headers := range []bool{false, true} {
		b.Run(fmt.Sprintf("headers=%v", headers), func(b *testing.B) {
			l, err := ratelimit.New(ratelimit.Options{Node: "n1"})
			if err != nil {
				b.Fatal(err)
			}
			tiers := []config.Tier{{Name: "free", Limits: []config.TierLimit{
				{Requests: 1 << 39, Window: win(time.Minute)}, {Requests: 1 << 39, Window: win(time.Hour)},
			}}}
			if err := l.SetPolicies(RateLimitPolicies(&config.Config{Tiers: tiers})); err != nil {
				b.Fatal(err)
			}
			next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			h, err := TierLimit(l, tiers).Build(&config.Route{Name: "orders", Auth: &config.RouteAuth{RateLimitHeaders: headers}}, policy.Env{Route: "orders"}, next)
			if err != nil {
				b.Fatal(err)
			}
			x := &exchange.Exchange{ClientIP: "10.0.0.1", Consumer: "alice", Tier: "free"}
			req := httptest.NewRequest(http.MethodGet, "/orders", nil)
			req = req.WithContext(exchange.With(req.Context(), x))
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}
