package ratelimit

import (
	"cmp"
	"context"
	"hash/maphash"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// Message sharding. Flush sends, for every shard holding a changed count,
// this node's counts for all the shard's keys, under a Send key naming the
// shard. A queued message is therefore always superseded by one that holds
// everything it held, newer: dropping the older never loses a count, and
// the queue holds at most one message per shard part.
const (
	shardTarget = 900 // bytes of keys aimed at per shard, under maxMessage
	maxShards   = 1 << 12
	sendPrefix  = "ratelimit/"
)

type flushState struct {
	ents []*entry
	recs []ownCount
	live map[string]struct{}
	b    *builder
	// dirty[i]: shard i holds a changed count
	dirty []bool
	// shards is the current shard count. It grows as soon as the keys need
	// more room but shrinks only when they fit in a quarter, so a key count
	// hovering at a boundary does not re-key the queue every flush.
	shards uint64
	// grants are the claims this node, as a tiny key's owner, raised for
	// peers in this flush (owner.go).
	grants []grant
	// announced is the holdings list last sent, sinceAnnounce the flushes
	// since (holds.go).
	announced     []string
	sinceAnnounce int
	// perKey is the encoded bytes per key measured on the last messages
	// sent (front coding makes it depend on the keys); 0 before any.
	perKey float64
}

// ownCount is this node's records for a key in the previous and current
// windows, as Flush found them.
type ownCount struct {
	p     *Policy
	e     *entry
	w     int64
	prev  wireRecord
	cur   wireRecord
	shard uint64
	dirty bool
}

func (r wireRecord) empty() bool { return r.count+r.reserve+r.denied == 0 }

func (r wireRecord) sent() sentCell {
	return sentCell{win: r.win, n: r.count, claim: r.count + r.reserve, offered: r.count + r.denied}
}

// Run flushes every Options.Interval until ctx ends, then flushes once more
// so the last counts leave with the node.
//
// A raised claim (share.go) asks for a flush at once: the flush then comes
// at least minFlushGap after the previous one, instead of up to Interval
// later.
func (l *Limiter) Run(ctx context.Context) {
	t := l.clk.NewTimer(l.interval)
	defer t.Stop()
	last := l.clk.Now()
	for {
		select {
		case <-ctx.Done():
			l.Flush()
			return
		case <-l.kicks:
			t.Stop()
			t.Reset(max(0, last.Add(l.minFlushGap()).Sub(l.clk.Now())))
		case <-t.C():
			l.Flush()
			last = l.clk.Now()
			t.Reset(l.interval)
		}
	}
}

// Flush samples the peer count, expires idle keys and dead peer records,
// and sends this node's changed counts. Run calls it every interval; a
// caller driving gossip itself may call it instead.
func (l *Limiter) Flush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.observePeers()
	f := &l.flush
	l.announce(f)
	if f.live == nil {
		f.live = map[string]struct{}{}
		f.b = newBuilder(maxMessage, []string{l.node})
	}
	clear(f.live)
	f.recs = f.recs[:0]
	clear(f.grants)
	f.grants = f.grants[:0]
	now := l.clk.Now().UnixNano()
	size := 0
	for _, p := range sortedPolicies(*l.policies.Load()) {
		w := now / p.winNs
		f.ents = p.keys.appendAll(f.ents[:0])
		for _, e := range f.ents {
			c, idle := l.collect(p, e, w, f.live)
			if idle {
				l.expire(p, e, w)
				continue
			}
			if !c.prev.empty() || !c.cur.empty() {
				f.recs = append(f.recs, c)
				size += len(e.key)
			}
		}
	}
	clear(f.ents) // do not pin expired entries until the next flush
	l.names.retain(f.live)
	l.sendShards(f, size)
	if len(f.grants) > 0 {
		l.sendGrants(f.grants)
	}
}

// collect reads e's own counts and prunes its dead peer records.
func (l *Limiter) collect(p *Policy, e *entry, w int64, live map[string]struct{}) (ownCount, bool) {
	c := ownCount{p: p, e: e, w: w}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pruneLocked(w, live) {
		return c, true
	}
	for i, t := range [2]int64{w - 1, w} {
		r := wireRecord{win: t}
		if s := &e.slots[t&1]; s.win.Load() == t {
			r = ownRecord(s, t)
			s.published.Store(r.count + r.denied)
		}
		sent := e.sent[t&1]
		if sent.win != t {
			sent = sentCell{win: t}
		}
		c.dirty = c.dirty || r.sent() != sent
		if i == 0 {
			c.prev = r
		} else {
			c.cur = r
		}
	}
	if l.peerCount.Load() > 0 && !l.noShares && p.tiny() {
		l.flush.grants = p.assignLocked(e, w, l.clk.Now().UnixNano(), l.flush.grants)
	}
	// Isolated-open decisions can take a window past the limit with no
	// merge to notice: check here too.
	e.noteOverLocked(p.limit.Load(), &p.overAdmitted)
	return c, false
}

// expire removes an idle key, keeping its admitted and denied counts in the
// policy's totals.
func (l *Limiter) expire(p *Policy, e *entry, w int64) {
	if p.keys.removeIf(e, func(e *entry) bool { return e.pruneLocked(w, nil) }) {
		p.retiredAdmit.Add(e.admitted.Load())
		p.retiredDeny.Add(e.denied.Load())
	}
}

// sendShards sends every shard with a changed count, split into messages of
// at most maxMessage bytes.
func (l *Limiter) sendShards(f *flushState, size int) {
	if len(f.recs) == 0 {
		return
	}
	est := float64(size + 10*len(f.recs)) // a first guess: names plus counts
	if f.perKey > 0 {
		est = f.perKey * float64(len(f.recs))
	}
	want := min(uint64(1)<<bits.Len64(uint64(est)/shardTarget), maxShards)
	if want > f.shards || want <= f.shards/4 {
		f.shards = want
	}
	shards := f.shards
	// Find the dirty shards, then sort and send only their keys: with many
	// keys and few changes, most of the work is skipped.
	if cap(f.dirty) < int(shards) {
		f.dirty = make([]bool, shards)
	}
	f.dirty = f.dirty[:shards]
	clear(f.dirty)
	for i := range f.recs {
		c := &f.recs[i]
		if c.e.hash == 0 {
			c.e.hash = l.keyHash(c.p.name, c.e.key)
		}
		c.shard = c.e.hash & (shards - 1)
		f.dirty[c.shard] = f.dirty[c.shard] || c.dirty
	}
	f.recs = slices.DeleteFunc(f.recs, func(c ownCount) bool { return !f.dirty[c.shard] })
	slices.SortFunc(f.recs, func(a, b ownCount) int {
		return cmp.Or(cmp.Compare(a.shard, b.shard), strings.Compare(a.p.name, b.p.name),
			strings.Compare(a.e.key, b.e.key))
	})
	keys, bytes := 0, 0
	for start := 0; start < len(f.recs); {
		end := start
		for end < len(f.recs) && f.recs[end].shard == f.recs[start].shard {
			end++
		}
		bytes += l.sendShard(f, f.recs[start:end], shards)
		keys += end - start
		start = end
	}
	if keys > 0 {
		f.perKey = float64(bytes) / float64(keys)
	}
}

// sendShard sends one shard's counts and returns the bytes sent.
func (l *Limiter) sendShard(f *flushState, recs []ownCount, shards uint64) int {
	b := f.b
	part, bytes := 0, 0
	// The claims extension only in messages that need it: without it a
	// message is what the previous release sends.
	ext := false
	for _, c := range recs {
		ext = ext || needsClaims([]wireRecord{c.prev, c.cur})
	}
	emit := func() {
		msg := b.finish()
		key := sendPrefix + strconv.FormatUint(shards, 10) + "/" +
			strconv.FormatUint(recs[0].shard, 10) + "/" + strconv.Itoa(part)
		l.send(key, msg)
		if ext && l.sendNow != nil {
			// Claims: straight to every peer as well (Options.SendNow).
			l.sendNow(msg)
			l.stats.directSent.Add(1)
		}
		l.stats.msgsSent.Add(1)
		l.stats.bytesSent.Add(int64(len(msg)))
		bytes += len(msg)
		part++
	}
	b.claims = ext
	var wr [2]wireRecord
	for _, c := range recs {
		r := wr[:0]
		if !c.prev.empty() {
			r = append(r, c.prev)
		}
		if !c.cur.empty() {
			r = append(r, c.cur)
		}
		winMs := c.p.winNs / 1e6
		if !b.add(c.p.name, winMs, c.w, c.e.key, r) {
			emit()
			b.claims = ext
			b.add(c.p.name, winMs, c.w, c.e.key, r) // fits: a key is at most maxKeyLen bytes
		}
		c.e.sent[(c.w-1)&1] = c.prev.sent()
		c.e.sent[c.w&1] = c.cur.sent()
	}
	if !b.empty() {
		emit()
	}
	return bytes
}

// keyHash places a key in a message shard; never 0, which means unset.
func (l *Limiter) keyHash(policy, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(policy)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64() | 1<<63
}

func sortedPolicies(set map[string]*Policy) []*Policy {
	ps := make([]*Policy, 0, len(set))
	for _, p := range set {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Policy) int { return strings.Compare(a.name, b.name) })
	return ps
}
