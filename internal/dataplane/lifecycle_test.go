package dataplane

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/upstream"
)

// worker is a policy resource with a goroutine, like a JWKS refresher.
type worker struct {
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
}

func startWorker(opened *atomic.Int64) *worker {
	w := &worker{stop: make(chan struct{}), done: make(chan struct{})}
	opened.Add(1)
	go func() {
		defer close(w.done)
		<-w.stop
	}()
	return w
}

func (w *worker) Close() error {
	if w.closed.Swap(true) {
		panic("closed twice")
	}
	close(w.stop)
	<-w.done
	return nil
}

// workerPolicy acquires a worker keyed by the route's name and *gen: a new
// generation opens new workers, as a changed config would.
func workerPolicy(gen *atomic.Int64, opened *atomic.Int64) policy.Builder {
	section := func(r *config.Route) *config.Route { return r }
	return policy.Of("auth", section, func(rt *config.Route, env policy.Env, next http.Handler) (http.Handler, error) {
		key := fmt.Sprintf("worker:%s:%d", env.Route, gen.Load())
		w, err := policy.Acquire(env.Scope, key, func() (*worker, error) { return startWorker(opened), nil })
		if err != nil {
			return nil, err
		}
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if w.closed.Load() {
				// A stage must never run on a released resource.
				rw.WriteHeader(http.StatusTeapot)
				return
			}
			exchange.From(r.Context()).Consumer = "c"
			next.ServeHTTP(rw, r)
		}), nil
	})
}

// Across 50 reloads, each opening new policy resources while requests keep
// coming, every resource is closed exactly once, only after the last request
// on its snapshot, and no goroutine is left behind.
func TestPolicyResourcesCloseWithTheirSnapshot(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer backend.Close()
	ucfg := config.Upstream{Name: "b", Endpoints: []config.Endpoint{{Address: backend.Listener.Addr().String()}}}
	up, err := upstream.New(ucfg, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cluster := proxy.NewCluster(ucfg, up, nil)
	defer cluster.Close()
	cfg := &config.Config{
		Listeners: []config.Listener{{Name: "public", Address: "127.0.0.1:0"}},
		Routes:    []config.Route{{Name: "r", Upstream: "b", Match: config.Match{Path: &config.Path{Prefix: "/"}}}},
	}
	before := runtime.NumGoroutine()

	var gen, opened atomic.Int64
	m := telemetry.NewMetrics()
	shared := policy.NewShared()
	deps := Deps{Metrics: m, Clusters: map[string]*proxy.Cluster{"b": cluster}, Shared: shared,
		Policies: []policy.Builder{workerPolicy(&gen, &opened)}}
	first, err := Build(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	cur := &atomic.Pointer[Snapshot]{}
	cur.Store(first)
	e := NewEntry("public", EntryOptions{Scheme: "http", First: first, Current: cur, Metrics: m, IDs: proxy.NewRequestIDs()})

	stop := make(chan struct{})
	var bad atomic.Int64
	var served atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
				if rec.Code != http.StatusOK {
					bad.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	for range 50 {
		gen.Add(1)
		snap, err := Build(cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		cur.Swap(snap).Retire()
		for n := served.Load(); served.Load() < n+5; {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	cur.Swap(nil).Retire()
	e.Close()

	if bad.Load() != 0 {
		t.Errorf("%d of %d requests failed across the reloads (418: a stage ran on a closed resource)", bad.Load(), served.Load())
	}
	if opened.Load() != 51 || shared.Len() != 0 {
		t.Errorf("opened %d resources (want 51), %d still held", opened.Load(), shared.Len())
	}
	cluster.CloseIdle()
	backend.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after 50 reloads, %d before", n, before)
	}
}

// A reload that keeps a policy's config keeps its resource: nothing is
// reopened, and the resource lives until the last snapshot using it retires.
func TestUnchangedPolicyResourceSurvivesReload(t *testing.T) {
	var gen, opened atomic.Int64
	m := telemetry.NewMetrics()
	ucfg := config.Upstream{Name: "b", Endpoints: []config.Endpoint{{Address: "127.0.0.1:1"}}}
	up, _ := upstream.New(ucfg, upstream.Options{})
	cluster := proxy.NewCluster(ucfg, up, nil)
	defer cluster.Close()
	cfg := &config.Config{
		Listeners: []config.Listener{{Name: "public", Address: "127.0.0.1:0"}},
		Routes:    []config.Route{{Name: "r", Upstream: "b", Match: config.Match{Path: &config.Path{Prefix: "/"}}}},
	}
	deps := Deps{Metrics: m, Clusters: map[string]*proxy.Cluster{"b": cluster}, Shared: policy.NewShared(),
		Policies: []policy.Builder{workerPolicy(&gen, &opened)}}
	a, _ := Build(cfg, deps)
	b, _ := Build(cfg, deps)
	cur := &atomic.Pointer[Snapshot]{}
	cur.Store(a)
	held := Acquire(cur) // a request in flight on a
	cur.Store(b)
	a.Retire()
	if opened.Load() != 1 || deps.Shared.Len() != 1 {
		t.Fatalf("opened %d, want the one resource shared", opened.Load())
	}
	held.Release()
	b.Retire()
	if deps.Shared.Len() != 0 {
		t.Fatal("the resource outlived every snapshot")
	}
}
