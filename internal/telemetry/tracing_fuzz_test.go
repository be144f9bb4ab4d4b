package telemetry

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// FuzzExtract feeds a request's trace headers (traceparent, tracestate,
// single and multiple B3) to extract, the parser every request goes
// through. It must not panic; what it accepts must be a valid context
// whose next hop's traceparent parses back to the same ids; a valid
// traceparent wins over B3, and an invalid one starts a new trace (B3 is
// not consulted then). Without a traceparent, B3 must read as the
// OpenTelemetry B3 propagator reads it: the same context, sampled flag
// and deferred decision (which the propagator shows by what it writes
// back). Any B3 header is remembered, for Inject to remove.
func FuzzExtract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE", "", "", "", "")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", "", "", "", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra", "a=1,b=2", "", "", "", "")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", "", "", "", "")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", "", "", "")
	f.Add("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "", "", "", "", "")
	f.Add("", "", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", "", "", "")
	f.Add("", "", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1", "", "", "")
	f.Add("", "", "0", "", "", "")
	f.Add("", "", "", "463ac35c9f6413ad48485a3953bb6124", "0020000000000001", "1")
	f.Add("", "", "", "48485a3953bb6124", "0020000000000001", "")
	f.Add("garbage", "=,=", "-", "x", "y", "z")
	// An invalid single header next to valid multiple ones: the state is
	// the multiple headers'.
	f.Add("", "", "-x", "463ac35c9f6413ad48485a3953bb6124", "0020000000000001", "1")
	f.Add("", "", "-", "463ac35c9f6413ad48485a3953bb6124", "0020000000000001", "")
	// Sampling only: a deny starts an unsampled trace; with a context in
	// the multiple headers, they win.
	f.Add("", "", "0", "", "", "")
	f.Add("", "", "0", "463ac35c9f6413ad48485a3953bb6124", "0020000000000001", "1")
	f.Add("", "", "", "", "", "false")
	// B3 next to a valid traceparent: not read, but remembered.
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "0", "", "", "")
	f.Add("", "", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d-05e3ac9a4f6e3b90", "", "", "")
	f.Add("", "", "e457b5a2e4d86bd1-e457b5a2e4d86bd1x1", "", "", "")
	f.Fuzz(func(t *testing.T, traceparent, tracestate, b3single, b3trace, b3span, b3sampled string) {
		h := http.Header{}
		set := func(k, v string) {
			if v != "" {
				h[k] = []string{v}
			}
		}
		set("Traceparent", traceparent)
		set("Tracestate", tracestate)
		set("B3", b3single)
		set("X-B3-Traceid", b3trace)
		set("X-B3-Spanid", b3span)
		set("X-B3-Sampled", b3sampled)
		rc, ok := extract(h)
		if b3 := b3single != "" || b3trace != "" || b3span != "" || b3sampled != ""; rc.b3 != b3 {
			t.Fatalf("b3 %v for B3 headers %v", rc.b3, b3)
		}
		if rc.deny && ok {
			t.Fatalf("a deny with a context: %+v", rc)
		}
		if traceparent == "" {
			// As the propagator reads it.
			ctx := b3Propagator.Extract(context.Background(), propagation.HeaderCarrier(h))
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != ok {
				t.Fatalf("ok %v, the B3 propagator %v (%v)", ok, sc.IsValid(), sc)
			}
			if ok {
				back := http.Header{}
				b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)).Inject(ctx, propagation.HeaderCarrier(back))
				deferred := back.Get("X-B3-Sampled") == "" && back.Get("X-B3-Flags") == ""
				if b3single == "d" {
					// A lone "b3: d" next to multiple headers: the
					// propagator takes the context and its sampled flag
					// from the multiple headers, but keeps the single
					// header's debug flag (which it writes back as
					// X-B3-Flags: 1). The state here is the multiple
					// headers' alone.
					deferred = b3sampled == ""
				}
				if sc.TraceID() != rc.traceID || sc.SpanID() != rc.spanID || sc.IsSampled() != rc.flags.IsSampled() || deferred != rc.deferred {
					t.Fatalf("read %s/%s sampled %v deferred %v; the B3 propagator %v deferred %v",
						rc.traceID, rc.spanID, rc.flags.IsSampled(), rc.deferred, sc, deferred)
				}
			}
		}
		if !ok {
			return
		}
		if !rc.traceID.IsValid() || !rc.spanID.IsValid() {
			t.Fatalf("accepted an invalid context: %+v", rc)
		}
		if rc.flags&^0x03 != 0 {
			t.Fatalf("flags beyond sampled and random kept: %x", rc.flags)
		}
		if rc.state != "" {
			if _, err := trace.ParseTraceState(rc.state); err != nil {
				t.Fatalf("passes on an invalid tracestate %q: %v", rc.state, err)
			}
			if strings.ContainsAny(rc.state, "\r\n") {
				t.Fatalf("tracestate with a line break: %q", rc.state)
			}
		}
		s := &Span{traceID: rc.traceID, spanID: rc.spanID, flags: rc.flags}
		tp := s.traceparent()
		back, ok := parseTraceparent(tp)
		if !ok || back.traceID != rc.traceID || back.spanID != rc.spanID || back.flags != rc.flags {
			t.Fatalf("%q does not parse back: %+v %v", tp, back, ok)
		}
		if w3c, ok := parseTraceparent(traceparent); ok && (rc.fromB3 || rc.traceID != w3c.traceID || rc.spanID != w3c.spanID) {
			t.Fatalf("a valid traceparent %q lost to %+v", traceparent, rc)
		} else if !ok && traceparent != "" {
			t.Fatalf("an invalid traceparent %q let %+v through", traceparent, rc)
		}
	})
}

// FuzzParseTraceparent checks the W3C parser alone against
// OpenTelemetry's for every input. They differ on purpose in two places:
// OpenTelemetry takes a version-00 header with a trailing "-" (the
// specification fixes version 00 at 55 characters), and refuses a
// version-00 header with flag bits beyond sampled and random, which this
// parser ignores as the specification asks of unknown flags.
func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what")
	f.Fuzz(func(t *testing.T, v string) {
		rc, ok := parseTraceparent(v)
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.HeaderCarrier(http.Header{"Traceparent": {v}})))
		switch {
		case ok && sc.IsValid():
			if sc.TraceID() != rc.traceID || sc.SpanID() != rc.spanID || sc.IsSampled() != rc.flags.IsSampled() {
				t.Fatalf("%q: ours %x/%x/%v, OpenTelemetry %v", v, rc.traceID, rc.spanID, rc.flags, sc)
			}
		case ok:
			if flags, _ := hexByte(v[53], v[54]); !strings.HasPrefix(v, "00-") || flags <= 3 {
				t.Fatalf("%q: accepted, OpenTelemetry refuses it", v)
			}
		case sc.IsValid():
			if !strings.HasPrefix(v, "00-") || len(v) != 56 || v[55] != '-' {
				t.Fatalf("%q: refused, OpenTelemetry takes it", v)
			}
		}
	})
}
