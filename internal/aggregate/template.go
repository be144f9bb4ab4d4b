package aggregate

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/transform"
	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// partKind is what a part of a compiled template is.
type partKind uint8

const (
	partLiteral partKind = iota
	partVar              // a request variable (transform.RequestVars)
	partRef              // {call.NAME.PATH}
)

// part is literal text or a variable of a template.
type part struct {
	kind partKind
	text string // the literal, or the request variable's name
	ref  *ref
	// encoded: the variable's value is percent-encoded already (path.NAME:
	// the route's parameter, as in the request's path).
	encoded bool
}

// ref is a {call.NAME.PATH} variable: a value of another call's response.
type ref struct {
	expr     string // as written, braces included, for errors
	call     int    // index of the call it reads
	callName string
	path     []string
	pathText string
}

// tmpl is a compiled template.
type tmpl []part

// refs are the calls a template reads.
func (t tmpl) refs(deps []int) []int {
	for _, p := range t {
		if p.kind == partRef {
			deps = append(deps, p.ref.call)
		}
	}
	return deps
}

// compileTemplate compiles s; names are the calls of the composite by name.
func compileTemplate(s string, names map[string]int) (tmpl, error) {
	parsed, err := config.ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	t := make(tmpl, 0, len(parsed))
	for _, p := range parsed {
		if p.Var == "" {
			t = append(t, part{kind: partLiteral, text: p.Literal})
			continue
		}
		r, err := compileVar(p.Var, names)
		if err != nil {
			return nil, err
		}
		if r != nil {
			t = append(t, part{kind: partRef, ref: r})
		} else {
			t = append(t, part{kind: partVar, text: p.Var, encoded: strings.HasPrefix(p.Var, "path.")})
		}
	}
	return t, nil
}

// compileVar compiles a variable: a reference to a call (non-nil), or a
// request variable (nil).
func compileVar(v string, names map[string]int) (*ref, error) {
	name, path, ok := config.CallRef(v)
	if !ok {
		if err := transform.CheckVar(v); err != nil {
			return nil, fmt.Errorf("%w (or call.NAME.PATH)", err)
		}
		return nil, nil
	}
	i, ok := names[name]
	if !ok {
		return nil, fmt.Errorf("{%s}: no call is named %q", v, name)
	}
	r := &ref{expr: "{" + v + "}", call: i, callName: name, pathText: path}
	if path != "" {
		r.path = strings.Split(path, ".")
		for _, step := range r.path {
			if step == "" {
				return nil, fmt.Errorf("{%s}: empty step in the path %q", v, path)
			}
		}
	}
	return r, nil
}

// renderer gives templates their values: the client's request and the
// responses of the calls done so far.
type renderer struct {
	vars *transform.Vars
	res  []result
}

// raw is the referenced JSON value as it is (null, objects and arrays
// included), or the reason there is none.
func (r *ref) raw(res []result) ([]byte, string) {
	if v, ok := lookup(res[r.call].doc, r.path); ok {
		return v, ""
	}
	return nil, r.missing()
}

func (r *ref) missing() string {
	if r.pathText == "" {
		return r.expr + ": " + r.callName + "'s response is empty"
	}
	return r.expr + ": " + r.callName + "'s response has no " + r.pathText
}

// appendScalar appends the reference's value as text, or returns the
// reason it has none.
func (r *ref) appendScalar(dst []byte, res []result) ([]byte, string) {
	v, ok := lookup(res[r.call].doc, r.path)
	if !ok {
		return dst, r.missing()
	}
	out, kind := scalar(dst, v)
	switch kind {
	case kindMissing:
		return dst, r.missing()
	case kindComposite:
		what := r.pathText
		if what == "" {
			what = "response"
		}
		return dst, r.expr + ": " + r.callName + "'s " + what + " is not a scalar"
	}
	return out, ""
}

// appendText appends the template's value: literals as written, and each
// variable's value as it is, or, in a path (segment), as one path segment
// (appendSegment). It returns the reason a reference has no value.
func (t tmpl) appendText(dst []byte, rd *renderer, segment bool) ([]byte, string) {
	for _, p := range t {
		switch p.kind {
		case partLiteral:
			dst = append(dst, p.text...)
		case partVar:
			v, _ := rd.vars.Lookup(p.text)
			if segment {
				dst = appendSegment(dst, v, p.encoded)
			} else {
				dst = append(dst, v...)
			}
		case partRef:
			if !segment {
				var why string
				if dst, why = p.ref.appendScalar(dst, rd.res); why != "" {
					return dst, why
				}
				continue
			}
			var buf [64]byte
			v, why := p.ref.appendScalar(buf[:0], rd.res)
			if why != "" {
				return dst, why
			}
			dst = appendSegment(dst, v, false)
		}
	}
	return dst, ""
}

// unreserved marks the bytes written as they are in a path segment or a
// query component (RFC 3986's unreserved characters).
var unreserved = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

// appendSegment appends v as one path segment: percent-encoded but for
// unreserved characters, and all dots encoded when it is nothing but dots
// ("." and ".." cannot step out of it). encoded: v is percent-encoded
// already (a route's path parameter, as the request's path has it), and
// its escapes are kept as they are (%2F stays %2F, %20 is not encoded a
// second time).
func appendSegment[T string | []byte](dst []byte, v T, encoded bool) []byte {
	if dotsOnly(v) {
		for range len(v) {
			dst = append(dst, "%2E"...)
		}
		return dst
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case unreserved[c]:
			dst = append(dst, c)
		case c == '%' && encoded && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			dst = append(dst, c, v[i+1], v[i+2])
			i += 2
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// dotsOnly: v is "", ".", ".." or more dots.
func dotsOnly[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '.' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// appendEscaped percent-encodes every byte of v but unreserved ones (a
// query component: unambiguous whatever the server's decoder).
func appendEscaped[T string | []byte](dst []byte, v T) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// hasControl reports whether v holds a byte no header value may carry: a
// control character other than tab (CR, LF, NUL …) or DEL.
func hasControl(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// bodyPart is a piece of a call's JSON body: JSON text as it is, a string
// template (rendered and quoted), or a string that is exactly one
// reference (the referenced JSON value as it is).
type bodyPart struct {
	lit []byte
	str tmpl
	ref *ref
}

// compileBody splits the call's JSON body (compact JSON, as
// config.JSONValue holds it) into parts: each string value is a template.
func compileBody(doc []byte, names map[string]int) ([]bodyPart, error) {
	var parts []bodyPart
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			parts = append(parts, bodyPart{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(doc); {
		if doc[i] != '"' {
			lit = append(lit, doc[i])
			i++
			continue
		}
		end, _, lexErr := jsonx.ScanString(doc, i, false)
		if lexErr != jsonx.LexOK {
			return nil, fmt.Errorf("body: invalid JSON string at offset %d", i)
		}
		raw := doc[i:end]
		i = end
		if j := skipSpace(doc, end); j < len(doc) && doc[j] == ':' { // a key
			lit = append(lit, raw...)
			continue
		}
		s := string(jsonx.AppendUnquoted(nil, raw[1:len(raw)-1]))
		if !strings.ContainsAny(s, "{}") {
			lit = append(lit, raw...)
			continue
		}
		t, err := compileTemplate(s, names)
		if err != nil {
			return nil, fmt.Errorf("body: %q: %w", s, err)
		}
		switch {
		case len(t) == 1 && t[0].kind == partRef:
			flush()
			parts = append(parts, bodyPart{ref: t[0].ref})
		case hasVars(t):
			flush()
			parts = append(parts, bodyPart{str: t})
		default: // "{{" and "}}": literal braces
			var text []byte
			for _, p := range t {
				text = append(text, p.text...)
			}
			lit = jsonx.AppendQuoted(lit, text)
		}
	}
	flush()
	return parts, nil
}

func hasVars(t tmpl) bool {
	for _, p := range t {
		if p.kind != partLiteral {
			return true
		}
	}
	return false
}

// appendBody renders the body; it returns the reason a reference has no
// value.
func appendBody(dst []byte, parts []bodyPart, rd *renderer) ([]byte, string) {
	for _, p := range parts {
		switch {
		case p.ref != nil:
			v, why := p.ref.raw(rd.res)
			if why != "" {
				return dst, why
			}
			dst = append(dst, v...)
		case p.str != nil:
			var buf [128]byte
			v, why := p.str.appendText(buf[:0], rd, false)
			if why != "" {
				return dst, why
			}
			dst = jsonx.AppendQuoted(dst, v)
		default:
			dst = append(dst, p.lit...)
		}
	}
	return dst, ""
}
