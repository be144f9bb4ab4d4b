package jq

import (
	"encoding/json"
	"fmt"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNumberLen bounds the length of a number literal in the input. gojq
// keeps an untouched json.Number as its text, but arithmetic or a
// comparison parses it (as *big.Int for an integer), which is quadratic
// in the number of digits; no API body needs thousands of digits.
const maxNumberLen = 1000

// maxDepth is encoding/json's nesting limit, kept so that exactly the
// documents it accepted are accepted.
const maxDepth = 10000

// maxScratch bounds the scratch slices a pooled decoder or encoder keeps
// between runs: one huge body must not pin its memory in the pool.
const maxScratch = 4096

// decoder parses one JSON document straight into the values gojq takes,
// with the results encoding/json gives with UseNumber (the fuzz test
// FuzzDecode holds it to that): objects as map[string]any (a duplicate
// key keeps its last value), arrays as []any, numbers as json.Number
// (their exact text, so that untouched numbers are written back as
// they came), invalid UTF-8 and lone surrogates as U+FFFD.
//
// It is faster than encoding/json for two reasons: strings and numbers
// without escapes are substrings of one copy of the body instead of
// one allocation each, and the entries of a container are collected on
// the stack (past eight, on reusable scratch) so that each map and
// slice is allocated once at its final size. With a need (see
// projection) it also leaves out what the expression cannot observe.
type decoder struct {
	src   string
	pos   int
	depth int
	elems []any    // elements of the open long arrays, innermost last
	mems  []member // members of the open large objects, innermost last
	buf   []byte   // a string being unescaped
}

// member is an object member being decoded or encoded.
type member struct {
	key string
	val any
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// decode parses body as exactly one JSON value, numbers as json.Number
// (which gojq accepts as is; see the package documentation).
func decode(body []byte) (any, error) { return decodeFor(body, nil) }

// decodeFor is decode building only what n needs (see need; nil for
// everything). The rest is validated all the same: a body is refused or
// accepted as decode would.
func decodeFor(body []byte, n *need) (any, error) {
	d := decoders.Get().(*decoder)
	defer d.release()
	// One copy: the values keep substrings of it, and body stays the
	// caller's.
	d.src = string(body)
	return d.document(n)
}

func (d *decoder) release() {
	d.src, d.pos, d.depth = "", 0, 0
	d.elems = resetScratch(d.elems)
	d.mems = resetScratch(d.mems)
	if cap(d.buf) > maxScratch {
		d.buf = nil
	}
	decoders.Put(d)
}

// resetScratch empties s, dropping the references an interrupted run
// left (a pooled decoder must not keep a body's values alive; entries
// past len(s) were cleared as they were used), or all of s when it grew
// large.
func resetScratch[T any](s []T) []T {
	if cap(s) > maxScratch {
		return nil
	}
	clear(s)
	return s[:0]
}

func (d *decoder) document(n *need) (any, error) {
	d.skipSpace()
	if d.pos == len(d.src) {
		return nil, fmt.Errorf("%w: empty body", ErrInvalidInput)
	}
	v, err := d.value(n)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.src) {
		return nil, fmt.Errorf("%w: data after the first value (offset %d)", ErrInvalidInput, d.pos)
	}
	return v, nil
}

// syntaxError reports the byte at d.pos (or the end of the input) as
// unexpected while looking for what.
func (d *decoder) syntaxError(what string) error {
	if d.pos >= len(d.src) {
		return fmt.Errorf("%w: unexpected end of input", ErrInvalidInput)
	}
	return fmt.Errorf("%w: invalid character %q at offset %d %s", ErrInvalidInput, d.src[d.pos], d.pos, what)
}

// skipSpace skips JSON's four whitespace characters.
func (d *decoder) skipSpace() { d.pos = skipSpace(d.src, d.pos) }

// skipSpace returns the position of the first byte at or after pos in s
// that is not JSON whitespace (the decoder's and the fast path's tape).
func skipSpace[S ~string | ~[]byte](s S, pos int) int {
	for pos < len(s) {
		switch s[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

// value parses the value at d.pos (after whitespace), what n needs of
// it (nil: all).
func (d *decoder) value(n *need) (any, error) {
	d.skipSpace()
	if d.pos == len(d.src) {
		return nil, d.syntaxError("")
	}
	if n != nil && n.all {
		n = nil
	}
	switch c := d.src[d.pos]; c {
	case '{':
		return d.object(n)
	case '[':
		if n != nil && n.keys != nil {
			// A name looked up in an array: gojq's error quotes the
			// array, which must be whole.
			n = nil
		}
		return d.array(n)
	case '"':
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.number()
		}
		return nil, d.syntaxError("looking for the beginning of a value")
	}
}

func (d *decoder) literal(lit string) error {
	for i := range len(lit) {
		if d.pos == len(d.src) || d.src[d.pos] != lit[i] {
			return d.syntaxError("in literal " + lit)
		}
		d.pos++
	}
	return nil
}

// enter and leave count the nesting of containers.
func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d at offset %d", ErrInvalidInput, maxDepth, d.pos)
	}
	d.pos++ // the opening bracket
	return nil
}

func (d *decoder) leave() {
	d.depth--
	d.pos++ // the closing bracket
}

// object parses an object, leaving out the members n does not ask for.
func (d *decoder) object(n *need) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos < len(d.src) && d.src[d.pos] == '}' {
		d.leave()
		return map[string]any{}, nil
	}
	// Members are collected on the stack (no write barriers, nothing to
	// clear) and, past len(small), on d.mems; the map is then made at
	// its final size.
	var small [8]member
	count, base := 0, len(d.mems)
	for {
		kv, keep, err := d.member(n)
		if err != nil {
			return nil, err
		}
		if keep {
			collect(&small, &d.mems, count, kv)
			count++
		}
		d.skipSpace()
		if d.pos < len(d.src) && d.src[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.pos < len(d.src) && d.src[d.pos] == '}' {
			break
		}
		return nil, d.syntaxError("after an object member")
	}
	d.leave()
	ms := small[:min(count, len(small))]
	if count > len(small) {
		ms = d.mems[base:]
	}
	m := make(map[string]any, count)
	for _, kv := range ms {
		m[kv.key] = kv.val // a later duplicate wins, as in encoding/json
	}
	if count > len(small) {
		clear(ms)
		d.mems = d.mems[:base]
	}
	return m, nil
}

// collect stores the i-th entry of a container being parsed: in small,
// or past it on scratch (shared by the open containers, innermost
// last), where small is then copied first.
func collect[T any](small *[8]T, scratch *[]T, i int, v T) {
	switch {
	case i < len(small):
		small[i] = v
	case i == len(small):
		*scratch = append(append(*scratch, small[:]...), v)
	default:
		*scratch = append(*scratch, v)
	}
}

// member parses `"key": value`, or only validates it when n leaves the
// member out (keep false).
func (d *decoder) member(n *need) (kv member, keep bool, err error) {
	k, err := d.key()
	if err != nil {
		return member{}, false, err
	}
	var c *need
	if n != nil {
		if c = n.member(k); c == nil {
			return member{}, false, d.skip()
		}
	}
	v, err := d.value(c)
	if err != nil {
		return member{}, false, err
	}
	return member{k, v}, true, nil
}

// key parses `"key":`.
func (d *decoder) key() (string, error) {
	d.skipSpace()
	if d.pos == len(d.src) || d.src[d.pos] != '"' {
		return "", d.syntaxError("looking for the beginning of an object key")
	}
	k, err := d.string()
	if err != nil {
		return "", err
	}
	d.skipSpace()
	if d.pos == len(d.src) || d.src[d.pos] != ':' {
		return "", d.syntaxError("after an object key")
	}
	d.pos++
	return k, nil
}

// array parses an array, each element as n.each asks (n is nil, or asks
// nothing of names: see value).
func (d *decoder) array(n *need) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos < len(d.src) && d.src[d.pos] == ']' {
		d.leave()
		return []any{}, nil
	}
	var elem *need // what each element needs (nil: all)
	if n != nil {
		elem = n.each
	}
	// As for objects: on the stack, then on d.elems; the slice is then
	// allocated once at its final length.
	var small [8]any
	count, base := 0, len(d.elems)
	for {
		v, err := d.value(elem)
		if err != nil {
			return nil, err
		}
		collect(&small, &d.elems, count, v)
		count++
		d.skipSpace()
		if d.pos < len(d.src) && d.src[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.pos < len(d.src) && d.src[d.pos] == ']' {
			break
		}
		return nil, d.syntaxError("after an array element")
	}
	d.leave()
	a := make([]any, count)
	if count <= len(small) {
		copy(a, small[:count])
		return a, nil
	}
	es := d.elems[base:]
	copy(a, es)
	clear(es)
	d.elems = d.elems[:base]
	return a, nil
}

// number parses a number literal and keeps its text.
func (d *decoder) number() (any, error) {
	s, err := d.scanNumber()
	if err != nil {
		return nil, err
	}
	return json.Number(s), nil
}

// scanNumber reads a number literal.
func (d *decoder) scanNumber() (string, error) {
	start := d.pos
	end, fail := scanNumber(d.src, d.pos)
	d.pos = end
	if fail != "" {
		return "", d.syntaxError(fail)
	}
	if n := d.pos - start; n > maxNumberLen {
		return "", fmt.Errorf("%w: a number has %d characters, limit %d", ErrInvalidInput, n, maxNumberLen)
	}
	return d.src[start:d.pos], nil
}

// scanNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at pos in
// s. It returns the end of the number, or the position of the offending
// byte and what it was looking for there.
func scanNumber[S ~string | ~[]byte](s S, pos int) (end int, fail string) {
	digits := func() bool {
		start := pos
		for pos < len(s) && '0' <= s[pos] && s[pos] <= '9' {
			pos++
		}
		return pos > start
	}
	if s[pos] == '-' {
		pos++
	}
	switch {
	case pos < len(s) && s[pos] == '0':
		pos++
	case pos < len(s) && '1' <= s[pos] && s[pos] <= '9':
		digits()
	default:
		return pos, "in a number"
	}
	if pos < len(s) && s[pos] == '.' {
		pos++
		if !digits() {
			return pos, "after a decimal point"
		}
	}
	if pos < len(s) && (s[pos] == 'e' || s[pos] == 'E') {
		pos++
		if pos < len(s) && (s[pos] == '+' || s[pos] == '-') {
			pos++
		}
		if !digits() {
			return pos, "in an exponent"
		}
	}
	return pos, ""
}

// string parses the string literal at d.pos. One without escapes and
// with valid UTF-8 — nearly all of them — is a substring of the body.
func (d *decoder) string() (string, error) {
	start := d.pos + 1
	for i := start; i < len(d.src); {
		c := d.src[i]
		if plainByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			d.pos = i + 1
			return d.src[start:i], nil
		case c == '\\' || c < ' ':
			return d.unquote(start, i)
		default:
			r, size := utf8.DecodeRuneInString(d.src[i:])
			if r == utf8.RuneError && size == 1 {
				return d.unquote(start, i)
			}
			i += size
		}
	}
	d.pos = len(d.src)
	return "", d.syntaxError("")
}

// plainByte marks the bytes a string literal holds as they are: ASCII
// except '"', '\\' and control characters.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unquote builds the string that starts at start, whose bytes up to i
// are copied as they are, the way encoding/json does: escapes decoded,
// each byte of invalid UTF-8 and each lone surrogate as U+FFFD.
func (d *decoder) unquote(start, i int) (string, error) {
	b := append(d.buf[:0], d.src[start:i]...)
	defer func() { d.buf = b[:0] }()
	for i < len(d.src) {
		c := d.src[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(b), nil
		case c == '\\':
			var err error
			if b, i, err = d.escape(b, i); err != nil {
				return "", err
			}
		case c < ' ':
			d.pos = i
			return "", d.syntaxError("in a string (control characters must be escaped)")
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(d.src[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.src[i:i+size]...)
			}
			i += size
		}
	}
	d.pos = len(d.src)
	return "", d.syntaxError("")
}

// escape appends the escape sequence at i (a backslash) to b and
// returns the index after it.
func (d *decoder) escape(b []byte, i int) ([]byte, int, error) {
	n, err := d.escapeLen(i)
	if err != nil {
		return b, i, err
	}
	if c := d.src[i+1]; c != 'u' {
		return append(b, unescape(c)), i + n, nil
	}
	r, _ := hex4(d.src, i+2)
	i += n
	if utf16.IsSurrogate(r) {
		// A pair is consumed whole; anything else leaves the next
		// escape to be decoded on its own, as encoding/json does.
		if r2, ok := lowSurrogate(d.src, i); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return utf8.AppendRune(b, dec), i + 6, nil
			}
		}
		r = utf8.RuneError
	}
	return utf8.AppendRune(b, r), i, nil
}

// unescape returns the byte a one-letter escape (\n...) stands for.
func unescape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

// lowSurrogate reads a \uXXXX escape at i, if there is one.
func lowSurrogate(s string, i int) (rune, bool) {
	if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
		return 0, false
	}
	return hex4(s, i+2)
}

// hex4 reads four hexadecimal digits at i.
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
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

// skip validates the value at d.pos (after whitespace) as value would,
// building nothing.
func (d *decoder) skip() error {
	d.skipSpace()
	if d.pos == len(d.src) {
		return d.syntaxError("")
	}
	switch c := d.src[d.pos]; c {
	case '{':
		return d.skipObject()
	case '[':
		return d.skipArray()
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, err := d.scanNumber()
			return err
		}
		return d.syntaxError("looking for the beginning of a value")
	}
}

func (d *decoder) skipObject() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos < len(d.src) && d.src[d.pos] == '}' {
		d.leave()
		return nil
	}
	for {
		if _, err := d.key(); err != nil {
			return err
		}
		if err := d.skip(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos < len(d.src) && d.src[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.pos < len(d.src) && d.src[d.pos] == '}' {
			d.leave()
			return nil
		}
		return d.syntaxError("after an object member")
	}
}

func (d *decoder) skipArray() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos < len(d.src) && d.src[d.pos] == ']' {
		d.leave()
		return nil
	}
	for {
		if err := d.skip(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos < len(d.src) && d.src[d.pos] == ',' {
			d.pos++
			continue
		}
		if d.pos < len(d.src) && d.src[d.pos] == ']' {
			d.leave()
			return nil
		}
		return d.syntaxError("after an array element")
	}
}

// skipString validates a string literal: its escapes, and no control
// characters (invalid UTF-8 is no error: string replaces it).
func (d *decoder) skipString() error {
	for i := d.pos + 1; i < len(d.src); {
		c := d.src[i]
		switch {
		case plainByte[c] || c >= utf8.RuneSelf:
			i++
		case c == '"':
			d.pos = i + 1
			return nil
		case c == '\\':
			n, err := d.escapeLen(i)
			if err != nil {
				return err
			}
			i += n
		default:
			d.pos = i
			return d.syntaxError("in a string (control characters must be escaped)")
		}
	}
	d.pos = len(d.src)
	return d.syntaxError("")
}

// escapeLen validates the escape sequence at i (a backslash) and returns
// its length.
func (d *decoder) escapeLen(i int) (int, error) {
	if i+1 >= len(d.src) {
		d.pos = len(d.src)
		return 0, d.syntaxError("")
	}
	switch d.src[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if _, ok := hex4(d.src, i+2); !ok {
			d.pos = min(i+2, len(d.src))
			return 0, d.syntaxError("in a \\u escape")
		}
		return 6, nil
	default:
		d.pos = i + 1
		return 0, d.syntaxError("in a string escape")
	}
}
