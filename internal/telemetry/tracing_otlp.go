package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"reflect"
	"time"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// OTLP export. A batch is one ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1/trace_service.proto):
//
//	ExportTraceServiceRequest { 1: ResourceSpans resource_spans }
//	ResourceSpans { 1: Resource resource, 2: ScopeSpans scope_spans }
//	Resource      { 1: KeyValue attributes }
//	ScopeSpans    { 1: InstrumentationScope scope, 2: Span spans }
//	Span { 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name,
//	       6 kind, 7 start_time_unix_nano (fixed64), 8 end_time_unix_nano,
//	       9 attributes, 11 events, 12 dropped_events_count, 15 status,
//	       16 flags (fixed32) }
//	Event  { 1 time_unix_nano (fixed64), 2 name, 3 attributes }
//	Status { 2 message, 3 code }
//	KeyValue { 1 key, 2 AnyValue value }
//	AnyValue { 1 string_value | 2 bool_value | 3 int_value }
//
// Each span is encoded as it is built (tracing_wire.go); a request is the
// envelope and the spans' encodings one after the other (the pipeline
// appends them, tracing_export.go). That keeps the request path free of
// allocations. The transport is OpenTelemetry's own OTLP client
// (otlptracegrpc or otlptracehttp, an otlptrace.Client): retries with
// exponential backoff on the errors the specification calls transient
// (honouring the collector's throttling), gzip, TLS and headers are its.
// The client takes the official protobuf types; the batch is handed to it
// without being decoded (see send).

// otlpExporter sends batches of encoded spans over OTLP (a spanEncoder).
type otlpExporter struct {
	enc    otlpEncoder
	client otlptrace.Client
	// post replaces the decoding and the client (tests): it gets each
	// request as it would be sent.
	post func(ctx context.Context, body []byte) error
}

// OTLPTracesPath is the OTLP/HTTP path of traces.
const OTLPTracesPath = "/v1/traces"

// Retries: the first after about a second, the wait doubling (with
// jitter) up to 5s, and none begun once the export timeout would be
// exceeded; the export's context (the timeout) bounds them in any case.
// The SDK's defaults (5s, 30s, a minute) outlast meshgate's 10s export
// timeout, within which a batch must be done: exports go one at a time and
// spans wait in the bounded queue meanwhile.
const (
	retryInitial = time.Second
	retryMax     = 5 * time.Second
)

// newOTLPExporter makes the OTLP client of the configuration.
//
// The OpenTelemetry clients read the OTEL_EXPORTER_OTLP_* variables
// themselves, under their options. The configuration has already taken
// them in (config/tracing_env.go, where the file wins), so every setting
// those variables touch is passed here explicitly, and an option always
// wins over the environment: endpoint, scheme and path, TLS, headers,
// compression, timeout, and for OTLP/HTTP the encoding (a stray
// OTEL_EXPORTER_OTLP_PROTOCOL=http/json would otherwise switch it).
func newOTLPExporter(cfg config.Tracing, resource []attribute.KeyValue) (*otlpExporter, error) {
	e := &otlpExporter{enc: newOTLPEncoder(resource)}
	var tlsCfg *tls.Config
	if !cfg.Insecure {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pool, err := config.LoadCAFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tracing.ca_file: %w", err)
			}
			tlsCfg.RootCAs = pool
		}
		tlsCfg.ServerName = cfg.ServerName
		if cfg.CertFile != "" {
			certFile, keyFile := cfg.CertFile, cfg.KeyFile
			// Read at each handshake: a rotated pair serves from the next
			// connection, and handshakes are rare (connections persist).
			tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return nil, fmt.Errorf("tracing client certificate: %w", err)
				}
				return &c, nil
			}
		}
	}
	timeout := cfg.ExportTimeout.D()
	if timeout <= 0 {
		timeout = config.DefaultTracingExportTimeout
	}
	useGzip := cfg.Compression != "none" // "" (not defaulted: tests) is the default, gzip
	ua := "meshgate/" + buildinfo.Version
	headers := maps.Clone(cfg.Headers)
	if headers == nil {
		headers = map[string]string{} // an empty map, not nil: it must replace the environment's
	}
	switch cfg.Protocol {
	case "http":
		scheme := "https://"
		if cfg.Insecure {
			scheme = "http://"
		}
		// Our own transport, as before the client: no proxy from the
		// environment (HTTPS_PROXY is for the workload's traffic, the
		// collector is named by the configuration), few idle connections
		// (one export at a time).
		tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
			DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2: true}
		headers["User-Agent"] = ua // set after the client's own
		compression := otlptracehttp.NoCompression
		if useGzip {
			compression = otlptracehttp.GzipCompression
		}
		e.client = otlptracehttp.NewClient(
			// The URL sets host, path and scheme, so that neither
			// OTEL_EXPORTER_OTLP_ENDPOINT nor _INSECURE can change them.
			otlptracehttp.WithEndpointURL(scheme+cfg.Endpoint+OTLPTracesPath),
			// nil when insecure: clears a TLS configuration read from
			// OTEL_EXPORTER_OTLP_CERTIFICATE, which the client would
			// refuse next to plaintext.
			otlptracehttp.WithTLSClientConfig(tlsCfg),
			otlptracehttp.WithHTTPClient(&http.Client{Transport: tr}),
			otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
			otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithCompression(compression),
			otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true,
				InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: timeout}),
		)
	default: // grpc
		creds := insecure.NewCredentials()
		if tlsCfg != nil {
			creds = credentials.NewTLS(tlsCfg)
		}
		// The client's own dial options come first, so these win. The
		// compressor is one: "none" has no client option (WithCompressor
		// takes only gzip, and would leave one the environment set), so
		// it is the identity encoding, gRPC's name for none, and gzip is
		// set here too for symmetry.
		compressor := encoding.Identity
		if useGzip {
			compressor = gzip.Name
		}
		e.client = otlptracegrpc.NewClient(
			otlptracegrpc.WithEndpoint(cfg.Endpoint),
			// Credentials always, plaintext included: they take precedence
			// over OTEL_EXPORTER_OTLP_INSECURE and _CERTIFICATE.
			otlptracegrpc.WithTLSCredentials(creds),
			otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithTimeout(timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true,
				InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: timeout}),
			// One call: each WithDialOption replaces the previous one's.
			otlptracegrpc.WithDialOption(grpc.WithUserAgent(ua),
				grpc.WithDefaultCallOptions(grpc.UseCompressor(compressor))),
		)
	}
	// Start connects nothing yet (gRPC connects lazily; OTLP/HTTP per
	// export): a collector that is down delays nothing here.
	if err := e.client.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return e, nil
}

// begin starts a request in buf.
func (e *otlpExporter) begin(buf []byte) []byte { return e.enc.begin(buf) }

// send finishes the request begun in buf and uploads it. A partial
// success is returned as a *PartialSuccessError.
//
// The client takes []*tracepb.ResourceSpans. Decoding the batch into those
// types costs about 70 allocations and several microseconds per span
// (BenchmarkExportBatch: ten times the rest of the exporter's work, on the
// cores that serve requests), only for the client to encode them back into
// the same bytes. So the batch's one ResourceSpans goes as it is: a message
// whose content is the encoded resource and scope spans, held as the
// message's unknown fields, which protobuf keeps and marshals verbatim. The
// request on the wire is byte for byte the one encoded here (the tests
// decode it with the official types; a real Jaeger reads it). The message
// aliases buf, which is not reused before UploadTraces returns, and the
// client does not keep the message beyond that (each attempt marshals it
// afresh into the transport's own buffer).
func (e *otlpExporter) send(ctx context.Context, buf []byte) error {
	body := e.enc.finish(buf)
	if e.post != nil {
		return e.post(ctx, body)
	}
	rs, err := rawResourceSpans(body)
	if err != nil {
		return err
	}
	return uploadResult(e.client.UploadTraces(ctx, []*tracepb.ResourceSpans{rs}))
}

// rawResourceSpans wraps the ResourceSpans of an encoded request (its field
// 1, which finish writes once) as a message holding it as unknown fields.
func rawResourceSpans(req []byte) (*tracepb.ResourceSpans, error) {
	num, typ, n := protowire.ConsumeTag(req)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return nil, errors.New("tracing: a batch does not start with its resource spans") // a bug of the encoder
	}
	content, m := protowire.ConsumeBytes(req[n:])
	if m < 0 || n+m != len(req) {
		return nil, errors.New("tracing: a batch is not one resource spans") // a bug of the encoder
	}
	rs := &tracepb.ResourceSpans{}
	rs.ProtoReflect().SetUnknown(protoreflect.RawFields(content))
	return rs, nil
}

// Shutdown closes the client: within ctx, an upload under way is finished,
// then the connection closed.
func (e *otlpExporter) Shutdown(ctx context.Context) error { return e.client.Stop(ctx) }

// uploadResult reads the error of UploadTraces. The clients report a
// partial success (the collector refused some spans, or warned) as an error
// of their internal package, otlptrace…/internal.PartialSuccess, joined
// (errors.Join) with the export's errors, if any; it is not reachable with
// errors.As from here, and the only other way out would be the global
// otel.Handle. So it is recognised by its type name and fields, by
// reflection: an error made only of partial successes becomes a
// *PartialSuccessError (the spans rejected are counted as such, the rest
// as exported); any other error in it is a failure of the whole export.
// TestPartialSuccessFromClients pins this against both clients.
func uploadResult(err error) error {
	if err == nil {
		return nil
	}
	var ps PartialSuccessError
	if !onlyPartialSuccess(err, &ps) {
		return err
	}
	return &ps
}

// onlyPartialSuccess reports whether err is partial successes only (joined
// or alone), adding up what they rejected into ps.
func onlyPartialSuccess(err error, ps *PartialSuccessError) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // the tree, one level at a time
		for _, e := range joined.Unwrap() {
			if e != nil && !onlyPartialSuccess(e, ps) {
				return false
			}
		}
		return true
	}
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.Type().Name() != "PartialSuccess" {
		return false
	}
	n, msg := v.FieldByName("RejectedItems"), v.FieldByName("ErrorMessage")
	if n.Kind() != reflect.Int64 || msg.Kind() != reflect.String {
		return false
	}
	ps.Rejected += n.Int()
	if ps.Message == "" {
		ps.Message = msg.String()
	}
	return true
}

// otlpEncoder writes ExportTraceServiceRequests. The resource and the
// instrumentation scope are encoded once.
type otlpEncoder struct {
	resource []byte // ResourceSpans.resource, tag included
	scope    []byte // ScopeSpans.scope, tag included
}

func newOTLPEncoder(resource []attribute.KeyValue) otlpEncoder {
	var res []byte
	for _, kv := range resource {
		res = appendResourceAttr(res, tag(1, tagLen), kv)
	}
	var e otlpEncoder
	e.resource = protowire.AppendTag(nil, 1, protowire.BytesType)
	e.resource = protowire.AppendBytes(e.resource, res)
	var scope []byte
	scope = appendStr(scope, tag(1, tagLen), "github.com/meshgate/meshgate")
	scope = appendStr(scope, tag(2, tagLen), buildinfo.Version)
	e.scope = protowire.AppendTag(nil, 1, protowire.BytesType)
	e.scope = protowire.AppendBytes(e.scope, scope)
	return e
}

// The batch's envelope (ResourceSpans and ScopeSpans, whose lengths are
// known last) is written at the end into room left for it in front of the
// spans, right-aligned: the request is a suffix of the buffer, nothing is
// moved.

// headRoom is the room begin leaves for the envelope: two tags, two
// lengths of up to 5 bytes, the resource and the scope.
func (e *otlpEncoder) headRoom() int { return 1 + 5 + len(e.resource) + 1 + 5 + len(e.scope) }

// begin starts a request in buf (reused from its start).
func (e *otlpEncoder) begin(buf []byte) []byte {
	return append(buf[:0], make([]byte, e.headRoom())...)
}

// finish writes the envelope of the request begun in buf and returns the
// request, a suffix of buf.
func (e *otlpEncoder) finish(buf []byte) []byte {
	head := e.headRoom()
	scopeSpans := len(e.scope) + len(buf) - head
	resourceSpans := len(e.resource) + 1 + sizeVarint(uint64(scopeSpans)) + scopeSpans
	var env [1 + 10 + 1 + 10]byte
	h := env[:0]
	h = append(h, tag(1, tagLen))
	h = appendVarint(h, uint64(resourceSpans))
	n1 := len(h)
	h = append(h, tag(2, tagLen))
	h = appendVarint(h, uint64(scopeSpans))
	start := head - (len(h) + len(e.resource) + len(e.scope))
	w := buf[start:]
	w = w[copy(w, h[:n1]):]
	w = w[copy(w, e.resource):]
	w = w[copy(w, h[n1:]):]
	copy(w, e.scope)
	return buf[start:]
}
