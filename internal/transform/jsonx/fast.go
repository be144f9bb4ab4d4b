package jsonx

import (
	"encoding/binary"
	"math/bits"
)

// fastDepth bounds the nesting fastContainer follows (a bit per level).
const fastDepth = 64

// Where fastContainer goes after a string (str).
const (
	backValue = iota
	backKey
	backFilteredKey
)

// fastFrame is a container open in fastContainer that a filter or a plan
// acts in.
type fastFrame struct {
	t    *trie  // filters its members or elements, or nil
	pn   *pnode // the plan's edits in it, or nil
	seen uint64 // the plan's edges present
	// cut is the output offset of the value of the member being read, to
	// be cut out once read (-1: none), and slot where it goes (-1: none).
	cut, slot int
	entry
}

// frameFor returns the frame of a container (c its bracket) that the
// filter t or the plan node pn act in, if any.
func frameFor(c byte, t *trie, pn *pnode, mark int) (fastFrame, bool) {
	var f fastFrame
	if t != nil && (c == '{' && t.hasKeys() || c == '[' && t.arr != nil) {
		f.t = t
	}
	if pn != nil && (c == '{' && (len(pn.edges) > 0 || len(pn.appends) > 0) || c == '[' && pn.arr != nil) {
		f.pn = pn
	}
	f.cut, f.slot, f.mark = -1, -1, mark
	return f, f.t != nil || f.pn != nil
}

// fastContainer reads the object or array at p.i, filtered by t, when it
// is well-formed and at most fastDepth levels deep: the common case, read
// here with the position and the nesting in registers (a word of bits: 1
// for an object) and plain strings eight bytes at a time. It does what
// value does, writing the same output and tape, and makes the edits of
// the plan, if any (at the root only). On anything else (an error, deeper
// nesting) it puts the output and tape back as they were and returns
// false, and the general loop reads the container instead — it alone
// words errors, and it has no plan: the plan is then given up (bail). After
// one such failure the scanner no longer tries, so that no input is read
// more than twice.
//
// It is one function, a state machine of labels, because every call made
// in its loop costs more than most tokens do: Go saves all the loop's
// registers around a call. Rare cases (white space, escapes, numbers with
// a fraction, filtering decisions) call out.
func (p *scanner) fastContainer(t *trie) bool {
	if p.slow {
		return false
	}
	var pn *pnode // the plan, at the root
	if p.ps != nil {
		pn, p.ps.root = p.ps.root, nil
	}
	var (
		s                = p.s
		i                = p.i
		out0, run0, tap0 = len(p.out), p.run, len(p.tape)
		nest, filt       uint64 // bit 0: the innermost container is an object, is filtered
		depth            int
		dropAt           int // depth of the container whose entry is being dropped; 0: none
		tix              [fastDepth]int32
		maxDepth         = min(fastDepth, p.maxDepth-len(p.frames))
		cur              = t  // filters the value about to be read
		curPn            = pn // the plan's edits in it
		ks, ke, colon    int  // a member's key and colon
		start            int  // a number's
		esc, keep        bool
		c                byte
		top              *fastFrame // p.ff's last, if filt&1
		back             uint8      // where str returns
	)
	p.ff = p.ff[:0]
value: // a value at i, filtered by cur, edited by curPn
	if i >= len(s) {
		goto fail
	}
	if curPn != nil && len(curPn.slots) > 0 {
		p.ps.reset(curPn)
	}
	switch c = s[i]; {
	case c == '"':
		back = backValue
		goto str
	case c == '{' || c == '[':
		if depth == maxDepth {
			goto fail
		}
		tix[depth] = -1
		if p.rec && p.run >= 0 {
			tix[depth] = int32(len(p.tape))
			p.tape = append(p.tape, tapeEntry{})
		}
		depth++
		nest = nest<<1 | uint64(c>>5&1) // '{' is 0x7b, '[' 0x5b: bit 5
		if i++; wsAt(s, i) {
			i = p.cutSpace(i)
		}
		filt <<= 1
		if cur != nil || curPn != nil {
			if f, ok := frameFor(c, cur, curPn, len(p.out)+i-p.run); ok {
				filt |= 1
				p.ff = append(p.ff, f)
				top = &p.ff[len(p.ff)-1]
			}
		}
		if i < len(s) && s[i] == c+2 { // empty: '{'+2 is '}', '['+2 is ']'
			goto closed
		}
		if c == '{' {
			goto key
		}
		goto element
	case c >= '1' && c <= '9':
		// An integer, most often: read here.
		for start, i = i, i+1; i < len(s) && s[i]-'0' <= 9; i++ {
		}
		if i < len(s) && (s[i] == '.' || s[i]|0x20 == 'e') {
			if i = numberEnd(s, start); i < 0 {
				goto fail
			}
		}
	case c == '0' || c == '-':
		if i = numberEnd(s, i); i < 0 {
			goto fail
		}
	case c == 't' && len(s)-i >= 4 && string(s[i:i+4]) == "true",
		c == 'n' && len(s)-i >= 4 && string(s[i:i+4]) == "null":
		i += 4
	case c == 'f' && len(s)-i >= 5 && string(s[i:i+5]) == "false":
		i += 5
	default:
		goto fail
	}
after: // a value has been read
	if dropAt > 0 && depth == dropAt { // the dropped value is read
		p.run, dropAt = i, 0
	}
	if filt&1 != 0 && top.cut >= 0 && !p.cutOut(top, i) {
		goto bail
	}
	if depth == 0 {
		p.i = i
		return true
	}
	if wsAt(s, i) {
		i = p.cutSpace(i)
	}
	if i >= len(s) {
		goto fail
	}
	switch c = s[i]; {
	case c == ',':
		if filt&1 != 0 {
			top.mark, top.sep = len(p.out)+i-p.run, true
		}
		if i++; wsAt(s, i) {
			i = p.cutSpace(i)
		}
		if nest&1 != 0 {
			goto key
		}
		goto element
	case c == '}' && nest&1 != 0, c == ']' && nest&1 == 0:
		goto closed
	}
	goto fail
closed: // s[i] closes the innermost container
	if filt&1 != 0 && top.pn != nil && nest&1 != 0 {
		p.flush(i)
		p.ps.appends(&p.out, top.pn, &top.entry, top.seen)
	}
	i++
	depth--
	nest >>= 1
	if filt&1 != 0 {
		if p.ff = p.ff[:len(p.ff)-1]; len(p.ff) > 0 {
			top = &p.ff[len(p.ff)-1]
		}
	}
	filt >>= 1
	if tix[depth] >= 0 {
		p.tape[tix[depth]] = tapeEntry{end: int32(len(p.out) + i - p.run), next: int32(len(p.tape))}
	}
	goto after
element: // an element of the innermost array, at i
	cur, curPn = nil, nil
	if filt&1 != 0 {
		f := top
		if f.pn != nil {
			curPn = f.pn.arr
		}
		if f.t == nil {
			goto value
		}
		if keep, cur = p.keep(f.t.arr, peekAt(s, i)); !p.settle(&f.entry, i, keep) {
			p.run, dropAt, curPn = -1, depth, nil
		}
	}
	goto value
key: // a member of the innermost object, at i
	if i >= len(s) || s[i] != '"' {
		goto fail
	}
	cur, curPn, ks = nil, nil, i
	if back = backKey; filt&1 != 0 {
		back = backFilteredKey
	}
	goto str
plainKey: // after the key of a member of a container with no filter or plan
	if wsAt(s, i) {
		i = p.cutSpace(i)
	}
	if i >= len(s) || s[i] != ':' {
		goto fail
	}
	if i++; wsAt(s, i) {
		i = p.cutSpace(i)
	}
	goto value
filteredKey: // after the key of a member of a container with a filter or a plan
	// The white space around its colon is cut only once the member is
	// known to be kept.
	if ke = i; wsAt(s, i) {
		i = skipWS(s, i)
	}
	if colon = i; i >= len(s) || s[i] != ':' {
		goto fail
	}
	i = skipWS(s, i+1)
	{
		f := top
		k := p.key(ks, ke, esc)
		keep = true
		if f.t != nil {
			keep, cur = p.keep(f.t.child(k), peekAt(s, i))
		}
		var e *pedge
		if keep && f.pn != nil {
			if e, keep = f.edge(k, peekAt(s, i)); !keep {
				goto bail
			}
		}
		switch {
		case !keep || e != nil && e.drop && e.slot < 0 && e.next == nil:
			p.settle(&f.entry, ks, false)
			p.run, dropAt, cur = -1, depth, nil
			goto value
		case e != nil && e.drop:
			// Moved away, or dropped with moves inside: written, then cut
			// out once read (see cutOut).
			p.settle(&f.entry, ks, false)
			f.cut, f.slot = len(p.out), e.slot
			p.run, curPn = i, e.next
			goto value
		}
		p.settle(&f.entry, ks, true)
		if e != nil {
			curPn = e.next
			if e.rename != nil {
				p.flush(ks)
				p.out = append(p.out, p.ps.d.lit[e.rename.qspan.off:e.rename.qspan.end]...)
				p.run = ke
			}
		}
	}
	p.cutColon(ke, colon, i)
	goto value
str: // the string at i, then back
	esc = false
	{
		j := i + 1
		for ; j+8 <= len(s); j += 8 { // plain ASCII, eight bytes at a time
			if m := specialBytes(binary.LittleEndian.Uint64(s[j:])); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
		}
		if j < len(s) && s[j] == '"' { // every byte before it was plain
			i = j + 1
		} else if i, esc = stringEnd(s, i); i < 0 {
			goto fail
		}
	}
	switch back {
	case backKey:
		goto plainKey
	case backFilteredKey:
		goto filteredKey
	}
	goto after
bail: // the plan cannot be followed here: the tree will do the work
	p.ps.bail = true
fail:
	p.out, p.run, p.tape = p.out[:out0], run0, p.tape[:tap0]
	p.ff = p.ff[:0]
	p.slow = true
	if p.ps != nil {
		p.ps.bail = true
	}
	return false
}

// wsAt reports whether s[i] may be white space (or is a control byte,
// which the general code refuses).
func wsAt(s []byte, i int) bool { return i < len(s) && s[i] <= ' ' }

func peekAt(s []byte, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// stringEnd returns the offset after the valid string at s[i], or -1,
// and whether it has an escape.
func stringEnd(s []byte, i int) (int, bool) {
	end, flags, e := ScanString(s, i, false)
	if e != LexOK {
		return -1, false
	}
	return end, flags&StrEscaped != 0
}

// numberEnd returns the offset after the valid number at s[i], or -1.
func numberEnd(s []byte, i int) int {
	if c := s[i]; c >= '1' && c <= '9' { // an integer, most often
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == len(s) || s[j] != '.' && s[j]|0x20 != 'e' {
			return j
		}
	}
	end, e := ScanNumber(s, i)
	if e != LexOK {
		return -1
	}
	return end
}
