package ratelimit

import (
	"slices"
	"strconv"

	"github.com/meshgate/meshgate/internal/wire"
)

// Holdings: which members hold which tiny policies (owner.go).
//
// A tiny key's owner must be a node that has the policy, and every node
// must agree on it, from the first request of a window on. Learning the
// holders from traffic did neither: at a cold start no node had heard from
// any other, so each thought itself the only holder and owned every key
// (limit 3 admitted 12 in window 0 at 10 nodes), and a holder that had sent
// nothing yet was missing from some views and not others. So each node
// announces the tiny policies it holds, as a whole list: at once to every
// peer when it sees a new member or its list changes, and as a broadcast
// every announceEvery flushes to repair a lost packet. A member that has not
// announced yet is presumed to hold every policy for warmUp after this node
// first saw it (the nodes then agree on the owner among all members, and a
// wrong presumption costs at most warmUp of refusals on the keys it would
// own); after that, a member that never announces (a release without
// holdings, a process without the limiter) holds nothing.

const (
	// holdsGroup is the policy name of the holdings group: its keys are
	// the ids (holdID) of the tiny policies the message's first node holds,
	// all of them, each with no records. A node of the previous release
	// reads it as a group of a policy it lacks and ignores it (counting its
	// keys in Stats.ForeignKeys).
	holdsGroup = "\x00holds"
	// announceEvery is the period, in flushes, of the repeated broadcast.
	announceEvery = 20
)

// holdID names a policy in a holdings list: nodes agree only on a policy
// with the same name and window.
func holdID(name string, window int64) string {
	return name + "/" + strconv.FormatInt(window/1e6, 10)
}

// tinyIDs lists, sorted, the policies this node holds whose keys are owned.
func (l *Limiter) tinyIDs() []string {
	var ids []string
	for _, p := range *l.policies.Load() {
		if p.limit.Load() <= ownerMaxLimit {
			ids = append(ids, p.holdID)
		}
	}
	slices.Sort(ids)
	return ids
}

// announce sends this node's holdings when a member joined, the list
// changed, or the period elapsed. Flush calls it.
func (l *Limiter) announce(f *flushState) {
	if l.membersFn == nil {
		return
	}
	l.forgetHoldings()
	ids := l.tinyIDs()
	f.sinceAnnounce++
	joined := l.joined.Swap(false)
	changed := f.announced == nil || !slices.Equal(ids, f.announced)
	if !joined && !changed && f.sinceAnnounce < announceEvery {
		return
	}
	f.announced, f.sinceAnnounce = ids, 0
	if f.announced == nil {
		f.announced = []string{}
	}
	msg := encodeHoldings(l.node, ids)
	l.send(sendPrefix+"holds", msg)
	if l.sendNow != nil && (joined || changed) {
		l.sendNow(msg)
		l.stats.directSent.Add(1)
	}
	l.stats.msgsSent.Add(1)
	l.stats.bytesSent.Add(int64(len(msg)))
}

// encodeHoldings is a payload naming node and the ids it holds. Ids that
// would take it past maxMessage are left out (each is at most a policy name
// of 255 bytes and a window: it takes about five such policies).
func encodeHoldings(node string, ids []string) []byte {
	out := []byte{wireVersion}
	out = wire.AppendUvarint(out, 1)
	out = wire.AppendString(out, node)
	out = wire.AppendUvarint(out, 1)
	out = wire.AppendString(out, holdsGroup)
	out = wire.AppendUvarint(out, 1) // window: any non-zero
	out = wire.AppendUvarint(out, 0) // base
	size := len(out) + wire.UvarintLen(uint64(len(ids)))
	n := 0
	for _, id := range ids {
		if size+2+wire.StringLen(id) > maxMessage {
			break
		}
		size += 2 + wire.StringLen(id)
		n++
	}
	out = wire.AppendUvarint(out, uint64(n))
	for _, id := range ids[:n] {
		out = wire.AppendUvarint(out, 0) // shared prefix: none
		out = wire.AppendString(out, id)
		out = wire.AppendUvarint(out, 0) // records: none
	}
	return out
}

// A holding is the list a node announced, as a set, and when it arrived.
type holding struct {
	ids map[string]struct{}
	at  int64
}

// noteHoldings records the holdings node announced (keys first to end of
// m). An announcement may arrive before this node sees its sender as a
// member: it is kept for that.
func (l *Limiter) noteHoldings(node string, m *message, first, end int) {
	set := make(map[string]struct{}, end-first)
	for _, k := range m.keys[first:end] {
		set[string(m.keyBuf[k.start:k.end])] = struct{}{}
	}
	now := l.clk.Now().UnixNano()
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	if _, known := l.holdings[node]; !known && len(l.holdings) >= maxNodes {
		l.stats.badMsgs.Add(1) // more announcing names than a message may hold: a flood
		return
	}
	l.holdings[node] = holding{set, now}
}

// forgetHoldings drops the holdings of nodes that are not members and
// announced more than holdingsKept ago (one that rejoins announces again).
func (l *Limiter) forgetHoldings() {
	ms := l.members.Load()
	if ms == nil {
		return
	}
	now := l.clk.Now().UnixNano()
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	for n, h := range l.holdings {
		if _, ok := slices.BinarySearch(*ms, n); !ok && now-h.at > 10*l.warmUp() {
			delete(l.holdings, n)
		}
	}
}

// noteMembers starts the presumption period of the members that are new
// and forgets when it saw those that left. It reports whether a member is
// new.
func (l *Limiter) noteMembers(ms []string) (joined bool) {
	now := l.clk.Now().UnixNano()
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	for n := range l.firstSeen {
		if _, ok := slices.BinarySearch(ms, n); !ok {
			delete(l.firstSeen, n)
		}
	}
	for _, n := range ms {
		if _, ok := l.firstSeen[n]; !ok && n != l.node {
			l.firstSeen[n] = now
			joined = true
		}
	}
	return joined
}

// holdsLocked reports whether member n is a candidate owner of policy id's
// keys: it announced the policy, or it has not announced yet and was first
// seen less than warmUp ago.
func (l *Limiter) holdsLocked(n, id string, now int64) bool {
	if h, ok := l.holdings[n]; ok {
		_, held := h.ids[id]
		return held
	}
	seen, ok := l.firstSeen[n]
	return !ok || now-seen < l.warmUp()
}
