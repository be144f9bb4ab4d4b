package cache

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/cachestore"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// clock is a fake clock the stage and its store share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is a scriptable upstream that counts its calls and keeps the
// headers of the last request.
type origin struct {
	mu     sync.Mutex
	calls  int
	last   http.Header
	handle func(w http.ResponseWriter, r *http.Request, call int)
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.calls++
	n := o.calls
	o.last = r.Header.Clone()
	o.mu.Unlock()
	o.handle(w, r, n)
}

func (o *origin) Calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

// reply writes body with Content-Length and the given header pairs.
func reply(w http.ResponseWriter, status int, body string, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		w.Header().Add(kv[i], kv[i+1])
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// testCache is a route's cache section with config's defaults.
func testCache() *config.Cache {
	off := false
	return &config.Cache{MaxBody: config.DefaultCacheMaxBody, CollapseWait: config.DefaultCacheCollapseWait, VaryConsumer: &off}
}

func newTestStage(t *testing.T, c *config.Cache, o http.Handler, clk *clock) (http.Handler, *cachestore.Store) {
	t.Helper()
	st := cachestore.New(cachestore.Options{MaxBytes: 8 << 20, Now: clk.Now})
	t.Cleanup(st.Close)
	return New(c, Options{Route: "r", Store: st, Now: clk.Now}, o), st
}

// send makes one request to h as consumer ("": none).
func send(h http.Handler, method, target, consumer string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://api.example"+target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	r = r.WithContext(exchange.With(r.Context(), &exchange.Exchange{Consumer: consumer, Scheme: "http"}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
