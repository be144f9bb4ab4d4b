package jsonx

// Ops work on an ordered tree kept in one slab of nodes (indices, not
// pointers, so the slab can grow and be reused through a sync.Pool, and the
// garbage collector neither scans it nor pays write barriers for it).
// Scalars are spans of raw bytes — numbers and strings are never decoded,
// which is what keeps them byte-identical — and object members keep their
// raw, quoted key. A span points into the filtered body (compact JSON the
// scanner wrote), into the program's literal bytes (keys and constants of
// ops) or into the per-Apply variable buffer. Children form a singly
// linked list, which makes delete, rename and move O(1) once the member is
// found and keeps the input order.
//
// The tree is built lazily: a container's children are made only when an
// op looks inside it (expand). Until then it is its span of bytes, written
// out as it is, so the parts of a body that ops do not reach cost nothing
// but their copy. The scanner's tape gives where each nested container of
// the body ends, so that expanding one skips its nested containers without
// reading them.

type kind uint8

const (
	kScalar kind = iota // string, number, true, false, null: raw holds the token
	kObject
	kArray
)

// Where a span's bytes live.
const (
	inSrc uint8 = iota // the filtered body
	inLit              // Program.lit
	inAux              // doc.aux: variable values
)

type span struct{ off, end int32 }

type node struct {
	raw    span // the token, or the container's bytes (while not expanded)
	key    span // quoted key, verbatim, when an object member
	first  int32
	last   int32
	next   int32
	tix    int32 // tape index of a container in the body, or -1
	kind   kind
	rawIn  uint8
	keyIn  uint8
	keyEsc bool // key contains a backslash escape: compare its decoded value
}

const (
	none       int32 = -1
	unexpanded int32 = -2 // node.first of a container not expanded yet
)

// doc is the per-Apply working state.
type doc struct {
	n      []node
	src    []byte // the filtered body
	lit    []byte // Program.lit (read only)
	aux    []byte // variable values quoted as JSON strings
	kbuf   []byte // scratch: decoded keys
	out    []byte // serialisation buffer
	flt    []byte // buffer of src
	tape   []tapeEntry
	frames []frame // the scanner's stacks
	ff     []fastFrame
	prog   *Program
	vals   []opValue // by op: a set's value
	ps     planState // the plan being followed
	slots  []slot
	capt   []byte
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

// add adds a scalar, or an empty container.
func (d *doc) add(k kind, raw span, in uint8) int32 {
	d.n = append(d.n, node{raw: raw, rawIn: in, kind: k, first: none, last: none, next: none, tix: -1})
	return int32(len(d.n) - 1)
}

// addRaw adds the value whose bytes are raw (compact, valid JSON): a
// container is expanded when first looked into. tix is its tape index in
// the body, or -1.
func (d *doc) addRaw(raw span, in uint8, tix int32) int32 {
	k := kScalar
	switch d.buf(in)[raw.off] {
	case '{':
		k = kObject
	case '[':
		k = kArray
	}
	c := d.add(k, raw, in)
	if k != kScalar {
		d.n[c].first, d.n[c].tix = unexpanded, tix
	}
	return c
}

// root returns the node of the whole filtered body.
func (d *doc) root() int32 {
	return d.addRaw(span{0, int32(len(d.src))}, inSrc, 0)
}

// setKey gives node c the (program literal) key of st.
func (d *doc) setKey(c int32, st *step) {
	d.n[c].key, d.n[c].keyIn, d.n[c].keyEsc = st.qspan, inLit, st.qesc
}

// firstChild returns the first child of container c, expanding it first.
func (d *doc) firstChild(c int32) int32 {
	if d.n[c].first == unexpanded {
		d.expand(c)
	}
	return d.n[c].first
}

func (d *doc) appendChild(parent, child int32) {
	if d.n[parent].first == unexpanded {
		d.expand(parent)
	}
	d.n[child].next = none
	if l := d.n[parent].last; l < 0 {
		d.n[parent].first = child
	} else {
		d.n[l].next = child
	}
	d.n[parent].last = child
}

// unlink removes child c (whose predecessor is prev, or none) from parent,
// which is expanded (c was found in it).
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

// expand makes the children of container c from its bytes, which are
// compact and valid: the scanner wrote and checked them, or Compile did.
func (d *doc) expand(c int32) {
	n := d.n[c] // a copy: d.n grows below
	b := d.buf(n.rawIn)
	d.n[c].first, d.n[c].last = none, none
	i := int(n.raw.off) + 1
	next := n.tix + 1 // tape index of the next nested container
	for b[i] != '}' && b[i] != ']' {
		var key span
		esc := false
		if n.kind == kObject {
			ks := i
			i, esc = skipKey(b, i)
			key = span{int32(ks), int32(i)}
			i++ // ':'
		}
		vs, tix := i, int32(-1)
		switch b[i] {
		case '{', '[':
			if n.tix >= 0 {
				e := d.tape[next]
				i, tix, next = int(e.end), next, e.next
			} else {
				i = skipContainer(b, i)
			}
		case '"':
			i = skipString(b, i)
		default:
			i = skipScalar(b, i)
		}
		m := d.addRaw(span{int32(vs), int32(i)}, n.rawIn, tix)
		d.n[m].key, d.n[m].keyIn, d.n[m].keyEsc = key, n.rawIn, esc
		d.appendChild(c, m)
		if b[i] == ',' {
			i++
		}
	}
}

// The skips below read compact JSON already checked.

// skipKey returns the offset after the string at b[i] and whether it has
// an escape.
func skipKey(b []byte, i int) (int, bool) {
	esc := false
	for i++; ; i++ {
		switch b[i] {
		case '"':
			return i + 1, esc
		case '\\':
			esc = true
			i++
		}
	}
}

func skipString(b []byte, i int) int {
	for i++; ; i++ {
		i = skipPlain(b, i)
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
}

// skipScalar skips a number, true, false or null.
func skipScalar(b []byte, i int) int {
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// skipContainer skips the object or array at b[i]; the body's containers
// use the tape instead, this is for the program's constants.
func skipContainer(b []byte, i int) int {
	depth := 0
	for ; ; i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
}

// keyOf returns the decoded key of member c; the result aliases the input
// or d.kbuf and is valid until the next keyOf call.
func (d *doc) keyOf(c int32) []byte {
	k := d.keyRaw(c)
	k = k[1 : len(k)-1]
	if !d.n[c].keyEsc {
		return k
	}
	d.kbuf = AppendUnquoted(d.kbuf[:0], k)
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
