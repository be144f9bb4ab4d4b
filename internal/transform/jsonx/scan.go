package jsonx

import "strconv"

// scanner reads a body in one pass: it checks that it is JSON and writes
// it compact, filtered by an allow or a deny trie. No tree is built: the
// output is the input with byte ranges cut out (white space, dropped
// members and elements), so it is copied in runs — s[run:i] is input kept
// but not yet copied to out — and an unfiltered compact body costs one
// copy. Every value is read, kept or not, so a body is refused exactly
// when it is not JSON, whatever the filter.
//
// Most bodies are read by fastContainer; the general loop (value) reads
// the rest, and words the errors.
type scanner struct {
	s        []byte
	i        int
	maxDepth int
	err      *BodyError
	out      []byte
	run      int  // start of the pending run; -1 while a dropped value is read
	drop     int  // 1 + the depth of the dropped value being read; 0: none
	allow    bool // the trie is an allow list, else a deny list
	frames   []frame
	kbuf     []byte // decoded keys
	ff       []fastFrame
	slow     bool       // fastContainer failed: leave the rest to the general loop
	ps       *planState // the plan followed, if any
	// With rec, each container written gets a tape entry, in the order of
	// their opening brackets, for the tree that ops work on.
	rec  bool
	tape []tapeEntry
}

// frame is an open object or array.
type frame struct {
	closer byte  // '}' or ']'
	tix    int   // tape index, or -1
	t      *trie // filters the members or elements; nil: none
	entry
}

// entry is the state of the member or element being read, for filtering.
type entry struct {
	mark int  // output offset before the ',' that precedes it (or after the opening bracket)
	sep  bool // a ',' precedes it
	kept bool // an earlier member or element was kept
}

// tapeEntry is where a container written ends in the output, and the tape
// index after its own containers (that of its next sibling).
type tapeEntry struct{ end, next int32 }

// document reads the body: one JSON value with optional white space
// around it. With t, the value is filtered. present is false for an empty
// or all-white-space body when emptyOK; ok is false (p.err set) for a body
// that is not JSON.
func (p *scanner) document(t *trie, emptyOK bool) (present, ok bool) {
	p.ws()
	if p.i == len(p.s) && emptyOK {
		return false, true
	}
	mark := p.outPos()
	keep, sub := p.keep(t, p.peek())
	if p.ps != nil {
		p.ps.open(p, keep)
	}
	if keep {
		ok = p.value(sub)
	} else if ok = p.skip(); ok {
		// A top-level value that is dropped becomes null.
		p.out = append(p.out[:mark], "null"...)
	}
	if !ok {
		return true, false
	}
	p.ws()
	if p.i < len(p.s) {
		return true, p.fail(p.i, "unexpected "+describeByte(p.s[p.i])+" after the JSON value")
	}
	p.flush(p.i)
	if p.ps != nil {
		p.ps.close(p)
	}
	return true, true
}

// keep decides on a value that trie t reaches (nil: the value's key or
// array is not in the trie), given its first byte c: whether it is kept,
// and the trie that filters inside it (nil: kept whole, or dropped). This
// is where the Allow and Deny semantics of the package documentation
// live.
func (p *scanner) keep(t *trie, c byte) (bool, *trie) {
	if !p.allow {
		switch {
		case t == nil:
			return true, nil
		case t.term:
			return false, nil
		}
		return true, t
	}
	switch {
	case t == nil:
		return false, nil
	case t.term:
		return true, nil
	case c == '{' && t.hasKeys(), c == '[' && t.arr != nil:
		return true, t
	}
	return false, nil // a value whose type does not fit the path
}

// What value's loop reads next.
const (
	atValue    = iota // a value, at p.i
	atEntry           // a member or element of the innermost container, at p.i
	afterValue        // what follows a value just read
)

// value reads the value at p.i, filtered by t (nil: none). Its containers
// are read by fastContainer if it can; value's own loop, one call or so
// per token, reads what is left: a scalar at the top, a container nested
// past fastDepth, and the body after an error, which it words.
func (p *scanner) value(t *trie) bool {
	p.frames = p.frames[:0]
	for at := atValue; ; {
		var ok bool
		switch at {
		case atValue:
			var open bool
			if open, ok = p.token(t); open {
				at = atEntry
				continue
			}
			at = afterValue
		case afterValue:
			var done bool
			if done, ok = p.end(); done {
				return ok
			}
			at = atEntry
		case atEntry:
			t, ok = p.entry(&p.frames[len(p.frames)-1])
			at = atValue
		}
		if !ok {
			return false
		}
	}
}

// token reads the value at p.i, filtered by t, or opens it (open: a
// container, whose entries are to be read).
func (p *scanner) token(t *trie) (open, ok bool) {
	if p.i >= len(p.s) {
		return false, p.unexpected()
	}
	switch c := p.s[p.i]; {
	case c == '{' || c == '[':
		if p.fastContainer(t) {
			return false, true
		}
		return p.open(c, t)
	case c == '"':
		_, ok = p.str()
		return false, ok
	case c == '-' || c >= '0' && c <= '9':
		return false, p.num()
	case c == 't':
		return false, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return false, p.lit("null")
	}
	return false, p.unexpected()
}

// skip reads a value without writing it.
func (p *scanner) skip() bool {
	run := p.run
	p.run = -1
	ok := p.value(nil)
	if run >= 0 {
		run = p.i
	}
	p.run = run
	return ok
}

// open opens the container at p.i, filtered by t.
func (p *scanner) open(c byte, t *trie) (open, ok bool) {
	if len(p.frames) >= p.maxDepth {
		p.fail(p.i, "nesting deeper than "+strconv.Itoa(p.maxDepth))
		p.err.err = ErrTooDeep
		return false, false
	}
	f := frame{closer: c + 2, tix: -1} // '{'+2 is '}', '['+2 is ']'
	if p.rec && p.run >= 0 {
		f.tix = len(p.tape)
		p.tape = append(p.tape, tapeEntry{})
	}
	if t != nil && (c == '{' && t.hasKeys() || c == '[' && t.arr != nil) {
		f.t = t
	}
	p.i++
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == f.closer {
		p.close(f.tix)
		return false, true
	}
	f.mark = p.outPos()
	p.frames = append(p.frames, f)
	return true, true
}

// close reads the closing bracket at p.i of the container with tape index
// tix.
func (p *scanner) close(tix int) {
	p.i++
	if tix >= 0 {
		p.tape[tix] = tapeEntry{end: int32(p.outPos()), next: int32(len(p.tape))}
	}
}

// end follows a value that has been read: it closes the containers that
// end with it, and reads the ',' before the next entry (done false) or
// finds that the outermost value has ended (done true).
func (p *scanner) end() (done, ok bool) {
	for {
		if p.drop == len(p.frames)+1 { // the dropped value is read
			p.run, p.drop = p.i, 0
		}
		if len(p.frames) == 0 {
			return true, true
		}
		p.ws()
		f := &p.frames[len(p.frames)-1]
		if p.i < len(p.s) && p.s[p.i] == f.closer {
			p.close(f.tix)
			p.frames = p.frames[:len(p.frames)-1]
			continue
		}
		if p.i >= len(p.s) || p.s[p.i] != ',' {
			return false, p.unexpected()
		}
		f.mark, f.sep = p.outPos(), true
		p.i++
		p.ws()
		return false, true
	}
}

// entry reads the start of the next member (its key and colon) or element
// of the innermost container f; if f filters them, it decides whether the
// entry is kept. It returns the trie that filters the entry's value.
func (p *scanner) entry(f *frame) (*trie, bool) {
	if f.closer == ']' {
		if f.t == nil {
			return nil, true
		}
		keep, sub := p.keep(f.t.arr, p.peek())
		p.settleDrop(&f.entry, p.i, keep)
		return sub, true
	}
	if p.i >= len(p.s) {
		return nil, p.unexpected()
	}
	if p.s[p.i] != '"' {
		return nil, p.fail(p.i, "unexpected "+describeByte(p.s[p.i])+", expected a string key")
	}
	ks := p.i
	esc, ok := p.str()
	if !ok {
		return nil, false
	}
	ke := p.i
	colon, ok := p.colon()
	if !ok {
		return nil, false
	}
	keep, sub := true, (*trie)(nil)
	if f.t != nil {
		keep, sub = p.keep(f.t.child(p.key(ks, ke, esc)), p.peek())
	}
	if p.settleDrop(&f.entry, ks, keep) {
		p.cutColon(ke, colon, p.i)
	}
	return sub, true
}

// settle decides the output of an entry (member or element) that starts
// at input offset start: dropped, it leaves no trace, not even its ',';
// kept, it loses the ',' before it if nothing before it was kept. It
// returns keep; the caller then reads the entry, or drops it.
func (p *scanner) settle(e *entry, start int, keep bool) bool {
	if !keep || e.sep && !e.kept {
		p.flush(start)
		p.out = p.out[:e.mark]
	}
	e.kept = e.kept || keep
	return keep
}

// settleDrop is settle for value's loop, which then reads a dropped entry
// without writing it.
func (p *scanner) settleDrop(e *entry, start int, keep bool) bool {
	if !p.settle(e, start, keep) {
		p.run, p.drop = -1, len(p.frames)+1
	}
	return keep
}

func (p *scanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// outPos is the output offset of input offset p.i.
func (p *scanner) outPos() int { return len(p.out) + p.i - p.run }

// cut drops input s[a:b] from the output.
func (p *scanner) cut(a, b int) {
	if p.run < 0 {
		return // inside a dropped value: nothing is written
	}
	p.out = append(p.out, p.s[p.run:a]...)
	p.run = b
}

// flush copies the pending run up to input offset i.
func (p *scanner) flush(i int) { p.cut(i, i) }

func (p *scanner) fail(off int, reason string) bool {
	if p.err == nil {
		p.err = &BodyError{Offset: off, Reason: reason}
	}
	return false
}

func (p *scanner) unexpected() bool {
	if p.i >= len(p.s) {
		return p.fail(p.i, "unexpected end of input")
	}
	return p.fail(p.i, "unexpected "+describeByte(p.s[p.i]))
}

// ws skips white space, which the output leaves out.
func (p *scanner) ws() {
	if p.i < len(p.s) && p.s[p.i] > ' ' {
		return // the common case, kept small enough to inline
	}
	p.wsSlow()
}

func (p *scanner) wsSlow() {
	start := p.i
	p.i = skipWS(p.s, p.i)
	if p.i > start {
		p.cut(start, p.i)
	}
}

func skipWS(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// colon reads the white space, ':' and white space after a key ending at
// p.i, without cutting the white space yet (the member may be dropped),
// and returns the colon's offset.
func (p *scanner) colon() (int, bool) {
	i := skipWS(p.s, p.i)
	if i >= len(p.s) || p.s[i] != ':' {
		p.i = i
		if i < len(p.s) {
			return 0, p.fail(i, "unexpected "+describeByte(p.s[i])+", expected ':'")
		}
		return 0, p.unexpected()
	}
	p.i = skipWS(p.s, i+1)
	return i, true
}

// cutColon cuts the white space around the colon at input offset colon,
// between a key ending at ke and its value at vs, if there is any.
func (p *scanner) cutColon(ke, colon, vs int) {
	if colon > ke {
		p.cut(ke, colon)
	}
	if vs > colon+1 {
		p.cut(colon+1, vs)
	}
}

// cutSpace skips and cuts the white space at input offset i, where there
// is some, and returns the offset after it.
func (p *scanner) cutSpace(i int) int {
	j := skipWS(p.s, i)
	p.cut(i, j)
	return j
}

// key returns the decoded key of the member whose quoted key is s[ks:ke].
func (p *scanner) key(ks, ke int, esc bool) []byte {
	k := p.s[ks+1 : ke-1]
	if !esc {
		return k
	}
	p.kbuf = AppendUnquoted(p.kbuf[:0], k)
	return p.kbuf
}

func (p *scanner) lit(want string) bool {
	if len(p.s)-p.i >= len(want) && string(p.s[p.i:p.i+len(want)]) == want {
		p.i += len(want)
		return true
	}
	// Point at the first byte that differs.
	for j := 0; p.i < len(p.s) && p.s[p.i] == want[j]; j++ {
		p.i++
	}
	return p.unexpected()
}

func (p *scanner) num() bool {
	end, e := ScanNumber(p.s, p.i)
	if e == LexOK {
		p.i = end
		return true
	}
	if end >= len(p.s) {
		return p.fail(end, "unexpected end of input in number")
	}
	return p.fail(end, "unexpected "+describeByte(p.s[end])+" in number")
}

// str reads the string at p.i; esc reports a backslash escape in it.
func (p *scanner) str() (esc, ok bool) {
	end, flags, e := ScanString(p.s, p.i, false)
	if e == LexOK {
		p.i = end
		return flags&StrEscaped != 0, true
	}
	return false, p.fail(end, stringError(p.s, end, e))
}

// stringError words what ScanString found at offset off of s.
func stringError(s []byte, off int, e LexError) string {
	switch {
	case off >= len(s):
		return "unexpected end of input in string"
	case e == LexControl:
		return "control character " + describeByte(s[off]) + " in string"
	case e == LexEscape:
		return "invalid escape in string"
	case e == LexUnicode:
		return "invalid \\u escape in string"
	}
	return "invalid UTF-8 in string"
}
