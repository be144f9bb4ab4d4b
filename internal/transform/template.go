package transform

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/exchange"
)

// varKind is what a template variable reads.
type varKind uint8

const (
	varConsumer varKind = iota + 1
	varTier
	varClientIP
	varRequestID
	varPath   // {path.NAME}: a template route's parameter
	varQuery  // {query.NAME}: the first value of a query parameter
	varHeader // {header.NAME}: the first value of a request header
	varClaim  // {claim.NAME}: a claim of the consumer's credential
)

// variable is one request value, named as in templates and jsonx's set
// ops: consumer, tier, client_ip, request_id, path.NAME, query.NAME,
// header.NAME, claim.NAME.
type variable struct {
	kind varKind
	name string // of path, query, header (canonical) and claim
}

// parseVar reads a variable's name.
func parseVar(s string) (variable, error) {
	switch s {
	case "consumer":
		return variable{kind: varConsumer}, nil
	case "tier":
		return variable{kind: varTier}, nil
	case "client_ip":
		return variable{kind: varClientIP}, nil
	case "request_id":
		return variable{kind: varRequestID}, nil
	}
	prefix, name, ok := strings.Cut(s, ".")
	if ok && name != "" {
		switch prefix {
		case "path":
			return variable{kind: varPath, name: name}, nil
		case "query":
			return variable{kind: varQuery, name: name}, nil
		case "header":
			if !validHeaderName(name) {
				return variable{}, fmt.Errorf("variable %q: %q is not a header name", s, name)
			}
			return variable{kind: varHeader, name: http.CanonicalHeaderKey(name)}, nil
		case "claim":
			return variable{kind: varClaim, name: name}, nil
		}
	}
	return variable{}, fmt.Errorf("unknown variable %q (want consumer, tier, client_ip, request_id, path.NAME, query.NAME, header.NAME or claim.NAME)", s)
}

// vars are the request values templates and body transforms read: the
// request as it reached the transform stage.
type vars struct {
	x *exchange.Exchange // nil outside a node (tests)
	h http.Header
	q string // the raw query
}

func (v *vars) lookup(vr variable) (string, bool) {
	x := v.x
	if x == nil && vr.kind != varQuery && vr.kind != varHeader {
		return "", false
	}
	var s string
	switch vr.kind {
	case varConsumer:
		s = x.Consumer
	case varTier:
		s = x.Tier
	case varClientIP:
		s = x.ClientIP
	case varRequestID:
		s = x.RequestID
	case varPath:
		p := &x.Match.Params
		for i := range p.Len() {
			if n, val := p.At(i); n == vr.name {
				return val, true
			}
		}
		return "", false
	case varQuery:
		return queryValue(v.q, vr.name)
	case varHeader:
		switch vs := v.h[vr.name]; len(vs) {
		case 0:
			return "", false
		case 1:
			return vs[0], true
		default:
			return strings.Join(vs, ", "), true
		}
	case varClaim:
		if x.Claim != nil {
			return x.Claim(vr.name)
		}
		return "", false
	}
	return s, s != ""
}

// Lookup is jsonx.Vars: set ops with var read the same values as templates.
func (v *vars) Lookup(name string) (string, bool) {
	vr, err := parseVar(name)
	if err != nil {
		return "", false
	}
	return v.lookup(vr)
}

// queryValue is the first value of the query parameter name in raw.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, val, _ := strings.Cut(pair, "=")
		if unescapeQuery(k) == name {
			return unescapeQuery(val), true
		}
	}
	return "", false
}

// unescapeQuery decodes a query component; without escapes it is s itself
// (no allocation), and a malformed escape leaves it as written.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// segment is a literal run of a template, or one of its variables.
type segment struct {
	lit string
	v   variable // kind 0: a literal
}

// template is a compiled value: literal text and {variables}; "{{" and
// "}}" are literal braces.
type template struct {
	segs []segment
	// constant is the value of a template without variables, as a shared
	// header value (len == cap, so an append by anyone copies it).
	constant []string
}

func compileTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return t, fmt.Errorf("%q: unterminated {", s)
			}
			v, err := parseVar(s[i+1 : i+1+end])
			if err != nil {
				return t, fmt.Errorf("%q: %w", s, err)
			}
			if lit.Len() > 0 {
				t.segs = append(t.segs, segment{lit: lit.String()})
				lit.Reset()
			}
			t.segs = append(t.segs, segment{v: v})
			i += end + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return t, fmt.Errorf("%q: unmatched } (write }} for a brace)", s)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 || len(t.segs) == 0 {
		t.segs = append(t.segs, segment{lit: lit.String()})
	}
	if len(t.segs) == 1 && t.segs[0].v.kind == 0 {
		t.constant = []string{t.segs[0].lit}
	}
	return t, nil
}

// render is the template's value for the request: a variable without a
// value is empty.
func (t *template) render(v *vars) string {
	if t.constant != nil {
		return t.constant[0]
	}
	if len(t.segs) == 1 {
		s, _ := v.lookup(t.segs[0].v)
		return s
	}
	var buf [128]byte
	b := buf[:0]
	for _, sg := range t.segs {
		if sg.v.kind == 0 {
			b = append(b, sg.lit...)
			continue
		}
		val, _ := v.lookup(sg.v)
		b = append(b, val...)
	}
	return string(b)
}

// namedTemplate is a set or add of one header or query parameter.
type namedTemplate struct {
	name string
	t    template
}

// rename moves the values of from to to.
type rename struct{ from, to string }

// ops are a side's compiled TemplateOps, on headers or query parameters,
// applied in the order remove, rename, set, add, every template rendered
// first, from the request as it reached the stage.
type ops struct {
	remove  []string
	renames []rename
	set     []namedTemplate
	add     []namedTemplate
	dynamic bool // some template has variables
}

func (o *ops) empty() bool {
	return len(o.remove) == 0 && len(o.renames) == 0 && len(o.set) == 0 && len(o.add) == 0
}

// compileOps compiles TemplateOps; header names are canonicalized.
func compileOps(what string, c config.TemplateOps, header bool) (ops, error) {
	var o ops
	name := func(n string) (string, error) {
		if !header {
			if n == "" {
				return "", fmt.Errorf("%s: empty parameter name", what)
			}
			return n, nil
		}
		if !validHeaderName(n) {
			return "", fmt.Errorf("%s: %q is not a header name", what, n)
		}
		n = http.CanonicalHeaderKey(n)
		switch n {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return "", fmt.Errorf("%s: %s cannot be changed by a transform", what, n)
		}
		return n, nil
	}
	for _, n := range c.Remove {
		cn, err := name(n)
		if err != nil {
			return o, err
		}
		o.remove = append(o.remove, cn)
	}
	for _, from := range sortedKeys(c.Rename) {
		f, err := name(from)
		if err != nil {
			return o, err
		}
		t, err := name(c.Rename[from])
		if err != nil {
			return o, err
		}
		o.renames = append(o.renames, rename{f, t})
	}
	templates := func(m map[string]string, kind string) ([]namedTemplate, error) {
		var out []namedTemplate
		for _, k := range sortedKeys(m) {
			n, err := name(k)
			if err != nil {
				return nil, err
			}
			t, err := compileTemplate(m[k])
			if err != nil {
				return nil, fmt.Errorf("%s.%s[%s]: %w", what, kind, k, err)
			}
			if header && t.constant != nil && !validHeaderValue(t.constant[0]) {
				return nil, fmt.Errorf("%s.%s[%s]: invalid header value", what, kind, k)
			}
			o.dynamic = o.dynamic || t.constant == nil
			out = append(out, namedTemplate{n, t})
		}
		return out, nil
	}
	var err error
	if o.set, err = templates(c.Set, "set"); err != nil {
		return o, err
	}
	if o.add, err = templates(c.Add, "add"); err != nil {
		return o, err
	}
	return o, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// values renders the set then add templates into dst, before any
// operation changes the request. It returns nil when every template is a
// constant.
func (o *ops) values(v *vars, dst []string) []string {
	if !o.dynamic {
		return nil
	}
	for i := range o.set {
		dst = append(dst, o.set[i].t.render(v))
	}
	for i := range o.add {
		dst = append(dst, o.add[i].t.render(v))
	}
	return dst
}

// value is template i's value (of set, then add) for this request, and
// the shared header value of a constant.
func (o *ops) value(t *template, vals []string, i int) (string, []string) {
	if t.constant != nil {
		return t.constant[0], t.constant
	}
	return vals[i], nil
}

// applyHeaders changes h; values are from values. A rendered value that
// could not be a header value (a claim with a line break) is not set.
func (o *ops) applyHeaders(h http.Header, vals []string) {
	for _, n := range o.remove {
		delete(h, n)
	}
	for _, rn := range o.renames {
		if v, ok := h[rn.from]; ok {
			delete(h, rn.from)
			h[rn.to] = v
		}
	}
	for i := range o.set {
		s, shared := o.value(&o.set[i].t, vals, i)
		if shared == nil { // a rendered value (constants were checked once)
			if !validHeaderValue(s) {
				continue
			}
			shared = []string{s}
		}
		h[o.set[i].name] = shared
	}
	for i := range o.add {
		s, shared := o.value(&o.add[i].t, vals, len(o.set)+i)
		if shared == nil && !validHeaderValue(s) {
			continue
		}
		if old := h[o.add[i].name]; len(old) > 0 {
			h[o.add[i].name] = append(old[:len(old):len(old)], s)
		} else if shared != nil {
			h[o.add[i].name] = shared
		} else {
			h[o.add[i].name] = []string{s}
		}
	}
}

// applyQuery rewrites a raw query, keeping the order and the encoding of
// the parameters it does not touch: removed and renamed ones go (a rename
// replaces the parameters named as its target), set replaces the first of
// its name in place (and drops the others) or appends, add appends.
func (o *ops) applyQuery(raw string, vals []string) string {
	type pair struct{ key, raw string } // key decoded; raw "k=v" as written
	var pairs []pair
	for rest := raw; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, "&")
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		pairs = append(pairs, pair{unescapeQuery(k), p})
	}
	drop := func(name string) {
		pairs = slices.DeleteFunc(pairs, func(p pair) bool { return p.key == name })
	}
	for _, n := range o.remove {
		drop(n)
	}
	for _, rn := range o.renames {
		if !slices.ContainsFunc(pairs, func(p pair) bool { return p.key == rn.from }) {
			continue
		}
		drop(rn.to)
		for i := range pairs {
			if pairs[i].key == rn.from {
				_, v, hasV := strings.Cut(pairs[i].raw, "=")
				pairs[i].key, pairs[i].raw = rn.to, url.QueryEscape(rn.to)
				if hasV {
					pairs[i].raw += "=" + v
				}
			}
		}
	}
	for i := range o.set {
		s, _ := o.value(&o.set[i].t, vals, i)
		n := o.set[i].name
		p := pair{n, url.QueryEscape(n) + "=" + url.QueryEscape(s)}
		if j := slices.IndexFunc(pairs, func(p pair) bool { return p.key == n }); j >= 0 {
			pairs[j] = p
			pairs = append(pairs[:j+1], slices.DeleteFunc(pairs[j+1:], func(p pair) bool { return p.key == n })...)
		} else {
			pairs = append(pairs, p)
		}
	}
	for i := range o.add {
		s, _ := o.value(&o.add[i].t, vals, len(o.set)+i)
		n := o.add[i].name
		pairs = append(pairs, pair{n, url.QueryEscape(n) + "=" + url.QueryEscape(s)})
	}
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.raw)
	}
	return b.String()
}

// validHeaderName: an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue keeps a templated value (a claim, a query parameter)
// from splitting or smuggling a header.
func validHeaderValue(v string) bool {
	if len(v) > 8<<10 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
