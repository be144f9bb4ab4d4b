package node

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// TestTierLimitsAcrossThreeEdges's settings.
const (
	// tierWindow is both tiers' window. The limiter's excess grows with
	// the staleness of peers' counts ÷ the window (a 150 ms flush interval
	// plus gossip delivery here): 1–4.5 % measured at 3 s, too close to
	// the 5 % asserted; 4 s keeps it to about 3 %.
	tierWindow = 4 * time.Second
	// tierMeasured windows are asserted on, out of at most tierMaxWindows
	// after the warm-up; at least one must be measured, or the test fails
	// (it is never skipped: make test runs every test).
	tierMeasured   = 2
	tierMaxWindows = 8
	// tierStallLag: a window in which some request was answered later
	// than this after its scheduled time, or the window before it, is not
	// measured. Such a stall (the test shares a loaded machine, under
	// -race) also delays the gossip of counts, by as much: the error bound
	// the test checks assumes counts a few hundred ms old at most.
	tierStallLag = 750 * time.Millisecond
)

// tierDemand is the offered load for one consumer: 3× its tier's limit per
// window, 80 % on its hot edge and 10 % on each of the two others, each
// stream evenly spaced with a random phase (as internal/bench's rate-limit
// accuracy measurement).
type tierDemand struct {
	tier, consumer string
	limit          int64
	hot            int    // index of the edge with 80 % of the demand
	key            string // the consumer's API key
}

// tierWindowStats is what the edges decided in one limiter window.
type tierWindowStats struct {
	admitted [2][3]int64 // per demand and edge, by the window the edge decided in
	refused  [2]int64    // per demand, by the window the request was sent in
}

// tierRequest is one request: scheduled at at, answered lag later.
type tierRequest struct {
	at       time.Time
	lag      time.Duration
	answered bool
}

// tierRecorder collects the answers of TestTierLimitsAcrossThreeEdges.
type tierRecorder struct {
	mu       sync.Mutex
	windows  map[int64]*tierWindowStats
	requests []*tierRequest
	total    [2]int64 // 200s per demand, all windows
	bad      []string // anything but 200 or 429, first few
	badN     int64
}

func (r *tierRecorder) at(w int64) *tierWindowStats {
	s := r.windows[w]
	if s == nil {
		s = &tierWindowStats{}
		r.windows[w] = s
	}
	return s
}

func (r *tierRecorder) scheduled(at time.Time) *tierRequest {
	q := &tierRequest{at: at}
	r.mu.Lock()
	r.requests = append(r.requests, q)
	r.mu.Unlock()
	return q
}

// answered records the answer to request q of demand d to edge e: code,
// decided in window dw.
func (r *tierRecorder) answered(q *tierRequest, d, e, code int, dw int64, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q.lag, q.answered = time.Since(q.at), true
	switch code {
	case 200:
		r.at(dw).admitted[d][e]++
		r.total[d]++
	case 429:
		r.at(dw).refused[d]++
	default:
		r.badN++
		if len(r.bad) < 5 {
			r.bad = append(r.bad, detail)
		}
	}
}

// calm reports whether every request scheduled in [from, to) was answered
// within tierStallLag, and the largest lag (of those answered).
func (r *tierRecorder) calm(from, to time.Time) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok, n, worst := true, 0, time.Duration(0)
	for _, q := range r.requests {
		if q.at.Before(from) || !q.at.Before(to) {
			continue
		}
		n++
		if !q.answered {
			ok = false
			continue
		}
		worst = max(worst, q.lag)
	}
	return ok && n > 0 && worst <= tierStallLag, worst
}

// tierDecisionWindow is the limiter window in which the edge decided a request
// sent at sent and answered at recv, from the response's RateLimit field:
// its t is the seconds until the decision's window resets, rounded up, so
// the decision was in [end−t s, end−(t−1) s) for that window's end. Only
// the windows between sent and recv are candidates.
func tierDecisionWindow(sent, recv time.Time, rateLimit string, window time.Duration) int64 {
	w := int64(window)
	ws, wr := sent.UnixNano()/w, recv.UnixNano()/w
	if ws == wr {
		return ws
	}
	_, ts, ok := strings.Cut(rateLimit, ";t=")
	if !ok {
		return ws
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ws
	}
	for k := ws; k <= wr; k++ {
		end := (k + 1) * w
		lo, hi := end-t*int64(time.Second), end-(t-1)*int64(time.Second)
		if lo <= recv.UnixNano() && hi > sent.UnixNano() {
			return k
		}
	}
	return ws
}

// tierSleepUntil blocks until at, or until ctx ends (false).
func tierSleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Tier limits hold across the cluster: three edges, a free consumer (100
// per 4 s) and a paid one (200 per 4 s), each offered 3× its limit with
// 80 % of it on one edge (a different edge for each), concurrently. After a
// warm-up, every window admits each consumer its limit within 5 %, and the
// backend sees exactly the admitted requests: refusals are the edges' own
// 429s. Windows in which the machine visibly stalled are not measured (see
// tierStallLag); the test fails if none is left.
// (The limits are far below internal/bench's: under -race every request
// costs about a millisecond of CPU, and a few hundred a second is what a loaded
// two-core machine can carry.)
func TestTierLimitsAcrossThreeEdges(t *testing.T) {
	if testing.Short() {
		t.Skip("windows of 4 s; skipped with -short")
	}
	demands := []*tierDemand{
		{tier: "free", consumer: "alice", limit: 100, hot: 0},
		{tier: "paid", consumer: "bob", limit: 200, hot: 1},
	}

	// The backend counts what reaches it per consumer.
	var (
		backendMu sync.Mutex
		backend   = map[string]int64{}
	)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendMu.Lock()
		backend[r.Header.Get("X-Meshgate-Consumer")]++
		backendMu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(b.Close)

	var consumers, tiers strings.Builder
	for _, d := range demands {
		key, hash, err := apikey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		d.key = key
		fmt.Fprintf(&consumers, "  - {name: %s, tier: %s, api_keys: [%q]}\n", d.consumer, d.tier, hash)
		fmt.Fprintf(&tiers, "  - {name: %s, limits: [{requests: %d, window: %s}]}\n", d.tier, d.limit, tierWindow)
	}
	// Gossip every 50 ms for fresh counts; failure detection at its
	// default pace, so that a loaded machine does not make the edges
	// suspect each other (an edge without peers decides alone).
	cluster := func(join string) string {
		j := ""
		if join != "" {
			j = fmt.Sprintf(", join: [%q]", join)
		}
		return fmt.Sprintf("cluster: {bind: \"127.0.0.1:0\", gossip_interval: 50ms, probe_interval: 1s, push_pull_interval: 2s%s}\n", j)
	}
	cfg := fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth:
  api_keys: [{name: key, header: X-Api-Key}]
consumers:
%stiers:
%sroutes:
  - name: orders
    match: {path: {prefix: /orders}}
    upstream: b
    auth: {methods: [key], rate_limit_headers: true}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, consumers.String(), tiers.String(), addr(b))

	ca := pkitest.NewCA(t, td)
	var edges []*edge
	for i, name := range []string{"a", "b", "c"} {
		join := ""
		if i > 0 {
			join = edges[0].node.Cluster().Addr()
		}
		edges = append(edges, startEdge(t, identityFiles(t, ca, ca.ID(t, "/edge-"+name))+cluster(join)+cfg))
	}
	eventually(t, 15*time.Second, "the three edges see each other", func() bool {
		for _, e := range edges {
			if e.node.Cluster().Peers() != 2 {
				return false
			}
		}
		return true
	})

	tr := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// The first window is a warm-up: with no previous window the sliding
	// estimate admits the whole limit at once, a burst that says nothing
	// about the cluster. The demand starts now; the warm-up ends on the
	// first boundary at least half a window away (3× demand spends the
	// limit in a third of one, so the first measured window starts, like
	// every later one, with a spent previous window).
	w := int64(tierWindow)
	boundary := func(k int64) time.Time { return time.Unix(0, k*w) }
	start := time.Now()
	first := start.UnixNano()/w + 1
	if boundary(first).Sub(start) < tierWindow/2 {
		first++
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rec := &tierRecorder{windows: map[int64]*tierWindowStats{}}
	var inflight, streams sync.WaitGroup
	var progress []*atomic.Int64    // per stream: the scheduled time of its next request
	sem := make(chan struct{}, 256) // bounds concurrent requests on a slow machine
	for di, d := range demands {
		perSec := 3 * float64(d.limit) / tierWindow.Seconds()
		for ei, e := range edges {
			share := 0.1
			if ei == d.hot {
				share = 0.8
			}
			url := e.url("public") + "/orders"
			gap := time.Duration(float64(time.Second) / (perSec * share))
			next := new(atomic.Int64)
			progress = append(progress, next)
			streams.Add(1)
			go func() {
				defer streams.Done()
				for at := start.Add(rand.N(gap)); ; at = at.Add(gap) {
					next.Store(at.UnixNano())
					if !tierSleepUntil(ctx, at) {
						return
					}
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						return
					}
					q := rec.scheduled(at)
					inflight.Add(1)
					go func() {
						defer func() { <-sem; inflight.Done() }()
						req, _ := http.NewRequest("GET", url, nil)
						req.Header.Set("X-Api-Key", d.key)
						sent := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							rec.answered(q, di, ei, 0, 0, err.Error())
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						recv := time.Now()
						dw := sent.UnixNano() / w // refusals: where sent
						if resp.StatusCode == 200 {
							dw = tierDecisionWindow(sent, recv, resp.Header.Get("Ratelimit"), tierWindow)
						}
						rec.answered(q, di, ei, resp.StatusCode, dw, fmt.Sprintf("%d from edge %d", resp.StatusCode, ei))
					}()
				}
			}()
		}
	}

	// Each window is judged once every request scheduled in it should
	// have been answered. It is measured if no request scheduled in it or
	// in the window before it (the second half of the warm-up, whose start
	// may be slow) was answered late; until tierMeasured windows are or
	// tierMaxWindows have gone.
	var judged, measured []int64
	lags := map[int64]time.Duration{}
	for k := first; k < first+tierMaxWindows && len(measured) < tierMeasured; k++ {
		if !tierSleepUntil(ctx, boundary(k+1).Add(tierStallLag)) {
			break
		}
		onTime := true
		for _, p := range progress {
			if p.Load() < boundary(k+1).UnixNano() {
				onTime = false // a stream has not sent all of window k's requests yet
			}
		}
		from := boundary(k - 1)
		if k == first {
			from = boundary(k).Add(-tierWindow / 2)
		}
		calm, _ := rec.calm(from, boundary(k+1))
		_, lags[k] = rec.calm(boundary(k), boundary(k+1))
		judged = append(judged, k)
		if onTime && calm {
			measured = append(measured, k)
		}
	}
	cancel()
	streams.Wait()
	inflight.Wait()
	t.Logf("demand from %s, warm-up until %s, done after %.1fs", start.Format("15:04:05.000"),
		boundary(first).Format("15:04:05.000"), time.Since(start).Seconds())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	backendMu.Lock()
	defer backendMu.Unlock()
	if rec.badN > 0 {
		t.Errorf("%d answers neither 200 nor 429, such as %q", rec.badN, rec.bad)
	}
	for di, d := range demands {
		if got := backend[d.consumer]; got != rec.total[di] {
			t.Errorf("%s: the backend saw %d requests, the edges admitted %d: refused requests must never reach it",
				d.consumer, got, rec.total[di])
		}
	}
	if got := backend[""]; got != 0 {
		t.Errorf("the backend saw %d requests without a consumer", got)
	}
	for _, k := range judged {
		s := rec.at(k)
		ok := slices.Contains(measured, k)
		var line strings.Builder
		fmt.Fprintf(&line, "window %d: worst lag %v", k-first+1, lags[k].Round(time.Millisecond))
		if !ok {
			line.WriteString(" (or a stall before it: not measured)")
		}
		for di, d := range demands {
			a := s.admitted[di]
			adm := a[0] + a[1] + a[2]
			ratio := float64(adm) / float64(d.limit)
			fmt.Fprintf(&line, "; %s: admitted %d/%d = %.3f (edges %d/%d/%d), refused %d",
				d.tier, adm, d.limit, ratio, a[0], a[1], a[2], s.refused[di])
			if !ok {
				continue
			}
			if adm+s.refused[di] < 2*d.limit {
				t.Errorf("%s: window %d: only %d requests offered for a limit of %d: the demand was not generated",
					d.consumer, k-first+1, adm+s.refused[di], d.limit)
			}
			if ratio < 0.95 || ratio > 1.05 {
				t.Errorf("%s (tier %s): window %d admitted %d for a limit of %d: ratio %.3f outside 0.95–1.05",
					d.consumer, d.tier, k-first+1, adm, d.limit, ratio)
			}
		}
		t.Log(line.String())
	}
	if len(measured) == 0 {
		t.Fatalf("none of %d windows without a stall: this machine is too loaded to measure the limiter's accuracy",
			len(judged))
	}
}
