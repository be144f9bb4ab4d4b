package xmljson

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// jkind is the type of a JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

// The JSON is read in two passes. The first checks it, with the limits,
// and lays it out as a tape: one jval per value, in document order, each
// container followed by its values. The second writes the XML from the
// tape. An object's members are read three times (attributes, text,
// children: XML's order, not JSON's), which the tape makes cheap; strings
// and keys stay bytes of the input and are decoded, if they have escapes,
// only when written. The tape is pooled: a conversion allocates its output
// and little else.

// jval is one value on the tape. A number keeps its literal byte for byte.
type jval struct {
	kind jkind
	esc  bool // the string needs decoding (escapes, invalid UTF-8)
	kesc bool // the key needs decoding
	// special: of an object, that it has members "-name" or "#text" (or
	// keys with escapes, which may be either): attributes and text, which
	// the writer otherwise does not look for.
	special bool
	key     span // the member's key, without its quotes (of an object's value)
	s       span // the string without its quotes, or the number's literal
	next    int32
	nkids   int32 // values of an array or object, which follow it
}

// span is in[off:end].
type span struct{ off, end int32 }

// buffers are a conversion's, kept for the next one. The parser and the
// writer themselves live on the stack: stores into them need no write
// barrier, which appends to a pooled (heap) struct would pay for.
type buffers struct {
	tape []jval
	buf  []byte  // scratch: decoded strings
	path []int32 // the writer's path
	out  []byte  // the XML being written
}

var bufPool = sync.Pool{New: func() any { return new(buffers) }}

func (b *buffers) release() {
	if cap(b.tape) > 1<<16 || cap(b.buf) > 1<<20 || cap(b.out) > 1<<20 {
		return // a big body's: let it go
	}
	bufPool.Put(b)
}

// JSONToXML converts one JSON document to XML: see the package
// documentation for the mapping and the limits. Errors about the body are
// *BodyError.
func (c *Converter) JSONToXML(in []byte) ([]byte, error) {
	if len(in) > c.o.MaxBytes {
		return nil, c.tooLarge("json", int64(c.o.MaxBytes))
	}
	bufs := bufPool.Get().(*buffers)
	defer bufs.release()
	p := jsonParser{in: in, maxDepth: c.o.MaxDepth, maxCount: c.o.MaxElements, tape: bufs.tape[:0]}
	_, err := p.document()
	bufs.tape = p.tape
	if err != nil {
		return nil, err
	}
	w := xmlWriter{c: c, in: in, tape: p.tape, max: c.o.MaxOutputBytes, root: c.root, buf: bufs.buf, path: bufs.path[:0], b: bufs.out[:0]}
	if want := min(len(in)+len(in)/2+64, w.max); cap(w.b) < want {
		w.b = make([]byte, 0, want)
	}
	err = w.document()
	bufs.buf, bufs.path, bufs.out = w.buf, w.path, w.b
	if err != nil {
		return nil, err
	}
	if len(w.b) > w.max {
		return nil, w.fail(KindLimit, "converted body is larger than %d bytes", w.max)
	}
	return bytes.Clone(w.b), nil // the output is written in a pooled buffer: one allocation, of its size
}

// JSONToXMLReader is JSONToXML on a stream: it reads at most MaxBytes+1
// bytes of r. Errors of r are returned wrapped, not as *BodyError.
func (c *Converter) JSONToXMLReader(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, int64(c.o.MaxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("xmljson: reading body: %w", err)
	}
	if n > int64(c.o.MaxBytes) {
		return nil, c.tooLarge("json", int64(c.o.MaxBytes))
	}
	return c.JSONToXML(buf.Bytes())
}

// jsonParser reads JSON (RFC 8259) onto a tape, checking depth and the
// number of values as it goes. Invalid UTF-8 and lone surrogates in
// strings are accepted, and become U+FFFD, as with encoding/json.
type jsonParser struct {
	in       []byte
	pos      int
	depth    int
	count    int
	maxDepth int
	maxCount int
	tape     []jval
}

func (p *jsonParser) fail(kind Kind, format string, args ...any) *BodyError {
	line, col := lineCol(p.in[:min(p.pos, len(p.in))])
	return &BodyError{Format: "json", Kind: kind, Line: line, Column: col,
		Offset: int64(p.pos), Reason: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) unexpected(what string) *BodyError {
	if p.pos >= len(p.in) {
		return p.fail(KindSyntax, "unexpected end of JSON, expected %s", what)
	}
	c := p.in[p.pos]
	if c >= 0x20 && c < 0x7F {
		return p.fail(KindSyntax, "unexpected %q, expected %s", rune(c), what)
	}
	return p.fail(KindSyntax, "unexpected byte 0x%02x, expected %s", c, what)
}

// document reads the body onto the tape and returns the number of values.
func (p *jsonParser) document() (int, error) {
	p.space()
	if p.pos == len(p.in) {
		return 0, p.fail(KindSyntax, "empty body")
	}
	if err := p.value(span{}, false); err != nil {
		return 0, err
	}
	p.space()
	if p.pos < len(p.in) {
		return 0, p.unexpected("end of JSON after the top-level value")
	}
	return len(p.tape), nil
}

func (p *jsonParser) space() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value reads a value onto the tape; key is its key in an object.
func (p *jsonParser) value(key span, kesc bool) error {
	if p.pos >= len(p.in) {
		return p.unexpected("a value")
	}
	v := jval{key: key, kesc: kesc}
	var err error
	switch c := p.in[p.pos]; {
	case c == '{' || c == '[':
		return p.container(c, key, kesc)
	case c == '"':
		v.kind = jString
		v.s, v.esc, err = p.string()
	case c == '-' || '0' <= c && c <= '9':
		v.kind = jNumber
		v.s, err = p.number()
	case c == 't':
		v.kind, err = jTrue, p.literal("true")
	case c == 'f':
		v.kind, err = jFalse, p.literal("false")
	case c == 'n':
		v.kind, err = jNull, p.literal("null")
	default:
		return p.unexpected("a value")
	}
	v.next = int32(len(p.tape) + 1)
	p.tape = append(p.tape, v)
	return err
}

func (p *jsonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
		return p.unexpected(lit)
	}
	p.pos += len(lit)
	return nil
}

// container reads an object or an array.
func (p *jsonParser) container(open byte, key span, kesc bool) error {
	if p.depth >= p.maxDepth {
		return p.fail(KindLimit, "arrays and objects nested deeper than %d", p.maxDepth)
	}
	p.depth++
	p.pos++
	at := len(p.tape)
	v := jval{kind: jArray, key: key, kesc: kesc}
	closer := byte(']')
	if open == '{' {
		v.kind, closer = jObject, '}'
	}
	p.tape = append(p.tape, v)
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == closer {
		p.pos++
		p.depth--
		p.tape[at].next = int32(len(p.tape))
		return nil
	}
	for n := int32(1); ; n++ {
		if p.count++; p.count > p.maxCount {
			return p.fail(KindLimit, "more than %d values", p.maxCount)
		}
		var k span
		var kesc bool
		if open == '{' {
			p.space()
			if p.pos >= len(p.in) || p.in[p.pos] != '"' {
				return p.unexpected("an object key")
			}
			var err error
			if k, kesc, err = p.string(); err != nil {
				return err
			}
			if kesc || k.end > k.off && p.in[k.off] == '-' || string(p.in[k.off:k.end]) == "#text" {
				p.tape[at].special = true
			}
			p.space()
			if p.pos >= len(p.in) || p.in[p.pos] != ':' {
				return p.unexpected(`":" after an object key`)
			}
			p.pos++
		}
		p.space()
		if err := p.value(k, kesc); err != nil {
			return err
		}
		p.space()
		if p.pos < len(p.in) {
			switch p.in[p.pos] {
			case ',':
				p.pos++
				continue
			case closer:
				p.pos++
				p.depth--
				p.tape[at].next, p.tape[at].nkids = int32(len(p.tape)), n
				return nil
			}
		}
		return p.unexpected(fmt.Sprintf("%q or %q", ',', closer))
	}
}

// number checks the JSON number grammar and keeps the literal.
func (p *jsonParser) number() (span, error) {
	start := p.pos
	end, e := jsonx.ScanNumber(p.in, p.pos)
	p.pos = end
	switch e {
	case jsonx.LexDigit:
		return span{}, p.unexpected("a digit")
	case jsonx.LexFraction:
		return span{}, p.unexpected("a digit after the decimal point")
	case jsonx.LexExponent:
		return span{}, p.unexpected("a digit in the exponent")
	}
	return span{int32(start), int32(end)}, nil
}

// string reads a JSON string at p.pos (a '"'); esc: its value is not its
// bytes (escapes, invalid UTF-8).
func (p *jsonParser) string() (s span, esc bool, err error) {
	start := p.pos + 1
	end, flags, e := jsonx.ScanString(p.in, p.pos, true)
	p.pos = end
	switch e {
	case jsonx.LexOK:
		return span{int32(start), int32(end - 1)}, flags != 0, nil
	case jsonx.LexControl:
		return s, false, p.fail(KindSyntax, "control character 0x%02x in a string (escape it)", p.in[end])
	case jsonx.LexEscape:
		p.pos++ // at the character after the backslash
		return s, false, p.fail(KindSyntax, "invalid escape in a string")
	case jsonx.LexUnicode:
		for p.in[p.pos-1] != 'u' { // back to the first of the four digits
			p.pos--
		}
		return s, false, p.fail(KindSyntax, `invalid \u escape`)
	}
	return s, false, p.fail(KindSyntax, "unterminated string")
}

// xmlWriter writes the XML of the tape.
type xmlWriter struct {
	c     *Converter
	in    []byte
	tape  []jval
	b     []byte
	max   int
	names nameChecker
	root  []byte
	buf   []byte // scratch: decoded strings
	// path is where the writer is, for error messages: tape indexes of
	// members, or rootName or itemName.
	path []int32
}

const (
	rootName int32 = -1 // Options.Root
	itemName int32 = -2 // "item", of an array in an array
)

var itemBytes = []byte("item")

func (w *xmlWriter) fail(kind Kind, format string, args ...any) *BodyError {
	reason := fmt.Sprintf(format, args...)
	if len(w.path) > 0 {
		var at []byte
		for i, v := range w.path {
			if i > 0 {
				at = append(at, '.')
			}
			at = append(at, w.name(v)...)
		}
		reason = "at " + clip(string(at)) + ": " + reason
	}
	return &BodyError{Format: "json", Kind: kind, Reason: reason}
}

// name returns the element name that a path entry stands for.
func (w *xmlWriter) name(v int32) []byte {
	switch v {
	case rootName:
		return w.root
	case itemName:
		return itemBytes
	}
	return w.key(v)
}

// key returns the key of tape value v; escaped, it is decoded into the
// scratch buffer, valid until the next decoding.
func (w *xmlWriter) key(v int32) []byte {
	t := &w.tape[v]
	k := w.in[t.key.off:t.key.end]
	if !t.kesc {
		return k
	}
	w.buf = jsonx.AppendUnquoted(w.buf[:0], k)
	return w.buf
}

// scalar returns the text of a number, a boolean or a string (decoded into
// the scratch buffer if need be).
func (w *xmlWriter) scalar(v int32) []byte {
	t := &w.tape[v]
	switch t.kind {
	case jTrue:
		return trueBytes
	case jFalse:
		return falseBytes
	}
	s := w.in[t.s.off:t.s.end]
	if !t.esc {
		return s
	}
	w.buf = jsonx.AppendUnquoted(w.buf[:0], s)
	return w.buf
}

func (w *xmlWriter) document() error {
	if w.c.o.Declaration {
		w.b = append(w.b, `<?xml version="1.0" encoding="UTF-8"?>`...)
	}
	t := w.tape
	if t[0].kind == jObject && t[0].nkids == 1 && t[1].kind != jArray {
		if k := w.key(1); len(k) > 0 && k[0] != '-' && string(k) != "#text" {
			return w.element(1, 1)
		}
	}
	return w.element(rootName, 0)
}

// element writes <name>, the content of tape value v, </name>; name is a
// path entry.
func (w *xmlWriter) element(name, v int32) error {
	if !w.names.qnameBytes(w.name(name)) {
		return w.fail(KindUnsupported, "key %s is not an XML element name", short(string(w.name(name))))
	}
	return w.checkedElement(name, v)
}

// checkedElement is element with name known good.
func (w *xmlWriter) checkedElement(name, v int32) error {
	n := w.name(name)
	if err := w.reserve(2*len(n) + 5); err != nil {
		return err
	}
	w.path = append(w.path, name)
	w.b = append(w.b, '<')
	w.b = append(w.b, n...)
	empty := true
	switch t := &w.tape[v]; t.kind {
	case jNull:
	case jFalse, jTrue, jNumber, jString:
		if s := w.scalar(v); len(s) > 0 {
			w.b = append(w.b, '>')
			if err := w.text(s, false); err != nil {
				return err
			}
			empty = false
		}
	case jArray:
		for k, i := v+1, int32(0); i < t.nkids; k, i = w.tape[k].next, i+1 {
			if empty {
				w.b = append(w.b, '>')
				empty = false
			}
			if err := w.element(itemName, k); err != nil {
				return err
			}
		}
	case jObject:
		var err error
		if empty, err = w.object(v); err != nil {
			return err
		}
	}
	w.path = w.path[:len(w.path)-1]
	if empty {
		w.b = append(w.b, '/', '>')
		return nil
	}
	n = w.name(name) // a decoded key may have been overwritten
	w.b = append(w.b, '<', '/')
	w.b = append(w.b, n...)
	w.b = append(w.b, '>')
	return nil
}

// child writes the elements of member m: one element, or one per item of
// an array.
func (w *xmlWriter) child(m int32) error {
	t := &w.tape[m]
	if t.kind != jArray {
		return w.element(m, m)
	}
	if !w.names.qnameBytes(w.key(m)) {
		return w.fail(KindUnsupported, "key %s is not an XML element name", short(string(w.key(m))))
	}
	for k, i := m+1, int32(0); i < t.nkids; k, i = w.tape[k].next, i+1 {
		if err := w.checkedElement(m, k); err != nil {
			return err
		}
	}
	return nil
}

// object writes the attributes ("-name" members), the text ("#text") and
// the children (the other members) of the element of object v, whose start
// tag is open; empty reports that there was no content, so the tag is
// still open.
func (w *xmlWriter) object(v int32) (empty bool, err error) {
	empty = true
	if w.tape[v].special {
		if err := w.attributes(v); err != nil {
			return false, err
		}
		if empty, err = w.textMember(v, empty); err != nil {
			return false, err
		}
	}
	for m, i := v+1, int32(0); i < w.tape[v].nkids; m, i = w.tape[m].next, i+1 {
		k := w.key(m)
		if string(k) == "#text" || len(k) > 0 && k[0] == '-' {
			continue
		}
		if t := &w.tape[m]; t.kind == jArray && t.nkids == 0 {
			if !w.names.qnameBytes(k) {
				return false, w.fail(KindUnsupported, "key %s is not an XML element name", short(string(k)))
			}
			continue
		}
		if empty {
			w.b = append(w.b, '>')
			empty = false
		}
		if err := w.child(m); err != nil {
			return false, err
		}
	}
	return empty, nil
}

// attributes writes the "-name" members of object v as attributes.
func (w *xmlWriter) attributes(v int32) error {
	var seen map[string]struct{}
	nattr := 0
	for m, i := v+1, int32(0); i < w.tape[v].nkids; m, i = w.tape[m].next, i+1 {
		k := w.key(m)
		if len(k) == 0 || k[0] != '-' {
			continue
		}
		if !w.names.qnameBytes(k[1:]) {
			return w.fail(KindUnsupported, "key %s is not an XML attribute name", short(string(k)))
		}
		nattr++
		if nattr > w.c.o.MaxAttributes {
			return w.fail(KindLimit, "more than %d attributes on one element", w.c.o.MaxAttributes)
		}
		if w.repeated(v, m, nattr, &seen) {
			return w.fail(KindUnsupported, "attribute %s repeated", short(string(w.key(m))))
		}
		t := &w.tape[m]
		switch t.kind {
		case jNull:
			continue
		case jArray, jObject:
			return w.fail(KindUnsupported, "attribute %s: an array or object cannot be an attribute value", short(string(w.key(m))))
		}
		k = w.key(m)
		w.b = append(w.b, ' ')
		w.b = append(w.b, k[1:]...)
		w.b = append(w.b, '=', '"')
		if err := w.text(w.scalar(m), true); err != nil {
			return err
		}
		w.b = append(w.b, '"')
	}
	return nil
}

// repeated reports whether attribute member m of object v (its nattr-th)
// repeats the key of an earlier member: past eight attributes, with a set
// of their keys.
func (w *xmlWriter) repeated(v, m int32, nattr int, seen *map[string]struct{}) bool {
	if nattr <= 8 {
		k := w.key(m)
		if w.tape[m].kesc {
			k = bytes.Clone(k) // decoded in the scratch buffer, which is reused below
		}
		for p := v + 1; p != m; p = w.tape[p].next {
			if bytes.Equal(w.key(p), k) {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]struct{})
		for p := v + 1; p != m; p = w.tape[p].next {
			if k := w.key(p); len(k) > 0 && k[0] == '-' {
				(*seen)[string(k)] = struct{}{}
			}
		}
	}
	k := string(w.key(m))
	_, dup := (*seen)[k]
	(*seen)[k] = struct{}{}
	return dup
}

// textMember writes the "#text" member of object v, if any.
func (w *xmlWriter) textMember(v int32, empty bool) (bool, error) {
	text := false
	for m, i := v+1, int32(0); i < w.tape[v].nkids; m, i = w.tape[m].next, i+1 {
		if string(w.key(m)) != "#text" {
			continue
		}
		if text {
			return false, w.fail(KindUnsupported, `"#text" repeated`)
		}
		text = true
		switch w.tape[m].kind {
		case jNull:
			continue
		case jArray, jObject:
			return false, w.fail(KindUnsupported, `"#text": an array or object cannot be text`)
		}
		if s := w.scalar(m); len(s) > 0 {
			if empty {
				w.b = append(w.b, '>')
				empty = false
			}
			if err := w.text(s, false); err != nil {
				return false, err
			}
		}
	}
	return empty, nil
}

var (
	trueBytes  = []byte("true")
	falseBytes = []byte("false")
)

// xmlPlain marks the bytes that text writes as they are, in character data
// and attribute values alike: ASCII but controls, '&', '<', '>' and '"'.
var xmlPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '&' && c != '<' && c != '>' && c != '"'
	}
	return t
}()

// reserve makes room for n more bytes, which will be written: past
// MaxOutputBytes, it fails. The buffer doubles (append's 1.25× steps would
// allocate five times a long output's size on the way) up to
// MaxOutputBytes.
func (w *xmlWriter) reserve(n int) error {
	if len(w.b)+n > w.max {
		return w.fail(KindLimit, "converted body is larger than %d bytes", w.max)
	}
	if cap(w.b)-len(w.b) < n {
		c := max(len(w.b)+n, min(2*cap(w.b)+1024, w.max))
		w.b = append(make([]byte, 0, c), w.b...)
	}
	return nil
}

// text appends s escaped for character data or (attr) an attribute value
// in double quotes, refusing characters XML 1.0 cannot carry at all.
func (w *xmlWriter) text(s []byte, attr bool) error {
	if err := w.reserve(len(s)); err != nil {
		return err
	}
	b := w.b // a local: each store into w.b would pay a GC write barrier
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if xmlPlain[c] {
			i++
			continue
		}
		var esc string
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '\r':
				esc = "&#xD;"
			case attr && c == '"':
				esc = "&quot;"
			case attr && c == '\n':
				esc = "&#xA;"
			case attr && c == '\t':
				esc = "&#x9;"
			case c < 0x20 && c != '\n' && c != '\t':
				return w.fail(KindUnsupported, "character U+%04X cannot be written in XML 1.0", c)
			default:
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, esc...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if !xmlChar(r) || r == utf8.RuneError && size == 1 {
			return w.fail(KindUnsupported, "character U+%04X cannot be written in XML 1.0", r)
		}
		i += size
	}
	w.b = append(b, s[start:]...)
	return nil
}
