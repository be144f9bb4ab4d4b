package jq

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// The fast path: most transforms only reshape — pick fields, rename them,
// collect an array of smaller objects — and for those, decoding the body
// into Go values, running gojq's VM on a pooled goroutine and encoding the
// result cost many times the reshaping itself. Compile recognises that
// subset of jq:
//
//	.  .a  .["a"]  .a.b  .a[]  .a[0]  .a[-1]      paths (a pipe of paths is a path)
//	{a, "b": E, c: E, $v}                          objects with constant keys
//	[E]  []                                        arrays, collecting a stream
//	null true false 12 "text"                      constants
//	$v                                             variables of Run
//	P | E   E, E                                   pipes from a path, commas
//
// and Run evaluates it straight on the body's bytes: one validating pass
// indexes the document (a tape of spans, no allocation), paths look names
// up in it, and the output is written as it is built, by the same encoder
// as gojq's values (strings, keys and numbers come out byte for byte the
// same; objects and arrays taken whole are decoded and encoded as before).
//
// The fast path never decides an error: wherever gojq would raise one
// (.a on an array, .[] on null) or the body is not valid JSON, or the output
// passes MaxBytes, it gives up and the run starts over on gojq, which
// answers with its own result or message. A successful fast run is
// therefore byte for byte what gojq's would be (TestFastSameAsGojq and
// FuzzFast hold it to that). It needs no time bound: its work is linear in
// the body times the expression (no loops, no recursion, no function).

// fastKind is the kind of a fastExpr.
type fastKind uint8

const (
	fastPath   fastKind = iota // steps applied to the input (none: .)
	fastObject                 // {k: E, ...}
	fastArray                  // [E] (sub nil: [])
	fastConst                  // canonical JSON text in lit
	fastVar                    // Run's variable varIdx
	fastPipe                   // path | E
	fastComma                  // E, E
)

type fastExpr struct {
	kind   fastKind
	steps  []fastStep  // fastPath, and the path of a fastPipe
	fields []fastField // fastObject, sorted by key
	sub    *fastExpr   // fastArray's stream, fastPipe's right side
	left   *fastExpr   // fastComma
	right  *fastExpr   // fastComma
	lit    []byte      // fastConst
	varIdx int         // fastVar
	// stream: the expression may yield other than exactly one value.
	stream bool
}

// fastStep is one step of a path: a name, an array index, or .[].
type fastStep struct {
	key   string
	index int
	kind  stepKind
}

type stepKind uint8

const (
	stepKey stepKind = iota
	stepIndex
	stepIter
)

type fastField struct {
	key []byte // the key encoded, with its colon: "name":
	raw string // the key, for sorting
	val *fastExpr
}

// compileFast returns the fast form of q, or nil when q is outside the
// subset or may yield other than exactly one value.
func compileFast(q *gojq.Query, vars []string, limit int) *fastExpr {
	c := fastCompiler{vars: vars, limit: limit}
	e := c.query(q)
	if e == nil || e.stream {
		return nil
	}
	return e
}

type fastCompiler struct {
	vars  []string
	limit int
}

func (c *fastCompiler) query(q *gojq.Query) *fastExpr {
	if q == nil || q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 {
		return nil
	}
	switch q.Op {
	case 0:
		return c.term(q.Term)
	case gojq.OpPipe:
		l, r := c.query(q.Left), c.query(q.Right)
		if l == nil || r == nil || l.kind != fastPath {
			return nil
		}
		if r.kind == fastPath { // a path of paths
			return &fastExpr{kind: fastPath, steps: concat(l.steps, r.steps), stream: l.stream || r.stream}
		}
		if len(l.steps) == 0 { // . | E
			return r
		}
		return &fastExpr{kind: fastPipe, steps: l.steps, sub: r, stream: l.stream || r.stream}
	case gojq.OpComma:
		l, r := c.query(q.Left), c.query(q.Right)
		if l == nil || r == nil {
			return nil
		}
		return &fastExpr{kind: fastComma, left: l, right: r, stream: true}
	}
	return nil
}

func concat(a, b []fastStep) []fastStep {
	return append(slices.Clip(a), b...)
}

func (c *fastCompiler) term(t *gojq.Term) *fastExpr {
	if t == nil {
		return nil
	}
	var base *fastExpr
	switch t.Type {
	case gojq.TermTypeIdentity:
		base = &fastExpr{kind: fastPath}
	case gojq.TermTypeIndex:
		s, ok := indexStep(t.Index)
		if !ok {
			return nil
		}
		base = &fastExpr{kind: fastPath, steps: []fastStep{s}}
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse, gojq.TermTypeNumber:
		base = c.constant(t)
	case gojq.TermTypeUnary: // -1
		if u := t.Unary.Term; u.Type == gojq.TermTypeNumber && len(u.SuffixList) == 0 {
			base = c.constant(t)
		}
	case gojq.TermTypeString:
		if t.Str == nil || t.Str.Queries != nil {
			return nil
		}
		base = c.constant(t)
	case gojq.TermTypeFunc:
		base = c.variable(t.Func)
	case gojq.TermTypeObject:
		base = c.object(t.Object)
	case gojq.TermTypeArray:
		base = &fastExpr{kind: fastArray}
		if t.Array.Query != nil {
			if base.sub = c.query(t.Array.Query); base.sub == nil {
				return nil
			}
		}
	case gojq.TermTypeQuery:
		base = c.query(t.Query)
	}
	if base == nil {
		return nil
	}
	if len(t.SuffixList) == 0 {
		return base
	}
	if base.kind != fastPath {
		return nil // indexing a built value: rare, left to gojq
	}
	steps, stream := slices.Clip(base.steps), base.stream
	for _, s := range t.SuffixList {
		switch {
		case s.Optional:
			return nil
		case s.Iter:
			steps, stream = append(steps, fastStep{kind: stepIter}), true
		case s.Index != nil:
			st, ok := indexStep(s.Index)
			if !ok {
				return nil
			}
			steps = append(steps, st)
		default:
			return nil
		}
	}
	return &fastExpr{kind: fastPath, steps: steps, stream: stream}
}

// indexStep is .name, ."name", .["name"] or .[N] (N an integer literal,
// negative from the end).
func indexStep(ix *gojq.Index) (fastStep, bool) {
	if key, ok := indexKey(ix); ok {
		return fastStep{key: key}, true
	}
	if ix.IsSlice || ix.End != nil || ix.Start == nil || ix.Start.Op != 0 || ix.Start.Term == nil {
		return fastStep{}, false
	}
	t := ix.Start.Term
	neg := false
	if t.Type == gojq.TermTypeUnary && t.Unary.Op == gojq.OpSub && len(t.SuffixList) == 0 {
		neg, t = true, t.Unary.Term
	}
	if t.Type != gojq.TermTypeNumber || len(t.SuffixList) > 0 {
		return fastStep{}, false
	}
	n, err := strconv.Atoi(t.Number)
	if err != nil || n > 1<<30 {
		return fastStep{}, false
	}
	if neg {
		n = -n
	}
	return fastStep{kind: stepIndex, index: n}, true
}

// constant is a literal, written as gojq writes it (1.50 as 1.5).
func (c *fastCompiler) constant(t *gojq.Term) *fastExpr {
	code, err := gojq.Compile(&gojq.Query{Term: t})
	if err != nil {
		return nil
	}
	v, ok := code.Run(nil).Next()
	if !ok {
		return nil
	}
	if _, isErr := v.(error); isErr {
		return nil
	}
	b, err := encode(v, c.limit)
	if err != nil {
		return nil
	}
	return &fastExpr{kind: fastConst, lit: b}
}

func (c *fastCompiler) variable(f *gojq.Func) *fastExpr {
	if len(f.Args) > 0 {
		return nil
	}
	i := slices.Index(c.vars, f.Name)
	if i < 0 {
		return nil // a builtin
	}
	return &fastExpr{kind: fastVar, varIdx: i}
}

// object is {a, "b", $c, d: E}; a computed key, an interpolated one or
// a key given twice is left to gojq.
func (c *fastCompiler) object(o *gojq.Object) *fastExpr {
	e := &fastExpr{kind: fastObject}
	for _, kv := range o.KeyVals {
		var key string
		var val *fastExpr
		switch {
		case kv.Key != "" && kv.Key[0] == '$': // {$x} is {x: $x}
			if kv.Val != nil {
				return nil
			}
			key, val = kv.Key[1:], c.variable(&gojq.Func{Name: kv.Key})
		case kv.Key != "":
			key = kv.Key
		case kv.KeyString != nil && kv.KeyString.Queries == nil:
			key = kv.KeyString.Str
		default:
			return nil
		}
		if val == nil {
			if kv.Val == nil { // {a} is {a: .a}
				val = &fastExpr{kind: fastPath, steps: []fastStep{{key: key}}}
			} else {
				val = c.query(kv.Val)
			}
		}
		if val == nil || val.stream {
			return nil // a stream of values makes a stream of objects
		}
		if slices.ContainsFunc(e.fields, func(f fastField) bool { return f.raw == key }) {
			return nil
		}
		k, err := encode(key, c.limit)
		if err != nil {
			return nil
		}
		e.fields = append(e.fields, fastField{key: append(k, ':'), raw: key, val: val})
	}
	slices.SortFunc(e.fields, func(a, b fastField) int {
		switch {
		case a.raw < b.raw:
			return -1
		case a.raw > b.raw:
			return 1
		}
		return 0
	})
	return e
}

// fastRun is one evaluation: the body, its tape, the variables and the
// output being written.
type fastRun struct {
	src  []byte
	tape []tapeEntry
	vars []any
	e    *encoder
}

// run writes e's single value for the value at tape index in (or null,
// nullRef). false: give up (gojq decides).
func (r *fastRun) write(x *fastExpr, in int32) bool {
	if len(r.e.buf) > r.e.limit {
		return false
	}
	switch x.kind {
	case fastPath:
		v, ok := r.path(x.steps, in)
		return ok && r.value(v)
	case fastConst:
		r.e.buf = append(r.e.buf, x.lit...)
		return true
	case fastVar:
		return r.e.value(r.vars[x.varIdx]) == nil
	case fastObject:
		r.e.buf = append(r.e.buf, '{')
		for i := range x.fields {
			f := &x.fields[i]
			if i > 0 {
				r.e.buf = append(r.e.buf, ',')
			}
			r.e.buf = append(r.e.buf, f.key...)
			if !r.write(f.val, in) {
				return false
			}
		}
		r.e.buf = append(r.e.buf, '}')
		return true
	case fastArray:
		r.e.buf = append(r.e.buf, '[')
		if x.sub != nil {
			first := true
			if !r.each(x.sub, in, &first) {
				return false
			}
		}
		r.e.buf = append(r.e.buf, ']')
		return true
	case fastPipe:
		v, ok := r.path(x.steps, in)
		return ok && r.write(x.sub, v)
	}
	return false
}

// each writes every value of x's stream for in as array elements, a
// comma before each but the first of the array.
func (r *fastRun) each(x *fastExpr, in int32, first *bool) bool {
	if !x.stream {
		if !*first {
			r.e.buf = append(r.e.buf, ',')
		}
		*first = false
		return r.write(x, in)
	}
	switch x.kind {
	case fastComma:
		return r.each(x.left, in, first) && r.each(x.right, in, first)
	case fastPath:
		return r.walk(x.steps, in, nil, first)
	case fastPipe:
		return r.walk(x.steps, in, x.sub, first)
	}
	return false
}

// walk follows steps from in, through every element where a step is
// .[], and writes each value reached (then: each value of then applied
// to it) as array elements.
func (r *fastRun) walk(steps []fastStep, in int32, then *fastExpr, first *bool) bool {
	i := slices.IndexFunc(steps, func(s fastStep) bool { return s.kind == stepIter })
	if i < 0 {
		v, ok := r.path(steps, in)
		if !ok {
			return false
		}
		if then != nil {
			return r.each(then, v, first)
		}
		if !*first {
			r.e.buf = append(r.e.buf, ',')
		}
		*first = false
		return r.value(v)
	}
	v, ok := r.path(steps[:i], in)
	if !ok || v == nullRef || r.tape[v].kind != '[' {
		return false // .[] on null, a scalar or (in key order) an object
	}
	for el := v + 1; el < r.tape[v].next; el = r.tape[el].next {
		if !r.walk(steps[i+1:], el, then, first) {
			return false
		}
	}
	return true
}

// path follows steps without .[] from in.
func (r *fastRun) path(steps []fastStep, in int32) (int32, bool) {
	v := in
	for _, s := range steps {
		if v == nullRef {
			if s.kind == stepIter {
				return 0, false
			}
			continue // null.a and null[0] are null
		}
		t := &r.tape[v]
		switch s.kind {
		case stepKey:
			if t.kind != '{' {
				return 0, false
			}
			v = r.member(v, s.key)
		case stepIndex:
			if t.kind != '[' {
				return 0, false
			}
			v = r.element(v, s.index)
		default:
			return 0, false
		}
		if v == badRef {
			return 0, false
		}
	}
	return v, true
}

// member is the value of obj's last member named key, nullRef if none,
// badRef if a key it must compare has escapes.
func (r *fastRun) member(obj int32, key string) int32 {
	found := nullRef
	for k := obj + 1; k < r.tape[obj].next; k = r.tape[k+1].next {
		t := &r.tape[k]
		name := r.src[t.start+1 : t.end-1]
		if !t.plain {
			return badRef
		}
		if string(name) == key {
			found = k + 1
		}
	}
	return found
}

// element is arr[i] (negative: from the end), nullRef when out of range.
func (r *fastRun) element(arr int32, i int) int32 {
	n := 0
	for el := arr + 1; el < r.tape[arr].next; el = r.tape[el].next {
		n++
	}
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return nullRef
	}
	el := arr + 1
	for ; i > 0; i-- {
		el = r.tape[el].next
	}
	return el
}

// value writes the body's value at v as gojq would write it.
func (r *fastRun) value(v int32) bool {
	if v == nullRef {
		r.e.buf = append(r.e.buf, "null"...)
		return true
	}
	t := &r.tape[v]
	span := r.src[t.start:t.end]
	switch t.kind {
	case '"':
		if t.plain {
			r.e.buf = append(r.e.buf, span...)
			return true
		}
	case 'n', 'l': // numbers keep their text; true, false, null
		r.e.buf = append(r.e.buf, span...)
		return true
	}
	// A string with escapes, an object or an array: as the slow path.
	val, err := decode(span)
	return err == nil && r.e.value(val) == nil
}

// Tape references that are not an index.
const (
	nullRef int32 = -1 // a null the body does not hold (a missing member)
	badRef  int32 = -2 // give up
)

// tapeEntry is one value of the body (object members are a key entry,
// then the value's entries). next is the index past the value's entries:
// a container's children are the entries from its index+1 to next.
type tapeEntry struct {
	start, end int32 // the value's bytes (a string's with its quotes)
	next       int32
	kind       byte // '{' '[' '"', 'n' number, 'l' true, false or null
	// plain: a string the encoder writes as it is (no escape, no DEL,
	// valid UTF-8).
	plain bool
}

// tapeBuilder indexes a body in one pass, accepting at most what the
// decoder accepts (anything else makes the run give up, and the decoder
// then says why).
type tapeBuilder struct {
	src   []byte
	pos   int
	depth int
	tape  []tapeEntry
}

// build indexes the whole body; false if it is not one valid JSON value
// within the decoder's limits.
func (b *tapeBuilder) build() bool {
	b.space()
	if !b.value() {
		return false
	}
	b.space()
	return b.pos == len(b.src)
}

func (b *tapeBuilder) space() { b.pos = skipSpace(b.src, b.pos) }

// value indexes the value at b.pos (no whitespace before it).
func (b *tapeBuilder) value() bool {
	if b.pos >= len(b.src) {
		return false
	}
	i := int32(len(b.tape))
	b.tape = append(b.tape, tapeEntry{start: int32(b.pos)})
	var ok bool
	switch c := b.src[b.pos]; {
	case c == '{':
		b.tape[i].kind = '{'
		ok = b.container(true)
	case c == '[':
		b.tape[i].kind = '['
		ok = b.container(false)
	case c == '"':
		b.tape[i].kind = '"'
		b.tape[i].plain, ok = b.string()
	case c == '-' || '0' <= c && c <= '9':
		b.tape[i].kind = 'n'
		ok = b.number()
	default:
		b.tape[i].kind = 'l'
		ok = b.literal()
	}
	b.tape[i].end, b.tape[i].next = int32(b.pos), int32(len(b.tape))
	return ok
}

func (b *tapeBuilder) literal() bool {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(b.src)-b.pos >= len(lit) && string(b.src[b.pos:b.pos+len(lit)]) == lit {
			b.pos += len(lit)
			return true
		}
	}
	return false
}

// container indexes the object or array at b.pos.
func (b *tapeBuilder) container(object bool) bool {
	if b.depth++; b.depth > maxDepth {
		return false
	}
	defer func() { b.depth-- }()
	end := byte(']')
	if object {
		end = '}'
	}
	b.pos++
	b.space()
	if b.pos < len(b.src) && b.src[b.pos] == end {
		b.pos++
		return true
	}
	for {
		if object {
			if b.pos >= len(b.src) || b.src[b.pos] != '"' || !b.value() {
				return false
			}
			b.space()
			if b.pos >= len(b.src) || b.src[b.pos] != ':' {
				return false
			}
			b.pos++
			b.space()
		}
		if !b.value() {
			return false
		}
		b.space()
		if b.pos >= len(b.src) {
			return false
		}
		switch b.src[b.pos] {
		case ',':
			b.pos++
			b.space()
		case end:
			b.pos++
			return true
		default:
			return false
		}
	}
}

// string skips the string at b.pos, checking its escapes; plain is
// whether it holds only bytes the encoder writes as they are.
func (b *tapeBuilder) string() (plain, ok bool) {
	plain = true
	for i := b.pos + 1; i < len(b.src); {
		c := b.src[i]
		switch {
		case verbatim[c]:
			i++
		case c == '"':
			b.pos = i + 1
			return plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b.src) {
				return false, false
			}
			switch b.src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b.src) {
					return false, false
				}
				for _, h := range b.src[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false, false
					}
				}
				i += 6
			default:
				return false, false
			}
		case c < ' ':
			return false, false
		case c == 0x7f:
			plain = false
			i++
		default:
			r, size := utf8.DecodeRune(b.src[i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			i += size
		}
	}
	return false, false
}

// number skips a number of at most maxNumberLen characters.
func (b *tapeBuilder) number() bool {
	end, fail := scanNumber(b.src, b.pos)
	ok := fail == "" && end-b.pos <= maxNumberLen
	b.pos = end
	return ok
}

var tapeBuilders = sync.Pool{New: func() any { return new(tapeBuilder) }}

// runFast evaluates x on body; ok false: give up (run gojq instead).
func runFast(x *fastExpr, body []byte, vars []any, limit int) (out []byte, ok bool) {
	if len(body) > math.MaxInt32 {
		return nil, false
	}
	b := tapeBuilders.Get().(*tapeBuilder)
	defer func() {
		if cap(b.tape) > maxScratch {
			b.tape = nil
		}
		b.src, b.tape, b.pos, b.depth = nil, b.tape[:0], 0, 0
		tapeBuilders.Put(b)
	}()
	b.src = body
	if !b.build() {
		return nil, false
	}
	e := encoders.Get().(*encoder)
	defer e.release()
	e.limit = limit
	r := fastRun{src: body, tape: b.tape, vars: vars, e: e}
	if !r.write(x, 0) || len(e.buf) > limit {
		return nil, false
	}
	return bytes.Clone(e.buf), true
}
