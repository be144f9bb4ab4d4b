package ratelimit

import (
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Tiny limits: an owner hands out the requests (see "Tiny limits" in the
// package documentation).
//
// Budgets are shares of a room, rounded to whole requests. With a room of a
// few requests, nodes budgeting on the same stale view each round their
// fraction up now and then and claim the same last request (measured: limit
// 1 admitted 2, limit 10 admitted 12), and with γ = ½ a handful of requests
// can all meet empty budgets. No rounding fixes both while views are stale.
// Instead, for a limit of at most ownerMaxLimit, one node per key, its
// owner, is the only one that raises any claim: its own as its requests
// need it, the others' in Flush, one request at a time, to the peers whose
// reported demand exceeds their claim. A peer's raised claim reaches it as
// a record about it in the owner's message, which it adopts (adoptLocked)
// like any record about itself. Claims are upper bounds and only the owner
// writes them, so the window's admissions never exceed the limit however
// stale the views; a peer's first request waits for its demand to reach the
// owner and the claim to come back (two deliveries and a flush).
const ownerMaxLimit = 16

// tiny reports whether the key's claims are the owner's to raise. It needs
// the members' names (Options.Members); without them, claims are budgeted.
func (p *Policy) tiny() bool {
	return p.limit.Load() <= ownerMaxLimit && p.l.members.Load() != nil
}

// ownsKey reports whether this node is key's owner: rendezvous hashing over
// the candidates among the alive members, so that every node that sees the
// same candidates agrees, and a member leaving moves only its own keys. The
// candidates are this node and the peers that hold the policy (holds.go): a
// peer without it never grants, so hashing over every member left a node
// whose owner was such a peer unable to admit anything (a tier defined on
// the edge only, sidecars in the cluster: the first request got 429).
func (p *Policy) ownsKey(key string) bool {
	best, owner := uint64(0), ""
	now := p.l.clk.Now().UnixNano()
	p.l.holdMu.Lock()
	defer p.l.holdMu.Unlock()
	for _, n := range *p.l.members.Load() {
		if n != p.l.node && !p.l.holdsLocked(n, p.holdID, now) {
			continue
		}
		if h := rendezvous(n, p.name, key); h > best || h == best && n < owner {
			best, owner = h, n
		}
	}
	return owner == p.l.node
}

func rendezvous(node, policy, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(policy))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum64()
}

// unclaimedRoom is what the cluster's claims leave of the limit in window w
// (slots cur, prev), in whole requests, as this node sees it. It reads
// atomics only: the owner calls it under the key's lock to raise claims,
// and decide without it for RateLimit-Remaining.
func (p *Policy) unclaimedRoom(cur, prev *slot, now, w int64) int64 {
	frac := float64(now-w*p.winNs) / float64(p.winNs)
	prevTotal := float64(prev.local.Load() + prev.peers.Load())
	own := max(cur.claim.Load(), cur.local.Load())
	room := float64(p.limit.Load()) - prevTotal*(1-frac) - float64(own+cur.peerClaims.Load())
	return int64(math.Floor(room + epsilon))
}

// raiseOwned is raise for a tiny limit: the owner claims n if the limit has
// room; any other node must wait for the owner to raise its claim, and asks
// for a flush so its demand reaches the owner soon.
func (p *Policy) raiseOwned(e *entry, w, now, n int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, prev := &e.slots[w&1], &e.slots[(w+1)&1]
	if cur.win.Load() != w || prev.win.Load() != w-1 || cur.local.Load()+n <= cur.claim.Load() {
		return true
	}
	p.l.kick()
	if !p.ownsKey(e.key) || p.unclaimedRoom(cur, prev, now, w) < n {
		return false
	}
	cur.claim.Store(max(cur.claim.Load(), cur.local.Load()) + n)
	return true
}

// A grant is a claim the owner raised for a peer, to be sent.
type grant struct {
	p    *Policy
	key  string
	w    int64
	node string
	cell peerCell
}

// assignLocked, on the owner of a tiny key, raises the claims of the peers
// whose reported demand in window w exceeds their claim, one request each
// in turn, most unserved first, while the limit has room; it appends what
// it raised to out. The peers' cells are raised here at once, so the next
// grant (or the owner's own raise) counts them.
func (p *Policy) assignLocked(e *entry, w, now int64, out []grant) []grant {
	cur, prev := &e.slots[w&1], &e.slots[(w+1)&1]
	if cur.win.Load() != w || prev.win.Load() != w-1 || !p.ownsKey(e.key) {
		return out
	}
	free := p.unclaimedRoom(cur, prev, now, w)
	type want struct{ i, n int64 }
	var wants []want
	for i := range e.peers {
		c := &e.peers[i].cells[w%3]
		if c.win == w && c.offered > max(c.n, c.claim) {
			wants = append(wants, want{int64(i), c.offered - max(c.n, c.claim)})
		}
	}
	if free <= 0 || len(wants) == 0 {
		return out
	}
	slices.SortFunc(wants, func(a, b want) int { return int(b.n - a.n) })
	raised := map[int64]bool{}
	for free > 0 {
		gave := false
		for j := range wants {
			if free > 0 && wants[j].n > 0 {
				c := &e.peers[wants[j].i].cells[w%3]
				c.claim = max(c.n, c.claim) + 1
				wants[j].n--
				free--
				gave = true
				raised[wants[j].i] = true
			}
		}
		if !gave {
			break
		}
	}
	for i := range raised {
		r := &e.peers[i]
		out = append(out, grant{p: p, key: e.key, w: w, node: r.node, cell: r.cells[w%3]})
	}
	e.refreshLocked(p.winNs)
	return out
}

// sendGrants sends the claims the owner raised, one message per key: the
// records name the peers (the owner's node table lists them), and each
// peer adopts the record about itself. The Send key is the policy's and
// key's, so a later grant message (holding every raised claim as it then
// is: claims only grow) supersedes a queued one.
func (l *Limiter) sendGrants(gs []grant) {
	slices.SortFunc(gs, func(a, b grant) int {
		if a.p.name != b.p.name {
			return strings.Compare(a.p.name, b.p.name)
		}
		return strings.Compare(a.key, b.key)
	})
	for start := 0; start < len(gs); {
		end := start + 1
		for end < len(gs) && gs[end].p == gs[start].p && gs[end].key == gs[start].key {
			end++
		}
		g := gs[start:end]
		names := []string{l.node}
		recs := make([]wireRecord, 0, len(g))
		for i, x := range g {
			names = append(names, x.node)
			recs = append(recs, recordOf(i+1, x.w, x.cell.n, x.cell.claim, x.cell.offered))
		}
		b := newBuilder(maxMessage, names)
		b.claims = true
		if b.add(g[0].p.name, g[0].p.winNs/1e6, g[0].w, g[0].key, recs) {
			msg := b.finish()
			l.send(sendPrefix+"grant/"+strconv.Itoa(len(g[0].p.name))+"/"+g[0].p.name+g[0].key, msg)
			if l.sendNow != nil {
				l.sendNow(msg)
				l.stats.directSent.Add(1)
			}
			l.stats.msgsSent.Add(1)
			l.stats.bytesSent.Add(int64(len(msg)))
		}
		start = end
	}
}
