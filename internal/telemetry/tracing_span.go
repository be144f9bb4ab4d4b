package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// SpanKind is the OTLP span kind of a Span.
type SpanKind uint8

// The kinds a proxy makes (their OTLP enum values).
const (
	SpanKindServer SpanKind = 2
	SpanKindClient SpanKind = 3
)

// StatusCode is the OTLP status of a span.
type StatusCode uint8

// The span statuses (their OTLP enum values).
const (
	StatusUnset StatusCode = 0
	StatusError StatusCode = 2
)

// A span holds at most this many events; more are dropped and counted in
// the span (the proxy adds one at most).
const maxSpanEvents = 8

// Span is one operation of a trace: a request at a listener (server) or an
// attempt to an upstream (client). Spans are pooled by their Tracer: a Span
// must not be used after End, and whoever reads a finished one (an
// exporter) must copy what it keeps.
//
// A Span is written by the goroutine serving its request only. Every
// method is nil-safe, so code that may run with tracing off calls them on a
// nil *Span; the setters do nothing on a span that is not sampled.
//
// A sampled span keeps its attributes and events only in their OTLP
// encoding, appended as they are set (see tracing_wire.go).
type Span struct {
	tracer       *Tracer
	traceID      trace.TraceID
	spanID       trace.SpanID
	parentID     trace.SpanID
	flags        trace.TraceFlags
	remoteParent bool
	recording    bool
	// b3: the request carried B3 headers, which the proxy replaces with
	// W3C ones on the way out.
	b3         bool
	kind       SpanKind
	traceState string
	// The name is name1, or name1 + " " + name2: composed when encoded, so
	// that naming a span does not allocate.
	name1, name2  string
	start, end    time.Time
	status        StatusCode
	statusMsg     string
	nevents       uint8
	droppedEvents uint8
	// last is a child that ends with this span (see EndWithParent).
	last *Span
	// buf is the encoding while recording; its memory stays with the
	// span in the pool.
	buf []byte
	std wellKnown
}

// Recording reports whether the span is sampled: its attributes and events
// are kept and it is exported. An unsampled span only carries the trace
// context on to the next hop.
func (s *Span) Recording() bool { return s != nil && s.recording }

// SetName names the span a, or "a b" when b is not empty (made valid
// UTF-8 when the span ends).
func (s *Span) SetName(a, b string) {
	if s.Recording() {
		s.name1, s.name2 = a, b
	}
}

// AddEvent records an event at the given time with string attributes,
// given as key, value pairs. The values are cut to
// MaxAttributeValueLength bytes and made valid UTF-8, as attributes' are.
func (s *Span) AddEvent(name string, at time.Time, kv ...string) {
	if !s.Recording() {
		return
	}
	if s.nevents == maxSpanEvents {
		s.droppedEvents++
		return
	}
	s.nevents++
	name = validUTF8(name)
	for i, v := range kv {
		if (i%2 == 0 && !isUTF8(v)) || (i%2 == 1 && !isAttrValue(v)) {
			kv = eventAttrs(kv, i)
			break
		}
	}
	s.buf = appendEvent(s.buf, name, at, kv)
}

// eventAttrs is a copy of kv with every key valid and every value an
// attribute value, from kv[i] on (the first that is not).
func eventAttrs(kv []string, i int) []string {
	out := make([]string, len(kv))
	copy(out, kv[:i])
	for ; i < len(kv); i++ {
		if i%2 == 0 {
			out[i] = validUTF8(kv[i])
		} else {
			out[i] = attrValue(kv[i])
		}
	}
	return out
}

// SetError marks the span as failed, with a description (cut and made
// valid UTF-8 as an attribute value is).
func (s *Span) SetError(description string) {
	if s.Recording() {
		s.status, s.statusMsg = StatusError, attrValue(description)
	}
}

// End finishes the span at t and hands it to the exporter. The span must
// not be used afterwards. A child left to end with it (EndWithParent)
// ends first, at the same time.
func (s *Span) End(t time.Time) {
	if s == nil {
		return
	}
	if c := s.last; c != nil {
		s.last = nil
		c.End(t)
	}
	s.end = t
	if s.recording {
		s.buf = appendWellKnown(s.buf, &s.std)
		s.buf = putLen(appendSpanTail(s.buf, s), spanHeader, spanHeader-1)
	}
	s.tracer.finish(s)
}

// EndWithParent leaves child (a span of s's, or nil for none) to end when
// s ends, at the same time: an upstream attempt whose response streams to
// the client until the request is over ends with it, without a clock read
// of its own, even when the handler is aborted. A child left before and
// not ended is ended now.
func (s *Span) EndWithParent(child *Span, now time.Time) {
	if s == nil {
		return
	}
	if c := s.last; c != nil && c != child {
		c.End(now)
	}
	s.last = child
}

// StartClient begins a child span of s, of kind client (an upstream
// attempt), starting at start. Nil when s is nil.
func (s *Span) StartClient(start time.Time) *Span {
	if s == nil {
		return nil
	}
	c := s.tracer.get()
	c.traceID, c.parentID, c.flags, c.traceState = s.traceID, s.spanID, s.flags, s.traceState
	c.spanID = newSpanID()
	c.kind, c.start = SpanKindClient, start
	if s.recording {
		c.record()
	}
	return c
}

// FromB3 reports whether the request of a server span carried B3 headers
// (any of them, whether or not its trace context was read from them),
// which Inject is then to remove from the requests it sends on: next to
// the new traceparent they would name the client's span, or a trace the
// proxy did not continue.
func (s *Span) FromB3() bool { return s != nil && s.b3 }

// Accessors, for exporters and tests.

// TraceID is the span's trace.
func (s *Span) TraceID() trace.TraceID { return s.traceID }

// SpanID is the span's own id.
func (s *Span) SpanID() trace.SpanID { return s.spanID }

// ParentSpanID is the parent's id (invalid for a root span), and whether
// the parent is remote (from another process).
func (s *Span) ParentSpanID() (trace.SpanID, bool) { return s.parentID, s.remoteParent }

// TraceFlags are the W3C flags propagated with the span.
func (s *Span) TraceFlags() trace.TraceFlags { return s.flags }

// TraceState is the W3C tracestate propagated with the span ("" for none).
func (s *Span) TraceState() string { return s.traceState }

// Sampled reports whether the span's trace is sampled.
func (s *Span) Sampled() bool { return s != nil && s.flags.IsSampled() }

// Kind is server or client.
func (s *Span) Kind() SpanKind { return s.kind }

// Name is the span's name (as encoded: valid UTF-8).
func (s *Span) Name() string {
	if s.name2 == "" {
		return validUTF8(s.name1)
	}
	return validUTF8(s.name1) + " " + validUTF8(s.name2)
}

// StartTime and EndTime bound the span.
func (s *Span) StartTime() time.Time { return s.start }

// EndTime is when End was called.
func (s *Span) EndTime() time.Time { return s.end }

// Status is the span's status and its description.
func (s *Span) Status() (StatusCode, string) { return s.status, s.statusMsg }

// Attributes returns a copy of the span's attributes.
func (s *Span) Attributes() []attribute.KeyValue {
	var out []attribute.KeyValue
	s.spanFields(9, func(b []byte) { out = append(out, decodeKeyValue(b)) })
	return out
}

// SpanEvent is a copy of an event of a span.
type SpanEvent struct {
	Name       string
	Time       time.Time
	Attributes []attribute.KeyValue
}

// Events returns a copy of the span's events.
func (s *Span) Events() []SpanEvent {
	var out []SpanEvent
	s.spanFields(11, func(b []byte) {
		var e SpanEvent
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				break
			}
			b = b[n:]
			switch {
			case num == 1 && typ == protowire.Fixed64Type:
				v, n := protowire.ConsumeFixed64(b)
				e.Time, b = time.Unix(0, int64(v)), b[max(n, 0):]
			case num == 2 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(b)
				e.Name, b = string(v), b[max(n, 0):]
			case num == 3 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(b)
				e.Attributes, b = append(e.Attributes, decodeKeyValue(v)), b[max(n, 0):]
			default:
				n := protowire.ConsumeFieldValue(num, typ, b)
				b = b[max(n, 0):]
			}
		}
		out = append(out, e)
	})
	return out
}

// Resource is the node's resource: the attributes every span is exported
// with.
func (s *Span) Resource() []attribute.KeyValue { return s.tracer.resource }

type spanKey struct{}

// ContextWithSpan returns ctx carrying s, the parent of the spans made
// below it (an upstream attempt's).
func ContextWithSpan(ctx context.Context, s *Span) context.Context {
	return context.WithValue(ctx, spanKey{}, s)
}

// SpanFromContext returns the span of a request, or nil (tracing off).
// Middleware adds to the request's server span through it, for example
// span.Set(AttrConsumer, id).
func SpanFromContext(ctx context.Context) *Span {
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}
