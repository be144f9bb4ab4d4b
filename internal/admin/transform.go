package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/route"
	"github.com/meshgate/meshgate/internal/transform"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// MaxTransformSample bounds a TransformTest sample's body, and the body
// of its answer (the first MaxTransformSample bytes are sent back).
// meshctl checks the same bound before sending.
const MaxTransformSample = 4 << 20

// maxRecvMsg is the largest message the admin API takes: a sample with
// its headers and a route's YAML.
const maxRecvMsg = MaxTransformSample + 1<<20

// Outcomes of a TransformTest.
const (
	outcomeRequest  = "request"  // the request as forwarded upstream
	outcomeResponse = "response" // the response as the client gets it
	outcomeError    = "error"    // the gateway's own error answer
)

// TransformTest implements adminv1.AdminServer: it builds the route's
// transform stage as the node does (from the effective configuration, or
// from the route given as YAML overlaid on it) and runs it on the sample
// with httptest-style handlers in place of the rest of the chain: on the
// request side the next stage only records what it gets; on the response
// side it answers with the sample. Nothing is called and nothing counted.
func (s *Server) TransformTest(ctx context.Context, r *adminv1.TransformTestRequest) (*adminv1.TransformTestResponse, error) {
	if len(r.Body) > MaxTransformSample {
		return nil, status.Errorf(codes.InvalidArgument, "the sample's body is %d bytes: at most %d (4 MiB)", len(r.Body), MaxTransformSample)
	}
	cfg := s.b.Effective()
	if cfg == nil {
		return nil, status.Error(codes.Unavailable, "the node has no configuration yet")
	}
	rt, cfg, err := transformRoute(cfg, r.Route, r.RouteYaml)
	if err != nil {
		return nil, err
	}
	if rt.Transform == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "route %q has no transform: the sample would pass unchanged", rt.Name)
	}
	side := "request"
	if r.Response {
		side = "response"
	}
	if r.Response && rt.Transform.Response == nil || !r.Response && rt.Transform.Request == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "route %q has no %s transform: the sample would pass unchanged", rt.Name, side)
	}
	run, err := newTransformRun(cfg, rt, r)
	if err != nil {
		return nil, err
	}

	// The stage counts and logs into rec only: a dry run is not traffic.
	rec := &runLog{}
	log := slog.New(rec)
	env := policy.Env{Route: rt.Name, Scope: policy.NewScope(nil), Logger: log}
	defer env.Scope.Close()
	stage, err := transform.Policy(transform.Deps{Counter: rec, Logger: log}).Build(rt, env, run)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "route %q: %v", rt.Name, err)
	}

	req, x := run.request(ctx)
	w := &sampleWriter{h: http.Header{}}
	stage.ServeHTTP(exchange.Recorder(w, x), req)

	out := &adminv1.TransformTestResponse{Route: rt.Name, Notes: run.notes}
	switch {
	case x.Error != nil:
		out.Outcome, out.Error, out.Reason = outcomeError, x.Error.Name, x.Reason
	case !r.Response && run.saw != nil:
		out.Outcome = outcomeRequest
	case r.Response && run.answered:
		out.Outcome = outcomeResponse
	default:
		// The stage answered by itself, without an error of the table.
		out.Outcome, out.Reason = outcomeError, x.Reason
	}
	if out.Outcome == outcomeRequest {
		fw := run.saw
		out.Method, out.Path, out.Headers = fw.method, fw.path, headerFields(fw.header)
		out.Body, out.BodySize = fw.body, fw.size
	} else {
		out.Status = int32(w.status)
		if w.status == 0 {
			out.Status = http.StatusOK
		}
		h := w.sent
		if h == nil {
			h = w.h
		}
		out.Headers, out.Body, out.BodySize = headerFields(h), w.body.Bytes(), w.size
	}
	for _, res := range rec.results() {
		if res.Side == side {
			out.Results = append(out.Results, res)
		}
	}
	out.Notes = append(out.Notes, rec.lines()...)
	return out, nil
}

// transformRoute is the route to run and the configuration it is part of:
// the effective configuration's route, or the one of routeYAML overlaid on
// it and checked as applying it would be.
func transformRoute(cfg *config.Config, name, routeYAML string) (*config.Route, *config.Config, error) {
	if routeYAML != "" {
		n, err := config.ResourceName(config.KindRoute, []byte(routeYAML))
		if err != nil {
			return nil, nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if name != "" && name != n {
			return nil, nil, status.Errorf(codes.InvalidArgument, "the route given is %q, not %q", n, name)
		}
		next, err := config.Overlay(cfg, []config.Resource{{Kind: config.KindRoute, Name: n, Value: []byte(routeYAML)}})
		if err != nil {
			return nil, nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if i := slices.IndexFunc(next.Routes, func(r config.Route) bool { return r.Name == n }); i >= 0 {
			return &next.Routes[i], next, nil
		}
		return nil, nil, status.Errorf(codes.FailedPrecondition, "route %q names none of this node's listeners: it would not apply here", n)
	}
	if name == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "no route: name one, or give one as YAML")
	}
	var names []string
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return &cfg.Routes[i], cfg, nil
		}
		names = append(names, cfg.Routes[i].Name)
	}
	return nil, nil, notFound(config.KindRoute, name, names)
}

// transformRun is one run of a stage on a sample: the request it serves,
// and the next stage, which records what reaches it and, on the response
// side, answers with the sample.
type transformRun struct {
	r        *adminv1.TransformTestRequest
	method   string
	u        *url.URL
	host     string
	header   http.Header
	body     []byte
	x        *exchange.Exchange
	notes    []string
	saw      *forwarded
	answered bool
}

// forwarded is the request as the next stage got it.
type forwarded struct {
	method, path string
	header       http.Header
	body         []byte
	size         int64
}

func newTransformRun(cfg *config.Config, rt *config.Route, r *adminv1.TransformTestRequest) (*transformRun, error) {
	run := &transformRun{r: r, method: r.Method, host: r.Host}
	if !r.Response {
		run.body = r.Body
	}
	if run.method == "" {
		run.method = http.MethodGet
		if len(run.body) > 0 {
			run.method = http.MethodPost
		}
	}
	if !validToken(run.method) {
		return nil, status.Errorf(codes.InvalidArgument, "method %q is not an HTTP method", run.method)
	}
	target := r.Path
	if target == "" {
		p := rt.Match.Path
		switch {
		case p == nil:
			target = "/"
		case p.Exact != "":
			target = p.Exact
		case p.Prefix != "":
			target = p.Prefix
		default:
			return nil, status.Errorf(codes.InvalidArgument, "route %q matches paths by a template or an expression: give the sample's path", rt.Name)
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(target, "/") {
		return nil, status.Errorf(codes.InvalidArgument, "path %q: want /path?query", target)
	}
	run.u = u
	norm, err := route.NormalizePath(u.Path)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "path %q: %v", target, err)
	}
	if run.host == "" {
		run.host = "localhost"
		for _, h := range rt.Match.Hosts {
			if !strings.HasPrefix(h, "*") {
				run.host = h
				break
			}
		}
	}
	if run.header, err = headerOf("request", r.RequestHeaders); err != nil {
		return nil, err
	}
	if r.Response {
		if r.Status != 0 && (r.Status < 200 || r.Status > 599) {
			return nil, status.Errorf(codes.InvalidArgument, "status %d: want 200..599", r.Status)
		}
		if _, err := headerOf("response", r.ResponseHeaders); err != nil {
			return nil, err
		}
	}
	clientIP := "192.0.2.1"
	if r.ClientIp != "" {
		a, err := netip.ParseAddr(r.ClientIp)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "client IP %q: %v", r.ClientIp, err)
		}
		clientIP = a.String()
	}

	x := &exchange.Exchange{Start: time.Now(), Listener: "transform-test", ClientIP: clientIP, RequestID: testRequestID(),
		Path: norm, Scheme: "http", Consumer: r.Consumer}
	if r.Consumer != "" {
		// As the auth stage admits it: its tier, and the headers it sets.
		if c := cfg.Consumer(r.Consumer); c != nil {
			x.Tier = c.Tier
		} else {
			run.notes = append(run.notes, fmt.Sprintf("consumer %q is none of the node's", r.Consumer))
		}
		if x.Tier == "" && slices.ContainsFunc(cfg.Tiers, func(t config.Tier) bool { return t.Name == config.TierDefault }) {
			x.Tier = config.TierDefault
		}
		run.header[config.HeaderConsumer] = []string{x.Consumer}
		if x.Tier != "" {
			run.header[config.HeaderTier] = []string{x.Tier}
		}
		if rt.Auth == nil {
			run.notes = append(run.notes, fmt.Sprintf("route %q has no auth: its requests have no consumer", rt.Name))
		}
	}
	if len(r.Claims) > 0 {
		claims := r.Claims
		x.Claim = func(name string) (string, bool) { v, ok := claims[name]; return v, ok }
	}
	// The route's match gives the template's parameters ({path.NAME}).
	table, err := route.Compile([]config.Route{*rt})
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "route %q: %v", rt.Name, err)
	}
	table.Match(run.host, run.method, norm, run.header, u.RawQuery, &x.Match)
	if x.Match.Route == nil {
		run.notes = append(run.notes, fmt.Sprintf("the route does not match %s %s%s: {path.*} are empty", run.method, run.host, u.RequestURI()))
	}
	run.x = x
	return run, nil
}

// request is the sample's request, with its exchange in its context.
func (run *transformRun) request(ctx context.Context) (*http.Request, *exchange.Exchange) {
	req := (&http.Request{Method: run.method, URL: run.u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: run.header, Host: run.host, RequestURI: run.u.RequestURI(), RemoteAddr: run.x.ClientIP + ":1",
		Body: http.NoBody}).WithContext(exchange.With(ctx, run.x))
	if len(run.body) > 0 {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(run.body)), int64(len(run.body))
	}
	return req, run.x
}

// ServeHTTP is the next stage: it records the request and, on the
// response side, answers with the sample as the upstream would.
func (run *transformRun) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fw := &forwarded{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone()}
	if r.Body != nil {
		var b bytes.Buffer
		n, _ := io.Copy(&b, io.LimitReader(r.Body, MaxTransformSample))
		rest, _ := io.Copy(io.Discard, r.Body)
		fw.body, fw.size = b.Bytes(), n+rest
	}
	run.saw = fw
	if !run.r.Response {
		// Passed through untouched by a response side, if any.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	run.answered = true
	h := w.Header()
	for _, f := range run.r.ResponseHeaders {
		h.Add(f.Name, f.Value)
	}
	code := int(run.r.Status)
	if code == 0 {
		code = http.StatusOK
	}
	w.WriteHeader(code)
	_, _ = w.Write(run.r.Body)
}

// headerOf is the header of fields, refusing what could not be one.
func headerOf(what string, fields []*adminv1.HeaderField) (http.Header, error) {
	h := http.Header{}
	for _, f := range fields {
		if !validToken(f.Name) {
			return nil, status.Errorf(codes.InvalidArgument, "%s header %q: not a header name", what, f.Name)
		}
		if strings.ContainsAny(f.Value, "\r\n\x00") {
			return nil, status.Errorf(codes.InvalidArgument, "%s header %s: a value may not have CR, LF or NUL", what, f.Name)
		}
		h.Add(f.Name, strings.TrimSpace(f.Value))
	}
	return h, nil
}

// validToken: s is an RFC 9110 token (a method, a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// headerFields is h sorted by name, each name's values in order.
func headerFields(h http.Header) []*adminv1.HeaderField {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []*adminv1.HeaderField
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, &adminv1.HeaderField{Name: k, Value: v})
		}
	}
	return out
}

func testRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "transform-test-" + hex.EncodeToString(b[:])
}

// sampleWriter is the client's end of a run: the status and the header
// as they went out, and the body's first MaxTransformSample bytes.
type sampleWriter struct {
	h, sent http.Header
	status  int
	body    bytes.Buffer
	size    int64
}

func (w *sampleWriter) Header() http.Header { return w.h }

func (w *sampleWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	w.status, w.sent = code, w.h.Clone()
}

func (w *sampleWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.size += int64(len(p))
	if room := MaxTransformSample - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runLog is what a run's stage counted and logged: each side's result,
// and its log lines (jq's message is only there).
type runLog struct {
	mu   sync.Mutex
	res  []*adminv1.TransformSideResult
	logs []string
}

// Transform implements transform.Counter.
func (l *runLog) Transform(_, side, result string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res = append(l.res, &adminv1.TransformSideResult{Side: side, Result: result})
}

func (l *runLog) results() []*adminv1.TransformSideResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.res)
}

func (l *runLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.logs)
}

// slog.Handler: lines at Info and above, with their reason.
func (l *runLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *runLog) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l *runLog) WithGroup(string) slog.Handler                 { return l }
func (l *runLog) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" || a.Key == "error" {
			line += ": " + a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logs = append(l.logs, line)
	return nil
}
