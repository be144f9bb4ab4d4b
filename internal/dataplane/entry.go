package dataplane

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/telemetry"
)

// Entry is the handler of one listener: it resolves the request against the
// current snapshot, hands it to the route's chain, and records the outcome.
type Entry struct {
	listener string
	scheme   string
	current  *atomic.Pointer[Snapshot]
	metrics  *telemetry.Metrics
	log      *telemetry.AccessLog
	ids      *proxy.RequestIDs
	// last is the latest snapshot that had this listener: a listener
	// being retired by a reload finishes its connections on it.
	last atomic.Pointer[listenerRoutes]
}

// NewEntry returns the handler of the named listener, which must be in
// first, the snapshot about to be published with it.
func NewEntry(listener, scheme string, first *Snapshot, current *atomic.Pointer[Snapshot], m *telemetry.Metrics, log *telemetry.AccessLog, ids *proxy.RequestIDs) *Entry {
	e := &Entry{listener: listener, scheme: scheme, current: current, metrics: m, log: log, ids: ids}
	e.last.Store(first.listeners[listener])
	return e
}

func (e *Entry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := e.current.Load()
	x := &proxy.Exchange{Start: time.Now(), Listener: e.listener, Scheme: e.scheme,
		GRPC: r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")}
	x.ClientIP, x.PeerTrusted = snap.trusted.ClientIP(r.RemoteAddr, r.Header)
	if id := r.Header.Get("X-Request-Id"); proxy.ValidRequestID(id) {
		x.RequestID = id
	} else {
		x.RequestID = e.ids.Next()
	}
	w.Header()["X-Request-Id"] = []string{x.RequestID}
	rw := proxy.Recorder(w, x)
	stats := snap.none
	defer func() { e.finish(r, x, stats) }()

	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		raw = r.URL.EscapedPath() // absolute-form request target
	}
	if !validTarget(raw) || !validTarget(r.URL.RawQuery) {
		// HTTP/1.x targets were checked by the server; an HTTP/2 :path
		// can carry anything, and must not reach an upstream request line.
		e.metrics.Rejected("malformed")
		proxy.WriteError(rw, x, http.StatusBadRequest, "invalid character in request target")
		return
	}
	path, err := route.NormalizePath(raw)
	if err != nil {
		e.metrics.Rejected("bad_path")
		proxy.WriteError(rw, x, http.StatusBadRequest, "malformed request path: "+err.Error())
		return
	}
	x.Path = path
	lr := snap.listeners[e.listener]
	if lr == nil {
		lr = e.last.Load()
	} else if e.last.Load() != lr {
		e.last.Store(lr)
	}
	lr.table.Match(r.Host, r.Method, path, r.Header, r.URL.RawQuery, &x.Match)
	rt := x.Match.Route
	if rt == nil {
		if x.Match.MethodNotAllowed {
			rw.Header()["Allow"] = []string{x.Match.Allow}
			proxy.WriteError(rw, x, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+x.Match.Allow)
			return
		}
		proxy.WriteError(rw, x, http.StatusNotFound, "no route for "+r.Method+" "+path)
		return
	}
	stats = lr.stats[rt.Index]
	lr.handlers[rt.Index].ServeHTTP(rw, r.WithContext(proxy.WithExchange(r.Context(), x)))
}

func (e *Entry) finish(r *http.Request, x *proxy.Exchange, stats *telemetry.RouteStats) {
	if x.Status == 0 {
		x.Status = http.StatusOK
	}
	d := time.Since(x.Start)
	stats.Observe(x.Status, d.Seconds())
	if e.log == nil {
		return
	}
	name := ""
	if x.Match.Route != nil {
		name = x.Match.Route.Name
	}
	e.log.Log(&telemetry.Entry{
		Time: x.Start, Listener: x.Listener, Method: r.Method, Host: r.Host, Path: logPath(r, x),
		Route: name, Endpoint: x.Endpoint, Attempts: x.Attempts, Status: x.Status, Duration: d,
		BytesIn: x.BytesIn, BytesOut: x.BytesOut, RequestID: x.RequestID, ClientIP: x.ClientIP,
		Reason: x.Reason,
	})
}

// logPath is the normalized path when there is one, else the raw path.
func logPath(r *http.Request, x *proxy.Exchange) string {
	if x.Path != "" {
		return x.Path
	}
	return r.URL.Path
}

// validTarget accepts the visible ASCII a request target may carry.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
