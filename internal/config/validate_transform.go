package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/transform/jq"
	"github.com/meshgate/meshgate/internal/transform/jsonx"
	"github.com/meshgate/meshgate/internal/transform/xmljson"
)

// transformCheck validates one route's transform.
type transformCheck struct {
	*validator
	r      *Route
	route  string // the route's field path, routes[i]
	who    string
	params map[string]bool // the route's path template parameters
	ix     authIndex
}

// transform validates a route's transform: every field at its own line,
// the map ops, allow and deny paths, jq expression and XML options
// compiled by the libraries the stage uses.
func (v *validator) transform(p string, r *Route, params map[string]bool, ix authIndex) {
	c := &transformCheck{validator: v, r: r, route: strings.TrimSuffix(p, ".transform"),
		who: fmt.Sprintf("route %q", r.Name), params: params, ix: ix}
	t := r.Transform
	if t.Request == nil && t.Response == nil {
		v.at(p, "%s: transform needs request or response (or remove it)", c.who)
	}
	if t.MaxBody > MaxTransformBody {
		v.at(p+".max_body", "%s: transform.max_body %s must be at most %s (a body is held in memory while it is transformed)",
			c.who, sizeText(t.MaxBody), sizeText(MaxTransformBody))
	}
	if t.Request != nil {
		c.side(p+".request", true, t.Request)
	}
	if t.Response != nil {
		c.side(p+".response", false, t.Response)
	}
}

func (c *transformCheck) side(p string, req bool, s *TransformSide) {
	name := "transform.response"
	if req {
		name = "transform.request"
	}
	if s.Headers.empty() && s.Query.empty() && s.Body == nil && len(s.Status) == 0 {
		what := "headers, body or status"
		if req {
			what = "headers, query or body"
		}
		c.at(p, "%s: %s does nothing: set %s (or remove it)", c.who, name, what)
	}
	switch {
	case req && s.OnTooLarge != OnTooLargeReject:
		c.at(p+".on_too_large", "%s: %s.on_too_large %q must be reject: a request body over max_body is refused with 413 (forwarding it untransformed would bypass the transform)",
			c.who, name, s.OnTooLarge)
	case !req && s.OnTooLarge != OnTooLargePass && s.OnTooLarge != OnTooLargeReject:
		c.at(p+".on_too_large", "%s: %s.on_too_large %q must be pass (send the body untransformed) or reject (answer 502)",
			c.who, name, s.OnTooLarge)
	}
	c.ops(p+".headers", name+".headers", &s.Headers, true, s.Body != nil)
	if !s.Query.empty() {
		if req {
			c.ops(p+".query", name+".query", &s.Query, false, false)
		} else {
			c.at(p+".query", "%s: %s.query: query parameters belong to the request; move them to transform.request.query", c.who, name)
		}
	}
	if s.Body != nil {
		c.body(p+".body", name+".body", req, s.Body)
	}
	if len(s.Status) > 0 {
		if req {
			c.at(p+".status", "%s: %s.status: a request has no status; map the upstream's status under transform.response.status", c.who, name)
		} else {
			c.status(p+".status", name+".status", s.Status)
		}
	}
	// A body that streams cannot be held: refuse what needs it.
	kind, j := streamingMatch(c.r)
	if kind == "" {
		return
	}
	why := fmt.Sprintf("the route's match.headers[%d]%s selects %s, whose bodies stream and are never held",
		j, c.lineNote(fmt.Sprintf("%s.match.headers[%d]", c.route, j)), kind)
	if s.Body != nil {
		c.at(p+".body", "%s: %s: %s; remove body, or narrow the route's match", c.who, name+".body", why)
	}
	switch {
	case req || len(s.Status) == 0:
	case kind == streamGRPC:
		c.at(p+".status", "%s: %s.status: %s, and a gRPC call's outcome is in its trailers (grpc-status), not its HTTP status; remove status", c.who, name, why)
	default:
		for k, m := range s.Status {
			if m.IfField != "" {
				c.at(fmt.Sprintf("%s.status[%d].if_field", p, k), "%s: %s.status[%d].if_field reads the body: %s; remove if_field", c.who, name, k, why)
			}
		}
	}
}

// lineNote is " (line N)" for a field of the file, "" for one without a
// position (a cluster resource).
func (c *transformCheck) lineNote(path string) string {
	if n := c.line(path); n > 0 {
		return fmt.Sprintf(" (line %d)", n)
	}
	return ""
}

// Kinds of requests whose bodies stream.
const (
	streamGRPC      = "gRPC requests (Content-Type application/grpc)"
	streamWebSocket = "upgrade requests (WebSocket)"
	streamSSE       = "server-sent events (Accept: text/event-stream)"
)

// streamingMatch reports whether a header matcher of the route confines it
// to requests whose bodies stream (gRPC, an Upgrade, SSE), and which.
func streamingMatch(r *Route) (kind string, index int) {
	for j, h := range r.Match.Headers {
		if h.Invert {
			continue
		}
		matches := func(sample string) bool {
			switch {
			case h.Exact != "":
				return strings.Contains(strings.ToLower(h.Exact), sample)
			case h.Regex != "":
				re, err := regexp.Compile("^(?:" + h.Regex + ")$")
				return err == nil && re.MatchString(sample)
			}
			return false
		}
		switch strings.ToLower(h.Name) {
		case "content-type":
			if h.Exact != "" && strings.HasPrefix(strings.ToLower(h.Exact), "application/grpc") ||
				matches("application/grpc") || matches("application/grpc+proto") {
				return streamGRPC, j
			}
		case "upgrade":
			return streamWebSocket, j
		case "accept":
			if matches("text/event-stream") {
				return streamSSE, j
			}
		}
	}
	return "", -1
}

// ops validates headers or query operations.
func (c *transformCheck) ops(p, name string, o *TemplateOps, header, hasBody bool) {
	fold := func(s string) string {
		if header {
			return strings.ToLower(s)
		}
		return s
	}
	check := func(path, field, n string) bool {
		if header {
			return c.headerName(path, name+"."+field, n, hasBody)
		}
		return c.queryName(path, name+"."+field, n)
	}
	for _, field := range []string{"set", "add"} {
		m := o.Set
		if field == "add" {
			m = o.Add
		}
		seen := map[string]string{}
		for _, k := range sortedKeys(m) {
			kp := p + "." + field + "." + k
			if check(kp, field, k) {
				if prev, dup := seen[fold(k)]; dup {
					c.at(kp, "%s: %s.%s has %q and %q: header names are case-insensitive; keep one", c.who, name, field, prev, k)
				}
				seen[fold(k)] = k
			}
			c.template(kp, fmt.Sprintf("%s.%s.%s", name, field, k), m[k], header)
		}
	}
	removed := map[string]int{}
	for j, k := range o.Remove {
		kp := fmt.Sprintf("%s.remove[%d]", p, j)
		if check(kp, "remove", k) {
			if i, dup := removed[fold(k)]; dup {
				c.at(kp, "%s: %s.remove lists %q twice (remove[%d] and remove[%d])", c.who, name, k, i, j)
			}
			removed[fold(k)] = j
		}
	}
	targets := map[string]string{}
	for _, old := range sortedKeys(o.Rename) {
		to := o.Rename[old]
		kp := p + ".rename." + old
		if !check(kp, "rename", old) || !check(kp, "rename", to) {
			continue
		}
		switch prev, dup := targets[fold(to)]; {
		case fold(old) == fold(to):
			c.at(kp, "%s: %s.rename renames %q to itself; remove it", c.who, name, old)
		case dup:
			c.at(kp, "%s: %s.rename renames both %q and %q to %q; keep one", c.who, name, prev, old, to)
		default:
			targets[fold(to)] = old
		}
	}
}

// headerName checks a header a transform changes: a token, not reserved,
// not framing or hop-by-hop (Content-Type only where a body transform
// sets it).
func (c *transformCheck) headerName(path, name, h string, hasBody bool) bool {
	lh := strings.ToLower(h)
	switch {
	case !tokenRE.MatchString(h):
		c.at(path, "%s: %s: invalid header name %q", c.who, name, h)
	case isMeshgateHeader(h):
		c.at(path, "%s: %s: header %q is reserved: X-Meshgate-* headers are set by meshgate (the consumer and tier are the variables {consumer} and {tier})", c.who, name, h)
	case lh == "content-type" && !hasBody:
		return true
	case lh == "content-type":
		c.at(path, "%s: %s: Content-Type is set by the body transform (from its to: json or xml); remove it here", c.who, name)
	case upstreamOnlyHeaders[lh]:
		c.at(path, "%s: %s: header %q is a framing, routing or hop-by-hop header, which meshgate manages; it cannot be changed", c.who, name, h)
	default:
		return true
	}
	return false
}

func (c *transformCheck) queryName(path, name, q string) bool {
	if q == "" || !utf8.ValidString(q) || strings.IndexFunc(q, notNameRune) >= 0 {
		c.at(path, "%s: %s: query parameter name %q must be non-empty UTF-8 without spaces or control characters", c.who, name, q)
		return false
	}
	return true
}

func notNameRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// template checks a templated value: its syntax and its variables.
func (c *transformCheck) template(path, name, s string, header bool) {
	if len(s) > MaxTemplateLen {
		c.at(path, "%s: %s: the value is %d bytes; at most %d are allowed", c.who, name, len(s), MaxTemplateLen)
		return
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }); i >= 0 || !utf8.ValidString(s) {
		what := "header"
		if !header {
			what = "query parameter"
		}
		c.at(path, "%s: %s: a %s value must be UTF-8 without control characters or line breaks", c.who, name, what)
		return
	}
	t, err := ParseTemplate(s)
	if err != nil {
		c.at(path, "%s: %s: template %q: %v", c.who, name, short(s), err)
		return
	}
	for _, part := range t {
		if part.Var == "" {
			continue
		}
		if msg := c.varProblem(part.Var); msg != "" {
			c.at(path, "%s: %s: {%s}: %s", c.who, name, part.Var, msg)
		}
	}
}

// varProblem says what is wrong with a template variable (or a map op's
// var), or "" when it is fine for this route.
func (c *transformCheck) varProblem(name string) string {
	if slices.Contains(TemplateVars, name) {
		return ""
	}
	prefix, arg, ok := strings.Cut(name, ".")
	if !ok || !slices.Contains(TemplateVarPrefixes, prefix) {
		return "unknown variable (known: consumer, tier, client_ip, request_id, path.NAME, query.NAME, header.NAME, claim.NAME; write {{ and }} for literal braces)"
	}
	if arg == "" {
		return fmt.Sprintf("%s. needs a name, such as %s.id", prefix, prefix)
	}
	switch prefix {
	case "path":
		switch {
		case c.params == nil:
			return "the route's match.path has no template, so there are no path parameters (match.path.template: /items/{id} defines {path.id})"
		case !c.params[arg]:
			return fmt.Sprintf("the route's path template has no parameter {%s} (it has: %s)", arg, strings.Join(sortedKeys(c.params), ", "))
		}
	case "header":
		switch {
		case !tokenRE.MatchString(arg):
			return fmt.Sprintf("invalid header name %q", arg)
		case isMeshgateHeader(arg):
			return "X-Meshgate-* headers are removed from clients' requests; use {consumer} or {tier}"
		}
	case "query", "claim":
		if !utf8.ValidString(arg) || strings.IndexFunc(arg, notNameRune) >= 0 {
			return fmt.Sprintf("%s name %q must be UTF-8 without spaces or control characters", prefix, arg)
		}
		if prefix == "claim" {
			return c.claimsProblem()
		}
	}
	return ""
}

// claimsProblem says why the route's consumers can have no claims.
func (c *transformCheck) claimsProblem() string {
	a := c.r.Auth
	if a == nil {
		return "the route has no auth, so requests carry no claims (add auth with a jwt or introspection method)"
	}
	for _, m := range a.Methods {
		if kind, ok := c.ix.kinds[m]; !ok || kind != AuthKindAPIKey {
			return ""
		}
	}
	if len(a.Methods) == 0 {
		return ""
	}
	return "the route's auth methods are all API keys, which carry no claims"
}

// mapOpFields are the fields each map op takes (jsonx.Op).
var mapOpFields = map[string][]string{
	"rename":  {"path", "key"},
	"move":    {"from", "to"},
	"wrap":    {"key"},
	"extract": {"path"},
	"set":     {"path", "value", "var"},
	"delete":  {"path"},
}

func (c *transformCheck) body(p, name string, req bool, b *BodyTransform) {
	switch b.From {
	case BodyJSON, BodyXML:
	default:
		c.at(p+".from", "%s: %s.from %q must be json or xml", c.who, name, b.From)
	}
	switch b.To {
	case BodyJSON, BodyXML:
	case BodyAccept:
		if req {
			c.at(p+".to", "%s: %s.to: accept picks XML or JSON by the client's Accept header, which is about the response: write json or xml on the request side", c.who, name)
		}
	default:
		c.at(p+".to", "%s: %s.to %q must be json, xml or accept", c.who, name, b.To)
	}
	if len(b.Allow) > 0 && len(b.Deny) > 0 {
		c.at(p+".deny", "%s: %s: set allow or deny, not both (allow keeps only the paths listed, deny removes them)", c.who, name)
	}
	ok := true
	for _, list := range []struct {
		field string
		paths []string
	}{{"allow", b.Allow}, {"deny", b.Deny}} {
		for j, path := range list.paths {
			s := jsonx.Spec{Allow: []string{path}}
			if list.field == "deny" {
				s = jsonx.Spec{Deny: []string{path}}
			}
			if _, err := jsonx.Compile(s); err != nil {
				ok = false
				c.at(fmt.Sprintf("%s.%s[%d]", p, list.field, j), "%s: %s.%s[%d]: %s", c.who, name, list.field, j, jsonxMessage(err))
			}
		}
	}
	for j := range b.Map {
		if !c.mapOp(fmt.Sprintf("%s.map[%d]", p, j), fmt.Sprintf("%s.map[%d]", name, j), &b.Map[j]) {
			ok = false
		}
	}
	if ok && (len(b.Allow) == 0 || len(b.Deny) == 0) {
		if _, err := jsonx.Compile(b.Spec()); err != nil {
			c.at(p, "%s: %s: %s", c.who, name, jsonxMessage(err))
		}
	}
	if b.JQ != "" {
		if _, err := jq.Compile(b.JQ, jq.Options{Vars: JQVars}); err != nil {
			var ce *jq.CompileError
			switch {
			case errors.As(err, &ce) && ce.Line > 0:
				c.at(p+".jq", "%s: %s.jq: at line %d, column %d of the expression: %s", c.who, name, ce.Line, ce.Column, ce.Msg)
			case errors.As(err, &ce):
				c.at(p+".jq", "%s: %s.jq: %s", c.who, name, ce.Msg)
			default:
				c.at(p+".jq", "%s: %s.jq: %v", c.who, name, err)
			}
		}
	}
	writesXML := b.To == BodyXML || b.To == BodyAccept
	if b.XML.Root != "" {
		if !writesXML {
			c.at(p+".xml.root", "%s: %s.xml.root names the root element of XML written from JSON: it needs to: xml (or accept)", c.who, name)
		} else if _, err := xmljson.New(xmljson.Options{Root: b.XML.Root}); err != nil {
			c.at(p+".xml.root", "%s: %s.xml.root: %s", c.who, name, strings.TrimPrefix(err.Error(), "xmljson: "))
		}
	}
	if len(b.XML.ArrayPaths) > 0 && b.From != BodyXML {
		c.at(p+".xml.array_paths", "%s: %s.xml.array_paths shape JSON read from XML: it needs from: xml", c.who, name)
	} else {
		for j, ap := range b.XML.ArrayPaths {
			if _, err := xmljson.New(xmljson.Options{ArrayPaths: []string{ap}}); err != nil {
				c.at(fmt.Sprintf("%s.xml.array_paths[%d]", p, j), "%s: %s.xml.array_paths[%d]: %s", c.who, name, j, strings.TrimPrefix(err.Error(), "xmljson: "))
			}
		}
	}
	if b.From == b.To && len(b.Allow) == 0 && len(b.Deny) == 0 && len(b.Map) == 0 && b.JQ == "" {
		c.at(p, "%s: %s does nothing: set allow, deny, map or jq, or convert with from and to (or remove body)", c.who, name)
	}
}

// mapOp validates one map op with its fields' YAML names, then compiles
// it with jsonx; it reports whether the op is valid.
func (c *transformCheck) mapOp(p, name string, o *MapOp) bool {
	takes, known := mapOpFields[o.Op]
	if !known {
		if o.Op == "" {
			c.at(p, "%s: %s: op is required: rename, move, wrap, extract, set or delete", c.who, name)
		} else {
			c.at(p+".op", "%s: %s: op %q must be rename, move, wrap, extract, set or delete", c.who, name, o.Op)
		}
		return false
	}
	ok := true
	given := map[string]bool{"from": o.From != "", "to": o.To != "", "path": o.Path != "", "key": o.Key != "",
		"value": len(o.Value) > 0, "var": o.Var != ""}
	for _, f := range []string{"from", "to", "path", "key", "value", "var"} {
		if given[f] && !slices.Contains(takes, f) {
			c.at(p+"."+f, "%s: %s: %s is not used by %s (it takes %s)", c.who, name, f, o.Op, strings.Join(takes, ", "))
			ok = false
		}
	}
	if o.Op == "set" {
		switch {
		case o.Path == "":
			c.at(p, "%s: %s: set needs path (\".\" for the whole document)", c.who, name)
			ok = false
		case given["value"] && given["var"]:
			c.at(p+".var", "%s: %s: set takes value (a constant) or var (a request value), not both", c.who, name)
			ok = false
		case !given["value"] && !given["var"]:
			if n, found := c.pos[p+".value"]; found && n.Tag == "!!null" {
				c.at(p+".value", "%s: %s: value null means \"not set\" in YAML; write value: !json null for a JSON null, or use op: delete to remove the member", c.who, name)
			} else {
				c.at(p, "%s: %s: set needs value (a constant) or var (a request value such as consumer)", c.who, name)
			}
			ok = false
		}
	} else {
		for _, f := range takes {
			if !given[f] {
				c.at(p, "%s: %s: %s needs %s", c.who, name, o.Op, strings.Join(takes, " and "))
				ok = false
				break
			}
		}
	}
	if o.Var != "" && given["var"] && slices.Contains(takes, "var") {
		if msg := c.varProblem(o.Var); msg != "" {
			c.at(p+".var", "%s: %s: var %q: %s", c.who, name, o.Var, msg)
			ok = false
		}
	}
	if !ok {
		return false
	}
	if _, err := jsonx.Compile(jsonx.Spec{Ops: []jsonx.Op{o.JSONX()}}); err != nil {
		msg := strings.TrimPrefix(jsonxMessage(err), "path: ") // "path: path "a.": …"
		field, _, _ := strings.Cut(msg, " ")
		field = strings.TrimSuffix(field, ":")
		if given[field] {
			c.at(p+"."+field, "%s: %s: %s", c.who, name, msg)
		} else {
			c.at(p, "%s: %s: %s", c.who, name, msg)
		}
		return false
	}
	return true
}

func (c *transformCheck) status(p, name string, ms []StatusMap) {
	for j, m := range ms {
		sp := fmt.Sprintf("%s[%d]", p, j)
		if m.From != 0 && (m.From < 100 || m.From > 599) {
			c.at(sp+".from", "%s: %s[%d].from %d must be 100..599 (or 0 for any status)", c.who, name, j, m.From)
		}
		switch {
		case m.To == 0:
			c.at(sp, "%s: %s[%d].to is required: the status to answer, 200..599", c.who, name, j)
		case m.To < 200 || m.To > 599:
			c.at(sp+".to", "%s: %s[%d].to %d must be 200..599 (a 1xx is not a final answer)", c.who, name, j, m.To)
		case m.To == m.From:
			c.at(sp+".to", "%s: %s[%d] maps %d to itself; remove it", c.who, name, j, m.From)
		}
		if m.IfField != "" {
			if msg := ifFieldProblem(m.IfField); msg != "" {
				c.at(sp+".if_field", "%s: %s[%d].if_field: %s", c.who, name, j, msg)
			}
		}
		for k := range j {
			e := ms[k]
			if (e.From == 0 || e.From == m.From) && (e.IfField == "" || e.IfField == m.IfField) {
				c.at(sp, "%s: %s[%d] never applies: %s[%d]%s comes first and matches every response it would; reorder or remove",
					c.who, name, j, name, k, c.lineNote(fmt.Sprintf("%s[%d]", p, k)))
				break
			}
		}
	}
}

// ifFieldProblem checks an if_field path: one member, no "[]".
func ifFieldProblem(f string) string {
	if _, err := jsonx.Compile(jsonx.Spec{Allow: []string{f}}); err != nil {
		return jsonxMessage(err)
	}
	if f == "." {
		return `if_field must name a member, such as "error"`
	}
	if _, err := jsonx.Compile(jsonx.Spec{Ops: []jsonx.Op{{Kind: "extract", Path: f}}}); err != nil {
		return fmt.Sprintf("%q: if_field names one member; \"[]\" is not allowed", f)
	}
	return ""
}

// jsonxListPrefixRE matches what jsonx puts before a list entry's or an
// op's error (the validator names the entry itself).
var jsonxListPrefixRE = regexp.MustCompile(`^(?:(?:allow|deny)\[\d+\]:? |ops\[\d+\] \([^)]*\): )`)

// jsonxFieldRE is a jsonx.Op field name.
var jsonxFieldRE = regexp.MustCompile(`\b(From|To|Path|Key|Value|Var|Kind)\b`)

// jsonxMessage turns a jsonx compile error into the configuration's terms:
// without its prefixes, and with the op's fields by their YAML names
// (outside the quoted paths the message cites).
func jsonxMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "jsonx: ")
	msg = jsonxListPrefixRE.ReplaceAllString(msg, "")
	var b strings.Builder
	for len(msg) > 0 {
		q := strings.IndexByte(msg, '"')
		if q < 0 {
			q = len(msg)
		}
		b.WriteString(jsonxFieldRE.ReplaceAllStringFunc(msg[:q], func(f string) string {
			if f == "Kind" {
				return "op"
			}
			return strings.ToLower(f)
		}))
		msg = msg[q:]
		if msg == "" {
			break
		}
		// Copy the quoted string, escapes included.
		end := 1
		for end < len(msg) && msg[end] != '"' {
			if msg[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end+1, len(msg))
		b.WriteString(msg[:end])
		msg = msg[end:]
	}
	return b.String()
}

// sizeText writes a size in the unit it is most likely written in.
func sizeText(b ByteSize) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%d bytes", b)
}
