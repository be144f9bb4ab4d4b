package cache

import (
	"bytes"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// The stage's own cost per request, without the network: what the bench
// suite `cache` (internal/bench/cache.go) measures end to end.
//
//	go test -run XXX -bench Stage -benchmem ./internal/cache
//
// The upstream answers what the suite's backend does: 1 KiB, text/plain,
// Content-Length, Cache-Control: max-age=3600. The request, its exchange
// and the response writer are made once and reused (the server's work, not
// the stage's), so the allocations counted are the stage's, and the
// upstream's (none on a hit).

// benchBody is the upstream's 1 KiB body.
var benchBody = bytes.Repeat([]byte("x"), 1024)

// benchOrigin answers like internal/bench/backend -cache-control max-age=3600.
type benchOrigin struct{ calls int }

var (
	benchType   = []string{"text/plain"}
	benchLength = []string{strconv.Itoa(len(benchBody))}
	benchCC     = []string{"max-age=3600"}
)

func (o *benchOrigin) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	o.calls++
	h := w.Header()
	h["Content-Type"], h["Content-Length"], h["Cache-Control"] = benchType, benchLength, benchCC
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(benchBody)
}

// benchWriter is a response writer whose header map is reused.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchStage is a stage with config's defaults (collapse_wait 1s) over a
// 64 MiB store (the default cache.max_bytes) and o, and a GET of
// http://bench.local/item with an exchange, as the edge passes it.
func benchStage(b *testing.B, o http.Handler) (http.Handler, *http.Request) {
	b.Helper()
	st := cachestore.New(cachestore.Options{MaxBytes: config.DefaultCacheMaxBytes})
	b.Cleanup(st.Close)
	h := New(testCache(), Options{Route: "bench", Store: st}, o)
	u, err := url.Parse("http://bench.local/item")
	if err != nil {
		b.Fatal(err)
	}
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"User-Agent": {"wrk"}, "Accept": {"*/*"}}}
	r = r.WithContext(exchange.With(b.Context(), &exchange.Exchange{Scheme: "http"}))
	return h, r
}

// BenchmarkStageHit: a fresh stored 1 KiB response answers the request.
func BenchmarkStageHit(b *testing.B) {
	o := &benchOrigin{}
	h, r := benchStage(b, o)
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // stores it
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	if o.calls != 1 || w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("upstream called %d times (want 1), last answer %d with %d bytes", o.calls, w.status, w.n)
	}
}

// BenchmarkStageMiss: every request a new URI (a query of its own), so
// each one is a miss: lookup, collapse (the leader), forward through the
// tee, the storable decision, the body copy and the store's Put (evicting
// once the store is full). The query string the loop makes costs one
// allocation that is not the stage's; "passthrough" is the upstream alone
// with the same loop, the baseline of the miss's overhead.
func BenchmarkStageMiss(b *testing.B) {
	run := func(b *testing.B, stage bool) {
		o := &benchOrigin{}
		h, r := benchStage(b, o)
		if !stage {
			h = o
		}
		w := &benchWriter{h: http.Header{}}
		b.ReportAllocs()
		buf := make([]byte, 0, 32)
		for i := 0; b.Loop(); i++ {
			w.reset()
			buf = strconv.AppendInt(append(buf[:0], "n="...), int64(i), 10)
			r.URL.RawQuery = string(buf)
			h.ServeHTTP(w, r)
		}
		if o.calls < b.N || w.status != http.StatusOK || w.n != len(benchBody) {
			b.Fatalf("upstream called %d times for %d requests, last answer %d with %d bytes", o.calls, b.N, w.status, w.n)
		}
	}
	b.Run("stage", func(b *testing.B) { run(b, true) })
	b.Run("passthrough", func(b *testing.B) { run(b, false) })
}

// BenchmarkStageMissFull is BenchmarkStageMiss/stage with the store full
// first (50k misses of their own URIs: the 64 MiB store holds ~35k 1 KiB
// entries, so it is evicting throughout), so the collector has the live
// heap of a full store to mark, as an edge under the bench suite does. The
// GC's cost shows in ns/op (the mark workers run beside the loop on the
// other cores, and assists in it); -benchtime should cover several cycles.
func BenchmarkStageMissFull(b *testing.B) {
	o := &benchOrigin{}
	h, r := benchStage(b, o)
	w := &benchWriter{h: http.Header{}}
	buf := make([]byte, 0, 32)
	i := 0
	miss := func() {
		w.reset()
		buf = strconv.AppendInt(append(buf[:0], "n="...), int64(i), 10)
		i++
		r.URL.RawQuery = string(buf)
		h.ServeHTTP(w, r)
	}
	for range 50_000 {
		miss()
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		miss()
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("last answer %d with %d bytes", w.status, w.n)
	}
}

// BenchmarkStageHitFull is BenchmarkStageHit with a full store beside the
// entry that answers (see BenchmarkStageMissFull).
func BenchmarkStageHitFull(b *testing.B) {
	o := &benchOrigin{}
	h, r := benchStage(b, o)
	w := &benchWriter{h: http.Header{}}
	for i := range 50_000 {
		w.reset()
		r.URL.RawQuery = "n=" + strconv.Itoa(i)
		h.ServeHTTP(w, r)
	}
	r.URL.RawQuery = ""
	h.ServeHTTP(w, r) // stores it
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("last answer %d with %d bytes", w.status, w.n)
	}
}

// cpuTime is the process's CPU time (user and system) so far, in
// nanoseconds: it counts the collector's workers on every core, which a
// benchmark's ns/op (wall time) does not when they run beside the loop.
func cpuTime() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return u.Utime.Nano() + u.Stime.Nano()
}
