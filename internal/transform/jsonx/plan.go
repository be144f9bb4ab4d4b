package jsonx

// A plan runs a program's ops as edits that the scanner makes while it
// reads and filters the body, in the same pass and without the tree:
// members renamed, dropped (delete, and the source of a move) or appended
// at the end of their object (set, and the destination of a move, with
// the objects on the way created), and the whole wrapped. Ops are defined
// one after the other on the tree, so a plan is made only for ops that do
// not see each other's changes (see independent); and it holds only in the
// common case, which the scanner checks as it goes (planedit.go) — when a
// body has a duplicate key an op uses, a key an op would overwrite, a
// destination path through a value that is not an object, or a move whose
// destination comes before its source, the plan is given up and the tree,
// which defines the semantics, does the work (FuzzPlan checks that they
// agree).
type plan struct {
	root   *pnode
	wraps  []*step // trailing wrap ops, innermost first
	nslot  int     // moves: one slot each for the value in transit
	slotOf []int   // by op: its slot, or -1
}

// pnode is what the plan does in the values at one path of the body.
type pnode struct {
	bits    uint64    // keyBit of the edges' keys
	edges   []pedge   // members of an object that ops act on
	arr     *pnode    // the elements of an array
	appends []pappend // members added at the end of an object, in op order
	slots   []int     // moves whose fan-out context this is: reset per value
}

type pedge struct {
	key    string
	drop   bool  // delete, or move away
	slot   int   // move away: the slot that takes the value; -1: none
	rename *step // the new key
	bail   bool  // a key an op would overwrite: present, leave it to the tree
	strict bool  // a destination path goes through: must be an object
	next   *pnode
}

// pappend is a member added at the end of an object: a set (op's value)
// or the destination of a move (slot's value); or, with sub, an object
// created on the way to such members if it is not there (edge: its key).
type pappend struct {
	op   int // index in Program.ops
	key  *step
	sub  *pnode
	edge int
}

func (pn *pnode) edge(key string) int {
	for i := range pn.edges {
		if pn.edges[i].key == key {
			return i
		}
	}
	pn.edges = append(pn.edges, pedge{key: key, slot: -1})
	return len(pn.edges) - 1
}

// walk returns the node at steps from pn, making the nodes on the way.
func (pn *pnode) walk(steps []step) *pnode {
	for i := range steps {
		if steps[i].arr {
			if pn.arr == nil {
				pn.arr = &pnode{}
			}
			pn = pn.arr
			continue
		}
		e := &pn.edges[pn.edge(steps[i].key)]
		if e.next == nil {
			e.next = &pnode{}
		}
		pn = e.next
	}
	return pn
}

// create walks a destination path (keys) from pn: each object on the way
// must be an object, and is created if missing, as op i's set or move
// does. It returns the node of the last one.
func (pn *pnode) create(steps []step, i int) *pnode {
	for k := range steps {
		e := pn.edge(steps[k].key)
		pn.edges[e].strict = true
		sub := pn.walk(steps[k : k+1])
		pn.appends = append(pn.appends, pappend{op: i, key: &steps[k], sub: sub, edge: e})
		pn = sub
	}
	return pn
}

// index sets the nodes' key filters, and reports whether every node has at
// most 64 edges (the bits of fastFrame.seen).
func (pn *pnode) index() bool {
	if pn == nil {
		return true
	}
	if len(pn.edges) > 64 || !pn.arr.index() {
		return false
	}
	for i := range pn.edges {
		pn.bits |= keyBit(pn.edges[i].key)
		if !pn.edges[i].next.index() {
			return false
		}
	}
	return true
}

// makePlan returns the plan of ops, or nil if they need the tree.
func makePlan(ops []op) *plan {
	n := len(ops)
	for n > 0 && ops[n-1].kind == opWrap {
		n--
	}
	if n == 0 || !independent(ops[:n]) {
		return nil
	}
	pl := &plan{root: &pnode{}, slotOf: make([]int, len(ops))}
	for i := range ops[:n] {
		pl.slotOf[i] = -1
		if !pl.add(ops, i) {
			return nil
		}
	}
	if !pl.root.index() {
		return nil
	}
	for i := n; i < len(ops); i++ {
		pl.wraps = append(pl.wraps, &ops[i].toKey)
	}
	return pl
}

func (pl *plan) add(ops []op, i int) bool {
	o := &ops[i]
	ctx := pl.root.walk(o.prefix)
	switch o.kind {
	case opRename:
		pn := ctx.walk(o.parent)
		pn.edges[pn.edge(o.key.key)].rename = &o.toKey
		pn.edges[pn.edge(o.toKey.key)].bail = true
	case opDelete:
		pn := ctx.walk(o.parent)
		pn.edges[pn.edge(o.key.key)].drop = true
	case opSet:
		if o.root {
			return false
		}
		pn := ctx.create(o.parent, i)
		pn.edges[pn.edge(o.key.key)].bail = true
		pn.appends = append(pn.appends, pappend{op: i, key: &o.key})
	case opMove:
		from := ctx.walk(o.parent)
		e := &from.edges[from.edge(o.key.key)]
		e.drop, e.slot = true, pl.nslot
		ctx.slots = append(ctx.slots, pl.nslot)
		pl.slotOf[i] = pl.nslot
		pl.nslot++
		to := ctx.create(o.toParent, i)
		to.edges[to.edge(o.toKey.key)].bail = true
		to.appends = append(to.appends, pappend{op: i, key: &o.toKey})
	default: // extract, and wrap before other ops
		return false
	}
	return true
}

// footprint is the paths of the body an op uses: nav, the objects it goes
// through (or creates); mod, the members it removes, renames or writes;
// read, the member whose value it moves; src, those of its paths that are
// only on the source side (what a later delete may remove with no effect
// on this op's result).
type footprint struct {
	nav, mod, read, src [][]step
}

func join(a, b []step) []step { return append(append([]step(nil), a...), b...) }

func appendKey(a []step, k step) []step { return append(append([]step(nil), a...), k) }

func (o *op) footprint() footprint {
	var f footprint
	base := join(o.prefix, o.parent)
	switch o.kind {
	case opRename:
		f.nav = [][]step{base}
		f.mod = [][]step{appendKey(base, o.key), appendKey(base, o.toKey)}
		f.src = append(f.src, f.nav[0], f.mod[0], f.mod[1])
	case opDelete:
		f.nav = [][]step{base}
		f.mod = [][]step{appendKey(base, o.key)}
		f.src = append(f.src, f.nav[0], f.mod[0])
	case opSet:
		f.nav = [][]step{base}
		f.mod = [][]step{appendKey(base, o.key)}
	case opMove:
		to := join(o.prefix, o.toParent)
		from := appendKey(base, o.key)
		f.nav = [][]step{base, to}
		f.mod = [][]step{from, appendKey(to, o.toKey)}
		f.read = [][]step{from}
		f.src = [][]step{base, from}
	}
	return f
}

// covers reports whether path a is path b or one of its ancestors.
func covers(a, b []step) bool {
	return len(a) <= len(b) && stepsEqual(a, b[:len(a)])
}

func anyCovers(as, bs [][]step, strict bool) bool {
	for _, a := range as {
		for _, b := range bs {
			if covers(a, b) && !(strict && len(a) == len(b)) {
				return true
			}
		}
	}
	return false
}

// independent reports whether each op, run on the body as received, does
// what it does after the ops before it: no op changes a path another one
// uses, but that a later delete may remove what an earlier op only read or
// removed (a move's source: "move a.b to c, then delete a").
func independent(ops []op) bool {
	fs := make([]footprint, len(ops))
	for i := range ops {
		fs[i] = ops[i].footprint()
	}
	for j := range ops {
		for i := range j {
			fi, fj := &fs[i], &fs[j]
			uses := func(f *footprint) [][]step {
				return append(append(append([][]step(nil), f.nav...), f.mod...), f.read...)
			}
			if anyCovers(fi.mod, uses(fj), false) || // j sees i's change
				anyCovers(fj.read, fi.mod, true) { // j moves a value i changed
				return false
			}
			if !anyCovers(fj.mod, uses(fi), false) {
				continue
			}
			// j changes a path i uses: only a delete, of i's source side.
			if ops[j].kind != opDelete {
				return false
			}
			for _, p := range uses(fi) {
				if covers(fj.mod[0], p) && !contains(fi.src, p) {
					return false
				}
			}
		}
	}
	return true
}

func contains(ps [][]step, p []step) bool {
	for _, q := range ps {
		if len(q) == len(p) && stepsEqual(q, p) {
			return true
		}
	}
	return false
}
