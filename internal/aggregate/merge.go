package aggregate

import "github.com/meshgate/meshgate/internal/transform/jsonx"

// tree is the combined document being built: objects whose members are
// the calls' documents, kept as raw JSON. Members keep the order they were
// first set in; setting a key again replaces its value in place (a later
// call wins). A raw object in the way of a deeper path is opened into its
// members; any other value in the way is replaced by an object.
type tree struct {
	nodes []node // nodes[0] is the root object
	// index finds a member by parent and key once the tree is large (a
	// merged object's members); nil while a scan of the members is cheaper.
	index map[memberKey]int32
}

type node struct {
	key    string
	raw    []byte // a leaf's JSON value; nil for an object
	obj    bool
	parent int32
	// An object's members, and the member's siblings: -1 for none.
	first, last, prev, next int32
}

type memberKey struct {
	parent int32
	key    string
}

// indexAt is the number of nodes past which members are found by index.
const indexAt = 32

func (t *tree) reset() {
	if cap(t.nodes) > 1024 {
		t.nodes = nil
	}
	clear(t.nodes)
	t.nodes = append(t.nodes[:0], node{obj: true, parent: -1, first: -1, last: -1, prev: -1, next: -1})
	t.index = nil
}

// find returns the member key of object p, or -1.
func (t *tree) find(p int32, key string) int32 {
	if t.index != nil {
		if c, ok := t.index[memberKey{p, key}]; ok {
			return c
		}
		return -1
	}
	for c := t.nodes[p].first; c >= 0; c = t.nodes[c].next {
		if t.nodes[c].key == key {
			return c
		}
	}
	return -1
}

// add appends member n to object p and returns its node.
func (t *tree) add(p int32, n node) int32 {
	id := int32(len(t.nodes))
	n.parent, n.prev, n.next, n.first, n.last = p, t.nodes[p].last, -1, -1, -1
	t.nodes = append(t.nodes, n)
	if n.prev >= 0 {
		t.nodes[n.prev].next = id
	} else {
		t.nodes[p].first = id
	}
	t.nodes[p].last = id
	switch {
	case t.index != nil:
		t.index[memberKey{p, n.key}] = id
	case len(t.nodes) > indexAt:
		t.buildIndex()
	}
	return id
}

// replace puts n in the place of member c and returns its node (c and
// whatever it held are dropped).
func (t *tree) replace(c int32, n node) int32 {
	id := int32(len(t.nodes))
	old := t.nodes[c]
	n.key, n.parent, n.prev, n.next, n.first, n.last = old.key, old.parent, old.prev, old.next, -1, -1
	t.nodes = append(t.nodes, n)
	if n.prev >= 0 {
		t.nodes[n.prev].next = id
	} else {
		t.nodes[n.parent].first = id
	}
	if n.next >= 0 {
		t.nodes[n.next].prev = id
	} else {
		t.nodes[n.parent].last = id
	}
	if t.index != nil {
		t.index[memberKey{n.parent, n.key}] = id
	}
	return id
}

func (t *tree) buildIndex() {
	t.index = make(map[memberKey]int32, 2*len(t.nodes))
	var walk func(p int32)
	walk = func(p int32) {
		for c := t.nodes[p].first; c >= 0; c = t.nodes[c].next {
			t.index[memberKey{p, t.nodes[c].key}] = c
			if t.nodes[c].obj {
				walk(c)
			}
		}
	}
	walk(0)
}

// set makes raw the value of member key of object p.
func (t *tree) set(p int32, key string, raw []byte) {
	n := node{key: key, raw: raw}
	if c := t.find(p, key); c >= 0 {
		t.replace(c, n)
	} else {
		t.add(p, n)
	}
}

// object returns member key of object p as an object: created, opened
// from a raw object, or replacing another value.
func (t *tree) object(p int32, key string) int32 {
	c := t.find(p, key)
	switch {
	case c < 0:
		return t.add(p, node{key: key, obj: true})
	case t.nodes[c].obj:
		return c
	}
	raw := t.nodes[c].raw
	o := t.replace(c, node{obj: true})
	if len(raw) > 0 && raw[0] == '{' {
		t.merge(o, raw)
	}
	return o
}

// place sets raw at path (at least one key) from the root.
func (t *tree) place(path []string, raw []byte) {
	p := int32(0)
	for _, k := range path[:len(path)-1] {
		p = t.object(p, k)
	}
	t.set(p, path[len(path)-1], raw)
}

// merge sets each member of the raw object doc in object p.
func (t *tree) merge(p int32, doc []byte) {
	eachMember(doc, skipSpace(doc, 0), func(k []byte, escaped bool, start, end int) bool {
		key := string(k)
		if escaped {
			key = string(jsonx.AppendUnquoted(nil, k))
		}
		t.set(p, key, doc[start:end])
		return true
	})
}

// appendTo writes the document; false when it grows past limit bytes.
func (t *tree) appendTo(dst []byte, limit int) ([]byte, bool) {
	return t.appendObject(dst, 0, limit)
}

func (t *tree) appendObject(dst []byte, p int32, limit int) ([]byte, bool) {
	dst = append(dst, '{')
	for c := t.nodes[p].first; c >= 0; c = t.nodes[c].next {
		n := &t.nodes[c]
		if c != t.nodes[p].first {
			dst = append(dst, ',')
		}
		dst = jsonx.AppendQuoted(dst, n.key)
		dst = append(dst, ':')
		if n.obj {
			var ok bool
			if dst, ok = t.appendObject(dst, c, limit); !ok {
				return dst, false
			}
		} else {
			dst = append(dst, n.raw...)
		}
		if len(dst) > limit {
			return dst, false
		}
	}
	dst = append(dst, '}')
	return dst, len(dst) <= limit
}
