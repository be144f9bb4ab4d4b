package ratelimit

import (
	"errors"
	"fmt"
	"math"

	"github.com/meshgate/meshgate/internal/wire"
)

// Wire limits. A decoder checks every length and count against them and
// against the bytes left, so a hostile message can neither panic the decoder
// nor make it allocate more than a small multiple of the message's size.
const (
	// wireVersion is the newest payload version written. Version 1 (counts
	// only) is still written when no record carries a reserve or denials,
	// and always read, so nodes of the previous release keep their counts
	// from this one's while a cluster upgrades.
	wireVersion   = 2
	wireVersionV1 = 1
	// maxMessage is gossip.MaxMessage, repeated to keep this package free
	// of the gossip import.
	maxMessage   = 1200
	maxNameLen   = 255     // policy and node names
	maxKeyLen    = 512     // longer keys are counted under OverflowKey
	maxNodes     = 1 << 12 // node names in one message
	maxCount     = 1 << 40 // one node's count in one window
	maxWindowMs  = 1 << 40
	maxWindowIdx = 1 << 52
	maxAge       = 3 // a record's window is base − age
)

// wireRecord is one count: node (an index into the message's node table)
// admitted count requests in window win. Version 2 adds what the burst
// shares need (see share.go): reserve, the part of the node's claim it has
// not used yet (claim − count), and denied, the requests it refused (its
// demand is count + denied). Both are 0 in a version 1 record.
type wireRecord struct {
	node    int
	win     int64
	count   int64
	reserve int64
	denied  int64
}

// message is a decoded payload. Byte slices point into the payload or into
// keyBuf; a message is only valid until the next decode into it.
type message struct {
	nodes  [][]byte
	groups []wireGroup
	keys   []wireKey
	recs   []wireRecord
	keyBuf []byte
}

type wireGroup struct {
	policy   []byte
	windowMs int64
	keysEnd  int // index into message.keys one past this group's last key
}

type wireKey struct {
	start, end int // in keyBuf
	recsEnd    int // index into message.recs one past this key's last record
}

func (m *message) reset() {
	m.nodes = m.nodes[:0]
	m.groups = m.groups[:0]
	m.keys = m.keys[:0]
	m.recs = m.recs[:0]
	m.keyBuf = m.keyBuf[:0]
}

// decode parses and validates a whole payload into m (reusing its buffers).
// Nothing is applied here, so a payload that is malformed anywhere changes
// no state. A message of another version is an error wrapping
// wire.ErrVersion.
func decode(b []byte, m *message) error {
	m.reset()
	r := wire.NewReader(b)
	v := r.Byte()
	if r.Err() == nil && v != wireVersionV1 && v != wireVersion {
		r.Fail(fmt.Errorf("%w %d", wire.ErrVersion, v))
	}
	nn := r.Count(maxNodes, 1, "nodes")
	for i := 0; i < nn && r.Err() == nil; i++ {
		name := r.Bytes(maxNameLen, "node name")
		if len(name) == 0 {
			r.Fail(errors.New("empty node name"))
		}
		m.nodes = append(m.nodes, name)
	}
	ng := r.Count(math.MaxInt, 4, "policies")
	for i := 0; i < ng && r.Err() == nil; i++ {
		decodeGroup(r, m, v >= 2)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}

// decodeGroup reads one policy's keys. Keys are front-coded: each repeats
// `shared` bytes of the previous key in the group and adds a suffix.
func decodeGroup(r *wire.Reader, m *message, v2 bool) {
	name := r.Bytes(maxNameLen, "policy name")
	ms := r.UvarintMax(maxWindowMs, "window")
	if ms == 0 {
		r.Fail(errors.New("zero window"))
	}
	base := r.UvarintMax(maxWindowIdx, "base window")
	nk := r.Count(math.MaxInt, 3, "keys")
	prev := 0 // length of the previous key; it ends at len(m.keyBuf)
	for i := 0; i < nk && r.Err() == nil; i++ {
		shared := int(r.UvarintMax(uint64(prev), "shared prefix"))
		suffix := r.Bytes(maxKeyLen-shared, "key")
		start := len(m.keyBuf)
		m.keyBuf = append(m.keyBuf, m.keyBuf[start-prev:start-prev+shared]...)
		m.keyBuf = append(m.keyBuf, suffix...)
		prev = len(m.keyBuf) - start
		nr := r.Count(math.MaxInt, 2, "records")
		for j := 0; j < nr && r.Err() == nil; j++ {
			tag := r.UvarintMax(maxNodes<<2, "record tag")
			if int(tag>>2) >= len(m.nodes) {
				r.Fail(fmt.Errorf("record names node %d of %d", tag>>2, len(m.nodes)))
			}
			age := tag & maxAge
			if age > base {
				r.Fail(fmt.Errorf("record age %d before window 0", age))
			}
			rec := wireRecord{node: int(tag >> 2), win: int64(base - age), count: int64(r.UvarintMax(maxCount, "count"))}
			if v2 {
				rec.reserve = int64(r.UvarintMax(maxCount, "reserve"))
				rec.denied = int64(r.UvarintMax(maxCount, "denied"))
			}
			m.recs = append(m.recs, rec)
		}
		m.keys = append(m.keys, wireKey{start: start, end: len(m.keyBuf), recsEnd: len(m.recs)})
	}
	m.groups = append(m.groups, wireGroup{policy: name, windowMs: int64(ms), keysEnd: len(m.keys)})
}

// builder encodes one payload, refusing a key that would take it past max
// bytes. It tracks the exact encoded size as keys are added, because every
// count in the format precedes what it counts.
type builder struct {
	v2     bool // write version 2 (reserve and denied); set while empty
	max    int
	nodes  []string
	groups []buildGroup
	size   int
	spare  [][]byte // bodies of finished payloads, reused
}

type buildGroup struct {
	policy   string
	windowMs int64
	base     int64
	n        int
	prevKey  string
	body     []byte
}

func newBuilder(max int, nodes []string) *builder {
	b := &builder{max: max, nodes: nodes}
	b.reset()
	return b
}

func (b *builder) reset() {
	for _, g := range b.groups {
		b.spare = append(b.spare, g.body[:0])
	}
	b.groups = b.groups[:0]
	b.size = 1 + wire.UvarintLen(uint64(len(b.nodes))) + wire.UvarintLen(0)
	for _, n := range b.nodes {
		b.size += wire.StringLen(n)
	}
}

func (b *builder) empty() bool { return len(b.groups) == 0 }

// add appends key with its records (windows within maxAge below base) to
// the group of policy, opening the group if it is not the last one. It
// reports false, changing nothing, if the payload would exceed max bytes.
func (b *builder) add(policy string, windowMs, base int64, key string, recs []wireRecord) bool {
	grow := 0
	var g *buildGroup
	if n := len(b.groups); n > 0 && b.groups[n-1].policy == policy && b.groups[n-1].base == base {
		g = &b.groups[n-1]
	} else {
		grow = wire.UvarintLen(uint64(len(b.groups)+1)) - wire.UvarintLen(uint64(len(b.groups))) +
			wire.StringLen(policy) + wire.UvarintLen(uint64(windowMs)) + wire.UvarintLen(uint64(base)) +
			wire.UvarintLen(0)
	}
	prevKey, n := "", 0
	if g != nil {
		prevKey, n = g.prevKey, g.n
	}
	shared := commonPrefix(prevKey, key)
	keyLen := wire.UvarintLen(uint64(shared)) + wire.StringLen(key[shared:]) + wire.UvarintLen(uint64(len(recs)))
	for _, r := range recs {
		keyLen += wire.UvarintLen(uint64(r.node)<<2|uint64(base-r.win)) + wire.UvarintLen(uint64(r.count))
		if b.v2 {
			keyLen += wire.UvarintLen(uint64(r.reserve)) + wire.UvarintLen(uint64(r.denied))
		}
	}
	grow += keyLen + wire.UvarintLen(uint64(n+1)) - wire.UvarintLen(uint64(n))
	if b.size+grow > b.max {
		return false
	}
	if g == nil {
		var body []byte
		if k := len(b.spare); k > 0 {
			body, b.spare = b.spare[k-1], b.spare[:k-1]
		}
		b.groups = append(b.groups, buildGroup{policy: policy, windowMs: windowMs, base: base, body: body})
		g = &b.groups[len(b.groups)-1]
	}
	g.body = wire.AppendUvarint(g.body, uint64(shared))
	g.body = wire.AppendString(g.body, key[shared:])
	g.body = wire.AppendUvarint(g.body, uint64(len(recs)))
	for _, r := range recs {
		g.body = wire.AppendUvarint(g.body, uint64(r.node)<<2|uint64(base-r.win))
		g.body = wire.AppendUvarint(g.body, uint64(r.count))
		if b.v2 {
			g.body = wire.AppendUvarint(g.body, uint64(r.reserve))
			g.body = wire.AppendUvarint(g.body, uint64(r.denied))
		}
	}
	g.n++
	g.prevKey = key
	b.size += grow
	return true
}

// finish returns the payload in a new slice (the caller hands it to the
// gossip queue, which keeps it) and resets the builder.
func (b *builder) finish() []byte {
	out := make([]byte, 0, b.size)
	if b.v2 {
		out = append(out, wireVersion)
	} else {
		out = append(out, wireVersionV1)
	}
	out = wire.AppendUvarint(out, uint64(len(b.nodes)))
	for _, n := range b.nodes {
		out = wire.AppendString(out, n)
	}
	out = wire.AppendUvarint(out, uint64(len(b.groups)))
	for _, g := range b.groups {
		out = wire.AppendString(out, g.policy)
		out = wire.AppendUvarint(out, uint64(g.windowMs))
		out = wire.AppendUvarint(out, uint64(g.base))
		out = wire.AppendUvarint(out, uint64(g.n))
		out = append(out, g.body...)
	}
	b.reset()
	b.v2 = false
	return out
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
