package xmljson

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// The elements read are nodes in a slab, linked by index; their
// attributes, and their texts, are in slabs too. All of it is pooled, so
// that a conversion allocates little besides what encoding/xml does.

// xnode is one element read: its attributes, text and child elements.
// There may be MaxElements of them: what is needed only while an element
// is open is in its open frame instead.
type xnode struct {
	name        string
	attrs       int32 // first of its attributes in xmlReader.attrs
	nattrs      int32
	first, last int32 // children (-1: none)
	next        int32 // next sibling
	nkids       int32
	text        span // set when the element ends
	array       bool
}

// open is an element being read.
type open struct {
	node int32
	// cur is the text run being read (text since the last child element);
	// runs are the earlier runs of mixed content, trimmed, blanks dropped.
	cur        span
	runs, tail int32 // in xmlReader.runs (-1: none)
	path       *pathNode
}

// xattr is an attribute: its JSON key is "-" and its name.
type xattr struct{ name, value string }

// textRun is a run of mixed content's text, in a list.
type textRun struct {
	s    span
	next int32
}

// xbufs are the slabs of a conversion, kept for the next one.
type xbufs struct {
	nodes []xnode
	attrs []xattr
	runs  []textRun
	text  []byte
	stack []open
	out   []byte
}

var xbufPool = sync.Pool{New: func() any { return new(xbufs) }}

func (b *xbufs) release() {
	if cap(b.nodes) > 1<<16 || cap(b.text) > 1<<20 || cap(b.out) > 1<<20 {
		return // a big body's: let it go
	}
	clear(b.attrs) // drop references to the strings of the body
	clear(b.nodes)
	xbufPool.Put(b)
}

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
	*xbufs      // the elements read; the root is nodes[0]
	closed bool // the root element has ended
	count  int  // elements and attributes read
	// charset is an encoding declared and refused.
	charset string
}

func (c *Converter) xmlToJSON(r io.Reader, lr *limitReader, size int) ([]byte, error) {
	bufs := xbufPool.Get().(*xbufs)
	defer bufs.release()
	bufs.nodes, bufs.attrs, bufs.runs = bufs.nodes[:0], bufs.attrs[:0], bufs.runs[:0]
	bufs.text, bufs.stack = bufs.text[:0], bufs.stack[:0]
	x := &xmlReader{c: c, lr: lr, xbufs: bufs}
	x.d = xml.NewDecoder(r)
	x.d.Strict = true
	x.d.CharsetReader = x.charsetReader
	if err := x.read(); err != nil {
		return nil, err
	}
	w := jsonWriter{x: x, max: c.o.MaxOutputBytes, b: bufs.out[:0]}
	if want := size + size/4 + 16; cap(w.b) < want {
		w.b = make([]byte, 0, want)
	}
	w.b = append(w.b, '{')
	w.b = jsonx.AppendQuotedJS(w.b, x.nodes[0].name)
	w.b = append(w.b, ':')
	w.value(0)
	w.b = append(w.b, '}')
	bufs.out = w.b
	if len(w.b) > w.max {
		return nil, &BodyError{Format: "xml", Kind: KindLimit,
			Reason: fmt.Sprintf("converted body is larger than %d bytes", w.max)}
	}
	return bytes.Clone(w.b), nil // written in a pooled buffer: one allocation, of its size
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
			x.appendText(&x.stack[len(x.stack)-1], t)
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
	case len(x.nodes) == 0:
		return x.fail(KindSyntax, "no root element")
	case !x.closed:
		return x.fail(KindSyntax, "unexpected end of document: element <%s> is not closed",
			clip(x.nodes[x.stack[len(x.stack)-1].node].name))
	}
	return nil
}

// appendText adds character data to the text run of element n. The run is
// at the end of x.text: a child element, whose text would come after it,
// ends it first.
func (x *xmlReader) appendText(n *open, t []byte) {
	if n.cur.off == n.cur.end {
		n.cur = span{int32(len(x.text)), int32(len(x.text))}
	}
	x.text = append(x.text, t...)
	n.cur.end = int32(len(x.text))
}

func (x *xmlReader) textOf(s span) []byte { return x.text[s.off:s.end] }

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
	n := xnode{name: qualified(t.Name), first: -1, last: -1, next: -1}
	if !x.names.qname(n.name) {
		return x.fail(KindUnsupported, "element name %s is not a namespace-well-formed name", short(n.name))
	}
	if err := x.attributes(&n, t.Attr); err != nil {
		return err
	}
	at := int32(len(x.nodes))
	o := open{node: at, runs: -1, tail: -1}
	if len(x.stack) == 0 {
		o.path = x.c.paths[n.name]
	} else {
		po := &x.stack[len(x.stack)-1]
		if po.path != nil {
			o.path = po.path.kids[n.name]
			n.array = o.path != nil && o.path.array
		}
		x.endRun(po)
		parent := &x.nodes[po.node]
		if parent.last < 0 {
			parent.first = at
		} else {
			x.nodes[parent.last].next = at
		}
		parent.last = at
		parent.nkids++
	}
	if len(x.nodes) == cap(x.nodes) {
		// Double: append's 1.25× steps would allocate five times the
		// size of MaxElements nodes on the way.
		x.nodes = append(make([]xnode, 0, max(64, 2*cap(x.nodes))), x.nodes...)
	}
	x.nodes = append(x.nodes, n)
	x.stack = append(x.stack, o)
	return nil
}

// attributes checks the attributes of element n and adds them to x.attrs.
func (x *xmlReader) attributes(n *xnode, attrs []xml.Attr) error {
	n.attrs, n.nattrs = int32(len(x.attrs)), int32(len(attrs))
	var seen map[string]struct{}
	if len(attrs) > 8 {
		seen = make(map[string]struct{}, len(attrs))
	}
	for i, a := range attrs {
		name := qualified(a.Name)
		if !x.names.qname(name) {
			return x.fail(KindUnsupported, "attribute name %s is not a namespace-well-formed name", short(name))
		}
		dup := false
		if seen != nil {
			_, dup = seen[name]
			seen[name] = struct{}{}
		} else {
			for _, p := range x.attrs[int(n.attrs) : int(n.attrs)+i] {
				dup = dup || p.name == name
			}
		}
		if dup {
			return x.fail(KindSyntax, "attribute %s repeated", short(name))
		}
		x.attrs = append(x.attrs, xattr{name, a.Value})
	}
	return nil
}

// endRun closes the text run of n before a child element.
func (x *xmlReader) endRun(n *open) {
	if t := trimSpan(x.text, n.cur); t.off < t.end {
		x.runs = append(x.runs, textRun{s: t, next: -1})
		if r := int32(len(x.runs) - 1); n.tail < 0 {
			n.runs, n.tail = r, r
		} else {
			x.runs[n.tail].next, n.tail = r, r
		}
	}
	n.cur = span{}
}

func (x *xmlReader) end(t xml.EndElement) error {
	name := qualified(t.Name)
	if len(x.stack) == 0 {
		return x.fail(KindSyntax, "end tag </%s> without a start tag", clip(name))
	}
	o := &x.stack[len(x.stack)-1]
	n := &x.nodes[o.node]
	if name != n.name {
		return x.fail(KindSyntax, "element <%s> closed by </%s>", clip(n.name), clip(name))
	}
	switch {
	case n.nkids > 0:
		x.endRun(o)
		n.text = x.joinRuns(o)
	case n.nattrs == 0 || !isSpace(x.textOf(o.cur)):
		n.text = o.cur
	}
	x.stack = x.stack[:len(x.stack)-1]
	x.closed = len(x.stack) == 0
	return nil
}

// joinRuns returns the text of mixed content: its runs joined by a space.
func (x *xmlReader) joinRuns(n *open) span {
	if n.runs < 0 || x.runs[n.runs].next < 0 {
		if n.runs < 0 {
			return span{}
		}
		return x.runs[n.runs].s // one run: as it is
	}
	start := len(x.text)
	for r := n.runs; r >= 0; r = x.runs[r].next {
		if r != n.runs {
			x.text = append(x.text, ' ')
		}
		x.text = append(x.text, x.textOf(x.runs[r].s)...)
	}
	return span{int32(start), int32(len(x.text))}
}

// jsonWriter writes the JSON of the element tree.
type jsonWriter struct {
	x   *xmlReader
	b   []byte
	max int
}

func (w *jsonWriter) value(i int32) {
	if len(w.b) > w.max {
		return // XMLToJSON reports it
	}
	n := &w.x.nodes[i]
	if n.nattrs == 0 && n.nkids == 0 {
		w.b = jsonx.AppendQuotedJS(w.b, w.x.textOf(n.text))
		return
	}
	w.b = append(w.b, '{')
	first := true
	for _, a := range w.x.attrs[n.attrs : n.attrs+n.nattrs] {
		w.attrKey(a.name, first)
		first = false
		w.b = jsonx.AppendQuotedJS(w.b, a.value)
	}
	if n.text.off < n.text.end {
		w.member("#text", first)
		first = false
		w.b = jsonx.AppendQuotedJS(w.b, w.x.textOf(n.text))
	}
	w.children(n, first)
	w.b = append(w.b, '}')
}

// member writes the key of a member and its colon.
func (w *jsonWriter) member(key string, first bool) {
	if !first {
		w.b = append(w.b, ',')
	}
	w.b = jsonx.AppendQuotedJS(w.b, key)
	w.b = append(w.b, ':')
}

// attrKey writes the key "-name" of an attribute, and its colon.
func (w *jsonWriter) attrKey(name string, first bool) {
	if !first {
		w.b = append(w.b, ',')
	}
	at := len(w.b)
	w.b = jsonx.AppendQuotedJS(w.b, name)
	w.b = append(w.b, 0, ':')
	copy(w.b[at+2:], w.b[at+1:len(w.b)-2]) // make room for the '-' after the quote
	w.b[at+1] = '-'
}

// children writes the child elements of n: same-named elements form one
// array at the place of the first.
func (w *jsonWriter) children(n *xnode, first bool) {
	nodes := w.x.nodes
	var groups map[string][]int32
	if n.nkids > 8 {
		groups = make(map[string][]int32)
		for k := n.first; k >= 0; k = nodes[k].next {
			groups[nodes[k].name] = append(groups[nodes[k].name], k)
		}
	}
	var same []int32
	for k := n.first; k >= 0; k = nodes[k].next {
		name := nodes[k].name
		if groups != nil {
			if same = groups[name]; same == nil {
				continue // written with its first
			}
			delete(groups, name)
		} else {
			if w.seenBefore(n, k) {
				continue
			}
			same = same[:0]
			for s := k; s >= 0; s = nodes[s].next {
				if nodes[s].name == name {
					same = append(same, s)
				}
			}
		}
		w.member(name, first)
		first = false
		if len(same) == 1 && !nodes[k].array {
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
}

// seenBefore reports whether a child of n before k has k's name.
func (w *jsonWriter) seenBefore(n *xnode, k int32) bool {
	nodes := w.x.nodes
	for p := n.first; p != k; p = nodes[p].next {
		if nodes[p].name == nodes[k].name {
			return true
		}
	}
	return false
}
