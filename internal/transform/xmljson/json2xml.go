package xmljson

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
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

// jvalue is one JSON value: a number keeps its literal byte for byte.
// Strings without escapes, and numbers, are slices of the input.
type jvalue struct {
	kind jkind
	s    []byte    // string value or number literal
	kids []jmember // object members, or array items (key nil)
}

type jmember struct {
	key []byte
	val jvalue
}

// JSONToXML converts one JSON document to XML: see the package
// documentation for the mapping and the limits. Errors about the body are
// *BodyError.
func (c *Converter) JSONToXML(in []byte) ([]byte, error) {
	if len(in) > c.o.MaxBytes {
		return nil, c.tooLarge("json", int64(c.o.MaxBytes))
	}
	p := jsonParser{in: in, maxDepth: c.o.MaxDepth, maxCount: c.o.MaxElements}
	v, err := p.document()
	if err != nil {
		return nil, err
	}
	w := xmlWriter{c: c, max: c.o.MaxOutputBytes, root: []byte(c.o.Root)}
	w.b = make([]byte, 0, len(in)+len(in)/2+64)
	if err := w.document(&v); err != nil {
		return nil, err
	}
	if len(w.b) > w.max {
		return nil, w.fail(KindLimit, "converted body is larger than %d bytes", w.max)
	}
	return w.b, nil
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

// jsonParser reads JSON (RFC 8259) into jvalues, checking depth and the
// number of values as it goes. Invalid UTF-8 and lone surrogates in
// strings become U+FFFD, as encoding/json does.
type jsonParser struct {
	in       []byte
	pos      int
	depth    int
	count    int
	maxDepth int
	maxCount int
	// scratch holds the members of the containers being read; each is
	// copied out, at its exact size, when it closes.
	scratch []jmember
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

func (p *jsonParser) document() (jvalue, error) {
	p.space()
	if p.pos == len(p.in) {
		return jvalue{}, p.fail(KindSyntax, "empty body")
	}
	v, err := p.value()
	if err != nil {
		return v, err
	}
	p.space()
	if p.pos < len(p.in) {
		return v, p.unexpected("end of JSON after the top-level value")
	}
	return v, nil
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

func (p *jsonParser) value() (jvalue, error) {
	if p.pos >= len(p.in) {
		return jvalue{}, p.unexpected("a value")
	}
	switch c := p.in[p.pos]; {
	case c == '{' || c == '[':
		return p.container(c)
	case c == '"':
		s, err := p.string()
		return jvalue{kind: jString, s: s}, err
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return jvalue{kind: jTrue}, p.literal("true")
	case c == 'f':
		return jvalue{kind: jFalse}, p.literal("false")
	case c == 'n':
		return jvalue{kind: jNull}, p.literal("null")
	}
	return jvalue{}, p.unexpected("a value")
}

func (p *jsonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
		return p.unexpected(lit)
	}
	p.pos += len(lit)
	return nil
}

// container reads an object or an array.
func (p *jsonParser) container(open byte) (jvalue, error) {
	if p.depth >= p.maxDepth {
		return jvalue{}, p.fail(KindLimit, "arrays and objects nested deeper than %d", p.maxDepth)
	}
	p.depth++
	p.pos++
	v := jvalue{kind: jArray}
	closer := byte(']')
	if open == '{' {
		v.kind, closer = jObject, '}'
	}
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == closer {
		p.pos++
		p.depth--
		return v, nil
	}
	start := len(p.scratch)
	for {
		p.count++
		if p.count > p.maxCount {
			return v, p.fail(KindLimit, "more than %d values", p.maxCount)
		}
		var m jmember
		if open == '{' {
			p.space()
			if p.pos >= len(p.in) || p.in[p.pos] != '"' {
				return v, p.unexpected("an object key")
			}
			k, err := p.string()
			if err != nil {
				return v, err
			}
			m.key = k
			p.space()
			if p.pos >= len(p.in) || p.in[p.pos] != ':' {
				return v, p.unexpected(`":" after an object key`)
			}
			p.pos++
		}
		p.space()
		val, err := p.value()
		if err != nil {
			return v, err
		}
		m.val = val
		if len(p.scratch) == cap(p.scratch) {
			// Double: append's 1.25× steps would allocate five times
			// a long array's size on the way.
			p.scratch = append(make([]jmember, 0, max(16, 2*cap(p.scratch))), p.scratch...)
		}
		p.scratch = append(p.scratch, m)
		p.space()
		if p.pos < len(p.in) {
			switch p.in[p.pos] {
			case ',':
				p.pos++
				continue
			case closer:
				p.pos++
				p.depth--
				v.kids = append([]jmember(nil), p.scratch[start:]...)
				clear(p.scratch[start:])
				p.scratch = p.scratch[:start]
				return v, nil
			}
		}
		return v, p.unexpected(fmt.Sprintf("%q or %q", ',', closer))
	}
}

// number checks the JSON number grammar and keeps the literal.
func (p *jsonParser) number() (jvalue, error) {
	in, start := p.in, p.pos
	i := p.pos
	digits := func() int {
		n := 0
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		p.pos = i
		return jvalue{}, p.unexpected("a digit")
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			p.pos = i
			return jvalue{}, p.unexpected("a digit after the decimal point")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.pos = i
			return jvalue{}, p.unexpected("a digit in the exponent")
		}
	}
	p.pos = i
	return jvalue{kind: jNumber, s: in[start:i:i]}, nil
}

// string reads a JSON string at p.pos (a '"').
func (p *jsonParser) string() ([]byte, error) {
	in := p.in
	p.pos++
	start := p.pos
	// Fast path: no escapes, valid UTF-8.
	for i := start; i < len(in); i++ {
		c := in[i]
		if c == '"' {
			if utf8.Valid(in[start:i]) {
				p.pos = i + 1
				return in[start:i:i], nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	var b []byte
	i := start
	for {
		if i >= len(in) {
			p.pos = i
			return nil, p.fail(KindSyntax, "unterminated string")
		}
		c := in[i]
		switch {
		case c == '"':
			p.pos = i + 1
			if b == nil {
				b = []byte{}
			}
			return b, nil
		case c < 0x20:
			p.pos = i
			return nil, p.fail(KindSyntax, "control character 0x%02x in a string (escape it)", c)
		case c == '\\':
			if i+1 >= len(in) {
				p.pos = i + 1
				return nil, p.fail(KindSyntax, "unterminated string")
			}
			e := in[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(in[i:])
				if !ok {
					p.pos = i
					return nil, p.fail(KindSyntax, `invalid \u escape`)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if len(in) > i+1 && in[i] == '\\' && in[i+1] == 'u' {
						if v, ok := hex4(in[i+2:]); ok {
							r2 = v
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				p.pos = i - 1
				return nil, p.fail(KindSyntax, "invalid escape in a string")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			b = utf8.AppendRune(b, r) // invalid UTF-8 becomes U+FFFD
			i += size
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// xmlWriter writes the XML of a JSON value.
type xmlWriter struct {
	c     *Converter
	b     []byte
	max   int
	names nameChecker
	root  []byte
	path  [][]byte // keys from the root, for error messages
}

func (w *xmlWriter) fail(kind Kind, format string, args ...any) *BodyError {
	reason := fmt.Sprintf(format, args...)
	if len(w.path) > 0 {
		at := string(bytes.Join(w.path, []byte(".")))
		reason = "at " + clip(at) + ": " + reason
	}
	return &BodyError{Format: "json", Kind: kind, Reason: reason}
}

func (w *xmlWriter) document(v *jvalue) error {
	if w.c.o.Declaration {
		w.b = append(w.b, `<?xml version="1.0" encoding="UTF-8"?>`...)
	}
	if v.kind == jObject && len(v.kids) == 1 {
		m := &v.kids[0]
		if k := m.key; len(k) > 0 && k[0] != '-' && string(k) != "#text" && m.val.kind != jArray {
			return w.element(k, &m.val)
		}
	}
	return w.element(w.root, v)
}

// element writes <name>, the content v gives it, </name>.
func (w *xmlWriter) element(name []byte, v *jvalue) error {
	if !w.names.qnameBytes(name) {
		return w.fail(KindUnsupported, "key %s is not an XML element name", short(string(name)))
	}
	return w.checkedElement(name, v)
}

// checkedElement is element with name known good.
func (w *xmlWriter) checkedElement(name []byte, v *jvalue) error {
	if err := w.reserve(2*len(name) + 5); err != nil {
		return err
	}
	w.path = append(w.path, name)
	defer func() { w.path = w.path[:len(w.path)-1] }()
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
	empty := true
	switch v.kind {
	case jNull:
	case jFalse, jTrue, jNumber, jString:
		if s := scalar(v); len(s) > 0 {
			w.b = append(w.b, '>')
			if err := w.text(s, false); err != nil {
				return err
			}
			empty = false
		}
	case jArray:
		for i := range v.kids {
			if empty {
				w.b = append(w.b, '>')
				empty = false
			}
			if err := w.element(itemName, &v.kids[i].val); err != nil {
				return err
			}
		}
	case jObject:
		var err error
		if empty, err = w.object(v); err != nil {
			return err
		}
	}
	if empty {
		w.b = append(w.b, '/', '>')
		return nil
	}
	w.b = append(w.b, '<', '/')
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
	return nil
}

// child writes the elements of one member: one element, or one per item
// of an array.
func (w *xmlWriter) child(name []byte, v *jvalue) error {
	if v.kind != jArray {
		return w.element(name, v)
	}
	if !w.names.qnameBytes(name) {
		return w.fail(KindUnsupported, "key %s is not an XML element name", short(string(name)))
	}
	for i := range v.kids {
		if err := w.checkedElement(name, &v.kids[i].val); err != nil {
			return err
		}
	}
	return nil
}

// object writes the attributes ("-name" members), the text ("#text") and
// the children (the other members) of an element whose start tag is open;
// empty reports that there was no content, so the tag is still open.
func (w *xmlWriter) object(v *jvalue) (empty bool, err error) {
	var seen map[string]struct{}
	nattr := 0
	for i := range v.kids {
		m := &v.kids[i]
		if len(m.key) == 0 || m.key[0] != '-' {
			continue
		}
		name := m.key[1:]
		if !w.names.qnameBytes(name) {
			return false, w.fail(KindUnsupported, "key %s is not an XML attribute name", short(string(m.key)))
		}
		nattr++
		if nattr > w.c.o.MaxAttributes {
			return false, w.fail(KindLimit, "more than %d attributes on one element", w.c.o.MaxAttributes)
		}
		dup := false
		if nattr > 8 {
			if seen == nil {
				seen = make(map[string]struct{})
				for _, p := range v.kids[:i] {
					if len(p.key) > 0 && p.key[0] == '-' {
						seen[string(p.key)] = struct{}{}
					}
				}
			}
			_, dup = seen[string(m.key)]
			seen[string(m.key)] = struct{}{}
		} else {
			for _, p := range v.kids[:i] {
				dup = dup || bytes.Equal(p.key, m.key)
			}
		}
		if dup {
			return false, w.fail(KindUnsupported, "attribute %s repeated", short(string(m.key)))
		}
		switch m.val.kind {
		case jNull:
			continue
		case jArray, jObject:
			return false, w.fail(KindUnsupported, "attribute %s: an array or object cannot be an attribute value", short(string(m.key)))
		}
		w.b = append(w.b, ' ')
		w.b = append(w.b, name...)
		w.b = append(w.b, '=', '"')
		if err := w.text(scalar(&m.val), true); err != nil {
			return false, err
		}
		w.b = append(w.b, '"')
	}
	empty = true
	open := func() {
		if empty {
			w.b = append(w.b, '>')
			empty = false
		}
	}
	text := false
	for i := range v.kids {
		m := &v.kids[i]
		if string(m.key) != "#text" {
			continue
		}
		if text {
			return false, w.fail(KindUnsupported, `"#text" repeated`)
		}
		text = true
		switch m.val.kind {
		case jNull:
			continue
		case jArray, jObject:
			return false, w.fail(KindUnsupported, `"#text": an array or object cannot be text`)
		}
		if s := scalar(&m.val); len(s) > 0 {
			open()
			if err := w.text(s, false); err != nil {
				return false, err
			}
		}
	}
	for i := range v.kids {
		m := &v.kids[i]
		if string(m.key) == "#text" || len(m.key) > 0 && m.key[0] == '-' {
			continue
		}
		if m.val.kind == jArray && len(m.val.kids) == 0 {
			if !w.names.qnameBytes(m.key) {
				return false, w.fail(KindUnsupported, "key %s is not an XML element name", short(string(m.key)))
			}
			continue
		}
		open()
		if err := w.child(m.key, &m.val); err != nil {
			return false, err
		}
	}
	return empty, nil
}

var (
	itemName   = []byte("item")
	trueBytes  = []byte("true")
	falseBytes = []byte("false")
)

func scalar(v *jvalue) []byte {
	switch v.kind {
	case jTrue:
		return trueBytes
	case jFalse:
		return falseBytes
	}
	return v.s
}

// reserve makes room for n more bytes, which will be written: past
// MaxOutputBytes, it fails. The buffer doubles (for the same reason as
// jsonParser.scratch) up to MaxOutputBytes.
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
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
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
			w.b = append(w.b, s[start:i]...)
			w.b = append(w.b, esc...)
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
	w.b = append(w.b, s[start:]...)
	return nil
}
