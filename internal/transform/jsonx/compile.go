package jsonx

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Spec declares a body transform: a filter (Allow or Deny, not both), then
// Ops in order. See the package documentation for the semantics.
type Spec struct {
	Allow []string // keep only these paths
	Deny  []string // remove these paths
	Ops   []Op     // applied in order, after the filter
}

// Op is one mapping step. Which fields an operation takes:
//
//	rename   Path, Key    the member at Path gets the new key Key (same parent, same position)
//	move     From, To     the value at From moves to To; objects on the way to To are created
//	wrap     Key          the whole document becomes {Key: document}
//	extract  Path         the document is replaced by the value at Path
//	set      Path, and Value or Var
//	                      Path (use "." for the whole document) is set to the
//	                      constant Value, or to the request variable Var as a
//	                      JSON string; objects on the way are created
//	delete   Path         the member at Path is removed
//
// A field an operation does not take must be empty: Compile rejects it, so a
// misspelt configuration fails loudly instead of doing nothing.
type Op struct {
	Kind                string
	From, To, Path, Key string
	Value               json.RawMessage
	Var                 string
}

// Vars resolves request variables for "set" ops, e.g. "consumer",
// "client_ip", "request_id", "path.id", "query.page", "header.X-Foo",
// "claim.email". A value is set as a JSON string.
type Vars interface {
	Lookup(name string) (string, bool)
}

// MapVars is a Vars backed by a map.
type MapVars map[string]string

// Lookup implements Vars.
func (m MapVars) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// Limits bound one Apply.
type Limits struct {
	// MaxBytes bounds the input and the output (≤ 0: no limit). Past it,
	// Apply returns an error wrapping ErrTooLarge.
	MaxBytes int
	// MaxDepth bounds the nesting of objects and arrays in the input
	// (≤ 0: 128). Past it, Apply returns a *BodyError wrapping ErrTooDeep.
	MaxDepth int
}

// DefaultMaxDepth is the nesting limit used when Limits.MaxDepth is 0.
const DefaultMaxDepth = 128

// Program is a compiled Spec. It is immutable and safe for concurrent use.
type Program struct {
	allow *trie
	deny  *trie
	ops   []op
	plan  *plan  // the ops without the tree, if they can be run so
	lit   []byte // "null", then the quoted keys and constants of ops
}

var nullSpan = span{0, 4}

// identity is what a nil *Program applies.
var identity = MustCompile(Spec{})

func (p *Program) addLit(b []byte) span {
	off := len(p.lit)
	p.lit = append(p.lit, b...)
	return span{int32(off), int32(len(p.lit))}
}

func (p *Program) intern(c *op) {
	for _, steps := range [][]step{c.prefix, c.parent, c.toParent, c.path} {
		for i := range steps {
			if !steps[i].arr && steps[i].qkey != nil {
				steps[i].qspan = p.addLit(steps[i].qkey)
			}
		}
	}
	if !c.key.arr && c.key.qkey != nil {
		c.key.qspan = p.addLit(c.key.qkey)
	}
	if !c.toKey.arr && c.toKey.qkey != nil {
		c.toKey.qspan = p.addLit(c.toKey.qkey)
	}
	if c.value != nil {
		c.vspan = p.addLit(c.value)
	}
}

type opKind uint8

const (
	opRename opKind = iota + 1
	opMove
	opWrap
	opExtract
	opSet
	opDelete
)

type op struct {
	kind opKind
	// prefix fans out: it ends in "[]" and the rest of the op runs inside
	// every element it reaches (nil: once, at the root).
	prefix []step
	parent []step // keys from the fan-out context to the target's parent
	key    step   // the target key (move: the From key)
	// move: the destination; rename, wrap: the new key.
	toParent []step
	toKey    step
	path     []step // extract
	value    []byte // set: compact constant
	vspan    span   // value in Program.lit
	scalar   bool   // set: value is a scalar (no need to parse it per use)
	varName  string // set
	root     bool   // set: at the root
}

// Compile validates s and compiles it. Errors name the list entry or op and
// the path at fault, and say why.
func Compile(s Spec) (*Program, error) {
	p := &Program{lit: []byte("null")}
	if len(s.Allow) > 0 && len(s.Deny) > 0 {
		return nil, errors.New("jsonx: Allow and Deny are exclusive: use one of them")
	}
	if len(s.Allow) > 0 {
		t, err := buildTrie("allow", s.Allow, false)
		if err != nil {
			return nil, err
		}
		p.allow = t
	}
	if len(s.Deny) > 0 {
		t, err := buildTrie("deny", s.Deny, true)
		if err != nil {
			return nil, err
		}
		p.deny = t
	}
	for i, o := range s.Ops {
		c, err := compileOp(o)
		if err != nil {
			return nil, fmt.Errorf("jsonx: ops[%d] (%s): %w", i, o.Kind, err)
		}
		p.intern(&c)
		p.ops = append(p.ops, c)
	}
	p.plan = makePlan(p.ops)
	return p, nil
}

// MustCompile is Compile that panics on error, for tests and fixed specs.
func MustCompile(s Spec) *Program {
	p, err := Compile(s)
	if err != nil {
		panic(err)
	}
	return p
}

type trie struct {
	bits uint64 // keyBit of its keys
	term bool   // the path ends here
	keys []trieEdge
	m    map[string]*trie // replaces keys when there are many
	arr  *trie
}

type trieEdge struct {
	key string
	t   *trie
}

func (t *trie) child(k []byte) *trie {
	if t.bits&keyBit(k) == 0 {
		return nil
	}
	if t.m != nil {
		return t.m[string(k)]
	}
	for i := range t.keys {
		if t.keys[i].key == string(k) {
			return t.keys[i].t
		}
	}
	return nil
}

func (t *trie) hasKeys() bool { return len(t.keys) > 0 }

func buildTrie(list string, paths []string, deny bool) (*trie, error) {
	root := &trie{}
	for i, ps := range paths {
		steps, err := parsePath(ps)
		if err != nil {
			return nil, fmt.Errorf("jsonx: %s[%d]: %w", list, i, err)
		}
		if deny {
			if len(steps) == 0 {
				return nil, fmt.Errorf("jsonx: deny[%d] %q: cannot deny the whole document", i, ps)
			}
			if steps[len(steps)-1].arr {
				return nil, fmt.Errorf("jsonx: deny[%d] %q: %v (to remove an array, deny its key)", i, ps, errNotKey)
			}
		}
		t := root
		for _, st := range steps {
			if st.arr {
				if t.arr == nil {
					t.arr = &trie{}
				}
				t = t.arr
				continue
			}
			var next *trie
			for _, e := range t.keys {
				if e.key == st.key {
					next = e.t
					break
				}
			}
			if next == nil {
				next = &trie{}
				t.keys = append(t.keys, trieEdge{st.key, next})
			}
			t = next
		}
		t.term = true
	}
	indexTrie(root)
	return root, nil
}

// keyBit is a key's bit in a 64-bit filter of a set of keys: most keys
// that are not in a small set are told from its keys by their length and
// first byte, without comparing them.
func keyBit[T string | []byte](k T) uint64 {
	h := len(k)
	if len(k) > 0 {
		h += 7 * int(k[0])
	}
	return 1 << (h & 63)
}

func indexTrie(t *trie) {
	for _, e := range t.keys {
		t.bits |= keyBit(e.key)
	}
	if len(t.keys) > 8 {
		t.m = make(map[string]*trie, len(t.keys))
		for _, e := range t.keys {
			t.m[e.key] = e.t
		}
	}
	for _, e := range t.keys {
		indexTrie(e.t)
	}
	if t.arr != nil {
		indexTrie(t.arr)
	}
}

var opFields = map[string]string{
	"rename":  "Path Key",
	"move":    "From To",
	"wrap":    "Key",
	"extract": "Path",
	"set":     "Path Value Var",
	"delete":  "Path",
}

func compileOp(o Op) (op, error) {
	takes, ok := opFields[o.Kind]
	if !ok {
		return op{}, fmt.Errorf("unknown Kind %q (want rename, move, wrap, extract, set or delete)", o.Kind)
	}
	set := map[string]bool{
		"From": o.From != "", "To": o.To != "", "Path": o.Path != "", "Key": o.Key != "",
		"Value": len(o.Value) > 0, "Var": o.Var != "",
	}
	for _, f := range []string{"From", "To", "Path", "Key", "Value", "Var"} {
		if set[f] && !strings.Contains(" "+takes+" ", " "+f+" ") {
			return op{}, fmt.Errorf("%s is not used by %s (it takes %s)", f, o.Kind, strings.ReplaceAll(takes, " ", ", "))
		}
	}
	need := func(f, v string) error {
		if v == "" {
			return fmt.Errorf("%s is required", f)
		}
		return nil
	}
	path := func(f, v string) ([]step, error) {
		if err := need(f, v); err != nil {
			return nil, err
		}
		steps, err := parsePath(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		return steps, nil
	}
	literalKey := func(k string) (step, error) {
		if k == "" {
			return step{}, errors.New("Key is required")
		}
		if !utf8.ValidString(k) {
			return step{}, errors.New("Key is not valid UTF-8")
		}
		return keyStep(k), nil
	}
	// target splits a path that must end in a key into fan-out prefix,
	// parent keys and the key.
	target := func(f, v string, steps []step) (prefix, parent []step, key step, err error) {
		if len(steps) == 0 {
			return nil, nil, step{}, fmt.Errorf("%s %q: cannot be the whole document", f, v)
		}
		if steps[len(steps)-1].arr {
			return nil, nil, step{}, fmt.Errorf("%s %q: %w", f, v, errNotKey)
		}
		prefix, rel := splitFanout(steps)
		return prefix, rel[:len(rel)-1], rel[len(rel)-1], nil
	}

	c := op{}
	switch o.Kind {
	case "delete", "rename":
		if o.Kind == "delete" {
			c.kind = opDelete
		} else {
			c.kind = opRename
		}
		steps, err := path("Path", o.Path)
		if err != nil {
			return op{}, err
		}
		if c.prefix, c.parent, c.key, err = target("Path", o.Path, steps); err != nil {
			return op{}, err
		}
		if c.kind == opRename {
			if c.toKey, err = literalKey(o.Key); err != nil {
				return op{}, err
			}
			if c.toKey.key == c.key.key {
				return op{}, fmt.Errorf("Path %q already has the key %q", o.Path, o.Key)
			}
		}
	case "move":
		c.kind = opMove
		from, err := path("From", o.From)
		if err != nil {
			return op{}, err
		}
		to, err := path("To", o.To)
		if err != nil {
			return op{}, err
		}
		var toPrefix []step
		if c.prefix, c.parent, c.key, err = target("From", o.From, from); err != nil {
			return op{}, err
		}
		if toPrefix, c.toParent, c.toKey, err = target("To", o.To, to); err != nil {
			return op{}, err
		}
		if !stepsEqual(c.prefix, toPrefix) {
			return op{}, fmt.Errorf("From %q and To %q must have the same prefix up to their last \"[]\" (a move happens inside each array element, or outside arrays)", o.From, o.To)
		}
		fromRel := from[len(c.prefix):]
		if len(fromRel) <= len(to)-len(c.prefix) && stepsEqual(fromRel, to[len(c.prefix):len(c.prefix)+len(fromRel)]) {
			if len(from) == len(to) {
				return op{}, fmt.Errorf("From and To are the same path %q", o.From)
			}
			return op{}, fmt.Errorf("To %q is inside From %q", o.To, o.From)
		}
	case "wrap":
		c.kind = opWrap
		var err error
		if c.toKey, err = literalKey(o.Key); err != nil {
			return op{}, err
		}
	case "extract":
		c.kind = opExtract
		steps, err := path("Path", o.Path)
		if err != nil {
			return op{}, err
		}
		if len(steps) == 0 {
			return op{}, fmt.Errorf("Path %q: extracting the whole document does nothing", o.Path)
		}
		if hasArr(steps) {
			return op{}, fmt.Errorf("Path %q: extract takes one value; \"[]\" is not allowed", o.Path)
		}
		c.path = steps
	case "set":
		c.kind = opSet
		if o.Path == "" {
			return op{}, errors.New(`Path is required (use "." for the whole document)`)
		}
		steps, err := path("Path", o.Path)
		if err != nil {
			return op{}, err
		}
		if len(steps) == 0 {
			c.root = true
		} else if c.prefix, c.parent, c.key, err = target("Path", o.Path, steps); err != nil {
			return op{}, err
		}
		switch {
		case len(o.Value) > 0 && o.Var != "":
			return op{}, errors.New("Value and Var are exclusive")
		case len(o.Value) > 0:
			sc := scanner{s: o.Value, maxDepth: DefaultMaxDepth}
			if _, ok := sc.document(nil, false); !ok {
				return op{}, fmt.Errorf("Value: %w", sc.err)
			}
			c.value = sc.out
			c.scalar = c.value[0] != '{' && c.value[0] != '['
		case o.Var != "":
			for _, r := range o.Var {
				if r <= ' ' || r == 0x7f || r == utf8.RuneError {
					return op{}, fmt.Errorf("Var %s: invalid name", strconv.Quote(o.Var))
				}
			}
			c.varName = o.Var
		default:
			return op{}, errors.New("Value or Var is required")
		}
	}
	return c, nil
}
