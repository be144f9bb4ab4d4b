package config

import "strings"

// Composite routes (routes[].aggregate), named call definitions (calls) and
// Backend-for-Frontend groups (bff).
//
// A composite route answers one client request with several backend calls,
// made in parallel where they do not depend on each other, and one JSON
// response combining theirs. A call may take values from the response of
// another ({call.NAME.PATH} in its templates): the calls form a DAG, checked
// at validation. Each call goes through the named upstream's cluster like a
// forwarded request (balancing, health, breakers, retries, mTLS, a client
// span, upstream stats).

// Composite bounds and defaults (documented in docs/config.md).
const (
	// MaxAggregateCalls bounds the calls of one composite (its fan-out).
	MaxAggregateCalls = 32
	// DefaultAggregateTimeout is the whole request's deadline when neither
	// aggregate.timeout nor the route's timeout says otherwise.
	DefaultAggregateTimeout = Duration(5e9)
	// DefaultCallMaxBody bounds one call's response body.
	DefaultCallMaxBody = 1 << 20
	// DefaultAggregateMaxBody bounds the combined response.
	DefaultAggregateMaxBody = 4 << 20
	// MaxAggregateBody bounds either bound: the bodies are held in memory.
	MaxAggregateBody = 64 << 20
	// DefaultAggregateConcurrency bounds the composite requests a node
	// serves at once per route; past it: 503 (aggregate_overloaded).
	DefaultAggregateConcurrency = 256
)

// Values of Aggregate.Missing: how an optional call that failed shows in the
// combined document.
const (
	MissingOmit = "omit" // its key is left out (the default)
	MissingNull = "null" // its key is null
)

// IntoRoot is the value of AggregateCall.Into that merges a call's JSON
// object into the root of the combined document.
const IntoRoot = "."

// CallRefPrefix starts a template variable that reads another call's
// response: {call.NAME.PATH} (PATH in jsonx's dotted form: a.b, items.0.id).
const CallRefPrefix = "call."

// Aggregate is a composite route: its calls and how they combine.
type Aggregate struct {
	Calls []AggregateCall `yaml:"calls"`
	// Timeout is the whole request's deadline, every call included → 504
	// (default: the route's timeout).
	Timeout Duration `yaml:"timeout"`
	// MaxBody bounds the combined response → 502 (default 4MiB).
	MaxBody ByteSize `yaml:"max_body"`
	// MaxConcurrency bounds the route's composite requests in progress on
	// one node (each holds up to len(calls) upstream calls) → 503
	// (default 256).
	MaxConcurrency int `yaml:"max_concurrency"`
	// Missing is how an optional call that failed shows: "omit" (default)
	// or "null". Either way the response names it in Meshgate-Partial.
	Missing string `yaml:"missing"`
	// Transform reshapes the combined document (filter, map, jq; JSON to
	// XML with to: xml or accept).
	Transform *BodyTransform `yaml:"transform"`
}

// AggregateCall is one backend call of a composite, or a named definition
// in Config.Calls that composites take with Use and override field by field.
type AggregateCall struct {
	// Name names the call: its key in the combined document (unless Into),
	// its {call.NAME.…} references, Meshgate-Partial, errors and spans.
	Name string `yaml:"name"`
	// Use takes the named call definition (calls[].name): every field set
	// here overrides the definition's.
	Use      string `yaml:"use"`
	Upstream string `yaml:"upstream"`
	// Method is the call's method (default GET).
	Method string `yaml:"method"`
	// Path is the path sent upstream, a template: {path.id}, {query.q},
	// {consumer}, {call.user.id} … Each variable's value is escaped as one
	// path segment ("/" and ".." cannot step out of it).
	Path string `yaml:"path"`
	// Query parameters (templates, query-escaped).
	Query map[string]string `yaml:"query"`
	// Headers set on the call (templates; a value with CR or LF is refused
	// at request time, never sent).
	Headers map[string]string `yaml:"headers"`
	// PassHeaders are client request headers copied onto the call as they
	// are (none by default; trace context always propagates).
	PassHeaders []string `yaml:"pass_headers"`
	// Body is the call's JSON body (methods with a body): any YAML value,
	// whose strings are templates; a string that is exactly one variable
	// {call.NAME.PATH} takes that JSON value as it is.
	Body JSONValue `yaml:"body"`
	// Timeout bounds the call until its response headers, its retries
	// included → the call fails (default: none but the composite's
	// deadline).
	Timeout Duration `yaml:"timeout"`
	Retry   *Retry   `yaml:"retry"`
	// Optional: a failure leaves this part out (and names it in
	// Meshgate-Partial) instead of failing the request (default false:
	// required).
	Optional *bool `yaml:"optional"`
	// DependsOn orders the call after others without taking values from
	// them ({call.…} references add their calls by themselves).
	DependsOn []string `yaml:"depends_on"`
	// Into is where the call's JSON goes in the combined document: a
	// dotted key path (default: the call's name), or "." to merge its
	// object at the root.
	Into string `yaml:"into"`
	// Transform reshapes this call's response (filter, map, jq; from: xml
	// reads an XML response) before it is placed.
	Transform *BodyTransform `yaml:"transform"`
	// MaxBody bounds the call's response body (default 1MiB) → the call
	// fails (aggregate_too_large).
	MaxBody ByteSize `yaml:"max_body"`
	// ResponseHeaders are headers of this call's response copied to the
	// client's response (none by default).
	ResponseHeaders []string `yaml:"response_headers"`
}

// IsOptional reports whether the call's failure leaves its part out.
func (c *AggregateCall) IsOptional() bool { return c.Optional != nil && *c.Optional }

// Resolve returns the call with the named definition it uses (defs by
// name) filled in under the fields it sets itself; ok is false when it
// uses an unknown definition.
func (c AggregateCall) Resolve(defs map[string]*AggregateCall) (AggregateCall, bool) {
	if c.Use == "" {
		return c, true
	}
	d := defs[c.Use]
	if d == nil {
		return c, false
	}
	out := *d
	out.Use = c.Use
	if c.Name != "" {
		out.Name = c.Name
	}
	if out.Name == "" {
		out.Name = c.Use
	}
	setString(&out.Upstream, c.Upstream)
	setString(&out.Method, c.Method)
	setString(&out.Path, c.Path)
	setString(&out.Into, c.Into)
	if c.Query != nil {
		out.Query = c.Query
	}
	if c.Headers != nil {
		out.Headers = c.Headers
	}
	if c.PassHeaders != nil {
		out.PassHeaders = c.PassHeaders
	}
	if c.Body != nil {
		out.Body = c.Body
	}
	if c.Timeout != 0 {
		out.Timeout = c.Timeout
	}
	if c.Retry != nil {
		out.Retry = c.Retry
	}
	if c.Optional != nil {
		out.Optional = c.Optional
	}
	if c.DependsOn != nil {
		out.DependsOn = c.DependsOn
	}
	if c.Transform != nil {
		out.Transform = c.Transform
	}
	if c.MaxBody != 0 {
		out.MaxBody = c.MaxBody
	}
	if c.ResponseHeaders != nil {
		out.ResponseHeaders = c.ResponseHeaders
	}
	return out, true
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// ResolvedCalls returns a composite's calls with their definitions (cfg's
// calls) filled in; a call using an unknown definition is returned as it
// is (validation reports it).
func (c *Config) ResolvedCalls(a *Aggregate) []AggregateCall {
	defs := make(map[string]*AggregateCall, len(c.Calls))
	for i := range c.Calls {
		defs[c.Calls[i].Name] = &c.Calls[i]
	}
	out := make([]AggregateCall, len(a.Calls))
	for i, call := range a.Calls {
		out[i], _ = call.Resolve(defs)
	}
	return out
}

// CallRef splits a {call.NAME.PATH} variable: ok is false for any other
// variable. PATH may be empty (the whole response).
func CallRef(v string) (call, path string, ok bool) {
	rest, ok := strings.CutPrefix(v, CallRefPrefix)
	if !ok {
		return "", "", false
	}
	call, path, _ = strings.Cut(rest, ".")
	return call, path, call != ""
}

// BFF is a Backend-for-Frontend group: the routes of one kind of client
// (mobile, web, partner), selected by host, path prefix and headers, that
// name the group in routes[].bff. A member route's own match applies
// within the group's: its hosts are the group's (a route of a group with
// hosts sets none itself), its path is under the group's path_prefix, and
// the group's headers are matched besides its own. Members reuse the
// configuration's upstreams and named calls and shape their own composites.
type BFF struct {
	Name string `yaml:"name"`
	// Hosts select the group's clients by Host (as routes' match.hosts).
	Hosts []string `yaml:"hosts"`
	// PathPrefix is prepended to each member route's path ("/m": a member
	// matching /products/{id} serves /m/products/{id}).
	PathPrefix string `yaml:"path_prefix"`
	// Headers select the group's clients by header (as routes'
	// match.headers), e.g. X-Client: mobile.
	Headers []ValueMatcher `yaml:"headers"`
}
