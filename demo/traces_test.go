package demo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func id(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// otlpSpan is a span of trace TourTraceID: it starts at ms and lasts dur ms.
func otlpSpan(spanID, parent string, kind tracepb.Span_SpanKind, name string, ms, dur int, attrs ...*commonpb.KeyValue) *tracepb.Span {
	t0 := uint64(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	s := &tracepb.Span{TraceId: id(TourTraceID), SpanId: id(spanID), Name: name, Kind: kind,
		StartTimeUnixNano: t0 + uint64(ms)*1e6, EndTimeUnixNano: t0 + uint64(ms+dur)*1e6, Attributes: attrs}
	if parent != "" {
		s.ParentSpanId = id(parent)
	}
	return s
}

func resourceSpans(service, node string, spans ...*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", service), str("meshgate.node.name", node)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}
}

func post(t *testing.T, url, contentType string, msg proto.Message) *http.Response {
	t.Helper()
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/v1/traces", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTraceReceiver posts spans as the nodes export them (the sidecar's
// batch before the edge's) and reads the trace back as a tree and as JSON.
func TestTraceReceiver(t *testing.T) {
	r := &traceReceiver{}
	srv := httptest.NewServer(r.handler())
	defer srv.Close()

	sidecar := resourceSpans("meshgate-sidecar", "orders-v1",
		otlpSpan("2222222222222222", "1111111111111111", tracepb.Span_SPAN_KIND_SERVER, "POST inbound", 2, 5,
			str("meshgate.caller", "spiffe://demo.meshgate/edge"), num("http.response.status_code", 201)))
	edge := resourceSpans("meshgate-edge", "edge",
		otlpSpan("0000000000000001", TourParentID, tracepb.Span_SPAN_KIND_SERVER, "POST orders", 0, 9, num("http.response.status_code", 201)),
		otlpSpan("1111111111111111", "0000000000000001", tracepb.Span_SPAN_KIND_CLIENT, "POST orders", 1, 7, num("http.response.status_code", 201)),
		otlpSpan("3333333333333333", "0000000000000001", tracepb.Span_SPAN_KIND_CLIENT, "POST audit", 8, 1, str("error.type", "timeout")))
	edge.ScopeSpans[0].Spans[2].Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	edge.ScopeSpans[0].Spans[2].Events = []*tracepb.Span_Event{{Name: "exception"}}
	for _, rs := range []*tracepb.ResourceSpans{sidecar, edge} {
		resp := post(t, srv.URL, "application/x-protobuf", &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("export: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	if resp := post(t, srv.URL, "application/json", &coltracepb.ExportTraceServiceRequest{}); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("export as JSON: %s, want 415", resp.Status)
	}

	code, tree := getBody(t, srv.URL+"/traces/"+strings.ToUpper(TourTraceID))
	want := "trace " + TourTraceID + ": 4 spans\n" +
		"meshgate-edge (edge)  server  POST orders  201  9.00 ms  parent " + TourParentID + " (not here: the caller's, or not exported yet)\n" +
		"├─ meshgate-edge (edge)  client  POST orders  201  7.00 ms\n" +
		"│  └─ meshgate-sidecar (orders-v1)  server  POST inbound  201  5.00 ms  caller spiffe://demo.meshgate/edge\n" +
		"└─ meshgate-edge (edge)  client  POST audit  -  1.00 ms  ERROR timeout  event exception\n"
	if code != 200 || tree != want {
		t.Errorf("GET /traces/ID: %d\n%s\nwant:\n%s", code, tree, want)
	}

	code, body := getBody(t, srv.URL+"/traces/"+TourTraceID+"?format=json")
	var spans []Span
	if err := json.Unmarshal([]byte(body), &spans); err != nil || code != 200 {
		t.Fatalf("?format=json: %d %v\n%s", code, err, body)
	}
	var got []string
	for _, s := range spans {
		got = append(got, fmt.Sprintf("%s<-%s %s/%s %s %s %d %.0f", s.SpanID, s.ParentSpanID, s.Service, s.Node, s.Kind, s.Name, s.Status, s.DurationMS))
	}
	wantJSON := []string{
		"0000000000000001<-00f067aa0ba902b7 meshgate-edge/edge server POST orders 201 9",
		"1111111111111111<-0000000000000001 meshgate-edge/edge client POST orders 201 7",
		"2222222222222222<-1111111111111111 meshgate-sidecar/orders-v1 server POST inbound 201 5",
		"3333333333333333<-0000000000000001 meshgate-edge/edge client POST audit 0 1",
	}
	if strings.Join(got, "\n") != strings.Join(wantJSON, "\n") {
		t.Errorf("?format=json:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantJSON, "\n"))
	}

	if code, body := getBody(t, srv.URL+"/traces"); code != 200 || !strings.Contains(body, TourTraceID+"  03:04:05.000   4 spans  meshgate-edge (edge)  server  POST orders") {
		t.Errorf("GET /traces: %d\n%s", code, body)
	}
	if code, _ := getBody(t, srv.URL+"/traces/0123456789abcdef0123456789abcdef"); code != 404 {
		t.Errorf("an unknown trace: %d, want 404", code)
	}
	if code, _ := getBody(t, srv.URL+"/traces/xyz"); code != 400 {
		t.Errorf("a malformed id: %d, want 400", code)
	}
}

// TestTraceReceiverBound: past MaxSpans the oldest spans go.
func TestTraceReceiverBound(t *testing.T) {
	r := &traceReceiver{}
	for i := range MaxSpans + 3 {
		r.add([]*Span{{TraceID: fmt.Sprint(i % 2), SpanID: fmt.Sprint(i)}})
	}
	all := r.all("")
	if len(all) != MaxSpans || all[0].SpanID != "3" || all[len(all)-1].SpanID != fmt.Sprint(MaxSpans+2) {
		t.Errorf("%d spans kept, from %s to %s; want %d, from 3 to %d", len(all), all[0].SpanID, all[len(all)-1].SpanID, MaxSpans, MaxSpans+2)
	}
	if n := len(r.all("1")); n != MaxSpans/2 {
		t.Errorf("%d spans of trace 1, want %d", n, MaxSpans/2)
	}
}

// tourTrace is the trace of the tour's order: 8 spans in a chain.
func tourTrace() []*Span {
	hops := []traceHop{
		{"meshgate-edge", "edge", "server", "POST orders", ""},
		{"meshgate-edge", "edge", "client", "POST orders-v2", ""},
		{"meshgate-sidecar", "orders-v2", "server", "POST inbound", SpiffeID("edge")},
		{"meshgate-sidecar", "orders-v2", "client", "POST local-app", ""},
		{"meshgate-sidecar", "orders-v2", "server", "POST outbound-payments", ""},
		{"meshgate-sidecar", "orders-v2", "client", "POST payments", ""},
		{"meshgate-sidecar", "payments-v1", "server", "POST inbound", SpiffeID("orders")},
		{"meshgate-sidecar", "payments-v1", "client", "POST local-app", ""},
	}
	var spans []*Span
	parent := TourParentID
	t0 := time.Now()
	for i, h := range hops {
		s := &Span{TraceID: TourTraceID, SpanID: fmt.Sprintf("%016x", i+1), ParentSpanID: parent, Service: h.service, Node: h.node,
			Kind: h.kind, Name: h.name, Status: 201, Start: t0.Add(time.Duration(i) * time.Millisecond), DurationMS: float64(10 - i)}
		if h.caller != "" {
			s.Attributes = map[string]any{"meshgate.caller": h.caller}
		}
		spans = append(spans, s)
		parent = s.SpanID
	}
	return spans
}

func TestTraceCheck(t *testing.T) {
	if err := traceCheck(TraceTree(TourTraceID, tourTrace())); err != nil {
		t.Errorf("the tour's trace: %v\n%s", err, TraceTree(TourTraceID, tourTrace()))
	}
	for name, spoil := range map[string]func([]*Span) []*Span{
		"a span missing":        func(s []*Span) []*Span { return append(s[:4], s[5:]...) },
		"payments' span late":   func(s []*Span) []*Span { return s[:7] },
		"the edge's root alone": func(s []*Span) []*Span { s[1].ParentSpanID = "ffffffffffffffff"; return s },
		"another caller":        func(s []*Span) []*Span { s[6].Attributes["meshgate.caller"] = SpiffeID("edge"); return s },
		"another client parent": func(s []*Span) []*Span { s[0].ParentSpanID = "ffffffffffffffff"; return s },
		"another orders node":   func(s []*Span) []*Span { s[4].Node = "orders-v1"; return s },
		"a 502":                 func(s []*Span) []*Span { s[7].Status = 502; return s },
		"two orders":            func(s []*Span) []*Span { return append(s, tourTrace()...) },
	} {
		if err := traceCheck(TraceTree(TourTraceID, spoil(tourTrace()))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
