package telemetry

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
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
// appends them, tracing_export.go). It is sent as OTLP/gRPC
// (TraceService/Export, the bytes passed through a codec that does not
// re-marshal them) or OTLP/HTTP (POST /v1/traces, application/x-protobuf).
// The answer's partial_success is read for rejected spans.

// otlpExporter sends batches of encoded spans over OTLP (a spanEncoder).
type otlpExporter struct {
	enc   otlpEncoder
	post  func(ctx context.Context, body []byte) error
	close func() error
}

// OTLPTracesPath is the OTLP/HTTP path of traces.
const OTLPTracesPath = "/v1/traces"

const otlpExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

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
	ua := "meshgate/" + buildinfo.Version
	switch cfg.Protocol {
	case "http":
		scheme := "https://"
		if cfg.Insecure {
			scheme = "http://"
		}
		url := scheme + cfg.Endpoint + OTLPTracesPath
		tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
			DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
		client := &http.Client{Transport: tr}
		hdr := http.Header{"Content-Type": {"application/x-protobuf"}, "User-Agent": {ua}}
		for k, v := range cfg.Headers {
			hdr.Set(k, v)
		}
		e.post = func(ctx context.Context, body []byte) error { return postOTLP(ctx, client, url, hdr, body) }
		e.close = func() error { tr.CloseIdleConnections(); return nil }
	default: // grpc
		creds := insecure.NewCredentials()
		if tlsCfg != nil {
			creds = credentials.NewTLS(tlsCfg)
		}
		conn, err := grpc.NewClient(cfg.Endpoint, grpc.WithTransportCredentials(creds), grpc.WithUserAgent(ua))
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		md := metadata.MD{}
		for k, v := range cfg.Headers {
			md.Set(k, v)
		}
		e.post = func(ctx context.Context, body []byte) error {
			if len(md) > 0 {
				ctx = metadata.NewOutgoingContext(ctx, md)
			}
			var resp exportResponse
			if err := conn.Invoke(ctx, otlpExportMethod, rawMessage(body), &resp, grpc.ForceCodecV2(otlpCodec{})); err != nil {
				return err
			}
			return resp.err()
		}
		e.close = conn.Close
	}
	return e, nil
}

// begin starts a request in buf.
func (e *otlpExporter) begin(buf []byte) []byte { return e.enc.begin(buf) }

// send finishes the request begun in buf and sends it.
func (e *otlpExporter) send(ctx context.Context, buf []byte) error {
	return e.post(ctx, e.enc.finish(buf))
}

// Shutdown closes the connection.
func (e *otlpExporter) Shutdown(context.Context) error { return e.close() }

func postOTLP(ctx context.Context, client *http.Client, url string, hdr http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = hdr.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		msg := string(data)
		if len(msg) > 200 || bytes.ContainsAny(data, "\x00") {
			msg = ""
		}
		return fmt.Errorf("OTLP/HTTP export: %s %s", resp.Status, msg)
	}
	var r exportResponse
	if resp.Header.Get("Content-Type") == "application/x-protobuf" {
		_ = r.decode(data)
	}
	return r.err()
}

// rawMessage is an encoded request, passed through otlpCodec as it is.
type rawMessage []byte

// exportResponse is ExportTraceServiceResponse's partial_success
// { 1: rejected_spans, 2: error_message }.
type exportResponse struct {
	rejected int64
	message  string
}

func (r *exportResponse) err() error {
	if r.rejected > 0 {
		return &PartialSuccessError{Rejected: r.rejected, Message: r.message}
	}
	return nil
}

func (r *exportResponse) decode(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			ps, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			for len(ps) > 0 {
				num, typ, n := protowire.ConsumeTag(ps)
				if n < 0 {
					return protowire.ParseError(n)
				}
				ps = ps[n:]
				switch {
				case num == 1 && typ == protowire.VarintType:
					v, n := protowire.ConsumeVarint(ps)
					if n < 0 {
						return protowire.ParseError(n)
					}
					r.rejected, ps = int64(v), ps[n:]
				case num == 2 && typ == protowire.BytesType:
					v, n := protowire.ConsumeBytes(ps)
					if n < 0 {
						return protowire.ParseError(n)
					}
					r.message, ps = string(v), ps[n:]
				default:
					n := protowire.ConsumeFieldValue(num, typ, ps)
					if n < 0 {
						return protowire.ParseError(n)
					}
					ps = ps[n:]
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// otlpCodec sends rawMessage bytes as they are and reads the answer into
// an exportResponse. Named "proto": the content type is
// application/grpc+proto, as any OTLP receiver expects.
type otlpCodec struct{}

func (otlpCodec) Name() string { return "proto" }

func (otlpCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlp codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m)}, nil
}

func (otlpCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*exportResponse)
	if !ok {
		return fmt.Errorf("otlp codec: cannot unmarshal into %T", v)
	}
	return r.decode(data.Materialize())
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
