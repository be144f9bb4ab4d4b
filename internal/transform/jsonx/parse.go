package jsonx

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The document is an ordered tree kept in one slab of nodes (indices, not
// pointers, so the slab can grow and be reused through a sync.Pool, and the
// garbage collector neither scans it nor pays write barriers for it).
// Scalars are spans of raw bytes — numbers and strings are never decoded,
// which is what keeps them byte-identical — and object members keep their
// raw, quoted key. A span points into the input, into the program's literal
// bytes (keys and constants of ops) or into the per-Apply variable buffer.
// Children form a singly linked list, which makes delete, rename and move
// O(1) once the member is found and keeps the input order.

type kind uint8

const (
	kScalar kind = iota // string, number, true, false, null: raw holds the token
	kObject
	kArray
)

// Where a span's bytes live.
const (
	inSrc uint8 = iota // the body being transformed
	inLit              // Program.lit
	inAux              // doc.aux: variable values
)

type span struct{ off, end int32 }

type node struct {
	raw    span // scalar token (verbatim)
	key    span // quoted key, verbatim, when an object member
	first  int32
	last   int32
	next   int32
	kind   kind
	rawIn  uint8
	keyIn  uint8
	keyEsc bool // key contains a backslash escape: compare its decoded value
}

const none int32 = -1

// doc is the per-Apply working state.
type doc struct {
	n    []node
	src  []byte // the input
	lit  []byte // Program.lit (read only)
	aux  []byte // variable values quoted as JSON strings
	kbuf []byte // scratch: decoded keys
	out  []byte // serialisation buffer
}

func (d *doc) buf(in uint8) []byte {
	switch in {
	case inLit:
		return d.lit
	case inAux:
		return d.aux
	}
	return d.src
}

// keyRaw returns member c's key as written, with its quotes.
func (d *doc) keyRaw(c int32) []byte {
	n := &d.n[c]
	return d.buf(n.keyIn)[n.key.off:n.key.end]
}

func (d *doc) add(k kind, raw span, in uint8) int32 {
	d.n = append(d.n, node{raw: raw, rawIn: in, kind: k, first: none, last: none, next: none})
	return int32(len(d.n) - 1)
}

// setKey gives node c the (program literal) key of st.
func (d *doc) setKey(c int32, st *step) {
	d.n[c].key, d.n[c].keyIn, d.n[c].keyEsc = st.qspan, inLit, st.qesc
}

func (d *doc) appendChild(parent, child int32) {
	d.n[child].next = none
	if l := d.n[parent].last; l < 0 {
		d.n[parent].first = child
	} else {
		d.n[l].next = child
	}
	d.n[parent].last = child
}

// unlink removes child c (whose predecessor is prev, or none) from parent.
func (d *doc) unlink(parent, prev, c int32) {
	next := d.n[c].next
	if prev < 0 {
		d.n[parent].first = next
	} else {
		d.n[prev].next = next
	}
	if d.n[parent].last == c {
		d.n[parent].last = prev
	}
	d.n[c].next = none
}

// keyOf returns the decoded key of member c; the result aliases the input
// or d.kbuf and is valid until the next keyOf call.
func (d *doc) keyOf(c int32) []byte {
	k := d.keyRaw(c)
	k = k[1 : len(k)-1]
	if !d.n[c].keyEsc {
		return k
	}
	d.kbuf = appendUnescaped(d.kbuf[:0], k)
	return d.kbuf
}

func (d *doc) keyIs(c int32, key string) bool {
	n := &d.n[c]
	if !n.keyEsc {
		return int(n.key.end-n.key.off) == len(key)+2 &&
			string(d.buf(n.keyIn)[n.key.off+1:n.key.end-1]) == key
	}
	return string(d.keyOf(c)) == key
}

// strSafe marks the bytes that a JSON string may contain unescaped and that
// need no further check (ASCII, not a control, quote or backslash).
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

type parser struct {
	d        *doc
	s        []byte
	base     int32 // offset of s in its buffer
	in       uint8 // which buffer s is in
	i        int
	depth    int
	maxDepth int
	err      *BodyError
}

func (p *parser) fail(off int, reason string) int32 {
	if p.err == nil {
		p.err = &BodyError{Offset: off, Reason: reason}
	}
	return none
}

func (p *parser) unexpected() int32 {
	if p.i >= len(p.s) {
		return p.fail(p.i, "unexpected end of input")
	}
	return p.fail(p.i, "unexpected "+describeByte(p.s[p.i]))
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// parse parses the input: one JSON value, surrounded by optional whitespace.
func (d *doc) parse(s []byte, maxDepth int) (int32, *BodyError) {
	d.src = s
	return d.parseIn(s, 0, inSrc, maxDepth)
}

// parseLit parses a constant of the program.
func (d *doc) parseLit(sp span) (int32, *BodyError) {
	return d.parseIn(d.lit[sp.off:sp.end], sp.off, inLit, math.MaxInt32)
}

func (d *doc) parseIn(s []byte, base int32, in uint8, maxDepth int) (int32, *BodyError) {
	p := parser{d: d, s: s, base: base, in: in, maxDepth: maxDepth}
	p.ws()
	root := p.value()
	if root < 0 {
		return none, p.err
	}
	p.ws()
	if p.i < len(s) {
		p.fail(p.i, "unexpected "+describeByte(s[p.i])+" after the JSON value")
		return none, p.err
	}
	return root, nil
}

func (p *parser) value() int32 {
	if p.i >= len(p.s) {
		return p.unexpected()
	}
	start := p.i
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		if _, ok := p.str(); !ok {
			return none
		}
	case c == '-' || c >= '0' && c <= '9':
		if !p.num() {
			return none
		}
	case c == 't':
		if !p.lit("true") {
			return none
		}
	case c == 'f':
		if !p.lit("false") {
			return none
		}
	case c == 'n':
		if !p.lit("null") {
			return none
		}
	default:
		return p.unexpected()
	}
	return p.d.add(kScalar, p.span(start), p.in)
}

func (p *parser) span(start int) span {
	return span{p.base + int32(start), p.base + int32(p.i)}
}

func (p *parser) lit(want string) bool {
	if len(p.s)-p.i >= len(want) && string(p.s[p.i:p.i+len(want)]) == want {
		p.i += len(want)
		return true
	}
	for j := 0; j < len(want); j++ {
		if p.i+j >= len(p.s) {
			p.i += j
			p.unexpected()
			return false
		}
		if p.s[p.i+j] != want[j] {
			p.i += j
			p.unexpected()
			return false
		}
	}
	return false // unreachable
}

func (p *parser) num() bool {
	s, i := p.s, p.i
	if s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if i = digits(s, i); i < 0 {
		return p.badNum(-i - 1)
	}
	if i < len(s) && s[i] == '.' {
		if i = digits(s, i+1); i < 0 {
			return p.badNum(-i - 1)
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i = digits(s, i); i < 0 {
			return p.badNum(-i - 1)
		}
	}
	p.i = i
	return true
}

// digits skips one or more digits from i; it returns -i-1 if there is none.
func digits(s []byte, i int) int {
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return -i - 1
	}
	for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
	}
	return i
}

func (p *parser) badNum(i int) bool {
	p.i = i
	if i >= len(p.s) {
		p.fail(i, "unexpected end of input in number")
	} else {
		p.fail(i, "unexpected "+describeByte(p.s[i])+" in number")
	}
	return false
}

// str scans the string starting at p.i (a '"'), validating escapes, control
// characters and UTF-8; it reports whether the string contains an escape.
func (p *parser) str() (esc, ok bool) {
	s := p.s
	i := p.i + 1
	for {
		for i < len(s) && strSafe[s[i]] {
			i++
		}
		if i >= len(s) {
			p.fail(i, "unexpected end of input in string")
			return false, false
		}
		switch c := s[i]; {
		case c == '"':
			p.i = i + 1
			return esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(s) {
				p.fail(i+1, "unexpected end of input in string")
				return false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(s) {
						p.fail(j, "unexpected end of input in string")
						return false, false
					}
					if !isHex(s[j]) {
						p.fail(j, "invalid \\u escape in string")
						return false, false
					}
				}
				i += 6
			default:
				p.fail(i, "invalid escape in string")
				return false, false
			}
		case c < ' ':
			p.fail(i, "control character "+describeByte(c)+" in string")
			return false, false
		default: // non-ASCII
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				p.fail(i, "invalid UTF-8 in string")
				return false, false
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > p.maxDepth {
		p.fail(p.i, "nesting deeper than "+strconv.Itoa(p.maxDepth))
		p.err.err = ErrTooDeep
		return false
	}
	return true
}

func (p *parser) object() int32 {
	if !p.enter() {
		return none
	}
	obj := p.d.add(kObject, span{}, p.in)
	p.i++ // '{'
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return obj
	}
	for {
		if p.i >= len(p.s) {
			return p.unexpected()
		}
		if p.s[p.i] != '"' {
			return p.fail(p.i, "unexpected "+describeByte(p.s[p.i])+", expected a string key")
		}
		kstart := p.i
		esc, ok := p.str()
		if !ok {
			return none
		}
		key := p.span(kstart)
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			if p.i < len(p.s) {
				return p.fail(p.i, "unexpected "+describeByte(p.s[p.i])+", expected ':'")
			}
			return p.unexpected()
		}
		p.i++
		p.ws()
		v := p.value()
		if v < 0 {
			return none
		}
		p.d.n[v].key, p.d.n[v].keyIn, p.d.n[v].keyEsc = key, p.in, esc
		p.d.appendChild(obj, v)
		p.ws()
		if p.i < len(p.s) {
			switch p.s[p.i] {
			case ',':
				p.i++
				p.ws()
				continue
			case '}':
				p.i++
				p.depth--
				return obj
			}
		}
		return p.unexpected()
	}
}

func (p *parser) array() int32 {
	if !p.enter() {
		return none
	}
	arr := p.d.add(kArray, span{}, p.in)
	p.i++ // '['
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return arr
	}
	for {
		v := p.value()
		if v < 0 {
			return none
		}
		p.d.appendChild(arr, v)
		p.ws()
		if p.i < len(p.s) {
			switch p.s[p.i] {
			case ',':
				p.i++
				p.ws()
				continue
			case ']':
				p.i++
				p.depth--
				return arr
			}
		}
		return p.unexpected()
	}
}
