package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validation of composite routes (routes[].aggregate), the call
// definitions they use (calls) and BFF groups (bff).
//
// A call of a composite is checked resolved with its definition. A field
// the call sets itself is checked at its own position; one it takes from
// the definition is checked there once for what does not depend on the
// composite (syntax, names, bounds), and in each composite that uses it for
// what does (path parameters, claims, {call.…} references, the method its
// body needs), reported at the call's use.

// callNameRE is a call's name: the NAME of {call.NAME.PATH}, so no dots.
var callNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// MaxAggregateConcurrency bounds aggregate.max_concurrency.
const MaxAggregateConcurrency = 1_000_000

// composedHeaders are headers meshgate sets on a composite's response
// itself: a call's value would contradict the combined body or the
// combined caching policy, so response_headers cannot copy them.
var composedHeaders = map[string]bool{"cache-control": true, "content-encoding": true, "meshgate-partial": true}

// compositeIndex is what composite routes are checked against.
type compositeIndex struct {
	upstreams map[string]int
	defs      map[string]*AggregateCall // calls[] by name (the first of a name)
	groups    map[string]*BFF           // bff[] by name (the first of a name)
	defAt     map[string]int            // their indexes, for "first at line"
	groupAt   map[string]int
}

// compositeSections validates the call definitions and the BFF groups, and
// indexes them for the routes.
func (v *validator) compositeSections(c *Config, upstreams map[string]int) *compositeIndex {
	cx := &compositeIndex{upstreams: upstreams, defs: map[string]*AggregateCall{}, groups: map[string]*BFF{},
		defAt: map[string]int{}, groupAt: map[string]int{}}
	for i := range c.Calls {
		v.callDef(i, &c.Calls[i], cx)
	}
	for i := range c.BFF {
		v.bffGroup(i, &c.BFF[i], cx)
	}
	return cx
}

// callDef validates one definition of calls[]: its name, and the fields it
// sets, as far as they can be checked without the composites using it.
func (v *validator) callDef(i int, d *AggregateCall, cx *compositeIndex) {
	p := fmt.Sprintf("calls[%d]", i)
	switch first, dup := cx.defAt[d.Name]; {
	case d.Name == "":
		v.at(p, "%s: name is required: composites take a definition by its name (use: NAME)", p)
	case !callNameRE.MatchString(d.Name):
		v.at(p+".name", "call definition name %q must start with a letter or _ and hold only letters, digits, _ and - (it names {call.NAME.…} references)", d.Name)
	case dup:
		v.at(p+".name", "duplicate call definition name %q (first at line %d)", d.Name, v.line(fmt.Sprintf("calls[%d].name", first)))
	default:
		cx.defs[d.Name], cx.defAt[d.Name] = d, i
	}
	who := fmt.Sprintf("call definition %q", d.Name)
	if d.Use != "" {
		v.at(p+".use", "%s: use takes a definition into a composite's call; a definition cannot take another", who)
	}
	// Map ops' path.NAME and claim.NAME depend on the route: checked in
	// each composite (mapVars); here every path.NAME is taken as defined
	// and claims as available.
	tc := &transformCheck{validator: v, r: &Route{Auth: &RouteAuth{}}, route: p, who: who, params: mapPathParams(d.Transform)}
	cc := &callCheck{transformCheck: tc, p: p, own: d, call: *d, cx: cx}
	cc.check()
}

// mapPathParams is the path parameters a body transform's map ops read.
func mapPathParams(b *BodyTransform) map[string]bool {
	params := map[string]bool{}
	if b == nil {
		return params
	}
	for _, o := range b.Map {
		if arg, ok := strings.CutPrefix(o.Var, "path."); ok && arg != "" {
			params[arg] = true
		}
	}
	return params
}

// compositeCheck validates one composite route.
type compositeCheck struct {
	*transformCheck        // the route's context; who is the route
	p               string // routes[i].aggregate
	a               *Aggregate
	cx              *compositeIndex
	calls           []AggregateCall // resolved
	unknown         []bool          // the call uses an unknown definition
	names           map[string]int  // resolved name → its first call
}

// composite validates a route with aggregate: what the route may have
// besides, the aggregate's own fields, and each call.
func (v *validator) composite(p string, r *Route, params map[string]bool, ix authIndex, cx *compositeIndex) {
	tc := &transformCheck{validator: v, r: r, route: p, who: fmt.Sprintf("route %q", r.Name), params: params, ix: ix}
	c := &compositeCheck{transformCheck: tc, p: p + ".aggregate", a: r.Aggregate, cx: cx, names: map[string]int{}}
	c.routeFields()
	c.aggregateFields()
	c.resolve()
	checks := make([]*callCheck, len(c.calls))
	for j := range c.calls {
		checks[j] = c.callCheck(j)
		if !c.unknown[j] { // incomplete: its use is the error
			checks[j].check()
		}
	}
	c.intos()
	c.cycle(checks)
}

// routeFields checks what a composite route may not have.
func (c *compositeCheck) routeFields() {
	r, p := c.r, c.route
	if r.Upstream != "" {
		c.at(p+".upstream", "%s: set one of upstream, split and aggregate: a composite's calls name their own upstreams", c.who)
	}
	if len(r.Split) > 0 {
		c.at(p+".split", "%s: set one of upstream, split and aggregate: a composite's calls name their own upstreams", c.who)
	}
	if r.Rewrite != nil {
		c.at(p+".rewrite", "%s: rewrite does not apply to a composite route: each call's path says what is sent", c.who)
	}
	if r.Retry != nil {
		c.at(p+".retry", "%s: retry does not apply to a composite route: use the call's retry (aggregate.calls[].retry)", c.who)
	}
	if r.PerTryTimeout != 0 {
		c.at(p+".per_try_timeout", "%s: per_try_timeout does not apply to a composite route: use the call's timeout (aggregate.calls[].timeout)", c.who)
	}
	if r.Transform != nil {
		c.at(p+".transform", "%s: transform does not apply to a composite route: use aggregate.transform for the combined response, and a call's transform for its own", c.who)
	}
}

// aggregateFields checks the aggregate's own fields (defaults applied).
func (c *compositeCheck) aggregateFields() {
	a, p := c.a, c.p
	switch n := len(a.Calls); {
	case n == 0:
		c.at(p+".calls", "%s: aggregate.calls: at least one call is required", c.who)
	case n > MaxAggregateCalls:
		c.at(p+".calls", "%s: aggregate has %d calls; at most %d are allowed (the fan-out of one request)", c.who, n, MaxAggregateCalls)
	}
	switch {
	case a.Timeout <= 0:
		c.at(p+".timeout", "%s: aggregate.timeout must be above 0", c.who)
	case a.Timeout > c.r.Timeout:
		c.at(p+".timeout", "%s: aggregate.timeout %s exceeds the route's timeout %s (set either: each defaults to the other)",
			c.who, a.Timeout.D(), c.r.Timeout.D())
	}
	if a.MaxBody < 0 || a.MaxBody > MaxAggregateBody {
		c.at(p+".max_body", "%s: aggregate.max_body %s must be at most %s (the combined response is held in memory)",
			c.who, sizeText(a.MaxBody), sizeText(MaxAggregateBody))
	}
	if a.MaxConcurrency < 1 || a.MaxConcurrency > MaxAggregateConcurrency {
		c.at(p+".max_concurrency", "%s: aggregate.max_concurrency %d must be 1..%d", c.who, a.MaxConcurrency, MaxAggregateConcurrency)
	}
	if a.Missing != MissingOmit && a.Missing != MissingNull {
		c.at(p+".missing", "%s: aggregate.missing %q must be omit (leave the key out) or null", c.who, a.Missing)
	}
	// `missing: null` is YAML's null, which leaves the field unset (omit):
	// the opposite of what it says.
	if n := c.pos[p+".missing"]; n != nil && n.Tag == "!!null" && n.Value != "" {
		c.at(p+".missing", "%s: aggregate.missing: a plain %s is YAML's null, which means not set (omit); write missing: \"null\" (quoted)", c.who, n.Value)
	}
	if t := a.Transform; t != nil {
		if t.From != BodyJSON && t.From != "" {
			c.at(p+".transform.from", "%s: aggregate.transform.from %q: the combined document is JSON; remove from", c.who, t.From)
		}
		b := *t
		setStr(&b.From, BodyJSON)
		setStr(&b.To, BodyJSON)
		c.body(p+".transform", "aggregate.transform", false, &b)
	}
}

// resolve resolves the calls with their definitions and checks their
// names: present, of the form of a reference, unique.
func (c *compositeCheck) resolve() {
	c.calls = make([]AggregateCall, len(c.a.Calls))
	c.unknown = make([]bool, len(c.a.Calls))
	for j := range c.a.Calls {
		own := &c.a.Calls[j]
		cp := c.callPath(j)
		call, ok := own.Resolve(c.cx.defs)
		if !ok {
			c.at(cp+".use", "%s: aggregate.calls[%d]: unknown call definition %q (%s)", c.who, j, own.Use, known("call definitions", sortedKeys(c.cx.defs)))
			setStr(&call.Name, own.Use) // as it would be named: references to it are no further error
			c.unknown[j] = true
		}
		c.calls[j] = call
		switch first, dup := c.names[call.Name]; {
		case call.Name == "":
			c.at(cp, "%s: aggregate.calls[%d]: name is required (or use, taking a definition of calls and its name)", c.who, j)
		case own.Name == "" && ok:
			// The definition's name, checked there; unique here too.
			if dup {
				c.at(cp+".use", "%s: two calls are named %q (aggregate.calls[%d]%s, and this one by its definition); give one a name", c.who, call.Name, first, c.lineNote(c.callPath(first)))
			} else {
				c.names[call.Name] = j
			}
		case !callNameRE.MatchString(call.Name):
			c.at(cp+".name", "%s: call name %q must start with a letter or _ and hold only letters, digits, _ and - (it names {call.NAME.…} references)", c.who, call.Name)
		case dup:
			c.at(cp+".name", "%s: two calls are named %q (aggregate.calls[%d]%s and [%d]); call names are unique in a composite", c.who, call.Name, first, c.lineNote(c.callPath(first)), j)
		default:
			c.names[call.Name] = j
		}
	}
}

func (c *compositeCheck) callPath(j int) string { return fmt.Sprintf("%s.calls[%d]", c.p, j) }

// callCheck returns the check of the composite's call j.
func (c *compositeCheck) callCheck(j int) *callCheck {
	who := fmt.Sprintf("%s, call %q", c.who, c.calls[j].Name)
	if c.calls[j].Name == "" {
		who = fmt.Sprintf("%s, aggregate.calls[%d]", c.who, j)
	}
	tc := *c.transformCheck
	tc.who = who
	return &callCheck{transformCheck: &tc, p: c.callPath(j), own: &c.a.Calls[j], call: c.calls[j], cx: c.cx, comp: c}
}

// intos checks that no two calls go to the same place of the combined
// document.
func (c *compositeCheck) intos() {
	seen := map[string]int{}
	for j, call := range c.calls {
		into, path := call.Into, c.callPath(j)
		switch {
		case into == "" && c.names[call.Name] != j:
			continue // a duplicate name: that is the error
		case into == "":
			into, path = call.Name, path+".name"
		case c.a.Calls[j].Into != "" || c.a.Calls[j].Use == "":
			path += ".into"
		default:
			path += ".use"
		}
		if into == "" || into == IntoRoot {
			continue
		}
		if k, dup := seen[into]; dup {
			c.at(path, "%s: calls %q and %q both go into %q (aggregate.calls[%d]%s); give each its own place, or \".\" to merge objects at the root",
				c.who, c.calls[k].Name, call.Name, into, k, c.lineNote(c.callPath(k)))
			continue
		}
		seen[into] = j
	}
}

// cycle reports a cycle of calls, which could never start, over their
// depends_on and {call.…} references: once, from the first call in it.
func (c *compositeCheck) cycle(checks []*callCheck) {
	edges := make([][]int, len(checks))
	for j, cc := range checks {
		edges[j] = cc.deps
	}
	cyc := findCycle(edges)
	if cyc == nil {
		return
	}
	names := make([]string, 0, len(cyc)+1)
	for _, j := range cyc {
		names = append(names, c.calls[j].Name)
	}
	names = append(names, names[0])
	c.at(c.callPath(cyc[0]), "%s: calls wait for each other in a cycle: %s (through depends_on and {call.…} references); none of them could start",
		c.who, strings.Join(names, " → "))
}

// findCycle returns a cycle of the graph (edges[i]: the nodes i waits
// for), starting at its lowest node, or nil.
func findCycle(edges [][]int) []int {
	state := make([]int8, len(edges)) // 0 not seen, 1 on the path, 2 done
	var path, cyc []int
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		path = append(path, i)
		for _, j := range edges[i] {
			switch state[j] {
			case 1:
				cyc = slices.Clone(path[slices.Index(path, j):])
				return true
			case 0:
				if visit(j) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = 2
		return false
	}
	for i := range edges {
		if state[i] == 0 && visit(i) {
			low := slices.Index(cyc, slices.Min(cyc))
			return slices.Concat(cyc[low:], cyc[:low])
		}
	}
	return nil
}

// callCheck validates one call: of a composite (comp set), resolved with
// its definition, or a definition of calls[].
type callCheck struct {
	*transformCheck                // who names the route and the call
	p               string         // the call's field path
	own             *AggregateCall // as written
	call            AggregateCall  // resolved
	cx              *compositeIndex
	comp            *compositeCheck // nil for a definition
	deps            []int           // the calls it waits for (comp's indexes)
}

// Kinds of templated values: what their values may hold.
const (
	tplPath   = "path"
	tplQuery  = "query parameter"
	tplHeader = "header"
	tplBody   = "body"
)

func (c *callCheck) check() {
	c.upstream()
	c.method()
	c.path()
	c.query()
	c.headers()
	c.names("pass_headers", c.call.PassHeaders, c.passHeaderProblem)
	c.callBody()
	c.timeout()
	c.retry()
	c.into()
	c.callTransform()
	c.maxBody()
	c.names("response_headers", c.call.ResponseHeaders, responseHeaderProblem)
	c.dependsOn()
}

// local reports whether the call sets field itself (a definition, or a
// call without use, sets all its fields).
func (c *callCheck) local(field string) bool {
	if c.comp == nil || c.own.Use == "" {
		return true
	}
	o := c.own
	return map[string]bool{
		"upstream": o.Upstream != "", "method": o.Method != "", "path": o.Path != "", "query": o.Query != nil,
		"headers": o.Headers != nil, "pass_headers": o.PassHeaders != nil, "body": o.Body != nil, "timeout": o.Timeout != 0,
		"retry": o.Retry != nil, "depends_on": o.DependsOn != nil, "into": o.Into != "", "transform": o.Transform != nil,
		"max_body": o.MaxBody != 0, "response_headers": o.ResponseHeaders != nil,
	}[field]
}

// where is the position a field of the call is reported at, and a note
// for messages after its name: its own position, or the call's use
// (noting the definition) when the field comes from the definition.
func (c *callCheck) where(field string) (path, note string) {
	if c.local(field) {
		return c.p + "." + field, ""
	}
	return c.p + ".use", fmt.Sprintf(" (from definition %q)", c.own.Use)
}

func (c *callCheck) upstream() {
	u := c.call.Upstream
	if u == "" {
		if c.comp != nil {
			c.at(c.p, "%s: upstream is required (the upstreams[] entry the call is sent to)", c.who)
		}
		return
	}
	if _, ok := c.cx.upstreams[u]; !ok && c.local("upstream") {
		c.at(c.p+".upstream", "%s: unknown upstream %q", c.who, u)
	}
}

func (c *callCheck) method() {
	m := c.call.Method
	if m != "" && c.local("method") && (!tokenRE.MatchString(m) || strings.ToUpper(m) != m) {
		c.at(c.p+".method", "%s: method %q must be an upper-case token such as GET or POST", c.who, m)
	}
}

func (c *callCheck) path() {
	s := c.call.Path
	if s == "" {
		if c.comp != nil {
			c.at(c.p, "%s: path is required (the path sent upstream, such as /items/{path.id})", c.who)
		}
		return
	}
	at, note := c.where("path")
	if c.local("path") && !strings.HasPrefix(s, "/") {
		c.at(at, "%s: path %q must start with /", c.who, short(s))
		return
	}
	c.template(at, "path"+note, s, tplPath, c.local("path"))
}

func (c *callCheck) query() {
	at, note := c.where("query")
	for _, k := range sortedKeys(c.call.Query) {
		kp := at
		if c.local("query") {
			kp = at + "." + k
			c.queryName(kp, "query", k)
		}
		c.template(kp, "query."+k+note, c.call.Query[k], tplQuery, c.local("query"))
	}
}

func (c *callCheck) headers() {
	at, note := c.where("headers")
	seen := map[string]string{}
	for _, k := range sortedKeys(c.call.Headers) {
		kp := at
		if c.local("headers") {
			kp = at + "." + k
			if msg := c.headerProblem(k); msg != "" {
				c.at(kp, "%s: headers: %s", c.who, msg)
			} else if prev, dup := seen[strings.ToLower(k)]; dup {
				c.at(kp, "%s: headers has %q and %q: header names are case-insensitive; keep one", c.who, prev, k)
			}
			seen[strings.ToLower(k)] = k
		}
		c.template(kp, "headers."+k+note, c.call.Headers[k], tplHeader, c.local("headers"))
	}
}

// headerProblem says what is wrong with a header the call sets.
func (c *callCheck) headerProblem(h string) string {
	lh := strings.ToLower(h)
	switch {
	case !tokenRE.MatchString(h):
		return fmt.Sprintf("invalid header name %q", h)
	case isMeshgateHeader(h):
		return fmt.Sprintf("header %q is reserved: X-Meshgate-* headers are set by meshgate (the consumer and tier are the variables {consumer} and {tier})", h)
	case lh == "content-type" && len(c.call.Body) == 0:
		return ""
	case lh == "content-type":
		return "Content-Type is application/json, set for the call's body; remove it here"
	case upstreamOnlyHeaders[lh]:
		return fmt.Sprintf("header %q is a framing, routing or hop-by-hop header, which meshgate manages; it cannot be set", h)
	}
	return ""
}

// passHeaderProblem says what is wrong with a client header to pass.
func (c *callCheck) passHeaderProblem(h string) string {
	lh := strings.ToLower(h)
	switch {
	case !tokenRE.MatchString(h):
		return fmt.Sprintf("invalid header name %q", h)
	case isMeshgateHeader(h):
		return "X-Meshgate-* headers are removed from clients' requests; set the consumer or tier in headers with {consumer} or {tier}"
	case lh == "content-type":
		return "no call gets the client's body, so none gets its Content-Type"
	case upstreamOnlyHeaders[lh]:
		return fmt.Sprintf("header %q is a framing, routing or hop-by-hop header, which meshgate manages; it cannot be passed", h)
	}
	return ""
}

// responseHeaderProblem says what is wrong with a header of the call's
// response to copy to the client's.
func responseHeaderProblem(h string) string {
	lh := strings.ToLower(h)
	switch {
	case !tokenRE.MatchString(h):
		return fmt.Sprintf("invalid header name %q", h)
	case upstreamOnlyHeaders[lh]:
		return fmt.Sprintf("header %q belongs to the call's own response (framing, content or hop-by-hop); the composite's response sets its own", h)
	case composedHeaders[lh]:
		return fmt.Sprintf("header %q of the composite's response is set by meshgate from every part (see Composites in docs/config.md)", h)
	}
	return ""
}

// names checks a list of header names the call sets itself.
func (c *callCheck) names(field string, list []string, problem func(string) string) {
	if !c.local(field) {
		return
	}
	seen := map[string]int{}
	for j, h := range list {
		hp := fmt.Sprintf("%s.%s[%d]", c.p, field, j)
		if msg := problem(h); msg != "" {
			c.at(hp, "%s: %s: %s", c.who, field, msg)
			continue
		}
		if k, dup := seen[strings.ToLower(h)]; dup {
			c.at(hp, "%s: %s lists %q twice (%s[%d] and %s[%d])", c.who, field, h, field, k, field, j)
			continue
		}
		seen[strings.ToLower(h)] = j
	}
}

// callBody checks the call's JSON body: a method that has one, and its
// strings as templates.
func (c *callCheck) callBody() {
	if len(c.call.Body) == 0 {
		return
	}
	at, note := c.where("body")
	if m := c.call.Method; c.comp != nil && (m == "" || m == "GET" || m == "HEAD") {
		if m == "" {
			m = "GET"
		}
		c.at(at, "%s: body%s: a %s call sends no body; set method (POST, PUT, PATCH, …) or remove body", c.who, note, m)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(c.call.Body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return // JSONValue holds JSON: cannot happen
	}
	c.walkBody(at, "body", note, doc, c.local("body"))
}

// walkBody checks every string of a body (not its keys) as a template;
// name is its place in the body (body.a.b[0]).
func (c *callCheck) walkBody(at, name, note string, v any, syntax bool) {
	switch x := v.(type) {
	case string:
		c.template(at, name+note, x, tplBody, syntax)
	case []any:
		for i, e := range x {
			c.walkBody(at, fmt.Sprintf("%s[%d]", name, i), note, e, syntax)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			c.walkBody(at, name+"."+k, note, x[k], syntax)
		}
	}
}

func (c *callCheck) timeout() {
	if c.comp == nil || c.call.Timeout == 0 {
		return
	}
	at, note := c.where("timeout")
	if limit := c.comp.a.Timeout; c.call.Timeout > limit || c.call.Timeout < 0 {
		c.at(at, "%s: timeout%s %s must be within 0..%s, the composite's deadline (aggregate.timeout)", c.who, note, c.call.Timeout.D(), limit.D())
	}
}

func (c *callCheck) retry() {
	if c.call.Retry == nil || !c.local("retry") {
		return
	}
	rt := *c.call.Retry
	DefaultRetry(&rt)
	c.validator.retry(c.p+".retry", c.who, &rt)
}

func (c *callCheck) into() {
	into := c.call.Into
	if into == "" || into == IntoRoot || !c.local("into") {
		return
	}
	if slices.Contains(strings.Split(into, "."), "") {
		c.at(c.p+".into", "%s: into %q must be \".\" (merge the call's object at the root) or a dotted key path such as user or data.user", c.who, into)
	}
}

// callTransform checks the call's transform as a body transform that
// writes JSON (the call's part of the combined document).
func (c *callCheck) callTransform() {
	b := c.call.Transform
	if b == nil {
		return
	}
	if !c.local("transform") {
		c.mapVars(b)
		return
	}
	tp := c.p + ".transform"
	if b.To != "" && b.To != BodyJSON {
		c.at(tp+".to", "%s: transform.to %q: a call's response becomes part of the combined JSON document; leave to out (or write json), and convert the whole with aggregate.transform", c.who, b.To)
	}
	t := *b
	setStr(&t.From, BodyJSON)
	t.To = BodyJSON
	c.body(tp, "transform", false, &t)
}

// mapVars checks, in a composite, the request variables of the map ops of
// a transform taken from a definition.
func (c *callCheck) mapVars(b *BodyTransform) {
	at, note := c.where("transform")
	for j, o := range b.Map {
		if o.Op != "set" || o.Var == "" {
			continue
		}
		if msg := c.transformCheck.varProblem(o.Var); msg != "" {
			c.at(at, "%s: transform.map[%d]%s: var %q: %s", c.who, j, note, o.Var, msg)
		}
	}
}

func (c *callCheck) maxBody() {
	if m := c.call.MaxBody; c.local("max_body") && (m < 0 || m > MaxAggregateBody) {
		c.at(c.p+".max_body", "%s: max_body %s must be at most %s (a call's response is held in memory)", c.who, sizeText(m), sizeText(MaxAggregateBody))
	}
}

// dependsOn checks, in a composite, that depends_on names other calls of
// it, and records them.
func (c *callCheck) dependsOn() {
	if c.comp == nil {
		return
	}
	for k, d := range c.call.DependsOn {
		at, note := c.where("depends_on")
		if c.local("depends_on") {
			at = fmt.Sprintf("%s[%d]", at, k)
		}
		j, ok := c.comp.names[d]
		switch {
		case d == c.call.Name:
			c.at(at, "%s: depends_on%s: a call cannot depend on itself", c.who, note)
		case !ok:
			c.at(at, "%s: depends_on%s: no call %q in this composite (%s)", c.who, note, d, known("calls", c.comp.callNames()))
		default:
			c.wait(j)
		}
	}
}

// wait records that the call waits for call j.
func (c *callCheck) wait(j int) {
	if !slices.Contains(c.deps, j) {
		c.deps = append(c.deps, j)
	}
}

// callNames lists the calls' names, each once, in order.
func (c *compositeCheck) callNames() []string {
	names := make([]string, 0, len(c.calls))
	for j, call := range c.calls {
		if k, ok := c.names[call.Name]; ok && k == j {
			names = append(names, call.Name)
		}
	}
	return names
}

// template checks a templated value of the call. syntax: the call sets it
// itself (a definition checks its own); its variables are checked in the
// composite for what depends on it, and recorded as dependencies.
func (c *callCheck) template(at, name, s, kind string, syntax bool) {
	if msg := valueProblem(s, kind); msg != "" {
		if syntax {
			c.at(at, "%s: %s: %s", c.who, name, msg)
		}
		return
	}
	t, err := ParseTemplate(s)
	if err != nil {
		if syntax {
			c.at(at, "%s: %s: template %q: %v", c.who, name, short(s), err)
		}
		return
	}
	for _, part := range t {
		if part.Var == "" {
			continue
		}
		msg := c.formProblem(part.Var)
		switch {
		case msg != "" && !syntax:
			continue // reported at the definition
		case msg == "":
			msg = c.contextProblem(part.Var)
		}
		if msg != "" {
			c.at(at, "%s: %s: {%s}: %s", c.who, name, part.Var, msg)
		}
	}
}

// valueProblem says what a templated value of kind may not hold.
func valueProblem(s, kind string) string {
	switch {
	case len(s) > MaxTemplateLen:
		return fmt.Sprintf("the value is %d bytes; at most %d are allowed", len(s), MaxTemplateLen)
	case !utf8.ValidString(s):
		return "the value must be UTF-8"
	case kind == tplBody:
		return ""
	case kind == tplPath && strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '?' || r == '#' }) >= 0:
		return "a path may not hold spaces, control characters, \"?\" or \"#\" (query parameters go under query)"
	case strings.IndexFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("a %s value must be UTF-8 without control characters or line breaks", kind)
	}
	return ""
}

// formProblem says what is wrong with a variable of a call whatever the
// composite: an unknown variable, a malformed name or reference.
func (c *callCheck) formProblem(v string) string {
	if rest, ok := strings.CutPrefix(v, CallRefPrefix); ok {
		call, path, _ := strings.Cut(rest, ".")
		switch {
		case call == "":
			return "call. needs a call's name, such as call.user.id"
		case strings.Contains(rest, ".") && slices.Contains(strings.Split(path, "."), ""):
			return fmt.Sprintf("the path %q has an empty key (write call.NAME for the whole response, call.NAME.a.b for a member)", path)
		}
		return ""
	}
	prefix, arg, _ := strings.Cut(v, ".")
	switch {
	case arg != "" && prefix == "path":
		return "" // the route's template: contextProblem
	case arg != "" && prefix == "claim":
		if !utf8.ValidString(arg) || strings.IndexFunc(arg, notNameRune) >= 0 {
			return fmt.Sprintf("claim name %q must be UTF-8 without spaces or control characters", arg)
		}
		return ""
	}
	msg := c.transformCheck.varProblem(v)
	return strings.Replace(msg, "claim.NAME;", "claim.NAME, call.NAME.PATH;", 1)
}

// contextProblem says what is wrong with a well-formed variable in this
// composite: a path parameter its route lacks, claims it cannot have, a
// call it does not have. A reference to another call is recorded.
func (c *callCheck) contextProblem(v string) string {
	if c.comp == nil {
		return ""
	}
	if name, _, ok := CallRef(v); ok {
		j, found := c.comp.names[name]
		switch {
		case name == c.call.Name:
			return "a call cannot read its own response"
		case !found:
			return fmt.Sprintf("no call %q in this composite (%s)", name, known("calls", c.comp.callNames()))
		}
		c.wait(j)
		return ""
	}
	if prefix, _, _ := strings.Cut(v, "."); prefix == "path" || prefix == "claim" {
		return c.transformCheck.varProblem(v)
	}
	return ""
}

// known lists names in a message: "known: a, b" or "there are no …".
func known(what string, names []string) string {
	if len(names) == 0 {
		return "there are no " + what
	}
	return "known: " + strings.Join(names, ", ")
}

// bffGroup validates one BFF group: a unique name, and a selection of
// clients (hosts, path_prefix, headers) that is not everything.
func (v *validator) bffGroup(i int, g *BFF, cx *compositeIndex) {
	p := fmt.Sprintf("bff[%d]", i)
	switch first, dup := cx.groupAt[g.Name]; {
	case g.Name == "":
		v.at(p, "%s: name is required: routes join the group by its name (bff: NAME)", p)
	case !tokenRE.MatchString(g.Name):
		v.at(p+".name", "bff group name %q may hold only letters, digits and -._~", g.Name)
	case dup:
		v.at(p+".name", "duplicate bff group name %q (first at line %d)", g.Name, v.line(fmt.Sprintf("bff[%d].name", first)))
	default:
		cx.groups[g.Name], cx.groupAt[g.Name] = g, i
	}
	who := fmt.Sprintf("bff group %q", g.Name)
	if len(g.Hosts) == 0 && g.PathPrefix == "" && len(g.Headers) == 0 {
		v.at(p, "%s selects every request: set hosts, path_prefix or headers", who)
	}
	v.hosts(p+".hosts", g.Hosts)
	if g.PathPrefix != "" {
		if msg := pathPrefixProblem(g.PathPrefix); msg != "" {
			v.at(p+".path_prefix", "%s: path_prefix %q %s", who, g.PathPrefix, msg)
		}
	}
	v.matchers(p+".headers", g.Headers)
}

// pathPrefixProblem says what is wrong with a group's path_prefix: it is
// joined to member paths as it is, so it is one clean literal path.
func pathPrefixProblem(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return "must start with /"
	case s == "/":
		return "selects nothing (every path starts with /): remove it, or name a segment such as /m"
	case strings.HasSuffix(s, "/"):
		return "must not end with / (member paths are joined to it: /m and /products give /m/products)"
	case strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("{}?#*", r)
	}) >= 0:
		return "is a literal path: no spaces, control characters, {, }, ?, # or *"
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "has an empty, . or .. segment; write it normalized"
		}
	}
	return ""
}

// routeBFF checks a route's bff and returns the route as it matches: with
// its match placed in its group's (the route itself when it has no group,
// or when that fails).
func (v *validator) routeBFF(p string, r *Route, cx *compositeIndex) *Route {
	if r.BFF == "" {
		return r
	}
	g := cx.groups[r.BFF]
	if g == nil {
		v.at(p+".bff", "route %q: unknown bff group %q (%s)", r.Name, r.BFF, known("bff groups", sortedKeys(cx.groups)))
		return r
	}
	m, err := g.within(r.Match)
	if err != nil {
		v.at(p+".bff", "route %q: %v", r.Name, err)
		return r
	}
	eff := *r
	eff.Match = m
	return &eff
}
