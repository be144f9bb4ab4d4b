package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// exported is what a test keeps of an exported span.
type exported struct {
	traceID, parentID string
	attrs             map[string]string
	events            []telemetry.SpanEvent
}

// sink is a SpanExporter keeping copies of the spans.
type sink struct {
	mu    sync.Mutex
	spans []exported
}

func (k *sink) ExportSpans(_ context.Context, spans []*telemetry.Span) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range spans {
		pid, _ := s.ParentSpanID()
		e := exported{traceID: s.TraceID().String(), parentID: pid.String(), attrs: map[string]string{}, events: s.Events()}
		for _, a := range s.Attributes() {
			e.attrs[string(a.Key)] = a.Value.Emit()
		}
		k.spans = append(k.spans, e)
	}
	return nil
}

func (k *sink) Shutdown(context.Context) error { return nil }

// got flushes tr and returns the spans exported so far.
func (k *sink) got(t *testing.T, tr *telemetry.Tracer) []exported {
	t.Helper()
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]exported(nil), k.spans...)
}

func tracer(t *testing.T, sampling config.TracingSampling, k *sink) *telemetry.Tracer {
	t.Helper()
	tr, err := telemetry.NewTracer(config.Tracing{Endpoint: "127.0.0.1:4317", Insecure: true, Sampling: sampling},
		telemetry.TracerOptions{Metrics: telemetry.NewMetrics(), Exporter: k, BatchInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func ratio(r float64) *float64 { return &r }

// entry is the handler of listener "public" of a configuration without
// routes (every request is answered by the entry itself: 404, or 403 on
// an mTLS listener that refuses the caller).
func entry(t *testing.T, o EntryOptions) *Entry {
	t.Helper()
	m := telemetry.NewMetrics()
	snap, err := Build(&config.Config{Listeners: []config.Listener{{Name: "public", Address: "127.0.0.1:0"}}}, Deps{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	cur := &atomic.Pointer[Snapshot]{}
	cur.Store(snap)
	o.Scheme, o.First, o.Current, o.Metrics, o.IDs = "http", snap, cur, m, proxy.NewRequestIDs()
	return NewEntry("public", o)
}

const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

func serve(e *Entry, r *http.Request) int {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, r)
	return rec.Code
}

func request(traceparent string) *http.Request {
	r := httptest.NewRequest("GET", "/x", nil)
	if traceparent != "" {
		r.Header.Set("Traceparent", traceparent)
	}
	return r
}

// With sampling.follow_clients false, a client's sampled flag is not
// followed on a listener without mTLS (the node decides, here at ratio
// 0), but a peer's is on an mTLS listener; the trace goes on either way.
func TestEntryFollowClients(t *testing.T) {
	follow := false
	k := &sink{}
	tr := tracer(t, config.TracingSampling{Ratio: ratio(0), FollowClients: &follow}, k)
	plain := entry(t, EntryOptions{Tracer: tr})
	mtls := entry(t, EntryOptions{Tracer: tr, Caller: &Caller{}})
	for range 20 {
		serve(plain, request("00-"+tid+"-"+sid+"-01"))
	}
	if got := k.got(t, tr); len(got) != 0 {
		t.Errorf("%d spans at ratio 0 for clients' sampled flags, with follow_clients false", len(got))
	}
	if code := serve(mtls, request("00-"+tid+"-"+sid+"-01")); code != http.StatusForbidden {
		t.Fatalf("status %d", code)
	}
	got := k.got(t, tr)
	if len(got) != 1 || got[0].traceID != tid || got[0].parentID != sid {
		t.Errorf("spans %+v, want one of the peer's trace %s", got, tid)
	}

	// By default clients are followed.
	k2 := &sink{}
	tr2 := tracer(t, config.TracingSampling{Ratio: ratio(0)}, k2)
	serve(entry(t, EntryOptions{Tracer: tr2}), request("00-"+tid+"-"+sid+"-01"))
	if got := k2.got(t, tr2); len(got) != 1 || got[0].traceID != tid {
		t.Errorf("spans %+v, want the client's sampled trace", got)
	}
}

// A tap event names the trace of its request when tracing is on, sampled
// or not.
func TestEntryTapTraceID(t *testing.T) {
	k := &sink{}
	tr := tracer(t, config.TracingSampling{Ratio: ratio(1)}, k)
	tap := telemetry.NewTap()
	events, cancel, _ := tap.Subscribe(telemetry.TapFilter{})
	defer cancel()
	e := entry(t, EntryOptions{Tracer: tr, Tap: tap})
	next := func() telemetry.TapEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no tap event")
		}
		return telemetry.TapEvent{}
	}
	serve(e, request("00-"+tid+"-"+sid+"-00")) // not sampled
	if ev := next(); ev.TraceID != tid {
		t.Errorf("tap trace id %q, want the request's %s", ev.TraceID, tid)
	}
	serve(e, request(""))
	ev := next()
	if got := k.got(t, tr); len(got) != 1 || ev.TraceID != got[0].traceID {
		t.Errorf("tap trace id %q, spans %+v: want the new trace's", ev.TraceID, got)
	}

	off := entry(t, EntryOptions{Tap: tap})
	serve(off, request("00-"+tid+"-"+sid+"-01"))
	if ev := next(); ev.TraceID != "" {
		t.Errorf("tap trace id %q with tracing off", ev.TraceID)
	}
}

// The log line of a denied caller names the request's trace.
func TestEntryDeniedLogTraceID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca := pkitest.NewCA(t, td)
	svid := ca.SVID(t, ca.ID(t, "/edge"))
	allow, err := pki.ParsePattern("spiffe://example.org/payments")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	tr := tracer(t, config.TracingSampling{Ratio: ratio(1)}, &sink{})
	e := entry(t, EntryOptions{Tracer: tr, Caller: &Caller{Allow: []pki.Pattern{allow}}, Logger: logger})
	r := request("00-" + tid + "-" + sid + "-01")
	r.TLS = &tls.ConnectionState{PeerCertificates: svid.Certificates}
	if code := serve(e, r); code != http.StatusForbidden {
		t.Fatalf("status %d", code)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line["msg"] != "caller denied" || line["trace_id"] != tid {
		t.Errorf("log line %v, want caller denied with trace_id %s", line, tid)
	}
}

// Client-derived attributes of the server span (user agent, gRPC service
// and method, the raw path of a refused request) are valid UTF-8.
func TestEntrySpanAttributesValidUTF8(t *testing.T) {
	k := &sink{}
	tr := tracer(t, config.TracingSampling{Ratio: ratio(1)}, k)
	e := entry(t, EntryOptions{Tracer: tr})
	r := httptest.NewRequest("POST", "/pkg.Svc/Call", nil)
	r.ProtoMajor, r.ProtoMinor = 2, 0
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("User-Agent", "curl\xff")
	r.URL.Path = "/pkg.Sv\xffc/Ca\xc3ll"
	r.RequestURI = r.URL.Path // refused (as gRPC: 200, grpc-status): not a valid target
	serve(e, r)
	got := k.got(t, tr)
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	for key, want := range map[string]string{"user_agent.original": "curl\uFFFD", "rpc.service": "pkg.Sv\uFFFDc",
		"rpc.method": "Ca\uFFFDll", "url.path": "/pkg.Sv\uFFFDc/Ca\uFFFDll"} {
		if v := got[0].attrs[key]; v != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	for key, v := range got[0].attrs {
		if !utf8.ValidString(v) {
			t.Errorf("%s = %q: not UTF-8", key, v)
		}
	}
	for _, ev := range got[0].events {
		for _, a := range ev.Attributes {
			if v := a.Value.AsString(); !utf8.ValidString(v) || strings.Contains(v, "\xff") {
				t.Errorf("event %s: %s = %q", ev.Name, a.Key, v)
			}
		}
	}
}
