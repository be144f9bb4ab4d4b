package jsonx

import (
	"bytes"
	"fmt"
	"math"
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
	d.lit = p.lit

	root := none
	if want := len(body)/8 + 16; cap(d.n) < want && want <= maxPooledNodes {
		d.n = make([]node, 0, want) // a fresh state: avoid growing it step by step
	}
	if len(bytes.TrimLeft(body, " \t\r\n")) > 0 {
		var berr *BodyError
		root, berr = d.parse(body, maxDepth)
		if berr != nil {
			return nil, berr
		}
	}
	if root >= 0 {
		switch {
		case p.deny != nil:
			d.deny(root, p.deny)
		case p.allow != nil:
			if !d.allow(root, p.allow) {
				root = d.add(kScalar, nullSpan, inLit)
			}
		}
	}
	for i := range p.ops {
		root = d.run(root, &p.ops[i], vars)
	}
	if root < 0 {
		return nil, nil
	}
	if want := len(body) + len(body)/4 + 64; cap(d.out) < want {
		d.out = make([]byte, 0, want)
	}
	d.out = d.write(d.out[:0], root, limits.MaxBytes)
	if limits.MaxBytes > 0 && len(d.out) > limits.MaxBytes {
		return nil, fmt.Errorf("%w: output over the limit of %d bytes", ErrTooLarge, limits.MaxBytes)
	}
	return bytes.Clone(d.out), nil
}

func (d *doc) release() {
	d.src, d.lit = nil, nil // drop references to the body and the program
	if cap(d.n) > maxPooledNodes || cap(d.out) > 1<<20 || cap(d.aux) > 1<<20 {
		return
	}
	d.n = d.n[:0]
	d.aux = d.aux[:0]
	docPool.Put(d)
}

// deny removes the members the trie marks, in every element of arrays that
// it descends into with "[]".
func (d *doc) deny(c int32, t *trie) {
	switch d.n[c].kind {
	case kObject:
		if !t.hasKeys() {
			return
		}
		prev := none
		for m := d.n[c].first; m >= 0; {
			next := d.n[m].next
			if ct := t.child(d.keyOf(m)); ct != nil {
				if ct.term {
					d.unlink(c, prev, m)
					m = next
					continue
				}
				d.deny(m, ct)
			}
			prev = m
			m = next
		}
	case kArray:
		if t.arr == nil {
			return
		}
		for e := d.n[c].first; e >= 0; e = d.n[e].next {
			d.deny(e, t.arr)
		}
	}
}

// allow keeps only what the trie reaches. It reports whether c itself is
// kept: a value where a path ends is kept whole; an object or array a path
// goes through is kept with only the allowed parts (possibly empty); a value
// whose type does not fit the path (a scalar where it expects an object or
// array, an object for "[]", an array for a key) is dropped.
func (d *doc) allow(c int32, t *trie) bool {
	if t.term {
		return true
	}
	switch d.n[c].kind {
	case kObject:
		if !t.hasKeys() {
			return false
		}
		prev := none
		for m := d.n[c].first; m >= 0; {
			next := d.n[m].next
			if ct := t.child(d.keyOf(m)); ct != nil && d.allow(m, ct) {
				prev = m
			} else {
				d.unlink(c, prev, m)
			}
			m = next
		}
		return true
	case kArray:
		if t.arr == nil {
			return false
		}
		prev := none
		for e := d.n[c].first; e >= 0; {
			next := d.n[e].next
			if d.allow(e, t.arr) {
				prev = e
			} else {
				d.unlink(c, prev, e)
			}
			e = next
		}
		return true
	}
	return false
}

// lookup returns the last member of object c with the key (the one
// encoding/json and JavaScript would see), or none.
func (d *doc) lookup(c int32, key string) int32 {
	found := none
	for m := d.n[c].first; m >= 0; m = d.n[m].next {
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
	for m := d.n[c].first; m >= 0; {
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
	for m := d.n[c].first; m >= 0; {
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
}

// run applies one op to the document rooted at root and returns the new
// root (none: absent document).
func (d *doc) run(root int32, o *op, vars Vars) int32 {
	var val opValue
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
		if o.varName != "" {
			if vars == nil {
				return root
			}
			s, ok := vars.Lookup(o.varName)
			if !ok {
				return root
			}
			if len(d.aux)+len(s)*6+2 > math.MaxInt32 {
				return root // cannot be represented; unreachable in practice
			}
			start := len(d.aux)
			d.aux = appendQuoted(d.aux, s)
			val = opValue{raw: span{int32(start), int32(len(d.aux))}, in: inAux}
		} else {
			val = opValue{raw: o.vspan, in: inLit}
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
	v, err := d.parseLit(val.raw) // validated by Compile
	if err != nil {
		return d.add(kScalar, nullSpan, inLit) // unreachable
	}
	return v
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
	for e := d.n[c].first; e >= 0; e = d.n[e].next {
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
		for m := d.n[p].first; m >= 0; {
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

// write appends the compact serialisation of node c. It stops early once
// the output is over max (> 0); the caller checks the length.
func (d *doc) write(buf []byte, c int32, max int) []byte {
	n := &d.n[c]
	switch n.kind {
	case kObject:
		buf = append(buf, '{')
		for m := n.first; m >= 0; m = d.n[m].next {
			if m != n.first {
				buf = append(buf, ',')
			}
			buf = append(buf, d.keyRaw(m)...)
			buf = append(buf, ':')
			buf = d.write(buf, m, max)
			if max > 0 && len(buf) > max {
				return buf
			}
		}
		return append(buf, '}')
	case kArray:
		buf = append(buf, '[')
		for e := n.first; e >= 0; e = d.n[e].next {
			if e != n.first {
				buf = append(buf, ',')
			}
			buf = d.write(buf, e, max)
			if max > 0 && len(buf) > max {
				return buf
			}
		}
		return append(buf, ']')
	}
	return append(buf, d.buf(n.rawIn)[n.raw.off:n.raw.end]...)
}
