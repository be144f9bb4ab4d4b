package tracetest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trace is one trace as Jaeger's query API returns it, flattened for
// assertions: each span carries its parent's ID and its service's name.
type Trace struct {
	TraceID  string
	Spans    []*Span // ordered by start time, then span ID
	Warnings []string
}

// Span is one span of a Trace. IDs are lowercase hex as Jaeger prints them
// (32 digits for a trace ID, 16 for a span ID).
type Span struct {
	TraceID       string
	SpanID        string
	ParentSpanID  string // from the first CHILD_OF reference; "" for a root
	OperationName string // the OpenTelemetry span name
	Service       string // service.name of the span's process (resource)
	// Tags are the span's attributes plus what Jaeger derives from the span
	// (span.kind, otel.status_code, otel.scope.name, error, ...). Values
	// are string, bool, int64, float64 or []byte (binary), after the type
	// Jaeger declares for each; anything else is kept as decoded.
	Tags        map[string]any
	ProcessTags map[string]any // resource attributes other than service.name
	References  []Reference
	Logs        []Log // OpenTelemetry span events: Fields["event"] is the name
	Start       time.Time
	Duration    time.Duration
	Warnings    []string
}

// Reference is a span's link to another span: CHILD_OF for its parent,
// FOLLOWS_FROM for OpenTelemetry span links.
type Reference struct {
	Type    string // "CHILD_OF" or "FOLLOWS_FROM"
	TraceID string
	SpanID  string
}

// Log is a timestamped set of fields on a span (an OpenTelemetry event).
type Log struct {
	Time   time.Time
	Fields map[string]any
}

// Span returns the span with the given ID, or nil.
func (tr *Trace) Span(spanID string) *Span {
	for _, s := range tr.Spans {
		if s.SpanID == spanID {
			return s
		}
	}
	return nil
}

// SpanByName returns the earliest span named name, or nil.
func (tr *Trace) SpanByName(name string) *Span {
	for _, s := range tr.Spans {
		if s.OperationName == name {
			return s
		}
	}
	return nil
}

// SpansByName returns every span named name, earliest first.
func (tr *Trace) SpansByName(name string) []*Span {
	var out []*Span
	for _, s := range tr.Spans {
		if s.OperationName == name {
			out = append(out, s)
		}
	}
	return out
}

// Parent returns the parent of s within the trace, or nil for a root (or
// when the parent has not arrived).
func (tr *Trace) Parent(s *Span) *Span {
	if s == nil || s.ParentSpanID == "" {
		return nil
	}
	return tr.Span(s.ParentSpanID)
}

// Children returns the spans whose parent is s, earliest first.
func (tr *Trace) Children(s *Span) []*Span {
	if s == nil {
		return nil
	}
	var out []*Span
	for _, c := range tr.Spans {
		if c.ParentSpanID == s.SpanID {
			out = append(out, c)
		}
	}
	return out
}

// Roots returns the spans whose parent is not in the trace: the root, and
// the tops of any pieces whose parent has not arrived.
func (tr *Trace) Roots() []*Span {
	var out []*Span
	for _, s := range tr.Spans {
		if tr.Parent(s) == nil {
			out = append(out, s)
		}
	}
	return out
}

// Services returns the sorted names of the services with spans in the trace.
func (tr *Trace) Services() []string {
	var out []string
	for _, s := range tr.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	slices.Sort(out)
	return out
}

// String draws the trace as a tree, for test failure messages.
func (tr *Trace) String() string {
	if tr == nil {
		return "<no trace>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s (%d spans)\n", tr.TraceID, len(tr.Spans))
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] span=%s %v %s\n", strings.Repeat("  ", depth+1),
			s.OperationName, s.Service, s.SpanID, s.Duration, formatTags(s.Tags))
		for _, c := range tr.Children(s) {
			walk(c, depth+1)
		}
	}
	for _, r := range tr.Roots() {
		walk(r, 0)
	}
	return b.String()
}

func formatTags(tags map[string]any) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, tags[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// The query API's JSON (Jaeger's "UI model"). Only what Trace needs is
// decoded, and loosely: unknown fields are ignored, numbers may come as
// integers, floats or strings, and tag values are read after their type.

type apiResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []apiError      `json:"errors"`
}

type apiError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID"`
}

func (e apiError) String() string {
	if e.TraceID != "" {
		return fmt.Sprintf("%d %s (trace %s)", e.Code, e.Msg, e.TraceID)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Msg)
}

type jsonTrace struct {
	TraceID   string                 `json:"traceID"`
	Spans     []jsonSpan             `json:"spans"`
	Processes map[string]jsonProcess `json:"processes"`
	Warnings  []string               `json:"warnings"`
}

type jsonSpan struct {
	TraceID       string       `json:"traceID"`
	SpanID        string       `json:"spanID"`
	OperationName string       `json:"operationName"`
	References    []jsonRef    `json:"references"`
	StartTime     any          `json:"startTime"` // microseconds since the epoch
	Duration      any          `json:"duration"`  // microseconds
	Tags          []jsonKV     `json:"tags"`
	Logs          []jsonLog    `json:"logs"`
	ProcessID     string       `json:"processID"`
	Process       *jsonProcess `json:"process"` // set instead of processID in some responses
	Warnings      []string     `json:"warnings"`
}

type jsonRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type jsonProcess struct {
	ServiceName string   `json:"serviceName"`
	Tags        []jsonKV `json:"tags"`
}

type jsonKV struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

type jsonLog struct {
	Timestamp any      `json:"timestamp"` // microseconds since the epoch
	Fields    []jsonKV `json:"fields"`
}

// unmarshal decodes JSON keeping numbers as json.Number, so that int64
// values beyond 2^53 survive.
func unmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// convertTrace flattens one API trace into a Trace.
func convertTrace(jt jsonTrace) *Trace {
	tr := &Trace{TraceID: jt.TraceID, Warnings: jt.Warnings}
	for _, js := range jt.Spans {
		s := &Span{
			TraceID:       cmp.Or(js.TraceID, jt.TraceID),
			SpanID:        js.SpanID,
			OperationName: js.OperationName,
			Tags:          kvMap(js.Tags),
			Start:         time.UnixMicro(toInt64(js.StartTime)),
			Duration:      time.Duration(toInt64(js.Duration)) * time.Microsecond,
			Warnings:      js.Warnings,
		}
		for _, r := range js.References {
			s.References = append(s.References, Reference{Type: r.RefType, TraceID: r.TraceID, SpanID: r.SpanID})
			if s.ParentSpanID == "" && strings.EqualFold(r.RefType, "CHILD_OF") {
				s.ParentSpanID = r.SpanID
			}
		}
		p := js.Process
		if p == nil {
			if pp, ok := jt.Processes[js.ProcessID]; ok {
				p = &pp
			}
		}
		if p != nil {
			s.Service = p.ServiceName
			s.ProcessTags = kvMap(p.Tags)
		}
		for _, l := range js.Logs {
			s.Logs = append(s.Logs, Log{Time: time.UnixMicro(toInt64(l.Timestamp)), Fields: kvMap(l.Fields)})
		}
		tr.Spans = append(tr.Spans, s)
	}
	slices.SortStableFunc(tr.Spans, func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	return tr
}

func kvMap(kvs []jsonKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = tagValue(kv.Type, kv.Value)
	}
	return m
}

// tagValue reads a tag's value after its declared type, falling back to
// whatever the JSON holds when the two disagree.
func tagValue(typ string, raw json.RawMessage) any {
	var v any
	if err := unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	switch strings.ToLower(typ) {
	case "int64":
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i
			}
			if f, err := x.Float64(); err == nil {
				return int64(f)
			}
		case string:
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return i
			}
		}
	case "float64":
		switch x := v.(type) {
		case json.Number:
			if f, err := x.Float64(); err == nil {
				return f
			}
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f
			}
		}
	case "bool":
		if x, ok := v.(string); ok {
			if b, err := strconv.ParseBool(x); err == nil {
				return b
			}
		}
	case "binary":
		if x, ok := v.(string); ok {
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				return b
			}
		}
	}
	if n, ok := v.(json.Number); ok {
		return number(n)
	}
	return v
}

// number is an integral json.Number as int64, any other as float64.
func number(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n.String()
}

// toInt64 reads a decoded JSON number (or numeric string) as an int64; 0 if
// it is neither.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		switch n := number(x).(type) {
		case int64:
			return n
		case float64:
			return int64(n)
		}
	case float64:
		return int64(x)
	case string:
		if i, err := strconv.ParseInt(x, 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return int64(f)
		}
	}
	return 0
}
