package ratelimit

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
)

// Merge applies one broadcast message. It reports relay=true only if the
// message raised some count this node knew, so that the epidemic spread of
// a message dies out once every node has it. msg is not retained.
func (l *Limiter) Merge(msg []byte) (relay bool, err error) {
	l.stats.msgsRecv.Add(1)
	m := l.decoded.Get().(*message)
	defer l.decoded.Put(m)
	if err := decode(msg, m); err != nil {
		l.stats.badMsgs.Add(1)
		return false, err
	}
	return l.apply(m), nil
}

// MergeState applies a peer's LocalState (anti-entropy). It is idempotent:
// merging a state twice, or one that overlaps what broadcasts brought,
// counts nothing twice.
func (l *Limiter) MergeState(state []byte) error {
	l.stats.statesRecv.Add(1)
	m := l.decoded.Get().(*message)
	defer l.decoded.Put(m)
	if err := decode(state, m); err != nil {
		l.stats.badStates.Add(1)
		return err
	}
	l.apply(m)
	return nil
}

// apply merges a decoded, valid payload: per (node, key, window) the higher
// count wins. Counts for windows that no estimate reads any more (before the
// previous one) or that lie more than one window ahead (a clock far off) are
// ignored, as are policies this node lacks or has with another window.
func (l *Limiter) apply(m *message) (newer bool) {
	now := l.clk.Now().UnixNano()
	names := make([]string, len(m.nodes))
	for i, n := range m.nodes {
		if string(n) != l.node {
			names[i] = l.names.get(n)
		}
	}
	set := *l.policies.Load()
	k := 0
	for _, g := range m.groups {
		if string(g.policy) == holdsGroup {
			if len(names) > 0 && names[0] != "" {
				l.noteHoldings(names[0], m, k, g.keysEnd)
			}
			k = g.keysEnd
			continue
		}
		p := set[string(g.policy)]
		if p == nil || p.winNs != g.windowMs*1e6 {
			l.stats.foreign.Add(int64(g.keysEnd - k))
			k = g.keysEnd
			continue
		}
		w := now / p.winNs
		r := 0
		if k > 0 {
			r = m.keys[k-1].recsEnd
		}
		for ; k < g.keysEnd; k++ {
			key := m.keys[k]
			recs := m.recs[r:key.recsEnd]
			r = key.recsEnd
			if !anyLive(recs, w) {
				continue
			}
			if p.mergeKey(m.keyBuf[key.start:key.end], recs, names, w, now) {
				newer = true
			}
		}
	}
	return newer
}

// lastRec is the index one past the last record of the keys before keysEnd.
func lastRec(m *message, keysEnd int) int {
	if keysEnd == 0 {
		return 0
	}
	return m.keys[keysEnd-1].recsEnd
}

func anyLive(recs []wireRecord, w int64) bool {
	for _, r := range recs {
		if r.count+r.reserve+r.denied > 0 && r.win >= w-1 && r.win <= w+1 {
			return true
		}
	}
	return false
}

// mergeKey merges one key's records; names[i] is "" for this node.
func (p *Policy) mergeKey(key []byte, recs []wireRecord, names []string, w, now int64) bool {
	for {
		e := p.peerEntry(key)
		if e == nil {
			return false
		}
		e.mu.Lock()
		if e.dead {
			e.mu.Unlock()
			continue
		}
		e.rollLocked(w, p.winNs)
		changed := false
		for _, r := range recs {
			if r.win < w-1 || r.win > w+1 {
				continue
			}
			claim, offered := r.count+r.reserve, r.count+r.denied
			if names[r.node] == "" {
				changed = e.adoptLocked(r.win, r.count, claim, offered) || changed
			} else {
				changed = e.upsertLocked(names[r.node], r.win, r.count, claim, offered, now, p.winNs) || changed
			}
		}
		if changed {
			e.refreshLocked(p.winNs)
			e.noteOverLocked(p.limit.Load(), &p.overAdmitted)
			if p.tiny() && p.ownsKey(e.key) {
				p.l.kick() // a peer's demand may wait for a grant (owner.go)
			}
		}
		e.mu.Unlock()
		return changed
	}
}

// LocalState returns every live count this node knows, its own and its
// peers', for a push/pull exchange. Past Options.MaxStateBytes the rest is
// left out (and counted); the keys start at a random place each time, so
// successive exchanges still cover them all.
func (l *Limiter) LocalState() []byte {
	now := l.clk.Now().UnixNano()
	var nodes []string
	index := map[string]int{}
	nodeIndex := func(n string) int {
		i, ok := index[n]
		if !ok {
			i = len(nodes)
			index[n] = i
			nodes = append(nodes, n)
		}
		return i
	}
	nodeIndex(l.node)
	type stateKey struct {
		p    *Policy
		w    int64
		key  string
		recs []wireRecord
	}
	var keys []stateKey
	var ents []*entry
	for _, p := range sortedPolicies(*l.policies.Load()) {
		w := now / p.winNs
		ents = p.keys.appendAll(ents[:0])
		for _, e := range ents {
			var recs []wireRecord
			e.mu.Lock()
			for _, t := range [2]int64{w - 1, w} {
				if s := &e.slots[t&1]; s.win.Load() == t {
					if r := ownRecord(s, t); r.count+r.reserve+r.denied > 0 {
						recs = append(recs, r)
					}
				}
				for i := range e.peers {
					if c := e.peers[i].cells[t%3]; c.win == t {
						r := recordOf(nodeIndex(e.peers[i].node), t, c.n, c.claim, c.offered)
						if r.count+r.reserve+r.denied > 0 {
							recs = append(recs, r)
						}
					}
				}
			}
			e.mu.Unlock()
			if len(recs) > 0 {
				keys = append(keys, stateKey{p, w, e.key, recs})
			}
		}
	}
	// Sorted keys share long prefixes, which the front coding drops.
	slices.SortFunc(keys, func(a, b stateKey) int {
		return cmp.Or(strings.Compare(a.p.name, b.p.name), strings.Compare(a.key, b.key))
	})
	b := newBuilder(l.maxState, nodes)
	for _, k := range keys {
		b.claims = b.claims || needsClaims(k.recs)
	}
	start := 0
	if len(keys) > 0 {
		start = rand.IntN(len(keys))
	}
	for i := range keys {
		k := keys[(start+i)%len(keys)]
		if !b.add(k.p.name, k.p.winNs/1e6, k.w, k.key, k.recs) {
			l.stats.statesTruncated.Add(1)
			l.log.Warn("rate limit state truncated", "max_bytes", l.maxState, "keys", len(keys), "included", i)
			break
		}
	}
	l.stats.statesSent.Add(1)
	return b.finish()
}

// recordOf is a node's record for window t: its count, and its claim and
// demand as the amounts above it (bounded as decoders bound every count).
func recordOf(node int, t, n, claim, offered int64) wireRecord {
	return wireRecord{node: node, win: t, count: min(n, maxCount),
		reserve: min(max(claim-n, 0), maxCount), denied: min(max(offered-n, 0), maxCount)}
}

// ownRecord is this node's record of slot s, which holds window t.
func ownRecord(s *slot, t int64) wireRecord {
	return recordOf(0, t, s.local.Load(), s.claim.Load(), s.offered.Load())
}

// needsClaims reports whether recs carry more than counts: a claims
// extension must go with them.
func needsClaims(recs []wireRecord) bool {
	for _, r := range recs {
		if r.reserve > 0 || r.denied > 0 {
			return true
		}
	}
	return false
}
