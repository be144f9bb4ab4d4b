package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/transform"
)

// The backend's document is 1 KiB of valid JSON; each edge config loads,
// and the transform stage it configures turns the document into what the
// suite's check accepts, while the untouched document fails every check
// but plain's (so an edge whose transform is not applied is caught).
func TestTransformConfigsAndChecks(t *testing.T) {
	if len(transformDoc) != transformDocSize || !json.Valid(transformDoc) {
		t.Fatalf("document: %d bytes, valid JSON %v:\n%s", len(transformDoc), json.Valid(transformDoc), transformDoc)
	}
	for i, s := range tfSpecs() {
		h, hasTransform := transformStage(t, s, transformBackend)
		if hasTransform != (i > 0) {
			t.Fatalf("%s: transform section: %v", s.name, hasTransform)
		}
		if hasTransform {
			if err := s.check("application/json", transformDoc); err == nil {
				t.Errorf("%s: the untouched document passes the check", s.name)
			}
		}
		req := transformRequest()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", s.name, resp.StatusCode, body)
		}
		if err := s.check(resp.Header.Get("Content-Type"), body); err != nil {
			t.Errorf("%s: %v\n%s", s.name, err, body)
		}
	}
}

// transformBackend answers the document, as the suite's backend does.
var transformBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(transformDoc))}
	_, _ = w.Write(transformDoc)
})

// transformStage loads the edge config of s and returns its route's
// transform stage in front of next (next itself for plain), and whether
// the route has a transform.
func transformStage(tb testing.TB, s *tfTarget, next http.Handler) (http.Handler, bool) {
	tb.Helper()
	cfg, err := config.Parse(s.name+".yaml", []byte(transformEdgeConfig("127.0.0.1:18000", "127.0.0.1:18001", "127.0.0.1:18002", s.transform)))
	if err != nil {
		tb.Fatalf("%s: %v", s.name, err)
	}
	if len(cfg.Routes) != 1 || !cfg.Admin.Pprof || cfg.Log.Access != "off" {
		tb.Fatalf("%s: config = %+v", s.name, cfg)
	}
	rt := &cfg.Routes[0]
	if rt.Transform == nil {
		return next, false
	}
	b := transform.Policy(transform.Deps{Logger: slog.New(slog.DiscardHandler)})
	h, err := b.Build(rt, policy.Env{Route: rt.Name, Scope: policy.NewScope(nil)}, next)
	if err != nil {
		tb.Fatalf("%s: build: %v", s.name, err)
	}
	return h, true
}

func transformRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/orders/8f3a2c71", nil)
	return req.WithContext(exchange.With(context.Background(), &exchange.Exchange{Path: req.URL.Path}))
}

// discardWriter is a response writer that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkTransformStage is the work of each edge's transform stage on
// the suite's document, without the network: what the suite's ratios
// cost in CPU, and where (-cpuprofile).
//
//	go test -run XXX -bench TransformStage -benchmem -cpuprofile /tmp/tf.pprof ./internal/bench
func BenchmarkTransformStage(b *testing.B) {
	for _, s := range tfSpecs() {
		b.Run(s.key, func(b *testing.B) {
			h, _ := transformStage(b, s, transformBackend)
			b.SetBytes(int64(len(transformDoc)))
			b.ReportAllocs()
			for b.Loop() {
				// A request and an exchange each time, as the edge makes:
				// the stage keeps its decisions in the exchange.
				h.ServeHTTP(&discardWriter{h: http.Header{}}, transformRequest())
			}
		})
	}
}

func TestTransformJSON(t *testing.T) {
	r := &transformRun{targets: tfSpecs()}
	r.targets[0].rps = []float64{100, 300, 200}
	r.targets[1].rps, r.targets[1].ratios = []float64{90}, []float64{0.9, 0.7, 0.8}
	frag, err := json.Marshal(transformJSON(r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(frag, &got); err != nil {
		t.Fatal(err)
	}
	if got["rps_plain"] != 200.0 || got["rps_filter"] != 90.0 || got["ratio_filter"] != 0.8 || got["rounds"] != 3.0 ||
		got["target_filter"] != transformTargetCheap || got["target_jq"] != transformTargetHeavy || got["body_bytes"] != 1024.0 {
		t.Errorf("fragment = %s", frag)
	}
	if _, ok := got["ratio_jq"]; ok {
		t.Errorf("ratio of an unmeasured edge: %s", frag)
	}
	if _, ok := got["error"]; ok {
		t.Errorf("error without problems: %s", frag)
	}
}
