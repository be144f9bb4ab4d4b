package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a configuration file, at file:line:col.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Errors is every problem found in one file, in file order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes strictly, defaults and validates the file at path.
// Any error is an Errors whose entries carry file:line:col.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// maxConfigBytes bounds what Parse accepts; a config is a few KiB.
const maxConfigBytes = 16 << 20

// Parse is Load on bytes already read; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var cfg Config
	s, err := decodeStrict(name, data, &cfg)
	if err != nil {
		return nil, err
	}
	applyTracingEnv(cfg.Tracing)
	applyClusterEnv(cfg.Cluster)
	if cfg.Server.MaxBodyBytes == 0 { // an edge's; a sidecar's has none
		cfg.Server.MaxBodyBytes = DefaultEdgeMaxBodyBytes
	}
	applyDefaults(&cfg)
	v := &validator{shape: s}
	v.validate(&cfg)
	v.readSecrets(&cfg)
	v.readFallbackBodies(&cfg)
	if len(s.errs) > 0 {
		return nil, s.sorted()
	}
	return &cfg, nil
}

// decodeStrict decodes one YAML document into out (a pointer to a schema
// struct), refusing unknown fields and wrong kinds with their positions. The
// returned shape knows the position of every field, for validation.
func decodeStrict(name string, data []byte, out any) (*shape, error) {
	if len(data) > maxConfigBytes {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("file larger than %d bytes", maxConfigBytes)}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Msg: "empty configuration"}}
		}
		return nil, Errors{yamlError(name, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: name, Line: extra.Line, Col: extra.Column, Msg: "only one YAML document is allowed"}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	s := &shape{file: name, pos: map[string]*yaml.Node{}}
	s.walk(doc, reflect.TypeOf(out).Elem(), "")
	if len(s.errs) > 0 {
		return nil, s.sorted()
	}
	if err := doc.Decode(out); err != nil {
		return nil, Errors{yamlError(name, err)}
	}
	return s, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// yamlError turns a yaml library error into file:line form.
func yamlError(file string, err error) Error {
	var pe *posError
	if errors.As(err, &pe) {
		return Error{File: file, Line: pe.Line, Col: pe.Col, Msg: pe.Msg}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatchIndex(msg); m != nil {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		rest := msg[:m[0]] + msg[m[1]:]
		return Error{File: file, Line: line, Col: 1, Msg: strings.TrimPrefix(rest, "unmarshal errors:\n  ")}
	}
	return Error{File: file, Msg: msg}
}

// shape checks a YAML tree against the Go schema before decoding: unknown
// fields and wrong kinds are reported with their exact position, all at once,
// and the position of every field is remembered so that validation can point
// at the line it complains about.
type shape struct {
	file string
	pos  map[string]*yaml.Node // field path → its value node
	errs Errors
	// visits bounds the walk: aliases can make a small file expand
	// exponentially ("billion laughs"), or refer to themselves.
	visits int
}

// maxVisits is far above any real configuration's node count.
const maxVisits = 200_000

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (s *shape) errorf(n *yaml.Node, format string, args ...any) {
	e := Error{File: s.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	s.errs = append(s.errs, e)
}

func (s *shape) sorted() Errors {
	sort.SliceStable(s.errs, func(i, j int) bool {
		a, b := s.errs[i], s.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return s.errs
}

func (s *shape) walk(n *yaml.Node, t reflect.Type, path string) {
	if s.visits++; s.visits > maxVisits {
		if s.visits == maxVisits+1 {
			s.errorf(n, "document too large or too deeply aliased")
		}
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	s.pos[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the field at its default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		var probe = reflect.New(t).Interface().(yaml.Unmarshaler)
		if err := probe.UnmarshalYAML(n); err != nil {
			var pe *posError
			if errors.As(err, &pe) {
				s.errs = append(s.errs, Error{File: s.file, Line: pe.Line, Col: pe.Col, Msg: pe.Msg})
			} else {
				s.errorf(n, "%v", err)
			}
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			s.errorf(n, "%s: expected a mapping, found %s", name(path), kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				s.errorf(k, "unknown field %q in %s (known: %s)", k.Value, name(path), strings.Join(fieldNames(t), ", "))
				continue
			}
			s.walk(v, f.Type, join(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.errorf(n, "%s: expected a list, found %s", name(path), kindName(n))
			return
		}
		for i, item := range n.Content {
			s.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			s.errorf(n, "%s: expected a mapping, found %s", name(path), kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.errorf(n, "%s: expected a string, found %s", name(path), kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			s.errorf(n, "%s: expected true or false, found %q", name(path), n.Value)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			s.errorf(n, "%s: expected an integer, found %q", name(path), n.Value)
		} else if _, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err != nil {
			s.errorf(n, "%s: integer %q out of range", name(path), n.Value)
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func name(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tagName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		names = append(names, tagName(t.Field(i)))
	}
	return names
}

func tagName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return tag
}
