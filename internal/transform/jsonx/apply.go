package jsonx

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

var docPool = sync.Pool{New: func() any { return new(doc) }}

// Pooled state bigger than this is dropped rather than kept for reuse.
const maxPooledNodes = 1 << 16

// Apply runs the program on body and returns the new body: compact JSON,
// object members in input order (members created by ops are appended).
// body is not modified and the result never aliases it. An empty or
// all-whitespace body is an absent document: filters and rename, move,
// delete and extract leave it absent (the result is empty); set and wrap
// first turn it into {}.
//
// Errors: a *BodyError for input that is not JSON (or is nested deeper than
// limits.MaxDepth: it then wraps ErrTooDeep); an error wrapping ErrTooLarge
// when the input or the output is over limits.MaxBytes. Apply never fails
// because of the document's shape: a path that is missing or runs into a
// value of another type is a no-op.
func (p *Program) Apply(body []byte, vars Vars, limits Limits) ([]byte, error) {
	return p.AppendApply(nil, body, vars, limits)
}

// AppendApply is Apply that appends the result to dst and returns the
// extended slice (nil, as Apply, for an absent document), so that a caller
// with a buffer to reuse allocates nothing. dst must not overlap body.
func (p *Program) AppendApply(dst, body []byte, vars Vars, limits Limits) ([]byte, error) {
	if limits.MaxBytes > 0 && len(body) > limits.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), limits.MaxBytes)
	}
	if len(body) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(body))
	}
	maxDepth := limits.MaxDepth
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if p == nil {
		p = identity
	}
	d := docPool.Get().(*doc)
	defer d.release()
	out, err := d.apply(p, body, vars, maxDepth, limits.MaxBytes)
	if out == nil || err != nil {
		return nil, err
	}
	if limits.MaxBytes > 0 && len(out) > limits.MaxBytes {
		return nil, fmt.Errorf("%w: output over the limit of %d bytes", ErrTooLarge, limits.MaxBytes)
	}
	if dst == nil { // Apply: a slice of its own, never nil for a present document
		dst = make([]byte, 0, len(out))
	}
	return append(dst, out...), nil
}

// apply runs p on body and returns the result, in d's buffers; nil: an
// absent document. The filter and the ops are made as the body is read
// (if the ops have a plan and the body lets it be followed); otherwise the
// ops run on the tree of the filtered body.
func (d *doc) apply(p *Program, body []byte, vars Vars, maxDepth, maxBytes int) ([]byte, error) {
	d.lit, d.prog = p.lit, p
	d.vals = slices.Grow(d.vals[:0], len(p.ops))[:len(p.ops)]
	clear(d.vals)
	var ps *planState
	if p.plan != nil {
		ps = d.planState(p.plan, vars)
	}
	present, berr := d.filter(body, p, maxDepth, ps)
	switch {
	case berr != nil:
		return nil, berr
	case !present && len(p.ops) == 0:
		return nil, nil
	case len(p.ops) == 0, present && ps != nil && !ps.bail:
		return d.src, nil
	}
	if present && ps != nil {
		d.filter(body, p, maxDepth, nil) // again, for the tree
	}
	root := none
	if present {
		root = d.root()
	}
	for i := range p.ops {
		root = d.run(root, &p.ops[i], d.value(i, vars))
	}
	if root < 0 {
		return nil, nil
	}
	return d.serialise(root, maxBytes), nil
}

// filter reads the body into d.src, compact and filtered by the program's
// allow or deny list; with ops, it records the tape their tree needs.
// present is false for an empty or all-white-space body.
func (d *doc) filter(body []byte, p *Program, maxDepth int, ps *planState) (present bool, err *BodyError) {
	if want := len(body) + len("null"); cap(d.flt) < want {
		d.flt = make([]byte, 0, want) // without a plan, the output is never longer
	}
	sc := scanner{s: body, maxDepth: maxDepth, out: d.flt[:0], rec: len(p.ops) > 0 && ps == nil,
		tape: d.tape[:0], kbuf: d.kbuf, frames: d.frames, ff: d.ff, ps: ps}
	t := p.deny
	if p.allow != nil {
		t, sc.allow = p.allow, true
	}
	present, ok := sc.document(t, true)
	d.flt, d.tape, d.src, d.kbuf, d.frames, d.ff = sc.out, sc.tape, sc.out, sc.kbuf, sc.frames, sc.ff
	if !ok {
		return false, sc.err
	}
	return present, nil
}

// serialise writes the tree rooted at root into d.out.
func (d *doc) serialise(root int32, max int) []byte {
	if want := len(d.src) + len(d.src)/4 + 64; cap(d.out) < want {
		d.out = make([]byte, 0, want)
	}
	w := writer{out: d.out[:0], src: d.src}
	d.write(&w, root, max)
	w.flush()
	d.out = w.out
	return d.out
}

// value returns the value set op i writes: a variable is looked up once
// per Apply, when first needed.
func (d *doc) value(i int, vars Vars) opValue {
	if v := d.vals[i]; v.looked {
		return v
	}
	o := &d.prog.ops[i]
	v := opValue{looked: true}
	switch {
	case o.kind != opSet:
	case o.varName == "":
		v = opValue{raw: o.vspan, in: inLit, ok: true, looked: true}
	case vars != nil:
		if s, ok := vars.Lookup(o.varName); ok && len(d.aux)+len(s)*6+2 <= math.MaxInt32 {
			start := len(d.aux)
			d.aux = AppendQuoted(d.aux, s)
			v = opValue{raw: span{int32(start), int32(len(d.aux))}, in: inAux, ok: true, looked: true}
		}
	}
	d.vals[i] = v
	return v
}

// planState starts following pl.
func (d *doc) planState(pl *plan, vars Vars) *planState {
	if cap(d.slots) < pl.nslot {
		d.slots = make([]slot, pl.nslot)
	}
	d.ps = planState{pl: pl, d: d, vars: vars, capt: d.capt[:0], slots: d.slots[:pl.nslot]}
	return &d.ps
}

func (d *doc) release() {
	d.src, d.lit, d.prog = nil, nil, nil // drop references to the body and the program
	d.capt = d.ps.capt
	d.ps = planState{}
	if cap(d.n) > maxPooledNodes || cap(d.out) > 1<<20 || cap(d.aux) > 1<<20 || cap(d.flt) > 1<<20 {
		return
	}
	d.n = d.n[:0]
	d.aux = d.aux[:0]
	docPool.Put(d)
}

// lookup returns the last member of object c with the key (the one
// encoding/json and JavaScript would see), or none.
func (d *doc) lookup(c int32, key string) int32 {
	found := none
	for m := d.firstChild(c); m >= 0; m = d.n[m].next {
		if d.keyIs(m, key) {
			found = m
		}
	}
	return found
}

// resolve follows key steps from c; none if a step is missing or runs into
// a non-object. The result is an object (or c itself for no steps).
func (d *doc) resolve(c int32, steps []step) int32 {
	for i := range steps {
		if d.n[c].kind != kObject {
			return none
		}
		if c = d.lookup(c, steps[i].key); c < 0 {
			return none
		}
	}
	if d.n[c].kind != kObject {
		return none
	}
	return c
}

// resolveCreate is resolve creating missing objects. It returns none, having
// created nothing, when an existing value on the way is not an object.
func (d *doc) resolveCreate(c int32, steps []step) int32 {
	if d.n[c].kind != kObject {
		return none
	}
	for i := range steps {
		m := d.lookup(c, steps[i].key)
		if m < 0 {
			m = d.add(kObject, span{}, inSrc)
			d.setKey(m, &steps[i])
			d.appendChild(c, m)
		} else if d.n[m].kind != kObject {
			return none
		}
		c = m
	}
	return c
}

// removeKey removes every member of object c with the key and returns the
// last one removed (none if there was none).
func (d *doc) removeKey(c int32, key string) int32 {
	removed, prev := none, none
	for m := d.firstChild(c); m >= 0; {
		next := d.n[m].next
		if d.keyIs(m, key) {
			d.unlink(c, prev, m)
			removed = m
		} else {
			prev = m
		}
		m = next
	}
	return removed
}

// put sets key in object c to the value node v: in place of the last
// member with that key (earlier duplicates are removed) or appended.
func (d *doc) put(c int32, key *step, v int32) {
	rep := d.lookup(c, key.key)
	if rep < 0 {
		d.setKey(v, key)
		d.appendChild(c, v)
		return
	}
	prev := none
	for m := d.firstChild(c); m >= 0; {
		next := d.n[m].next
		if m == rep {
			d.n[v].key, d.n[v].keyIn, d.n[v].keyEsc = d.n[m].key, d.n[m].keyIn, d.n[m].keyEsc
			d.n[v].next = next
			if prev < 0 {
				d.n[c].first = v
			} else {
				d.n[prev].next = v
			}
			if d.n[c].last == m {
				d.n[c].last = v
			}
			return
		}
		if d.keyIs(m, key.key) {
			d.unlink(c, prev, m)
		} else {
			prev = m
		}
		m = next
	}
}

// opValue is what a set op writes, resolved once per Apply.
type opValue struct {
	raw span // in lit: a constant (a container is parsed per use); in aux: a variable
	in  uint8
	ok  bool // false: a variable that is missing, so the op does nothing
	// looked: the value is known (see doc.value).
	looked bool
}

// run applies one op to the document rooted at root and returns the new
// root (none: absent document).
func (d *doc) run(root int32, o *op, val opValue) int32 {
	switch o.kind {
	case opWrap:
		if root < 0 {
			root = d.add(kObject, span{}, inSrc)
		}
		w := d.add(kObject, span{}, inSrc)
		d.setKey(root, &o.toKey)
		d.appendChild(w, root)
		return w
	case opExtract:
		if root < 0 {
			return root
		}
		parent := d.resolve(root, o.path[:len(o.path)-1])
		if parent >= 0 {
			if v := d.lookup(parent, o.path[len(o.path)-1].key); v >= 0 {
				return v // its key and next are ignored at the root
			}
		}
		return d.add(kScalar, nullSpan, inLit)
	case opSet:
		if !val.ok {
			return root
		}
		if o.root {
			return d.valueNode(o, val)
		}
		if root < 0 {
			root = d.add(kObject, span{}, inSrc)
		}
	}
	if root < 0 {
		return root
	}
	d.fanout(root, o.prefix, o, val)
	return root
}

func (d *doc) valueNode(o *op, val opValue) int32 {
	if val.in == inAux || o.scalar {
		return d.add(kScalar, val.raw, val.in)
	}
	return d.addRaw(val.raw, val.in, -1) // a fresh copy each time: ops may change it
}

// fanout walks the op's fan-out prefix, running the op in each context.
func (d *doc) fanout(c int32, prefix []step, o *op, val opValue) {
	for len(prefix) > 0 && !prefix[0].arr {
		if d.n[c].kind != kObject {
			return
		}
		if c = d.lookup(c, prefix[0].key); c < 0 {
			return
		}
		prefix = prefix[1:]
	}
	if len(prefix) == 0 {
		d.leaf(c, o, val)
		return
	}
	if d.n[c].kind != kArray {
		return
	}
	for e := d.firstChild(c); e >= 0; e = d.n[e].next {
		d.fanout(e, prefix[1:], o, val)
	}
}

// leaf runs a path op inside one context. Ops never change the context's
// own links, only its descendants, so fan-out iteration stays valid.
func (d *doc) leaf(c int32, o *op, val opValue) {
	switch o.kind {
	case opDelete:
		if p := d.resolve(c, o.parent); p >= 0 {
			d.removeKey(p, o.key.key)
		}
	case opRename:
		p := d.resolve(c, o.parent)
		if p < 0 || d.lookup(p, o.key.key) < 0 {
			return
		}
		prev := none
		for m := d.firstChild(p); m >= 0; {
			next := d.n[m].next
			switch {
			case d.keyIs(m, o.toKey.key): // overwritten by the renamed member
				d.unlink(p, prev, m)
				m = next
				continue
			case d.keyIs(m, o.key.key):
				d.setKey(m, &o.toKey)
			}
			prev = m
			m = next
		}
	case opMove:
		from := d.resolve(c, o.parent)
		if from < 0 || d.lookup(from, o.key.key) < 0 {
			return
		}
		to := d.resolveCreate(c, o.toParent)
		if to < 0 {
			return // the destination runs into a non-object: leave the source
		}
		v := d.removeKey(from, o.key.key)
		d.put(to, &o.toKey, v)
	case opSet:
		p := d.resolveCreate(c, o.parent)
		if p < 0 {
			return
		}
		d.put(p, &o.key, d.valueNode(o, val))
	}
}
