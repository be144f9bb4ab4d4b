package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire limits. A decoder checks every length and count against them and
// against the bytes left, so a hostile message can neither panic the decoder
// nor make it allocate more than a small multiple of the message's size.
const (
	wireVersion = 1
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

// errVersion is returned for a message of another wire version: a newer
// node in a rolling upgrade, rejected rather than misread.
var errVersion = errors.New("ratelimit: unsupported wire version")

// wireRecord is one count: node (an index into the message's node table)
// admitted count requests in window win.
type wireRecord struct {
	node  int
	win   int64
	count int64
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

// wireReader reads varints and length-prefixed strings, with an error that
// says what was being read and where.
type wireReader struct {
	b   []byte
	off int
}

func (r *wireReader) uvarint(what string, limit uint64) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("ratelimit: truncated or overlong %s at byte %d", what, r.off)
	}
	if v > limit {
		return 0, fmt.Errorf("ratelimit: %s %d at byte %d exceeds %d", what, v, r.off, limit)
	}
	r.off += n
	return v, nil
}

// count reads a number of items, each of which takes at least minBytes, so
// a count can never promise more items than the bytes left could hold.
func (r *wireReader) count(what string, minBytes int) (int, error) {
	v, err := r.uvarint(what, uint64((len(r.b)-r.off)/minBytes))
	return int(v), err
}

func (r *wireReader) str(what string, limit int) ([]byte, error) {
	n, k := binary.Uvarint(r.b[r.off:])
	if k <= 0 || n > uint64(limit) {
		return nil, fmt.Errorf("ratelimit: bad %s length at byte %d (at most %d)", what, r.off, limit)
	}
	r.off += k
	if int(n) > len(r.b)-r.off {
		return nil, fmt.Errorf("ratelimit: %s at byte %d: %d bytes, %d left", what, r.off, n, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// decode parses and validates a whole payload into m (reusing its buffers).
// Nothing is applied here, so a payload that is malformed anywhere changes
// no state.
func decode(b []byte, m *message) error {
	m.reset()
	if len(b) == 0 {
		return errors.New("ratelimit: empty message")
	}
	if b[0] != wireVersion {
		return fmt.Errorf("%w %d", errVersion, b[0])
	}
	r := &wireReader{b: b, off: 1}
	nn, err := r.count("node count", 1)
	if err != nil {
		return err
	}
	if nn > maxNodes {
		return fmt.Errorf("ratelimit: %d nodes, at most %d", nn, maxNodes)
	}
	for range nn {
		name, err := r.str("node name", maxNameLen)
		if err != nil {
			return err
		}
		if len(name) == 0 {
			return errors.New("ratelimit: empty node name")
		}
		m.nodes = append(m.nodes, name)
	}
	ng, err := r.count("policy count", 4)
	if err != nil {
		return err
	}
	for range ng {
		if err := decodeGroup(r, m); err != nil {
			return err
		}
	}
	if r.off != len(b) {
		return fmt.Errorf("ratelimit: %d trailing bytes", len(b)-r.off)
	}
	return nil
}

// decodeGroup reads one policy's keys. Keys are front-coded: each repeats
// `shared` bytes of the previous key in the group and adds a suffix.
func decodeGroup(r *wireReader, m *message) error {
	name, err := r.str("policy name", maxNameLen)
	if err != nil {
		return err
	}
	ms, err := r.uvarint("window", maxWindowMs)
	if err != nil {
		return err
	}
	if ms == 0 {
		return errors.New("ratelimit: zero window")
	}
	base, err := r.uvarint("base window", maxWindowIdx)
	if err != nil {
		return err
	}
	nk, err := r.count("key count", 3)
	if err != nil {
		return err
	}
	prev := 0 // length of the previous key; it ends at len(m.keyBuf)
	for range nk {
		shared, err := r.uvarint("shared prefix", uint64(prev))
		if err != nil {
			return err
		}
		suffix, err := r.str("key", maxKeyLen-int(shared))
		if err != nil {
			return err
		}
		start := len(m.keyBuf)
		m.keyBuf = append(m.keyBuf, m.keyBuf[start-prev:start-prev+int(shared)]...)
		m.keyBuf = append(m.keyBuf, suffix...)
		prev = len(m.keyBuf) - start
		nr, err := r.count("record count", 2)
		if err != nil {
			return err
		}
		for range nr {
			tag, err := r.uvarint("record tag", maxNodes<<2)
			if err != nil {
				return err
			}
			if int(tag>>2) >= len(m.nodes) {
				return fmt.Errorf("ratelimit: record names node %d of %d", tag>>2, len(m.nodes))
			}
			age := tag & maxAge
			if age > base {
				return fmt.Errorf("ratelimit: record age %d before window 0", age)
			}
			c, err := r.uvarint("count", maxCount)
			if err != nil {
				return err
			}
			m.recs = append(m.recs, wireRecord{node: int(tag >> 2), win: int64(base - age), count: int64(c)})
		}
		m.keys = append(m.keys, wireKey{start: start, end: len(m.keyBuf), recsEnd: len(m.recs)})
	}
	m.groups = append(m.groups, wireGroup{policy: name, windowMs: int64(ms), keysEnd: len(m.keys)})
	return nil
}

// builder encodes one payload, refusing a key that would take it past max
// bytes. It tracks the exact encoded size as keys are added, because every
// count in the format precedes what it counts.
type builder struct {
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
	b.size = 1 + uvarintLen(uint64(len(b.nodes))) + uvarintLen(0)
	for _, n := range b.nodes {
		b.size += uvarintLen(uint64(len(n))) + len(n)
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
		grow = uvarintLen(uint64(len(b.groups)+1)) - uvarintLen(uint64(len(b.groups))) +
			uvarintLen(uint64(len(policy))) + len(policy) +
			uvarintLen(uint64(windowMs)) + uvarintLen(uint64(base)) + uvarintLen(0)
	}
	prevKey, n := "", 0
	if g != nil {
		prevKey, n = g.prevKey, g.n
	}
	shared := commonPrefix(prevKey, key)
	keyLen := uvarintLen(uint64(shared)) + uvarintLen(uint64(len(key)-shared)) + len(key) - shared +
		uvarintLen(uint64(len(recs)))
	for _, r := range recs {
		keyLen += uvarintLen(uint64(r.node)<<2|uint64(base-r.win)) + uvarintLen(uint64(r.count))
	}
	grow += keyLen + uvarintLen(uint64(n+1)) - uvarintLen(uint64(n))
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
	g.body = binary.AppendUvarint(g.body, uint64(shared))
	g.body = binary.AppendUvarint(g.body, uint64(len(key)-shared))
	g.body = append(g.body, key[shared:]...)
	g.body = binary.AppendUvarint(g.body, uint64(len(recs)))
	for _, r := range recs {
		g.body = binary.AppendUvarint(g.body, uint64(r.node)<<2|uint64(base-r.win))
		g.body = binary.AppendUvarint(g.body, uint64(r.count))
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
	out = append(out, wireVersion)
	out = binary.AppendUvarint(out, uint64(len(b.nodes)))
	for _, n := range b.nodes {
		out = binary.AppendUvarint(out, uint64(len(n)))
		out = append(out, n...)
	}
	out = binary.AppendUvarint(out, uint64(len(b.groups)))
	for _, g := range b.groups {
		out = binary.AppendUvarint(out, uint64(len(g.policy)))
		out = append(out, g.policy...)
		out = binary.AppendUvarint(out, uint64(g.windowMs))
		out = binary.AppendUvarint(out, uint64(g.base))
		out = binary.AppendUvarint(out, uint64(g.n))
		out = append(out, g.body...)
	}
	b.reset()
	return out
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
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
