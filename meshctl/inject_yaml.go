package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// The manifests are edited as yaml.v3 node trees, not decoded into
// Kubernetes types: the user's comments, key order, quoting and fields this
// meshctl does not know (a newer API's, a CRD's) survive an injection.

// chunk is one document of a multi-document stream as it was written: its
// separator line ("---", "--- # web", or "" for the first document) and
// the bytes up to the next separator. Chunks are cut on the text, so that
// a document meshctl leaves alone is copied byte for byte.
type chunk struct {
	sep  string
	body []byte
	line int // where body starts in the stream, from 1
}

// splitDocuments cuts a stream at its "---" lines. YAML forbids a document
// marker inside a scalar (a line starting "---" and a blank ends any
// block), so cutting on lines is cutting where the parser would.
func splitDocuments(data []byte) []chunk {
	var chunks []chunk
	cur := chunk{line: 1}
	start, line := 0, 1
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		if isSeparator(data[pos:next]) {
			cur.body = data[start:pos]
			if pos > 0 || len(cur.body) > 0 {
				chunks = append(chunks, cur)
			}
			cur = chunk{sep: string(data[pos:next]), line: line + 1}
			start = next
		}
		pos = next
		line++
	}
	cur.body = data[start:]
	return append(chunks, cur)
}

func isSeparator(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := l[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

// parseChunk decodes one chunk: nil for a chunk without a document (only
// comments or blanks), else its document node.
func parseChunk(c chunk) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(c.body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, errors.New(shiftLines(err.Error(), c.line-1))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		// A "..." end marker then more text: a second document without
		// a "---", which this meshctl does not cut on.
		return nil, errors.New("more than one document without a --- between them")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return &doc, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// shiftLines makes the line numbers of a yaml error, counted in a chunk,
// count in the whole stream.
func shiftLines(msg string, by int) string {
	return yamlLineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		return "line " + strconv.Itoa(n+by)
	})
}

// encodeDocument writes a document as kubectl and most manifests indent.
func encodeDocument(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// get is the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// str is the scalar value at a path of keys, or "".
func str(m *yaml.Node, path ...string) string {
	for _, k := range path {
		m = get(m, k)
	}
	if m == nil || m.Kind != yaml.ScalarNode {
		return ""
	}
	return m.Value
}

// child is the node of kind at key in m, created (empty) when absent; an
// existing value of another kind is an error naming where.
func child(m *yaml.Node, key string, kind yaml.Kind, where string) (*yaml.Node, error) {
	if v := get(m, key); v != nil {
		if v.Kind == kind || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			if v.Kind != kind { // "volumes:" or "volumes: null"
				*v = yaml.Node{Kind: kind}
			}
			return v, nil
		}
		return nil, fmt.Errorf("%s.%s is %s, not %s", where, key, kindName(v.Kind), kindName(kind))
	}
	v := &yaml.Node{Kind: kind}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "an alias"
}

// nodeOf is v (a struct with yaml tags) as a node, to append to a tree.
func nodeOf(v any) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		panic(err) // only meshctl's own types come here
	}
	return &n
}
