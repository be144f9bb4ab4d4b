package transform

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/transform/jq"
	"github.com/meshgate/meshgate/internal/transform/jsonx"
	"github.com/meshgate/meshgate/internal/transform/xmljson"
)

// Body formats.
const (
	formatJSON   = "json"
	formatXML    = "xml"
	formatAccept = "accept" // response side: XML when the client prefers it
)

// Media types written.
const (
	typeJSON    = "application/json"
	typeXML     = "application/xml"
	typeTextXML = "text/xml"
)

// bodyProg is a compiled BodyTransform.
type bodyProg struct {
	from, to string
	xml      *xmljson.Converter // from or to XML
	mapping  *jsonx.Program     // allow/deny and map; nil: none
	jq       *jq.Program        // nil: none
	jqVars   []string           // the variables jq takes, in order, without "$"
	jqClaims []string           // claim names the expression reads as $claims.NAME
	// limit bounds every intermediate and final result (the input is bound
	// by max_body before it gets here).
	limit int
}

// jqVarNames are the variables a jq expression may use.
var jqVarNames = []string{"consumer", "tier", "client_ip", "request_id", "path", "query", "headers", "claims"}

var (
	jqVarRef   = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)
	jqClaimRef = regexp.MustCompile(`\$claims(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*"((?:[^"\\]|\\.)*)"\s*\])`)
)

func compileBody(what string, c *config.BodyTransform, maxBody int, response bool) (*bodyProg, error) {
	b := &bodyProg{from: c.From, to: c.To, limit: workFactor * maxBody}
	if b.from == "" {
		b.from = formatJSON
	}
	if b.to == "" {
		b.to = formatJSON
	}
	if b.from != formatJSON && b.from != formatXML {
		return nil, fmt.Errorf("%s.from: %q is not json or xml", what, c.From)
	}
	switch {
	case b.to == formatJSON || b.to == formatXML:
	case b.to == formatAccept && response:
	default:
		return nil, fmt.Errorf("%s.to: %q is not json, xml or (response side) accept", what, c.To)
	}
	if b.from == formatXML || b.to != formatJSON || c.XML.Root != "" || len(c.XML.ArrayPaths) > 0 {
		conv, err := xmljson.New(xmljson.Options{
			Root: c.XML.Root, ArrayPaths: c.XML.ArrayPaths,
			MaxBytes: b.limit, MaxOutputBytes: b.limit,
		})
		if err != nil {
			return nil, fmt.Errorf("%s.xml: %w", what, err)
		}
		b.xml = conv
	}
	if len(c.Allow) > 0 || len(c.Deny) > 0 || len(c.Map) > 0 {
		spec := jsonx.Spec{Allow: c.Allow, Deny: c.Deny}
		for i, m := range c.Map {
			op := jsonx.Op{Kind: m.Op, From: m.From, To: m.To, Path: m.Path, Key: m.Key, Var: m.Var}
			if m.Value != nil {
				v, err := json.Marshal(m.Value)
				if err != nil {
					return nil, fmt.Errorf("%s.map[%d].value: %w", what, i, err)
				}
				op.Value = v
			}
			if m.Var != "" {
				if _, err := parseVar(m.Var); err != nil {
					return nil, fmt.Errorf("%s.map[%d].var: %w", what, i, err)
				}
			}
			spec.Ops = append(spec.Ops, op)
		}
		p, err := jsonx.Compile(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		b.mapping = p
	}
	if c.JQ != "" {
		used := map[string]bool{}
		for _, m := range jqVarRef.FindAllStringSubmatch(c.JQ, -1) {
			used[m[1]] = true
		}
		for _, n := range jqVarNames {
			if used[n] {
				b.jqVars = append(b.jqVars, n)
			}
		}
		if used["claims"] {
			seen := map[string]bool{}
			for _, m := range jqClaimRef.FindAllStringSubmatch(c.JQ, -1) {
				n := m[1]
				if n == "" {
					var err error
					if n, err = jsonUnquote(m[2]); err != nil {
						continue
					}
				}
				if !seen[n] {
					seen[n] = true
					b.jqClaims = append(b.jqClaims, n)
				}
			}
		}
		p, err := jq.Compile(c.JQ, jq.Options{MaxBytes: b.limit, Vars: b.jqVars})
		if err != nil {
			return nil, fmt.Errorf("%s.jq: %w", what, err)
		}
		b.jq = p
	}
	return b, nil
}

func jsonUnquote(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(`"`+s+`"`), &out)
	return out, err
}

// reshapes: the body transform changes the document, not only its format.
func (b *bodyProg) reshapes() bool { return b.mapping != nil || b.jq != nil }

// outcome sorts what went wrong with a body.
type outcome uint8

const (
	bodyOK       outcome = iota
	bodyInvalid          // the body is not what the transform reads (400 / 502)
	bodyTooLarge         // over max_body, or grew past the work limit
	bodyFailed           // the transform itself failed (jq: error, timeout)
)

// bodyError is a failed step: what to answer, and a reason safe to show.
type bodyError struct {
	outcome outcome
	reason  string // for the client (bodyInvalid), or the operator's log
}

// toJSON reads the body as the transform's input format and returns it as
// JSON.
func (b *bodyProg) toJSON(in []byte) ([]byte, *bodyError) {
	if b.from != formatXML {
		return in, nil
	}
	out, err := b.xml.XMLToJSON(in)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// reshape runs the mapping and jq on a JSON document.
func (b *bodyProg) reshape(ctx context.Context, doc []byte, v *vars) ([]byte, *bodyError) {
	var mv jsonx.Vars
	if b.mapping != nil {
		vc := *v // what jsonx keeps escapes: a copy, so that v stays on its stack
		mv = &vc
	}
	return b.reshapeWith(ctx, nil, doc, v, mv)
}

// reshapeWith is reshape with the mapping reading mv (v itself when v is on
// the heap already, else a copy) and writing into *dst, a buffer to reuse
// (nil: a new one), which it leaves holding the mapping's output.
func (b *bodyProg) reshapeWith(ctx context.Context, dst *[]byte, doc []byte, v *vars, mv jsonx.Vars) ([]byte, *bodyError) {
	if b.mapping != nil {
		var into []byte
		if dst != nil {
			into = (*dst)[:0]
		}
		out, err := b.mapping.AppendApply(into, doc, mv, jsonx.Limits{MaxBytes: b.limit})
		if err != nil {
			return nil, classify(err)
		}
		if dst != nil && out != nil {
			*dst = out
		}
		doc = out
	}
	if b.jq != nil {
		if len(bytes.TrimSpace(doc)) == 0 {
			doc = []byte("null") // an absent document (a filter left nothing)
		}
		out, err := b.jq.Run(ctx, doc, b.jqValues(v))
		if err != nil {
			return nil, classify(err)
		}
		doc = out
	}
	return doc, nil
}

// fromJSON writes the JSON document in the output format.
func (b *bodyProg) fromJSON(doc []byte, xml bool) ([]byte, *bodyError) {
	if !xml {
		return doc, nil
	}
	out, err := b.xml.JSONToXML(doc)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// jqValues are the values of the variables jq takes, from the request:
// strings ("" when unknown), and objects.
func (b *bodyProg) jqValues(v *vars) []any {
	if len(b.jqVars) == 0 {
		return nil
	}
	vals := make([]any, len(b.jqVars))
	str := func(k varKind) any {
		s, _ := v.lookup(variable{kind: k})
		return s
	}
	for i, n := range b.jqVars {
		switch n {
		case "consumer":
			vals[i] = str(varConsumer)
		case "tier":
			vals[i] = str(varTier)
		case "client_ip":
			vals[i] = str(varClientIP)
		case "request_id":
			vals[i] = str(varRequestID)
		case "path":
			m := map[string]any{}
			if v.x != nil {
				p := &v.x.Match.Params
				for j := range p.Len() {
					k, val := p.At(j)
					m[k] = val
				}
			}
			vals[i] = m
		case "query":
			m := map[string]any{}
			q, _ := url.ParseQuery(v.q) // what parses of a malformed query
			for k, vs := range q {
				if len(vs) > 0 {
					m[k] = vs[0]
				}
			}
			vals[i] = m
		case "headers":
			m := make(map[string]any, len(v.h))
			for k, vs := range v.h {
				m[strings.ToLower(k)] = strings.Join(vs, ", ")
			}
			vals[i] = m
		case "claims":
			m := map[string]any{}
			for _, c := range b.jqClaims {
				if s, ok := v.lookup(variable{kind: varClaim, name: c}); ok {
					m[c] = s
				}
			}
			vals[i] = m
		}
	}
	return vals
}

// classify sorts an error of the libraries. Their body errors' texts are
// safe to show the client; jq's run errors are for the operator only.
func classify(err error) *bodyError {
	var xe *xmljson.BodyError
	var je *jsonx.BodyError
	var re *jq.RunError
	switch {
	case errors.As(err, &xe):
		if xe.Kind == xmljson.KindLimit {
			return &bodyError{bodyTooLarge, xe.Error()}
		}
		return &bodyError{bodyInvalid, xe.Error()}
	case errors.Is(err, jsonx.ErrTooLarge), errors.Is(err, jq.ErrTooLarge):
		return &bodyError{bodyTooLarge, "body too large"}
	case errors.As(err, &je):
		return &bodyError{bodyInvalid, je.Error()}
	case errors.Is(err, jq.ErrInvalidInput):
		return &bodyError{bodyInvalid, "not a single JSON value"}
	case errors.As(err, &re):
		return &bodyError{bodyFailed, "jq: " + re.Msg}
	case errors.Is(err, jq.ErrTimeout):
		return &bodyError{bodyFailed, "jq: timed out"}
	default:
		return &bodyError{bodyFailed, err.Error()}
	}
}

// Content codings. Only gzip and deflate can be decoded (the standard
// library has no Brotli or Zstandard decoder).
const (
	codingIdentity = iota
	codingGzip
	codingDeflate
	codingUnknown
)

// contentCoding is the one coding of a Content-Encoding header.
func contentCoding(values []string) (int, string) {
	coding, name := codingIdentity, ""
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			var c int
			switch {
			case tok == "", strings.EqualFold(tok, "identity"):
				continue
			case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
				c = codingGzip
			case strings.EqualFold(tok, "deflate"):
				c = codingDeflate
			default:
				c = codingUnknown
			}
			if coding != codingIdentity { // several codings: not undone here
				return codingUnknown, strings.TrimSpace(v)
			}
			coding, name = c, tok
		}
	}
	return coding, name
}

// errDecodedTooLarge: a decoded body over its limit.
var errDecodedTooLarge = errors.New("decoded body too large")

// decode undoes a gzip or deflate coding, reading at most limit bytes of
// the result. deflate is zlib's format (RFC 9110), or raw DEFLATE as some
// servers send it.
func decode(in []byte, coding, limit int) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch coding {
	case codingGzip:
		r, err = gzip.NewReader(bytes.NewReader(in))
	case codingDeflate:
		if r, err = zlib.NewReader(bytes.NewReader(in)); err != nil {
			r, err = flate.NewReader(bytes.NewReader(in)), nil
		}
	default:
		return in, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, errDecodedTooLarge
	}
	return out, nil
}

// codingName for reasons: "gzip" data, "deflate" data.
func codingName(coding int) string {
	if coding == codingGzip {
		return "gzip"
	}
	return "deflate"
}

// mediaType is the lower-cased type/subtype of a Content-Type.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// isJSONType: application/json or a +json subtype.
func isJSONType(mt string) bool {
	return strings.EqualFold(mt, typeJSON) || hasSuffixFold(mt, "+json")
}

// isXMLType: application/xml, text/xml or a +xml subtype.
func isXMLType(mt string) bool {
	return strings.EqualFold(mt, typeXML) || strings.EqualFold(mt, typeTextXML) || hasSuffixFold(mt, "+xml")
}

// isStreamType: a response that streams by nature.
func isStreamType(mt string) bool {
	return strings.EqualFold(mt, "text/event-stream") || hasPrefixFold(mt, "application/grpc")
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// prefersXML reads Accept: XML when application/xml or text/xml has a
// higher quality than application/json (ties, and no Accept, are JSON);
// the type is the XML type with the higher quality (application/xml on a
// tie). A media range's quality applies to a type unless a more specific
// range names it (RFC 9110 §12.5.1). It does not allocate.
func prefersXML(accept []string) (bool, string) {
	var c [3]struct {
		spec int // 0: no range matched; 1 */*; 2 type/*; 3 type/subtype
		q    int // per mille
	}
	types := [3][2]string{{"application", "json"}, {"application", "xml"}, {"text", "xml"}}
	for _, v := range accept {
		for rng := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(rng, ";")
			typ, sub, ok := strings.Cut(strings.TrimSpace(mt), "/")
			if !ok {
				continue
			}
			q := qValue(params)
			for i, t := range types {
				spec := 0
				switch {
				case typ == "*" && sub == "*":
					spec = 1
				case strings.EqualFold(typ, t[0]) && sub == "*":
					spec = 2
				case strings.EqualFold(typ, t[0]) && strings.EqualFold(sub, t[1]):
					spec = 3
				}
				if spec > c[i].spec || spec == c[i].spec && spec > 0 && q > c[i].q {
					c[i].spec, c[i].q = spec, q
				}
			}
		}
	}
	qj, qa, qt := c[0].q, c[1].q, c[2].q
	if max(qa, qt) <= qj {
		return false, ""
	}
	if qt > qa {
		return true, typeTextXML
	}
	return true, typeXML
}

// qValue is the q parameter of a media range, in thousandths (1000 when
// absent or unreadable).
func qValue(params string) int {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || (v[0] != '0' && v[0] != '1') {
			return 1000
		}
		q, scale := int(v[0]-'0')*1000, 100
		if len(v) > 1 && v[1] == '.' {
			for i := 2; i < len(v) && i < 5; i++ {
				if v[i] < '0' || v[i] > '9' {
					break
				}
				q += int(v[i]-'0') * scale
				scale /= 10
			}
		}
		return min(q, 1000)
	}
	return 1000
}

// acceptEncoding is a client's Accept-Encoding without the codings a
// transform cannot decode ("identity" when none is left: an absent header
// would mean any coding). It returns the value unchanged (no allocation)
// when there is nothing to remove.
func acceptEncoding(values []string) ([]string, bool) {
	clean := true
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if !decodable(tok) {
				clean = false
			}
		}
	}
	if clean {
		return values, false
	}
	var keep []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if decodable(tok) && strings.TrimSpace(tok) != "" {
				keep = append(keep, strings.TrimSpace(tok))
			}
		}
	}
	if len(keep) == 0 {
		return []string{"identity"}, true
	}
	return []string{strings.Join(keep, ", ")}, true
}

func decodable(tok string) bool {
	c, _, _ := strings.Cut(tok, ";")
	c = strings.TrimSpace(c)
	return c == "" || strings.EqualFold(c, "gzip") || strings.EqualFold(c, "x-gzip") ||
		strings.EqualFold(c, "deflate") || strings.EqualFold(c, "identity")
}
