package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Tracing: the node's spans, W3C trace context on every hop, and export
// over OTLP.
//
// The request path records into Spans of this package rather than through
// the OpenTelemetry SDK, and the exporter encodes them to OTLP protobuf
// itself: measured on the development VM, an SDK span with the proxy's
// attributes cost about 5 µs and 11 allocations to record, and the OTLP
// exporter about 6 µs and 36 allocations more to convert and marshal, next
// to the edge's 35 µs per proxied request — 2 spans a request would have
// cost a third of its throughput. Here a span is pooled with its buffer,
// the proxy's well-known attributes are plain stores until End, and the
// span is encoded once, as OTLP protobuf, into its own buffer and copied
// onto the batch being filled (tracing_wire.go, tracing_export.go); the
// exporter only adds the envelope and sends. The request path allocates
// only the outbound traceparent and the context entry of the span. The
// wire format is OTLP's (decoded with go.opentelemetry.io/proto/otlp in
// the tests, and read by a real Jaeger in the end-to-end test), the ids,
// flags and attribute values are OpenTelemetry's types, the multiple B3
// headers are read by the OpenTelemetry contrib propagator (and the rest
// of the parsing is fuzzed against OpenTelemetry's), and any exporter can
// be plugged in through SpanExporter (the node tests feed the SDK's
// in-memory exporter).

// Tracer makes the spans of one node and exports them. A nil *Tracer is
// tracing off: nothing is recorded and trace headers pass through the
// proxy untouched.
type Tracer struct {
	// rootBound: a trace started here is sampled when the low 63 bits of
	// its id are below it (the SDK's TraceIDRatioBased rule).
	rootBound uint64
	// followClients: requests on listeners without mTLS keep the
	// sampling decision they bring (see StartServer).
	followClients bool
	resource      []attribute.KeyValue
	pool          sync.Pool // of *Span
	pipe          *pipeline
}

// TracerOptions are what a Tracer needs besides its configuration.
type TracerOptions struct {
	// NodeName names the node in the resource (meshgate.node.name).
	NodeName string
	Metrics  *Metrics
	Logger   *slog.Logger
	// Exporter replaces the OTLP exporter of the configuration (tests).
	Exporter SpanExporter
	// BatchInterval is the longest a finished span waits for export;
	// default 1s.
	BatchInterval time.Duration
	// post replaces the OTLP exporter's transport (tests): it gets each
	// request as it would be sent.
	post func(ctx context.Context, body []byte) error
}

// SpanExporter sends finished spans somewhere. ExportSpans is called from
// one goroutine at a time, with a context bounded by the export timeout;
// the spans belong to the tracer and are reused as soon as it returns, so
// an exporter copies whatever it keeps.
type SpanExporter interface {
	ExportSpans(ctx context.Context, spans []*Span) error
	Shutdown(ctx context.Context) error
}

// Resource attribute names set by the tracer.
const (
	AttrNodeName    = "meshgate.node.name"
	AttrMeshService = "meshgate.service.name"
)

// NewTracer starts the tracer of a node from its tracing section (with
// defaults applied). The exporter connects lazily: a collector that is down
// delays nothing here.
func NewTracer(cfg config.Tracing, o TracerOptions) (*Tracer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		return nil, errors.New("tracing: no metrics")
	}
	t := &Tracer{resource: tracingResource(cfg, o.NodeName),
		// A sidecar's plaintext listener serves its own app.
		followClients: cfg.Sampling.FollowsClients() || cfg.MeshService != ""}
	t.pool.New = func() any { return new(Span) }
	ratio := config.DefaultTracingRatio
	if cfg.Sampling.Ratio != nil {
		ratio = *cfg.Sampling.Ratio
	}
	switch {
	case ratio >= 1:
		t.rootBound = 1 << 63
	case ratio > 0:
		t.rootBound = uint64(ratio * (1 << 63))
	}
	exp := o.Exporter
	var enc spanEncoder
	if exp == nil {
		e, err := newOTLPExporter(cfg, t.resource)
		if err != nil {
			return nil, err
		}
		if o.post != nil {
			e.post = o.post
		}
		enc = e
	}
	queue := cfg.QueueSize
	if queue <= 0 {
		queue = config.DefaultTracingQueueSize
	}
	timeout := cfg.ExportTimeout.D()
	if timeout <= 0 {
		timeout = config.DefaultTracingExportTimeout
	}
	interval := o.BatchInterval
	if interval <= 0 {
		interval = time.Second
	}
	t.pipe = newPipeline(t, exp, enc, queue, interval, timeout, o.Metrics, o.Logger)
	return t, nil
}

// tracingResource is the node's resource: who it is, then the file's
// attributes (which may override any of them), sorted by name.
func tracingResource(cfg config.Tracing, node string) []attribute.KeyValue {
	if node == "" {
		node, _ = os.Hostname()
	}
	set := map[string]string{
		"service.name":           "meshgate-edge",
		"service.version":        buildinfo.Version,
		"telemetry.sdk.name":     "meshgate",
		"telemetry.sdk.language": "go",
		"telemetry.sdk.version":  buildinfo.Version,
		AttrNodeName:             node,
	}
	if host, err := os.Hostname(); err == nil {
		set["host.name"] = host
	}
	if cfg.MeshService != "" {
		set["service.name"] = "meshgate-sidecar"
		set[AttrMeshService] = cfg.MeshService
	}
	for k, v := range cfg.Resource {
		set[k] = v
	}
	out := make([]attribute.KeyValue, 0, len(set))
	for k, v := range set {
		out = append(out, attribute.String(validUTF8(k), validUTF8(v)))
	}
	slices.SortFunc(out, func(a, b attribute.KeyValue) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// StartServer begins the server span of a request arriving at a listener:
// the child of the caller's span when the headers carry a trace context
// (W3C, else B3), the root of a new trace otherwise. A new trace is
// sampled at the configured ratio, by its id (so that every node decides
// alike).
//
// A caller's sampling decision (its sampled flag, or a B3 "not sampled"
// without a context) is followed when the caller is a meshgate peer (peer:
// the listener has mTLS), on a sidecar, and, unless sampling.follow_clients
// is false, on an edge's other listeners. Not followed, the request keeps
// its trace id and tracestate, but whether it is sampled is drawn at the
// ratio: by a random number, since the client picked the trace id. A
// caller that leaves the decision to the receiver (B3 without a sampling
// state) gets the same. Nil when t is nil.
func (t *Tracer) StartServer(h http.Header, start time.Time, peer bool) *Span {
	if t == nil {
		return nil
	}
	s := t.get()
	s.kind, s.start = SpanKindServer, start
	rc, ok := extract(h)
	follow := peer || t.followClients
	s.b3 = rc.b3
	switch {
	case ok:
		s.traceID, s.parentID, s.flags, s.traceState = rc.traceID, rc.spanID, rc.flags, rc.state
		s.remoteParent = true
		switch {
		case !follow:
			s.flags = t.draw(s.flags)
		case rc.deferred:
			s.flags = t.decide(s.traceID, s.flags)
		}
	default:
		s.traceID = newTraceID()
		if rc.deny && follow {
			s.flags = 0
		} else {
			s.flags = t.decide(s.traceID, 0)
		}
	}
	s.spanID = newSpanID()
	if s.flags.IsSampled() {
		s.record()
	}
	return s
}

// record makes s a sampled span, with a buffer for its encoding.
func (s *Span) record() {
	s.recording = true
	if s.buf == nil {
		s.buf = make([]byte, 0, 1024)
	}
	s.buf = append(s.buf[:0], tag(2, tagLen), 0, 0) // spanHeader
}

// decide sets the sampled flag of a trace started here.
func (t *Tracer) decide(id trace.TraceID, flags trace.TraceFlags) trace.TraceFlags {
	if binary.BigEndian.Uint64(id[8:16])>>1 < t.rootBound {
		return flags | trace.FlagsSampled
	}
	return flags &^ trace.FlagsSampled
}

// draw sets the sampled flag of a trace at random, at the ratio.
func (t *Tracer) draw(flags trace.TraceFlags) trace.TraceFlags {
	if rand.Uint64()>>1 < t.rootBound {
		return flags | trace.FlagsSampled
	}
	return flags &^ trace.FlagsSampled
}

func (t *Tracer) get() *Span {
	s := t.pool.Get().(*Span)
	*s = Span{tracer: t, buf: s.buf[:0]}
	return s
}

// put returns a span, with its buffer, to the pool.
func (t *Tracer) put(s *Span) {
	if cap(s.buf) > maxSpanBuf {
		s.buf = nil // a rare large span: do not keep its memory
	}
	t.pool.Put(s)
}

// finish takes an ended span: a sampled one is queued for export, unless
// the queue is full; the others go back to the pool.
func (t *Tracer) finish(s *Span) {
	if !s.recording {
		t.put(s)
		return
	}
	t.pipe.enqueue(s)
}

// ForceFlush exports every span finished so far.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.pipe.flush(ctx)
}

// Shutdown exports what is queued (within ctx) and closes the exporter.
// Spans ended afterwards are dropped.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.pipe.shutdown(ctx)
}

// Trace ids come from the runtime's per-thread ChaCha8 generator: no lock,
// and unpredictable, which the W3C specification recommends.
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
