package transform

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
)

func TestBuildErrors(t *testing.T) {
	cases := []struct{ cfg, want string }{
		{`{request: {headers: {set: {X-A: "{nope}"}}}}`, `unknown variable "nope"`},
		{`{request: {headers: {set: {X-A: "{consumer"}}}}`, "unterminated"},
		{`{request: {headers: {set: {X-A: "a}b"}}}}`, "unmatched }"},
		{`{request: {headers: {set: {X-A: "{header.bad name}"}}}}`, "not a header name"},
		{`{request: {headers: {set: {"bad name": x}}}}`, "not a header name"},
		{`{request: {headers: {set: {X-A: "a\nb"}}}}`, "invalid header value"},
		{`{request: {headers: {remove: [Content-Length]}}}`, "cannot be changed"},
		{`{request: {headers: {rename: {Host: X-Host}}}}`, "cannot be changed"},
		{`{request: {status: [{from: 200, to: 201}]}}`, "response side only"},
		{`{response: {query: {set: {a: b}}}}`, "request side only"},
		{`{request: {on_too_large: drop}}`, `"drop" is not reject or pass`},
		{`{request: {body: {from: yaml}}}`, "from"},
		{`{request: {body: {to: accept}}}`, "accept"},
		{`{request: {body: {allow: ["a..b"]}}}`, "request.body"},
		{`{request: {body: {allow: [a], deny: [b]}}}`, "request.body"},
		{`{request: {body: {map: [{op: twist, path: a}]}}}`, "twist"},
		{`{request: {body: {map: [{op: set, path: a, var: nope}]}}}`, `unknown variable "nope"`},
		{`{request: {body: {jq: '.a |'}}}`, "request.body.jq"},
		{`{request: {body: {jq: 'env'}}}`, "request.body.jq"},
		{`{request: {body: {jq: '$undefined'}}}`, "request.body.jq"},
		{`{response: {status: [{from: 200, if_field: "a[]", to: 422}]}}`, "if_field"},
		{`{response: {status: [{from: 200, to: 99}]}}`, "not a status mapping"},
		{`{response: {body: {xml: {root: "1bad"}}, }}`, "xml"},
	}
	for _, tc := range cases {
		_, err := buildErr(parseTransform(t, tc.cfg), http.NotFoundHandler(), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.cfg, err, tc.want)
		} else if !strings.HasPrefix(err.Error(), "transform: ") {
			t.Errorf("%s: error %q does not name the policy", tc.cfg, err)
		}
	}
}

// A route without a transform section gets next itself.
func TestNoSection(t *testing.T) {
	next := http.NotFoundHandler()
	h, err := Policy(Deps{}).Build(&config.Route{Name: "r"}, policy.Env{Route: "r"}, next)
	if err != nil || h == nil {
		t.Fatal(h, err)
	}
	if _, ok := h.(*stage); ok {
		t.Error("a stage without a section")
	}
}

// Metrics without a Transform method count nothing, and do not fail.
func TestMetricsWithoutCounter(t *testing.T) {
	b := Policy(Deps{Metrics: telemetry.NewMetrics()})
	c := parseTransform(t, `{request: {headers: {set: {X-A: b}}}}`)
	h, err := b.Build(&config.Route{Name: "r", Transform: c}, policy.Env{Route: "r"}, &backend{})
	if err != nil {
		t.Fatal(err)
	}
	do(t, h, "GET", "/orders/1", nil, nil)
}

// spans keeps the events of exported spans.
type spans struct{ events chan []telemetry.SpanEvent }

func (s spans) ExportSpans(_ context.Context, sp []*telemetry.Span) error {
	for _, x := range sp {
		s.events <- x.Events()
	}
	return nil
}
func (spans) Shutdown(context.Context) error { return nil }

// Each side adds an event to the request's span, with its result and
// duration, and a reason when it failed or skipped.
func TestTraceEvents(t *testing.T) {
	ratio := 1.0
	exp := spans{events: make(chan []telemetry.SpanEvent, 1)}
	tr, err := telemetry.NewTracer(config.Tracing{Sampling: config.TracingSampling{Ratio: &ratio}},
		telemetry.TracerOptions{Metrics: telemetry.NewMetrics(), Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	span := tr.StartServer(http.Header{}, time.Now(), false)
	if !span.Recording() {
		t.Fatal("not recording")
	}
	b := &backend{header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"a":1,`)}
	h := build(t, `{request: {body: {deny: [x]}}, response: {body: {deny: [x]}}}`, b, nil)
	r := httptest.NewRequest("POST", "/orders/1", strings.NewReader(`{"x":1,"y":2}`))
	r = r.WithContext(telemetry.ContextWithSpan(r.Context(), span))
	h.ServeHTTP(httptest.NewRecorder(), r)
	span.End(time.Now())
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := <-exp.events
	if len(ev) != 2 {
		t.Fatalf("events %+v", ev)
	}
	want := []map[string]string{
		{"meshgate.transform.side": "request", "meshgate.transform.result": "applied"},
		{"meshgate.transform.side": "response", "meshgate.transform.result": "failed", "meshgate.reason": "invalid upstream body: "},
	}
	for i, e := range ev {
		if e.Name != "meshgate.transform" {
			t.Errorf("event %q", e.Name)
		}
		got := map[string]string{}
		for _, kv := range e.Attributes {
			got[string(kv.Key)] = kv.Value.AsString()
		}
		for k, v := range want[i] {
			if !strings.HasPrefix(got[k], v) {
				t.Errorf("event %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
		if got["meshgate.transform.duration_ms"] == "" {
			t.Errorf("event %d has no duration: %v", i, got)
		}
	}
}

func TestTemplates(t *testing.T) {
	x := testExchange(t, "/orders/5")
	v := &vars{x: x, h: http.Header{"X-A": {"1"}, "X-Multi": {"a", "b"}}, q: "a=b%20c&e"}
	cases := []struct{ tmpl, want string }{
		{"plain", "plain"},
		{"", ""},
		{"{consumer}", "acme"},
		{"{{consumer}}", "{consumer}"},
		{"a{{b}}c", "a{b}c"},
		{"{query.a}|{header.x-a}|{path.id}|{tier}", "b c|1|5|gold"},
		{"{query.e}!", "!"},
		{"<{query.none}{claim.none}>", "<>"},
		{"{header.X-Multi}", "a, b"},
	}
	for _, tc := range cases {
		tm, err := compileTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tc.tmpl, err)
		}
		if got := tm.render(v); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}
