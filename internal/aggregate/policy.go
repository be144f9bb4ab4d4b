package aggregate

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/internal/transform"
)

// UpstreamLabel is the exchange's Upstream of a composite request (the
// access log's upstream): its calls go to several.
const UpstreamLabel = "(aggregate)"

// Counter counts composites. Its methods are called on the request's path
// and must not block.
type Counter interface {
	// Call counts one call of a composite request of route by result: ok,
	// failed, timeout, too_large or skipped.
	Call(route, call, result string)
	// Partial counts a response of route that left out a failed optional
	// call.
	Partial(route string)
}

// Results counted by Counter.Call.
const (
	ResultOK       = "ok"
	ResultFailed   = "failed"
	ResultTimeout  = "timeout"
	ResultTooLarge = "too_large"
	ResultSkipped  = "skipped"
)

// Deps are what the aggregate policy needs besides each route's section.
type Deps struct {
	// Calls are the configuration's named call definitions (calls), which
	// a composite's calls take with use.
	Calls []config.AggregateCall
	// Metrics counts calls and partial responses (nil: not counted).
	Metrics Counter
	Logger  *slog.Logger
}

type nopCounter struct{}

func (nopCounter) Call(string, string, string) {}
func (nopCounter) Partial(string)              {}

// Policy returns the aggregate policy: the stage of every route with an
// aggregate section, which answers its requests itself.
func Policy(d Deps) policy.Builder {
	defs := make(map[string]*config.AggregateCall, len(d.Calls))
	for i := range d.Calls {
		defs[d.Calls[i].Name] = &d.Calls[i]
	}
	count := d.Metrics
	if count == nil {
		count = nopCounter{}
	}
	return policy.Of("aggregate", func(rt *config.Route) *config.Aggregate { return rt.Aggregate },
		func(c *config.Aggregate, env policy.Env, _ http.Handler) (http.Handler, error) {
			log := d.Logger
			if log == nil {
				log = env.Logger
			}
			if log == nil {
				log = slog.Default()
			}
			return newStage(c, env, defs, count, log)
		})
}

// stage is the aggregate stage of one route.
type stage struct {
	route       string
	calls       []*call // in configuration order
	roots       []int   // the calls without dependencies
	timeout     time.Duration
	maxBody     int
	tooLarge    string // the reason of a combined response over maxBody
	missingNull bool
	transform   *transform.Body // of the combined document; nil: none
	varyAccept  bool            // the transform's output depends on Accept
	maxInFlight int64
	inFlight    atomic.Int64
	count       Counter
	log         *slog.Logger
	runs        sync.Pool // *run
}

// call is one call of a composite, compiled.
type call struct {
	index     int
	name      string
	upstream  string
	method    string
	optional  bool
	path      tmpl
	query     []namedTmpl
	headers   []namedTmpl
	pass      []string   // client headers copied, canonical
	body      []bodyPart // nil: no body
	deps      []int      // the calls it waits for
	next      []int      // the calls waiting for it
	into      []string   // where its document goes; nil: merged at the root
	maxBody   int
	tooLarge  string // the reason of a response over maxBody
	transform *transform.Body
	fromXML   bool
	respHdrs  []string // response headers copied, canonical
	timeout   config.Duration
	retry     *config.Retry
	rt        http.RoundTripper
}

// namedTmpl is a header or query parameter and its template.
type namedTmpl struct {
	name string
	t    tmpl
}

func newStage(c *config.Aggregate, env policy.Env, defs map[string]*config.AggregateCall, count Counter, log *slog.Logger) (*stage, error) {
	if env.Upstreams == nil {
		return nil, errors.New("this node makes no upstream calls for policies")
	}
	s := &stage{route: env.Route, timeout: c.Timeout.D(), maxBody: int(c.MaxBody),
		maxInFlight: int64(c.MaxConcurrency), count: count, log: log}
	if s.timeout <= 0 {
		s.timeout = config.DefaultAggregateTimeout.D()
	}
	if s.maxBody == 0 {
		s.maxBody = config.DefaultAggregateMaxBody
	}
	if s.maxBody < 0 || s.maxBody > config.MaxAggregateBody {
		return nil, fmt.Errorf("max_body %d is out of range (at most %s)", c.MaxBody, size(config.MaxAggregateBody))
	}
	s.tooLarge = "aggregate: combined response larger than " + size(s.maxBody)
	if s.maxInFlight == 0 {
		s.maxInFlight = config.DefaultAggregateConcurrency
	}
	if s.maxInFlight < 0 {
		return nil, fmt.Errorf("max_concurrency %d is negative", c.MaxConcurrency)
	}
	switch c.Missing {
	case "", config.MissingOmit:
	case config.MissingNull:
		s.missingNull = true
	default:
		return nil, fmt.Errorf("missing: %q is not %s or %s", c.Missing, config.MissingOmit, config.MissingNull)
	}
	if c.Transform != nil {
		var err error
		if s.transform, err = transform.CompileBody("transform", c.Transform, s.maxBody, true); err != nil {
			return nil, err
		}
		s.varyAccept = c.Transform.To == config.BodyAccept
	}
	if err := s.compileCalls(c.Calls, defs); err != nil {
		return nil, err
	}
	for _, cl := range s.calls {
		rt, err := env.Upstreams.Caller(cl.upstream, policy.CallOptions{
			Name: env.Route + "/" + cl.name, Timeout: cl.timeout, Retry: cl.retry})
		if err != nil {
			return nil, fmt.Errorf("calls[%d] (%s): %w", cl.index, cl.name, err)
		}
		cl.rt = rt
	}
	n := len(s.calls)
	s.runs.New = func() any { return newRun(n) }
	return s, nil
}

// compileCalls resolves and compiles the composite's calls and orders them.
func (s *stage) compileCalls(list []config.AggregateCall, defs map[string]*config.AggregateCall) error {
	if len(list) == 0 {
		return errors.New("calls: none")
	}
	if len(list) > config.MaxAggregateCalls {
		return fmt.Errorf("calls: %d, at most %d", len(list), config.MaxAggregateCalls)
	}
	resolved := make([]config.AggregateCall, len(list))
	names := make(map[string]int, len(list))
	for i, c := range list {
		r, ok := c.Resolve(defs)
		if !ok {
			return fmt.Errorf("calls[%d]: use: no call definition is named %q", i, c.Use)
		}
		if r.Name == "" {
			return fmt.Errorf("calls[%d]: no name", i)
		}
		if _, dup := names[r.Name]; dup {
			return fmt.Errorf("calls[%d]: a call named %q comes earlier", i, r.Name)
		}
		names[r.Name] = i
		resolved[i] = r
	}
	for i := range resolved {
		c, err := compileCall(i, &resolved[i], names)
		if err != nil {
			return fmt.Errorf("calls[%d] (%s): %w", i, resolved[i].Name, err)
		}
		s.calls = append(s.calls, c)
	}
	for _, c := range s.calls {
		for _, d := range c.deps {
			s.calls[d].next = append(s.calls[d].next, c.index)
		}
		if len(c.deps) == 0 {
			s.roots = append(s.roots, c.index)
		}
	}
	return s.checkAcyclic()
}

// checkAcyclic refuses dependencies that form a cycle (Kahn's algorithm).
func (s *stage) checkAcyclic() error {
	pending := make([]int, len(s.calls))
	queue := slices.Clone(s.roots)
	for i, c := range s.calls {
		pending[i] = len(c.deps)
	}
	done := 0
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		done++
		for _, n := range s.calls[i].next {
			if pending[n]--; pending[n] == 0 {
				queue = append(queue, n)
			}
		}
	}
	if done == len(s.calls) {
		return nil
	}
	var cyclic []string
	for i, p := range pending {
		if p > 0 {
			cyclic = append(cyclic, s.calls[i].name)
		}
	}
	return fmt.Errorf("calls: the dependencies of %s form a cycle", strings.Join(cyclic, ", "))
}

func compileCall(i int, c *config.AggregateCall, names map[string]int) (*call, error) {
	cl := &call{index: i, name: c.Name, upstream: c.Upstream, method: strings.ToUpper(c.Method),
		optional: c.IsOptional(), maxBody: int(c.MaxBody), timeout: c.Timeout, retry: c.Retry}
	if cl.upstream == "" {
		return nil, errors.New("upstream: none")
	}
	if cl.method == "" {
		cl.method = http.MethodGet
	}
	if cl.maxBody == 0 {
		cl.maxBody = config.DefaultCallMaxBody
	}
	if cl.maxBody < 0 || cl.maxBody > config.MaxAggregateBody {
		return nil, fmt.Errorf("max_body %d is out of range (at most %s)", c.MaxBody, size(config.MaxAggregateBody))
	}
	cl.tooLarge = "aggregate: response of call " + cl.name + " larger than " + size(cl.maxBody)
	path := c.Path
	if path == "" {
		path = "/"
	}
	var err error
	if cl.path, err = compileTemplate(path, names); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	if len(cl.path) == 0 || cl.path[0].kind != partLiteral || !strings.HasPrefix(cl.path[0].text, "/") {
		return nil, fmt.Errorf("path %q: does not start with /", c.Path)
	}
	if strings.ContainsAny(c.Path, "?#") {
		return nil, fmt.Errorf("path %q: query parameters go in query", c.Path)
	}
	deps := cl.path.refs(nil)
	if cl.query, deps, err = compileNamed("query", c.Query, names, deps, false); err != nil {
		return nil, err
	}
	if cl.headers, deps, err = compileNamed("headers", c.Headers, names, deps, true); err != nil {
		return nil, err
	}
	for _, h := range c.PassHeaders {
		cl.pass = append(cl.pass, http.CanonicalHeaderKey(h))
	}
	if len(c.Body) > 0 {
		if cl.body, err = compileBody(c.Body, names); err != nil {
			return nil, err
		}
		for _, p := range cl.body {
			if p.ref != nil {
				deps = append(deps, p.ref.call)
			}
			deps = p.str.refs(deps)
		}
	}
	for _, d := range c.DependsOn {
		j, ok := names[d]
		if !ok {
			return nil, fmt.Errorf("depends_on: no call is named %q", d)
		}
		deps = append(deps, j)
	}
	slices.Sort(deps)
	cl.deps = slices.Compact(deps)
	if slices.Contains(cl.deps, i) {
		return nil, errors.New("the call depends on itself")
	}
	switch c.Into {
	case config.IntoRoot:
	case "":
		cl.into = []string{cl.name}
	default:
		cl.into = strings.Split(c.Into, ".")
		if slices.Contains(cl.into, "") {
			return nil, fmt.Errorf("into %q: an empty key", c.Into)
		}
	}
	if t := c.Transform; t != nil {
		if t.To != "" && t.To != config.BodyJSON {
			return nil, fmt.Errorf("transform.to: %q: a call's part is JSON (the aggregate's transform writes XML)", t.To)
		}
		if cl.transform, err = transform.CompileBody("transform", t, cl.maxBody, false); err != nil {
			return nil, err
		}
		cl.fromXML = t.From == config.BodyXML
	}
	for _, h := range c.ResponseHeaders {
		cl.respHdrs = append(cl.respHdrs, http.CanonicalHeaderKey(h))
	}
	return cl, nil
}

// compileNamed compiles header or query templates, sorted by name, and
// adds the calls they read to deps.
func compileNamed(what string, m map[string]string, names map[string]int, deps []int, header bool) ([]namedTmpl, []int, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []namedTmpl
	for _, k := range keys {
		t, err := compileTemplate(m[k], names)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%s: %w", what, k, err)
		}
		name := k
		if header {
			if k == "" || strings.ContainsAny(k, " \t\r\n:") {
				return nil, nil, fmt.Errorf("%s: %q is not a header name", what, k)
			}
			name = http.CanonicalHeaderKey(k)
		}
		out = append(out, namedTmpl{name: name, t: t})
		deps = t.refs(deps)
	}
	return out, deps, nil
}

// size writes a byte count as the configuration would (1MiB, 512KiB).
func size(n int) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

var _ Counter = (*telemetry.Metrics)(nil)
