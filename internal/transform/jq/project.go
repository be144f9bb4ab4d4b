package jq

import (
	"github.com/itchyny/gojq"
)

// Projection: most transforms read a few fields of a large body, and
// decoding the rest (a map per object, a string per value) is most of a
// run's cost. Compile works out which parts of the body an expression
// can observe; Run decodes those and only validates the rest.
//
// The analysis is sound by construction rather than clever: it knows a
// few constructs (paths .a, .["a"], .[]; pipes; object, array and string
// construction; comparisons and arithmetic; if, try, //, select, map)
// and gives up — decoding the whole body, as before — on anything else:
// a function or variable definition, reduce, foreach, label, .., a
// numeric index or slice, an assignment. A value that reaches anything
// but a path step (a builtin's input, an operand, the output) is needed
// whole. What is left out is never observable: a member is dropped only
// from an object the expression does nothing with but look names up,
// and a value whose type does not fit the step (a name looked up in an
// array, where gojq's error message quotes the array) is decoded whole.
//
// TestProjectionSameResults and FuzzProjection compare projected runs
// with whole-body runs, error messages included.

// need says which parts of a value an expression can observe: all of
// it, or some members by name (keys) and every element or member
// through .[] (each).
type need struct {
	all  bool
	keys map[string]*need
	each *need
}

// allNeed is a finished need for a whole value.
var allNeed = &need{all: true}

// projection returns what of the body q can observe, or nil for all of
// it.
func projection(q *gojq.Query) *need {
	root := &need{}
	a := analysis{ok: true}
	a.materialize(a.query(q, []*need{root}))
	if !a.ok {
		return nil
	}
	if n := finish(root); !n.all {
		return n
	}
	return nil
}

// analysis follows the values of an expression: an expression applied
// to values at some positions of the body (need nodes) yields values at
// other positions, or fresh values, which are not tracked.
type analysis struct {
	ok bool // false once an unknown construct was met
}

func (a *analysis) fail() []*need {
	a.ok = false
	return nil
}

// materialize marks values as needed whole.
func (a *analysis) materialize(ns []*need) {
	for _, n := range ns {
		n.all = true
	}
}

func (a *analysis) query(q *gojq.Query, in []*need) []*need {
	if q == nil || !a.ok {
		return nil
	}
	if len(q.FuncDefs) > 0 || len(q.Imports) > 0 || q.Meta != nil || len(q.Patterns) > 0 {
		return a.fail()
	}
	if q.Term != nil {
		return a.term(q.Term, in)
	}
	switch q.Op {
	case gojq.OpPipe:
		return a.query(q.Right, a.query(q.Left, in))
	case gojq.OpComma, gojq.OpAlt:
		// a // b yields values of a or b, testing a's for truth (a
		// projected object is still an object, so still true).
		return append(a.query(q.Left, in), a.query(q.Right, in)...)
	case gojq.OpAnd, gojq.OpOr, gojq.OpEq, gojq.OpNe, gojq.OpGt, gojq.OpLt, gojq.OpGe, gojq.OpLe,
		gojq.OpAdd, gojq.OpSub, gojq.OpMul, gojq.OpDiv, gojq.OpMod:
		a.materialize(a.query(q.Left, in))
		a.materialize(a.query(q.Right, in))
		return nil
	default: // assignments and updates
		return a.fail()
	}
}

func (a *analysis) term(t *gojq.Term, in []*need) []*need {
	out := a.termBase(t, in)
	for _, s := range t.SuffixList {
		switch {
		case s.Optional: // errors dropped, values unchanged
		case s.Iter:
			out = each(out)
		case s.Index != nil:
			out = a.index(s.Index, out)
		default:
			return a.fail()
		}
	}
	return out
}

func (a *analysis) termBase(t *gojq.Term, in []*need) []*need {
	switch t.Type {
	case gojq.TermTypeIdentity:
		return in
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse, gojq.TermTypeNumber:
		return nil
	case gojq.TermTypeString:
		a.str(t.Str, in)
		return nil
	case gojq.TermTypeFormat:
		if t.Str == nil {
			a.materialize(in) // @base64 formats its input
		}
		a.str(t.Str, in)
		return nil
	case gojq.TermTypeIndex:
		return a.index(t.Index, in)
	case gojq.TermTypeFunc:
		return a.call(t.Func, in)
	case gojq.TermTypeObject:
		a.object(t.Object, in)
		return nil
	case gojq.TermTypeArray:
		if t.Array.Query != nil {
			a.materialize(a.query(t.Array.Query, in))
		}
		return nil
	case gojq.TermTypeUnary:
		a.materialize(a.term(t.Unary.Term, in))
		return nil
	case gojq.TermTypeIf:
		return a.cond(t.If, in)
	case gojq.TermTypeTry:
		// The catch body gets an error message, and the messages of path
		// steps quote only values decoded whole (see need).
		return append(a.query(t.Try.Body, in), a.query(t.Try.Catch, nil)...)
	case gojq.TermTypeQuery:
		return a.query(t.Query, in)
	default: // .., reduce, foreach, label, break
		return a.fail()
	}
}

// str follows the interpolations of a string literal, if any.
func (a *analysis) str(s *gojq.String, in []*need) {
	if s == nil {
		return
	}
	for _, q := range s.Queries {
		a.materialize(a.query(q, in))
	}
}

// index follows .name, ."name" and .["name"]; any other index or slice
// gives up.
func (a *analysis) index(ix *gojq.Index, in []*need) []*need {
	key, ok := indexKey(ix)
	if !ok {
		return a.fail()
	}
	out := make([]*need, 0, len(in))
	for _, n := range in {
		out = append(out, n.key(key))
	}
	return out
}

func indexKey(ix *gojq.Index) (string, bool) {
	switch {
	case ix.Name != "":
		return ix.Name, true
	case ix.Str != nil:
		return ix.Str.Str, ix.Str.Queries == nil
	case ix.IsSlice || ix.End != nil || ix.Start == nil:
		return "", false
	}
	if t := ix.Start.Term; t != nil && t.Type == gojq.TermTypeString && len(t.SuffixList) == 0 &&
		t.Str.Queries == nil && ix.Start.Op == 0 && len(ix.Start.FuncDefs) == 0 {
		return t.Str.Str, true
	}
	return "", false
}

func each(in []*need) []*need {
	out := make([]*need, 0, len(in))
	for _, n := range in {
		if n.each == nil {
			n.each = &need{}
		}
		out = append(out, n.each)
	}
	return out
}

func (n *need) key(k string) *need {
	if n.keys == nil {
		n.keys = map[string]*need{}
	}
	c := n.keys[k]
	if c == nil {
		c = &need{}
		n.keys[k] = c
	}
	return c
}

// object follows {a, "b", $c, d: q, "e\(q)": q, (q): q}; the values
// built are fresh, and what they hold is needed whole.
func (a *analysis) object(o *gojq.Object, in []*need) {
	for _, kv := range o.KeyVals {
		switch {
		case kv.Key != "" && kv.Key[0] == '$': // {$x} is {x: $x}
		case kv.Key != "":
			if kv.Val == nil { // {a} is {a: .a}
				a.materialize(a.index(&gojq.Index{Name: kv.Key}, in))
			}
		case kv.KeyString != nil:
			if kv.Val == nil && kv.KeyString.Queries != nil {
				a.fail() // {"\(q)"}: a computed lookup
				return
			}
			if kv.Val == nil {
				a.materialize(a.index(&gojq.Index{Str: kv.KeyString}, in))
			}
			a.str(kv.KeyString, in)
		case kv.KeyQuery != nil:
			a.materialize(a.query(kv.KeyQuery, in))
		default:
			a.fail()
			return
		}
		a.materialize(a.query(kv.Val, in))
	}
}

func (a *analysis) cond(c *gojq.If, in []*need) []*need {
	a.materialize(a.query(c.Cond, in))
	out := a.query(c.Then, in)
	for _, e := range c.Elif {
		a.materialize(a.query(e.Cond, in))
		out = append(out, a.query(e.Then, in)...)
	}
	if c.Else == nil {
		return append(out, in...) // if c then a end yields . when c is false
	}
	return append(out, a.query(c.Else, in)...)
}

// call follows a builtin (the expression defines no functions, or the
// analysis gave up already) or a variable.
func (a *analysis) call(f *gojq.Func, in []*need) []*need {
	switch {
	case f.Name[0] == '$': // a variable of Run: not from the body
		return nil
	case f.Name == "empty" && len(f.Args) == 0:
		return nil
	case f.Name == "select" && len(f.Args) == 1: // if f then . else empty end
		a.materialize(a.query(f.Args[0], in))
		return in
	case f.Name == "map" && len(f.Args) == 1: // [.[] | f]
		a.materialize(a.query(f.Args[0], each(in)))
		return nil
	}
	// Any other builtin sees its input whole; its arguments run on that
	// input, its parts or fresh values, so they need nothing more.
	a.materialize(in)
	return nil
}

// finish simplifies a need tree once the analysis is done: a value
// needed for nothing in particular is needed whole (only validating it
// would be enough, but it is rare), and under an object's .[] every
// member needs what .[] needs besides what its name needs.
func finish(n *need) *need {
	if n.all || n.keys == nil && n.each == nil {
		return allNeed
	}
	f := &need{}
	if n.each != nil {
		f.each = finish(n.each)
	}
	if n.keys != nil {
		f.keys = make(map[string]*need, len(n.keys))
		for k, c := range n.keys {
			f.keys[k] = merge(finish(c), f.each)
		}
	}
	return f
}

// merge returns the union of two finished needs.
func merge(x, y *need) *need {
	switch {
	case x == nil:
		return y
	case y == nil:
		return x
	case x.all || y.all:
		return allNeed
	}
	m := &need{each: merge(x.each, y.each)}
	if x.keys != nil || y.keys != nil {
		m.keys = map[string]*need{}
		for k := range x.keys {
			m.keys[k] = merge(x.member(k), y.member(k))
		}
		for k := range y.keys {
			m.keys[k] = merge(x.member(k), y.member(k))
		}
	}
	return m
}

// member returns what a finished need asks of the member named k, nil
// for nothing (the member may be left out).
func (n *need) member(k string) *need {
	if c, ok := n.keys[k]; ok {
		return c
	}
	return n.each
}
