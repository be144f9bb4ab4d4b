package dataplane

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/upstream"
)

func testCluster(t *testing.T, name, addr string, retry bool) *proxy.Cluster {
	t.Helper()
	ucfg := config.Upstream{Name: name, Endpoints: []config.Endpoint{{Address: addr}}}
	up, err := upstream.New(ucfg, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := proxy.NewCluster(ucfg, up, nil)
	t.Cleanup(c.Close)
	return c
}

// A policy's own call goes through the cluster like a forwarded request: the
// upstream sees the client's request id and forwarding headers, the body
// streams back, and a failure names the error the proxy would have answered.
func TestPolicyCallsGoThroughTheCluster(t *testing.T) {
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "x-hop")
		w.Header().Set("X-Hop", "1")
		io.WriteString(w, "items:"+r.URL.RequestURI())
	}))
	defer backend.Close()
	deps := Deps{Metrics: telemetry.NewMetrics(), Clusters: map[string]*proxy.Cluster{
		"items": testCluster(t, "items", backend.Listener.Addr().String(), false),
		"down":  testCluster(t, "down", "127.0.0.1:1", false),
	}}
	var ups policy.Upstreams = &upstreams{d: &deps}
	if _, err := ups.Caller("nope", policy.CallOptions{}); err == nil {
		t.Fatal("a caller of an unknown upstream")
	}
	items, err := ups.Caller("items", policy.CallOptions{Name: "bff/items"})
	if err != nil {
		t.Fatal(err)
	}
	parent := &exchange.Exchange{RequestID: "req-7", ClientIP: "203.0.113.9", Scheme: "https"}
	ctx := exchange.With(context.Background(), parent)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://items/v1/items?id=3", nil)
	resp, err := items.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "items:/v1/items?id=3" || resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Hop") != "" {
		t.Error("hop-by-hop header of the upstream's response passed on")
	}
	if seen.Get("X-Request-Id") != "req-7" || seen.Get("X-Forwarded-For") == "" {
		t.Errorf("upstream saw %v", seen)
	}

	down, _ := ups.Caller("down", policy.CallOptions{})
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://down/", nil)
	_, err = down.RoundTrip(req)
	var ce *proxy.CallError
	if !errors.As(err, &ce) || ce.Kind != exchange.ConnectFailed {
		t.Fatalf("error %v, want connect failed", err)
	}
}

// spanSink keeps what it is given of the exported spans.
type spanSink struct {
	mu    sync.Mutex
	spans []exportedSpan
}

type exportedSpan struct {
	kind       telemetry.SpanKind
	start, end time.Time
	call       string // meshgate.call
}

func (s *spanSink) ExportSpans(_ context.Context, spans []*telemetry.Span) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		e := exportedSpan{kind: sp.Kind(), start: sp.StartTime(), end: sp.EndTime()}
		for _, a := range sp.Attributes() {
			if a.Key == "meshgate.call" {
				e.call = a.Value.AsString()
			}
		}
		s.spans = append(s.spans, e)
	}
	return nil
}

func (s *spanSink) Shutdown(context.Context) error { return nil }

func (s *spanSink) clientSpans() []exportedSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []exportedSpan
	for _, sp := range s.spans {
		if sp.kind == telemetry.SpanKindClient {
			out = append(out, sp)
		}
	}
	return out
}

// Policy calls made in parallel under one server span (a composite's
// fan-out) each get a client span that lasts as long as their own attempt:
// none ends another's, whichever finishes first.
func TestParallelPolicyCallsEachEndTheirSpan(t *testing.T) {
	const calls, delay = 6, 30 * time.Millisecond
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	sink := &spanSink{}
	ratio := 1.0
	tr, err := telemetry.NewTracer(config.Tracing{Endpoint: "127.0.0.1:4317", Insecure: true, Sampling: config.TracingSampling{Ratio: &ratio}},
		telemetry.TracerOptions{Metrics: telemetry.NewMetrics(), Exporter: sink, BatchInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	deps := Deps{Metrics: telemetry.NewMetrics(), Tracer: tr, Clusters: map[string]*proxy.Cluster{
		"items": testCluster(t, "items", backend.Listener.Addr().String(), false),
	}}
	caller, err := (&upstreams{d: &deps}).Caller("items", policy.CallOptions{Name: "page/items"})
	if err != nil {
		t.Fatal(err)
	}
	server := tr.StartServer(http.Header{}, time.Now(), false)
	ctx := telemetry.ContextWithSpan(exchange.With(context.Background(), &exchange.Exchange{RequestID: "r"}), server)
	var wg sync.WaitGroup
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://items/", nil)
			resp, err := caller.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	server.End(time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.clientSpans()) < calls && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	spans := sink.clientSpans()
	if len(spans) != calls {
		t.Fatalf("%d client spans exported, want %d", len(spans), calls)
	}
	for i, sp := range spans {
		if d := sp.end.Sub(sp.start); d < delay {
			t.Errorf("client span %d lasted %v, less than its call's %v: ended by another call", i, d, delay)
		}
		if sp.call != "page/items" {
			t.Errorf("client span %d: meshgate.call %q, want the caller's name page/items", i, sp.call)
		}
	}
}
