package jsonx

// planState is a plan being followed by a scanner.
type planState struct {
	pl    *plan
	d     *doc // the program's literals, the variables' values
	vars  Vars
	root  *pnode // the plan, until the root container is read
	capt  []byte // values in transit
	slots []slot
	bail  bool // the plan cannot be followed: the tree must do the work
}

// slot is the value of a move in transit (in capt), in its fan-out context.
type slot struct {
	v     span
	state uint8
}

const (
	slotEmpty  uint8 = iota
	slotFull         // the source was read
	slotPassed       // the destination was written without it
)

// open starts the plan at the root value: the wraps open. A root that the
// filter drops is left to the tree.
func (ps *planState) open(p *scanner, keep bool) {
	ps.bail = ps.bail || !keep
	p.flush(p.i)
	for i := len(ps.pl.wraps) - 1; i >= 0; i-- {
		k := ps.pl.wraps[i].qspan
		p.out = append(p.out, '{')
		p.out = append(p.out, ps.d.lit[k.off:k.end]...)
		p.out = append(p.out, ':')
	}
	ps.root = ps.pl.root
	ps.reset(ps.root)
}

// close ends the plan: the wraps close.
func (ps *planState) close(p *scanner) {
	for range ps.pl.wraps {
		p.out = append(p.out, '}')
	}
}

// reset empties the slots of the moves whose fan-out context is pn.
func (ps *planState) reset(pn *pnode) {
	for _, k := range pn.slots {
		ps.slots[k] = slot{}
	}
}

// edge returns the plan's edge for the member of key k, whose value starts
// with c, if any; false if the plan cannot be followed (a duplicate key, a
// key an op would overwrite, a destination path through a non-object).
func (f *fastFrame) edge(k []byte, c byte) (*pedge, bool) {
	i := f.pn.find(k)
	if i < 0 {
		return nil, true
	}
	e := &f.pn.edges[i]
	if f.seen&(1<<i) != 0 || e.bail || e.strict && c != '{' {
		return nil, false
	}
	f.seen |= 1 << i
	return e, true
}

func (pn *pnode) find(key []byte) int {
	if pn.bits&keyBit(key) == 0 {
		return -1
	}
	for i := range pn.edges {
		if pn.edges[i].key == string(key) {
			return i
		}
	}
	return -1
}

// cutOut cuts out of the output the value of f's member just read, which
// is moved (into its slot) or dropped.
func (p *scanner) cutOut(f *fastFrame, i int) bool {
	p.flush(i)
	if f.slot >= 0 {
		s := &p.ps.slots[f.slot]
		if s.state == slotPassed {
			return false // its destination came first
		}
		start := len(p.ps.capt)
		p.ps.capt = append(p.ps.capt, p.out[f.cut:]...)
		*s = slot{v: span{int32(start), int32(len(p.ps.capt))}, state: slotFull}
	}
	p.out = p.out[:f.cut]
	f.cut = -1
	return true
}

// appends writes the members the plan adds at the end of an object whose
// members so far are e (and seen, the plan's edges among them).
func (ps *planState) appends(out *[]byte, pn *pnode, e *entry, seen uint64) {
	var created uint64 // edges of the objects created here
	for i := range pn.appends {
		a := &pn.appends[i]
		if !ps.ready(a.op) {
			continue
		}
		if a.sub != nil {
			if (seen|created)&(1<<a.edge) != 0 {
				continue // there, or created by an earlier op
			}
			created |= 1 << a.edge
		}
		if e.kept {
			*out = append(*out, ',')
		}
		e.kept = true
		*out = append(*out, ps.d.lit[a.key.qspan.off:a.key.qspan.end]...)
		*out = append(*out, ':')
		if a.sub != nil {
			*out = append(*out, '{')
			ps.appends(out, a.sub, &entry{}, 0)
			*out = append(*out, '}')
		} else {
			*out = append(*out, ps.value(a.op)...)
		}
	}
}

// ready reports whether op i has a value to write: a set's variable may
// be missing, a move's source. A move found without one is passed: its
// source must not come later.
func (ps *planState) ready(i int) bool {
	if k := ps.pl.slotOf[i]; k >= 0 {
		if ps.slots[k].state != slotFull {
			ps.slots[k].state = slotPassed
			return false
		}
		return true
	}
	return ps.d.value(i, ps.vars).ok
}

func (ps *planState) value(i int) []byte {
	if k := ps.pl.slotOf[i]; k >= 0 {
		v := ps.slots[k].v
		return ps.capt[v.off:v.end]
	}
	v := ps.d.vals[i]
	return ps.d.buf(v.in)[v.raw.off:v.raw.end]
}
