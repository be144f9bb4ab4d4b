package demo

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The demo's trace backend, so that tracing needs nothing outside the
// machine: an OTLP/HTTP receiver (POST /v1/traces, protobuf, as every node
// exports with tracing.protocol http) that keeps the last MaxSpans spans
// in memory and shows a trace as a tree:
//
//	GET /traces                 the latest traces, one a line
//	GET /traces/{id}            one trace as an indented tree, parent → children
//	GET /traces/{id}?format=json  its spans as JSON
//
// A line of the tree is one span: the node's service.name (and its
// meshgate.node.name in parentheses), the span's kind, name,
// http.response.status_code and duration, and for a sidecar's inbound span
// the caller's SPIFFE ID (meshgate.caller). A root whose parent is not here
// (the client's span, which only the client knows) names that parent.

// MaxSpans bounds the spans the receiver keeps: past it the oldest go.
const MaxSpans = 10000

// maxExportBytes bounds one export request (meshgate sends up to 1 MiB).
const maxExportBytes = 16 << 20

// Span is one span as the receiver keeps it.
type Span struct {
	TraceID      string `json:"trace_id"`
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Service is the resource's service.name; Node its meshgate.node.name.
	Service string `json:"service"`
	Node    string `json:"node,omitempty"`
	Kind    string `json:"kind"` // server, client, internal, …
	Name    string `json:"name"`
	// Status is http.response.status_code, 0 when the span has none.
	Status     int       `json:"status,omitempty"`
	Error      bool      `json:"error,omitempty"` // the span's status is ERROR
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	// Events are the names of the span's events (meshgate.circuit_open, …).
	Events     []string       `json:"events,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	Resource   map[string]any `json:"resource,omitempty"`
}

// traceReceiver is the receiver: an HTTP server and the spans.
type traceReceiver struct {
	srv  *http.Server
	done chan error

	mu    sync.Mutex
	spans []*Span // a ring of MaxSpans, next is the oldest once full
	next  int
}

// startTraceReceiver listens on addr and serves until close.
func startTraceReceiver(addr string, log *slog.Logger) (*traceReceiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the trace receiver: %w", err)
	}
	r := &traceReceiver{done: make(chan error, 1)}
	r.srv = &http.Server{Handler: r.handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { r.done <- r.srv.Serve(ln) }()
	log.Info("trace receiver listening", "address", ln.Addr().String())
	return r, nil
}

func (r *traceReceiver) close() error {
	r.srv.Close()
	if err := <-r.done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (r *traceReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	mux.HandleFunc("GET /traces", r.list)
	mux.HandleFunc("GET /traces/{id}", r.trace)
	return mux
}

// export receives an ExportTraceServiceRequest.
func (r *traceReceiver) export(w http.ResponseWriter, req *http.Request) {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "this receiver takes OTLP/HTTP in protobuf (Content-Type: application/x-protobuf), not "+strconv.Quote(ct), http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxExportBytes)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = io.LimitReader(zr, maxExportBytes)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.add(spansOf(&msg))
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

func (r *traceReceiver) add(spans []*Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range spans {
		if len(r.spans) < MaxSpans {
			r.spans = append(r.spans, s)
			continue
		}
		r.spans[r.next] = s
		r.next = (r.next + 1) % MaxSpans
	}
}

// all returns the spans kept, oldest first, those of trace id alone when
// id is not "".
func (r *traceReceiver) all(id string) []*Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Span
	for i := range r.spans {
		s := r.spans[(r.next+i)%len(r.spans)]
		if id == "" || s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// spansOf flattens an export request.
func spansOf(msg *coltracepb.ExportTraceServiceRequest) []*Span {
	var out []*Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		service, _ := res["service.name"].(string)
		node, _ := res["meshgate.node.name"].(string)
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := &Span{
					TraceID:      hex.EncodeToString(sp.GetTraceId()),
					SpanID:       hex.EncodeToString(sp.GetSpanId()),
					ParentSpanID: hex.EncodeToString(sp.GetParentSpanId()),
					Service:      service,
					Node:         node,
					Kind:         strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_")),
					Name:         sp.GetName(),
					Error:        sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Start:        time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					DurationMS:   float64(int64(sp.GetEndTimeUnixNano())-int64(sp.GetStartTimeUnixNano())) / 1e6,
					Attributes:   attrMap(sp.GetAttributes()),
					Resource:     res,
				}
				if code, ok := s.Attributes["http.response.status_code"].(int64); ok {
					s.Status = int(code)
				}
				for _, ev := range sp.GetEvents() {
					s.Events = append(s.Events, ev.GetName())
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var a []any
		for _, e := range x.ArrayValue.GetValues() {
			a = append(a, anyValue(e))
		}
		return a
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}

// isTraceID says whether id is a trace id as the receiver prints them: 32
// lower-case hex digits.
func isTraceID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// trace serves GET /traces/{id}: the tree, or ?format=json the spans.
func (r *traceReceiver) trace(w http.ResponseWriter, req *http.Request) {
	id := strings.ToLower(req.PathValue("id"))
	if !isTraceID(id) {
		http.Error(w, "a trace id is 32 hex digits", http.StatusBadRequest)
		return
	}
	spans := r.all(id)
	if len(spans) == 0 {
		http.Error(w, "no span of trace "+id+" yet (nodes export their spans within about a second)", http.StatusNotFound)
		return
	}
	if req.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		sortSpans(spans)
		b, _ := json.MarshalIndent(spans, "", "  ")
		w.Write(append(b, '\n'))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, TraceTree(id, spans))
}

// list serves GET /traces: the latest traces, newest last.
func (r *traceReceiver) list(w http.ResponseWriter, _ *http.Request) {
	const shown = 20
	type trace struct {
		id    string
		n     int
		root  *Span
		first time.Time
	}
	byID := map[string]*trace{}
	var order []*trace
	for _, s := range r.all("") {
		t := byID[s.TraceID]
		if t == nil {
			t = &trace{id: s.TraceID, first: s.Start}
			byID[s.TraceID] = t
			order = append(order, t)
		}
		t.n++
		if s.Start.Before(t.first) {
			t.first = s.Start
		}
		if t.root == nil || s.Start.Before(t.root.Start) {
			t.root = s
		}
	}
	slices.SortStableFunc(order, func(a, b *trace) int { return a.first.Compare(b.first) })
	if len(order) > shown {
		order = order[len(order)-shown:]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	fmt.Fprintf(&b, "the latest %d traces, newest last (GET /traces/ID shows one):\n", len(order))
	for _, t := range order {
		fmt.Fprintf(&b, "%s  %s  %2d spans  %s\n", t.id, t.first.Format("15:04:05.000"), t.n, spanLine(t.root))
	}
	io.WriteString(w, b.String())
}

func sortSpans(spans []*Span) {
	slices.SortStableFunc(spans, func(a, b *Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID, b.SpanID)
	})
}

// TraceTree renders the spans of trace id as an indented tree: parents
// before their children, siblings by start time.
func TraceTree(id string, spans []*Span) string {
	spans = slices.Clone(spans)
	sortSpans(spans)
	byID := map[string]*Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	children := map[string][]*Span{}
	var roots []*Span
	for _, s := range spans {
		if p, ok := byID[s.ParentSpanID]; ok && p != s {
			children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s: %d spans\n", id, len(spans))
	seen := map[*Span]bool{}
	var walk func(s *Span, lead, childLead string)
	walk = func(s *Span, lead, childLead string) {
		if seen[s] {
			return
		}
		seen[s] = true
		b.WriteString(lead + spanLine(s))
		if _, ok := byID[s.ParentSpanID]; !ok && s.ParentSpanID != "" {
			fmt.Fprintf(&b, "  parent %s (not here: the caller's, or not exported yet)", s.ParentSpanID)
		}
		b.WriteString("\n")
		kids := children[s.SpanID]
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, childLead+"└─ ", childLead+"   ")
			} else {
				walk(k, childLead+"├─ ", childLead+"│  ")
			}
		}
	}
	for _, s := range roots {
		walk(s, "", "")
	}
	for _, s := range spans { // in a parent cycle: never reached from a root
		walk(s, "", "")
	}
	return b.String()
}

// spanLine is a span's line of the tree, without its indentation.
func spanLine(s *Span) string {
	who := s.Service
	if who == "" {
		who = "unknown"
	}
	if s.Node != "" {
		who += " (" + s.Node + ")"
	}
	status := "-"
	if s.Status != 0 {
		status = strconv.Itoa(s.Status)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s  %s  %s  %s  %.2f ms", who, s.Kind, s.Name, status, s.DurationMS)
	if caller, ok := s.Attributes["meshgate.caller"].(string); ok && caller != "" {
		b.WriteString("  caller " + caller)
	}
	if s.Error {
		b.WriteString("  ERROR")
		if et, ok := s.Attributes["error.type"].(string); ok && et != "" {
			b.WriteString(" " + et)
		}
	}
	for _, ev := range s.Events {
		b.WriteString("  event " + ev)
	}
	return b.String()
}
