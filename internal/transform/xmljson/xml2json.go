package xmljson

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// xnode is one element read: its attributes, text and child elements.
type xnode struct {
	name  string
	attrs []xattr
	kids  []*xnode
	// cur is the text run being read (text since the last child element);
	// runs are the earlier runs of mixed content, trimmed, blanks dropped.
	cur   []byte
	runs  []string
	text  string // set when the element ends
	path  *pathNode
	array bool
}

type xattr struct{ key, value string }

// XMLToJSON converts one XML document to JSON: see the package
// documentation for the mapping and the limits. Errors about the body are
// *BodyError.
func (c *Converter) XMLToJSON(in []byte) ([]byte, error) {
	if len(in) > c.o.MaxBytes {
		return nil, c.tooLarge("xml", int64(c.o.MaxBytes))
	}
	in, err := c.checkBOM(in)
	if err != nil {
		return nil, err
	}
	m := c.counter()
	if i := m.scan(in); i >= 0 {
		line, col := lineCol(in[:i])
		return nil, c.tooMany("xml", m, line, col, int64(i))
	}
	return c.xmlToJSON(bytes.NewReader(in), nil, len(in))
}

// XMLToJSONReader is XMLToJSON on a stream: it reads at most MaxBytes+1
// bytes of r, and stops at the first problem (a DOCTYPE, the 65th level of
// nesting) having read little more than the problem itself. Errors of r
// other than io.EOF are returned wrapped, not as *BodyError.
func (c *Converter) XMLToJSONReader(r io.Reader) ([]byte, error) {
	lr := &limitReader{r: r, n: int64(c.o.MaxBytes) + 1, markup: c.counter()}
	br := bufio.NewReaderSize(lr, 4096)
	head, _ := br.Peek(3)
	if _, err := c.checkBOM(head); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(head, bom) {
		br.Discard(len(bom))
	}
	return c.xmlToJSON(br, lr, 0)
}

var bom = []byte("\xEF\xBB\xBF")

// checkBOM drops a UTF-8 byte order mark and refuses UTF-16's.
func (c *Converter) checkBOM(in []byte) ([]byte, error) {
	if len(in) >= 2 && (in[0] == 0xFE && in[1] == 0xFF || in[0] == 0xFF && in[1] == 0xFE) {
		return nil, &BodyError{Format: "xml", Kind: KindUnsupported, Line: 1, Column: 1,
			Reason: "UTF-16 is not supported: send UTF-8"}
	}
	return bytes.TrimPrefix(in, bom), nil
}

// limitReader passes n-1 bytes and fails at the n-th with errTooLarge;
// with markup set, it fails with errTooMany as soon as the bytes hold too
// many elements or attributes.
type limitReader struct {
	r      io.Reader
	n      int64
	hit    bool
	markup *markupCounter
	read   int64 // bytes passed on
	at     int64 // offset where markup passed its limit
	err    error // of r, but io.EOF
}

var (
	errTooLarge = errors.New("body too large")
	errTooMany  = errors.New("too many elements or attributes")
)

func (l *limitReader) Read(p []byte) (int, error) {
	if l.markup != nil && l.markup.tooMany != "" {
		return 0, errTooMany
	}
	if l.n <= 0 {
		l.hit = true
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		l.err = err
	}
	l.n -= int64(n)
	if l.n <= 0 && n > 0 {
		l.hit = true
		n, err = n-1, errTooLarge
	}
	if l.markup != nil {
		if i := l.markup.scan(p[:n]); i >= 0 {
			l.at = l.read + int64(i)
			n, err = i, errTooMany
		}
	}
	l.read += int64(n)
	return n, err
}

func (c *Converter) counter() *markupCounter {
	return &markupCounter{maxCount: c.o.MaxElements, maxAttrs: c.o.MaxAttributes}
}

func (c *Converter) tooLarge(format string, n int64) *BodyError {
	return &BodyError{Format: format, Kind: KindLimit, Offset: n,
		Reason: fmt.Sprintf("body is larger than %d bytes", c.o.MaxBytes)}
}

func (c *Converter) tooMany(format string, m *markupCounter, line, col int, off int64) *BodyError {
	e := &BodyError{Format: format, Kind: KindLimit, Line: line, Column: col, Offset: off,
		Reason: fmt.Sprintf("more than %d elements and attributes", c.o.MaxElements)}
	if m.tooMany == "attributes" {
		e.Reason = fmt.Sprintf("more than %d attributes on one element", c.o.MaxAttributes)
	}
	return e
}

// lineCol is the 1-based line and column (in runes) after b.
func lineCol(b []byte) (line, col int) {
	line, col = 1, 1
	for _, c := range b {
		if c == '\n' {
			line, col = line+1, 1
		} else if c < 0x80 || c >= 0xC0 {
			col++
		}
	}
	return line, col
}

// xmlReader holds the state of one XML → JSON conversion.
type xmlReader struct {
	c      *Converter
	d      *xml.Decoder
	lr     *limitReader
	names  nameChecker
	stack  []*xnode
	root   *xnode
	closed bool // the root element has ended
	count  int  // elements and attributes read
	// charset is an encoding declared and refused.
	charset string
}

func (c *Converter) xmlToJSON(r io.Reader, lr *limitReader, size int) ([]byte, error) {
	x := &xmlReader{c: c, lr: lr}
	x.d = xml.NewDecoder(r)
	x.d.Strict = true
	x.d.CharsetReader = x.charsetReader
	if err := x.read(); err != nil {
		return nil, err
	}
	w := jsonWriter{max: c.o.MaxOutputBytes}
	w.b = make([]byte, 0, size+size/4+16)
	w.b = append(w.b, '{')
	w.b = appendJSONString(w.b, x.root.name)
	w.b = append(w.b, ':')
	w.value(x.root)
	w.b = append(w.b, '}')
	if len(w.b) > w.max {
		return nil, &BodyError{Format: "xml", Kind: KindLimit,
			Reason: fmt.Sprintf("converted body is larger than %d bytes", w.max)}
	}
	return w.b, nil
}

// charsetReader accepts US-ASCII (checked byte by byte) and refuses every
// other encoding that is not UTF-8 (encoding/xml takes UTF-8 itself).
func (x *xmlReader) charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "us-ascii", "ascii":
		return &asciiReader{r: r}, nil
	}
	x.charset = label
	return nil, errCharset
}

var (
	errCharset = errors.New("unsupported charset")
	errASCII   = errors.New("byte above 0x7F in a US-ASCII document")
)

type asciiReader struct{ r io.Reader }

func (a *asciiReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	for i, b := range p[:n] {
		if b >= 0x80 {
			return i, errASCII
		}
	}
	return n, err
}

// fail builds a BodyError at the decoder's position.
func (x *xmlReader) fail(kind Kind, format string, args ...any) *BodyError {
	line, col := x.d.InputPos()
	return &BodyError{Format: "xml", Kind: kind, Line: line, Column: col,
		Offset: x.d.InputOffset(), Reason: fmt.Sprintf(format, args...)}
}

// readErr turns an error of the tokenizer into a BodyError.
func (x *xmlReader) readErr(err error) error {
	var se *xml.SyntaxError
	switch {
	case x.lr != nil && x.lr.markup.tooMany != "":
		return x.c.tooMany("xml", x.lr.markup, 0, 0, x.lr.at)
	case x.lr != nil && x.lr.hit || errors.Is(err, errTooLarge):
		e := x.c.tooLarge("xml", x.d.InputOffset())
		e.Line, e.Column = x.d.InputPos()
		return e
	case errors.Is(err, errCharset):
		return x.fail(KindUnsupported, "encoding %s is not supported: only UTF-8 and US-ASCII are", short(x.charset))
	case errors.Is(err, errASCII):
		return x.fail(KindSyntax, "byte above 0x7F in a document declared US-ASCII")
	case errors.As(err, &se):
		e := x.fail(KindSyntax, "%s", clip(se.Msg))
		if se.Line > 0 {
			e.Line = se.Line
		}
		return e
	case x.lr != nil && x.lr.err != nil:
		return fmt.Errorf("xmljson: reading body: %w", x.lr.err)
	}
	return x.fail(KindSyntax, "%s", clip(strings.TrimPrefix(err.Error(), "xml: ")))
}

// clip cuts a message of encoding/xml, which may quote names of any
// length, to a length safe to show.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// read tokenizes the whole document into x.root, checking the limits as it
// goes.
func (x *xmlReader) read() error {
	for {
		tok, err := x.d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.readErr(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := x.start(t); err != nil {
				return err
			}
		case xml.EndElement:
			if err := x.end(t); err != nil {
				return err
			}
		case xml.CharData:
			if len(x.stack) == 0 {
				if !isSpace(t) {
					return x.fail(KindSyntax, "text outside the root element")
				}
				continue
			}
			top := x.stack[len(x.stack)-1]
			top.cur = append(top.cur, t...)
		case xml.Directive:
			// <!DOCTYPE …>, and <!ENTITY …> or <!ELEMENT …> out of place:
			// no DTD is ever read, so no entity can be declared.
			return x.fail(KindUnsupported, "DOCTYPE and other <!…> declarations are not allowed")
		case xml.Comment, xml.ProcInst:
			// Dropped.
		}
	}
	if x.lr != nil && x.lr.hit {
		return x.readErr(errTooLarge)
	}
	switch {
	case x.root == nil:
		return x.fail(KindSyntax, "no root element")
	case !x.closed:
		return x.fail(KindSyntax, "unexpected end of document: element <%s> is not closed",
			clip(x.stack[len(x.stack)-1].name))
	}
	return nil
}

func qualified(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func (x *xmlReader) start(t xml.StartElement) error {
	if x.closed {
		return x.fail(KindSyntax, "a second root element")
	}
	if len(x.stack) >= x.c.o.MaxDepth {
		return x.fail(KindLimit, "elements nested deeper than %d", x.c.o.MaxDepth)
	}
	if len(t.Attr) > x.c.o.MaxAttributes {
		return x.fail(KindLimit, "more than %d attributes on one element", x.c.o.MaxAttributes)
	}
	x.count += 1 + len(t.Attr)
	if x.count > x.c.o.MaxElements {
		return x.fail(KindLimit, "more than %d elements and attributes", x.c.o.MaxElements)
	}
	n := &xnode{name: qualified(t.Name)}
	if !x.names.qname(n.name) {
		return x.fail(KindUnsupported, "element name %s is not a namespace-well-formed name", short(n.name))
	}
	if len(t.Attr) > 0 {
		n.attrs = make([]xattr, len(t.Attr))
		var seen map[string]struct{}
		if len(t.Attr) > 8 {
			seen = make(map[string]struct{}, len(t.Attr))
		}
		for i, a := range t.Attr {
			name := qualified(a.Name)
			if !x.names.qname(name) {
				return x.fail(KindUnsupported, "attribute name %s is not a namespace-well-formed name", short(name))
			}
			key := "-" + name
			dup := false
			if seen != nil {
				_, dup = seen[key]
				seen[key] = struct{}{}
			} else {
				for _, p := range n.attrs[:i] {
					dup = dup || p.key == key
				}
			}
			if dup {
				return x.fail(KindSyntax, "attribute %s repeated", short(name))
			}
			n.attrs[i] = xattr{key, a.Value}
		}
	}
	if len(x.stack) == 0 {
		x.root = n
		n.path = x.c.paths[n.name]
	} else {
		parent := x.stack[len(x.stack)-1]
		if parent.path != nil {
			n.path = parent.path.kids[n.name]
			n.array = n.path != nil && n.path.array
		}
		parent.endRun()
		parent.kids = append(parent.kids, n)
	}
	x.stack = append(x.stack, n)
	return nil
}

// endRun closes the text run before a child element.
func (n *xnode) endRun() {
	if t := trimSpace(n.cur); len(t) > 0 {
		n.runs = append(n.runs, string(t))
	}
	n.cur = n.cur[:0]
}

func (x *xmlReader) end(t xml.EndElement) error {
	name := qualified(t.Name)
	if len(x.stack) == 0 {
		return x.fail(KindSyntax, "end tag </%s> without a start tag", clip(name))
	}
	n := x.stack[len(x.stack)-1]
	if name != n.name {
		return x.fail(KindSyntax, "element <%s> closed by </%s>", clip(n.name), clip(name))
	}
	switch {
	case len(n.kids) > 0:
		n.endRun()
		n.text = strings.Join(n.runs, " ")
	case len(n.attrs) == 0 || !isSpace(n.cur):
		n.text = string(n.cur)
	}
	n.cur, n.runs = nil, nil
	x.stack[len(x.stack)-1] = nil
	x.stack = x.stack[:len(x.stack)-1]
	x.closed = len(x.stack) == 0
	return nil
}

// jsonWriter writes the JSON of the element tree.
type jsonWriter struct {
	b   []byte
	max int
}

func (w *jsonWriter) value(n *xnode) {
	if len(w.b) > w.max {
		return // XMLToJSON reports it
	}
	if len(n.attrs) == 0 && len(n.kids) == 0 {
		w.b = appendJSONString(w.b, n.text)
		return
	}
	w.b = append(w.b, '{')
	first := true
	member := func(key string) {
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		w.b = appendJSONString(w.b, key)
		w.b = append(w.b, ':')
	}
	for _, a := range n.attrs {
		member(a.key)
		w.b = appendJSONString(w.b, a.value)
	}
	if n.text != "" {
		member("#text")
		w.b = appendJSONString(w.b, n.text)
	}
	// Children: same-named elements form one array at the place of the
	// first.
	var groups map[string][]*xnode
	if len(n.kids) > 8 {
		groups = make(map[string][]*xnode)
		for _, k := range n.kids {
			groups[k.name] = append(groups[k.name], k)
		}
	}
	var same []*xnode
	for i, k := range n.kids {
		if groups != nil {
			same = groups[k.name]
			if same == nil {
				continue // written with its first
			}
			delete(groups, k.name)
		} else {
			done := false
			for _, p := range n.kids[:i] {
				if p.name == k.name {
					done = true
					break
				}
			}
			if done {
				continue
			}
			same = same[:0]
			for _, s := range n.kids[i:] {
				if s.name == k.name {
					same = append(same, s)
				}
			}
		}
		member(k.name)
		if len(same) == 1 && !k.array {
			w.value(k)
			continue
		}
		w.b = append(w.b, '[')
		for j, s := range same {
			if j > 0 {
				w.b = append(w.b, ',')
			}
			w.value(s)
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: the escapes JSON needs,
// plus U+2028 and U+2029 (for JavaScript), invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0xFFFD && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == 0x2028 || r == 0x2029:
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
