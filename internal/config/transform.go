package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
	"go.yaml.in/yaml/v3"
)

// Transform reshapes a route's requests before they are forwarded and its
// responses before the client gets them: headers and query parameters with
// values templated from the request, and bodies — JSON filtered, mapped or
// run through a jq expression, and converted between JSON and XML.
type Transform struct {
	// MaxBody bounds a body held for transformation (default 1MiB, at most
	// MaxTransformBody); past it, each side's on_too_large applies.
	MaxBody  ByteSize       `yaml:"max_body"`
	Request  *TransformSide `yaml:"request"`
	Response *TransformSide `yaml:"response"`
}

// Bounds and defaults of a route's transform.
const (
	DefaultTransformMaxBody = 1 << 20
	MaxTransformBody        = 64 << 20
	// MaxTemplateLen bounds one templated value, as written.
	MaxTemplateLen = 4096
)

// Values of TransformSide.OnTooLarge, BodyTransform.From and To.
const (
	OnTooLargeReject = "reject"
	OnTooLargePass   = "pass"
	BodyJSON         = "json"
	BodyXML          = "xml"
	BodyAccept       = "accept"
)

// TransformSide is what is done to one side of the exchange. Headers and
// query parameters change in the order remove, rename, set, add; they are
// applied after the route's request_headers (or response_headers).
type TransformSide struct {
	// Headers: values are templates (see ParseTemplate).
	Headers TemplateOps `yaml:"headers"`
	// Query parameters of the request sent upstream (request side only).
	Query TemplateOps    `yaml:"query"`
	Body  *BodyTransform `yaml:"body"`
	// Status maps the upstream's answer to another status (response side
	// only): the first entry that matches applies.
	Status []StatusMap `yaml:"status"`
	// OnTooLarge is what happens to a body over max_body: on the request
	// side "reject" (413, the default and only value); on the response side
	// "pass" (sent untransformed, the default) or "reject" (502).
	OnTooLarge string `yaml:"on_too_large"`
}

// TemplateOps change named values (headers or query parameters), in the
// order remove, rename, set, add.
type TemplateOps struct {
	// Add appends a value (kept alongside the existing ones).
	Add map[string]string `yaml:"add"`
	// Set replaces every existing value.
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
	// Rename moves a value to a new name (old: new).
	Rename map[string]string `yaml:"rename"`
}

// empty reports whether ops changes nothing.
func (o *TemplateOps) empty() bool {
	return len(o.Add) == 0 && len(o.Set) == 0 && len(o.Remove) == 0 && len(o.Rename) == 0
}

// BodyTransform reshapes a body: parsed from From, filtered (Allow or
// Deny), mapped (Map, in order), run through JQ, written as To.
type BodyTransform struct {
	// From is the body's format: "json" (default) or "xml" (converted to
	// JSON first).
	From string `yaml:"from"`
	// Allow keeps only these paths; Deny removes them (not both).
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	Map   []MapOp  `yaml:"map"`
	// JQ is a jq expression (gojq) applied after Map; it must yield one
	// value. Its variables are JQVars.
	JQ string `yaml:"jq"`
	// To is the format written: "json" (default), "xml", or "accept"
	// (response side: XML when the client's Accept prefers XML).
	To  string     `yaml:"to"`
	XML XMLOptions `yaml:"xml"`
}

// Spec is the declarative part of the body transform (filter and map), as
// validated: compile it with jsonx.Compile.
func (b *BodyTransform) Spec() jsonx.Spec {
	s := jsonx.Spec{Allow: b.Allow, Deny: b.Deny}
	for _, o := range b.Map {
		s.Ops = append(s.Ops, o.JSONX())
	}
	return s
}

// MapOp is one step of a declarative JSON mapping (jsonx.Op).
type MapOp struct {
	// Op: rename, move, wrap, extract, set, delete.
	Op   string `yaml:"op"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
	Path string `yaml:"path"`
	Key  string `yaml:"key"`
	// Value is set's constant: any YAML value, held as JSON. Var names a
	// request value instead (a template variable: consumer, path.id, …),
	// set as a JSON string.
	Value JSONValue `yaml:"value"`
	Var   string    `yaml:"var"`
}

// JSONX is the op as jsonx takes it.
func (o *MapOp) JSONX() jsonx.Op {
	return jsonx.Op{Kind: o.Op, From: o.From, To: o.To, Path: o.Path, Key: o.Key,
		Value: json.RawMessage(o.Value), Var: o.Var}
}

// XMLOptions shape the JSON↔XML conversion (xmljson.Options).
type XMLOptions struct {
	// Root is the root element of XML written from JSON that has no single
	// top-level key (default "root").
	Root string `yaml:"root"`
	// ArrayPaths are element paths (a.b.c) that are arrays in JSON even
	// with one element.
	ArrayPaths []string `yaml:"array_paths"`
}

// StatusMap maps an upstream status to another.
type StatusMap struct {
	// From is the upstream's status (0: any).
	From int `yaml:"from"`
	// IfField: the JSON response body must have this path (e.g. "error").
	IfField string `yaml:"if_field"`
	To      int    `yaml:"to"`
}

// JQVars are the variables a transform's jq expression may use, in the
// order the stage gives their values: $consumer, $tier, $client_ip and
// $request_id are strings ("" when unknown); $path (the route template's
// parameters), $query (each parameter's first value), $headers (each
// request header's values joined by ", ", by lower-case name) and $claims
// (the token's claims; {} without one) are objects.
var JQVars = []string{"consumer", "tier", "client_ip", "request_id", "path", "query", "headers", "claims"}

// Template variables. A template (a header or query value) or a map op's
// var names one of TemplateVars, or PREFIX.NAME for a prefix of
// TemplateVarPrefixes: path.NAME (a parameter of the route's path
// template), query.NAME (the request's query parameter, first value),
// header.NAME (the client's request header, values joined by ", ") and
// claim.NAME (a claim of the consumer's token). Variables always read the
// client's request, on the response side too; one without a value expands
// to "".
var (
	TemplateVars        = []string{"consumer", "tier", "client_ip", "request_id"}
	TemplateVarPrefixes = []string{"path", "query", "header", "claim"}
)

// Template is a parsed templated value: literal text and variables.
type Template []TemplatePart

// TemplatePart is literal text (Var == "") or a variable.
type TemplatePart struct {
	Literal string
	Var     string
}

// ParseTemplate parses a templated value: "{name}" is the variable name,
// "{{" is a literal "{" and "}}" a literal "}" (so "{{consumer}}" is the
// literal text "{consumer}"); any other "{" or "}" is an error. It checks
// the syntax only; which names exist depends on the route.
func ParseTemplate(s string) (Template, error) {
	var t Template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t = append(t, TemplatePart{Literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] != '}' {
				return nil, fmt.Errorf(`"{" at offset %d is not closed by "}" (write "{{" for a literal "{")`, i)
			}
			name := s[i+1 : i+1+end]
			if name == "" {
				return nil, fmt.Errorf(`empty variable "{}" at offset %d (write "{{}}" for a literal "{}")`, i)
			}
			flush()
			t = append(t, TemplatePart{Var: name})
			i += end + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf(`"}" at offset %d closes nothing (write "}}" for a literal "}")`, i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

// Expand writes the template with each variable replaced by lookup(name).
func (t Template) Expand(lookup func(name string) string) string {
	if len(t) == 1 && t[0].Var == "" {
		return t[0].Literal
	}
	var b strings.Builder
	for _, p := range t {
		if p.Var == "" {
			b.WriteString(p.Literal)
		} else {
			b.WriteString(lookup(p.Var))
		}
	}
	return b.String()
}

// JSONValue is a JSON document written in YAML: a map op's constant. Any
// YAML value converts (mappings keep their order; numbers keep their text
// when it is a JSON number, so 12345678901234567890 and 1e400 stay exact);
// a scalar tagged !json is JSON text taken as it is (`!json null` is JSON
// null, which a plain YAML null cannot say: it means "not set"). Empty
// means unset.
type JSONValue []byte

// Bounds of a JSONValue: aliases could make a small file expand.
const (
	maxJSONValueNodes = 10_000
	maxJSONValueBytes = 64 << 10
	maxJSONValueDepth = jsonx.DefaultMaxDepth
)

// UnmarshalYAML converts the YAML value to JSON.
func (j *JSONValue) UnmarshalYAML(n *yaml.Node) error {
	w := jsonWriter{}
	if err := w.value(n, 0); err != nil {
		return err
	}
	*j = w.buf
	return nil
}

// MarshalYAML writes the value as YAML (for replicated resources), or as
// a !json scalar when plain YAML would not read back the same JSON.
func (j JSONValue) MarshalYAML() (any, error) {
	if len(j) == 0 {
		return nil, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err == nil && len(doc.Content) == 1 {
		n := doc.Content[0]
		w := jsonWriter{}
		if n.Tag != "!!null" && w.value(n, 0) == nil && bytes.Equal(w.buf, j) {
			return n, nil
		}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!json", Value: string(j)}, nil
}

// MarshalJSON writes the value as it is (null when unset).
func (j JSONValue) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

type jsonWriter struct {
	buf   []byte
	nodes int
}

// jsonNumberRE is RFC 8259's number.
var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func (w *jsonWriter) value(n *yaml.Node, depth int) error {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return posErrorf(n, "value: unknown alias")
		}
		n = n.Alias
	}
	if w.nodes++; w.nodes > maxJSONValueNodes || len(w.buf) > maxJSONValueBytes {
		return posErrorf(n, "value: larger than %d KiB of JSON (or too deeply aliased)", maxJSONValueBytes>>10)
	}
	if depth > maxJSONValueDepth {
		return posErrorf(n, "value: nested more than %d deep", maxJSONValueDepth)
	}
	switch n.Kind {
	case yaml.MappingNode:
		w.buf = append(w.buf, '{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			switch {
			case k.Kind != yaml.ScalarNode:
				return posErrorf(k, "value: a JSON object's keys are strings, found %s", kindName(k))
			case k.Tag == "!!merge":
				return posErrorf(k, "value: merge keys (<<) are not supported")
			case k.Tag == "!!null":
				return posErrorf(k, "value: a null key is not a JSON object key (quote it: \"%s\")", k.Value)
			case seen[k.Value]:
				return posErrorf(k, "value: key %q appears twice", k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = appendJSONString(w.buf, k.Value)
			w.buf = append(w.buf, ':')
			if err := w.value(n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, '}')
	case yaml.SequenceNode:
		w.buf = append(w.buf, '[')
		for i, c := range n.Content {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.value(c, depth+1); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, ']')
	case yaml.ScalarNode:
		return w.scalar(n)
	default:
		return posErrorf(n, "value: expected a YAML value, found %s", kindName(n))
	}
	return nil
}

func (w *jsonWriter) scalar(n *yaml.Node) error {
	switch n.Tag {
	case "!json":
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(n.Value)); err != nil {
			return posErrorf(n, "value: !json %q is not JSON: %v", short(n.Value), err)
		}
		w.buf = append(w.buf, b.Bytes()...)
	case "!!null":
		w.buf = append(w.buf, "null"...)
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return posErrorf(n, "value: invalid boolean %q", n.Value)
		}
		w.buf = strconv.AppendBool(w.buf, b)
	case "!!int", "!!float":
		if jsonNumberRE.MatchString(n.Value) {
			w.buf = append(w.buf, n.Value...) // exact, whatever its size
			return nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return posErrorf(n, "value: invalid number %q", n.Value)
		}
		switch x := v.(type) {
		case int:
			w.buf = strconv.AppendInt(w.buf, int64(x), 10)
		case int64:
			w.buf = strconv.AppendInt(w.buf, x, 10)
		case uint64:
			w.buf = strconv.AppendUint(w.buf, x, 10)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return posErrorf(n, "value: %s is not a JSON number", n.Value)
			}
			w.buf = strconv.AppendFloat(w.buf, x, 'g', -1, 64)
		default:
			return posErrorf(n, "value: invalid number %q", n.Value)
		}
	default:
		if n.Tag == "!!str" && n.Style == 0 && jsonNumberRE.MatchString(n.Value) {
			// A plain number YAML does not resolve as one (1e400
			// overflows a float64): a JSON number all the same.
			w.buf = append(w.buf, n.Value...)
			return nil
		}
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			return posErrorf(n, "value: unknown tag %s (!json takes JSON text as it is)", n.Tag)
		}
		w.buf = appendJSONString(w.buf, n.Value)
	}
	return nil
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (<, > and & are kept).
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil { // cannot happen for a string
		return append(b, `""`...)
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// short clips a value quoted in an error.
func short(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
