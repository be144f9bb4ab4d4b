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
	// wireVersion is the only payload version, read and written. The burst
	// shares' claims travel in an extension that version 1 decoders skip
	// (claimsGroup), not under a new version byte: a node of the previous
	// release rejects a payload of any other version whole, counts
	// included, so a new version would blind old and new nodes to each
	// other's counts for the whole of a rolling upgrade.
	wireVersion = 1
	// claimsGroup is the policy name of a claims extension group (see the
	// package documentation, "Wire format"). An old decoder reads it as a
	// group of a policy it does not have and ignores it; no configured
	// policy may have this name (PolicyConfig.validate).
	claimsGroup = "\x00claims"
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
// admitted count requests in window win. The claims extension adds what the
// burst shares need (see share.go): reserve, the part of the node's claim it
// has not used yet (claim − count), and denied, the requests it refused (its
// demand is count + denied). Both are 0 in a record without it.
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
	base     int64
	keysEnd  int  // index into message.keys one past this group's last key
	claims   bool // a claims extension group followed (and was merged in)
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
	r.Version(wireVersion)
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
		decodeGroup(r, m)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}

// decodeGroup reads one policy's keys, or a claims extension of the group
// before it. Keys are front-coded: each repeats `shared` bytes of the
// previous key in the group and adds a suffix.
func decodeGroup(r *wire.Reader, m *message) {
	name := r.Bytes(maxNameLen, "policy name")
	ms := r.UvarintMax(maxWindowMs, "window")
	if ms == 0 {
		r.Fail(errors.New("zero window"))
	}
	base := r.UvarintMax(maxWindowIdx, "base window")
	if string(name) == claimsGroup {
		decodeClaims(r, m, int64(ms), int64(base))
		return
	}
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
			c := r.UvarintMax(maxCount, "count")
			m.recs = append(m.recs, wireRecord{node: int(tag >> 2), win: int64(base - age), count: int64(c)})
		}
		m.keys = append(m.keys, wireKey{start: start, end: len(m.keyBuf), recsEnd: len(m.recs)})
	}
	m.groups = append(m.groups, wireGroup{policy: name, windowMs: int64(ms), base: int64(base), keysEnd: len(m.keys)})
}

// decodeClaims reads a claims extension group into the records of the group
// before it, which it must follow directly and match: same window and base,
// one (empty) key per key of that group, in order, each with no records or
// with two per record of that key, (tag, reserve) then (tag, denied), the
// tags repeating the record's.
func decodeClaims(r *wire.Reader, m *message, ms, base int64) {
	if len(m.groups) == 0 {
		r.Fail(errors.New("claims extension without a group"))
		return
	}
	g := &m.groups[len(m.groups)-1]
	first := 0
	if len(m.groups) > 1 {
		first = m.groups[len(m.groups)-2].keysEnd
	}
	if g.claims || g.windowMs != ms || g.base != base {
		r.Fail(errors.New("claims extension does not follow its group"))
		return
	}
	g.claims = true
	if nk := r.Count(math.MaxInt, 3, "keys"); nk != g.keysEnd-first && r.Err() == nil {
		r.Fail(fmt.Errorf("claims extension has %d keys for %d", nk, g.keysEnd-first))
	}
	for k := first; k < g.keysEnd && r.Err() == nil; k++ {
		if r.UvarintMax(0, "shared prefix") != 0 || len(r.Bytes(0, "claims key")) != 0 {
			continue // failed
		}
		recs := m.recs[:m.keys[k].recsEnd]
		if k > 0 {
			recs = recs[m.keys[k-1].recsEnd:]
		}
		nr := r.Count(math.MaxInt, 2, "records")
		if nr == 0 || r.Err() != nil {
			continue
		}
		if nr != 2*len(recs) {
			r.Fail(fmt.Errorf("claims extension has %d records for %d", nr, len(recs)))
			break
		}
		for i := range recs {
			recs[i].reserve = claimsValue(r, recs[i].tag(base), "reserve")
			recs[i].denied = claimsValue(r, recs[i].tag(base), "denied")
		}
	}
}

// claimsValue reads one claims record, whose tag must be tag.
func claimsValue(r *wire.Reader, tag uint64, what string) int64 {
	if t := r.UvarintMax(maxNodes<<2, "record tag"); t != tag && r.Err() == nil {
		r.Fail(fmt.Errorf("%s record tag %d for %d", what, t, tag))
	}
	return int64(r.UvarintMax(maxCount, what))
}

// builder encodes one payload, refusing a key that would take it past max
// bytes. It tracks the exact encoded size as keys are added, because every
// count in the format precedes what it counts.
type builder struct {
	// claims: follow every group with its claims extension group (reserve
	// and denied); set while empty. Without it the payload is what the
	// previous release writes, byte for byte.
	claims bool
	max    int
	nodes  []string
	groups []buildGroup
	size   int
	spare  [][2][]byte // bodies of finished payloads' groups, reused
}

type buildGroup struct {
	policy   string
	windowMs int64
	base     int64
	n        int
	prevKey  string
	body     []byte
	ext      []byte // the claims extension's keys
}

func newBuilder(max int, nodes []string) *builder {
	b := &builder{max: max, nodes: nodes}
	b.reset()
	return b
}

func (b *builder) reset() {
	for _, g := range b.groups {
		b.spare = append(b.spare, [2][]byte{g.body[:0], g.ext[:0]})
	}
	b.groups = b.groups[:0]
	b.size = 1 + wire.UvarintLen(uint64(len(b.nodes))) + wire.UvarintLen(0)
	for _, n := range b.nodes {
		b.size += wire.StringLen(n)
	}
}

func (b *builder) empty() bool { return len(b.groups) == 0 }

// groupsOnWire is how many groups n policy groups take in the payload.
func (b *builder) groupsOnWire(n int) uint64 {
	if b.claims {
		return 2 * uint64(n)
	}
	return uint64(n)
}

// add appends key with its records (windows within maxAge below base) to
// the group of policy, opening the group if it is not the last one. It
// reports false, changing nothing, if the payload would exceed max bytes.
func (b *builder) add(policy string, windowMs, base int64, key string, recs []wireRecord) bool {
	grow := 0
	var g *buildGroup
	if n := len(b.groups); n > 0 && b.groups[n-1].policy == policy && b.groups[n-1].base == base {
		g = &b.groups[n-1]
	} else {
		head := wire.UvarintLen(uint64(windowMs)) + wire.UvarintLen(uint64(base)) + wire.UvarintLen(0)
		grow = wire.UvarintLen(b.groupsOnWire(len(b.groups)+1)) - wire.UvarintLen(b.groupsOnWire(len(b.groups))) +
			wire.StringLen(policy) + head
		if b.claims {
			grow += wire.StringLen(claimsGroup) + head
		}
	}
	prevKey, n := "", 0
	if g != nil {
		prevKey, n = g.prevKey, g.n
	}
	shared := commonPrefix(prevKey, key)
	nKeys := wire.UvarintLen(uint64(n+1)) - wire.UvarintLen(uint64(n))
	grow += nKeys + wire.UvarintLen(uint64(shared)) + wire.StringLen(key[shared:]) + wire.UvarintLen(uint64(len(recs)))
	for _, r := range recs {
		grow += wire.UvarintLen(r.tag(base)) + wire.UvarintLen(uint64(r.count))
	}
	ext := b.claims && needsClaims(recs)
	if b.claims {
		grow += nKeys + 2 // shared 0, empty key
		if ext {
			grow += wire.UvarintLen(uint64(2 * len(recs)))
			for _, r := range recs {
				grow += 2*wire.UvarintLen(r.tag(base)) + wire.UvarintLen(uint64(r.reserve)) + wire.UvarintLen(uint64(r.denied))
			}
		} else {
			grow += wire.UvarintLen(0)
		}
	}
	if b.size+grow > b.max {
		return false
	}
	if g == nil {
		var bodies [2][]byte
		if k := len(b.spare); k > 0 {
			bodies, b.spare = b.spare[k-1], b.spare[:k-1]
		}
		b.groups = append(b.groups, buildGroup{policy: policy, windowMs: windowMs, base: base, body: bodies[0], ext: bodies[1]})
		g = &b.groups[len(b.groups)-1]
	}
	g.body = wire.AppendUvarint(g.body, uint64(shared))
	g.body = wire.AppendString(g.body, key[shared:])
	g.body = wire.AppendUvarint(g.body, uint64(len(recs)))
	for _, r := range recs {
		g.body = wire.AppendUvarint(g.body, r.tag(base))
		g.body = wire.AppendUvarint(g.body, uint64(r.count))
	}
	if b.claims {
		g.ext = append(g.ext, 0, 0) // shared 0, empty key: the keys are the group's, in order
		if ext {
			g.ext = wire.AppendUvarint(g.ext, uint64(2*len(recs)))
			for _, r := range recs {
				g.ext = wire.AppendUvarint(g.ext, r.tag(base))
				g.ext = wire.AppendUvarint(g.ext, uint64(r.reserve))
				g.ext = wire.AppendUvarint(g.ext, r.tag(base))
				g.ext = wire.AppendUvarint(g.ext, uint64(r.denied))
			}
		} else {
			g.ext = append(g.ext, 0)
		}
	}
	g.n++
	g.prevKey = key
	b.size += grow
	return true
}

// tag is the record's node and age as the wire writes them.
func (r wireRecord) tag(base int64) uint64 { return uint64(r.node)<<2 | uint64(base-r.win) }

// finish returns the payload in a new slice (the caller hands it to the
// gossip queue, which keeps it) and resets the builder.
func (b *builder) finish() []byte {
	out := make([]byte, 0, b.size)
	out = append(out, wireVersion)
	out = wire.AppendUvarint(out, uint64(len(b.nodes)))
	for _, n := range b.nodes {
		out = wire.AppendString(out, n)
	}
	out = wire.AppendUvarint(out, b.groupsOnWire(len(b.groups)))
	for _, g := range b.groups {
		out = wire.AppendString(out, g.policy)
		out = wire.AppendUvarint(out, uint64(g.windowMs))
		out = wire.AppendUvarint(out, uint64(g.base))
		out = wire.AppendUvarint(out, uint64(g.n))
		out = append(out, g.body...)
		if b.claims {
			out = wire.AppendString(out, claimsGroup)
			out = wire.AppendUvarint(out, uint64(g.windowMs))
			out = wire.AppendUvarint(out, uint64(g.base))
			out = wire.AppendUvarint(out, uint64(g.n))
			out = append(out, g.ext...)
		}
	}
	b.reset()
	b.claims = false
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
