package ratelimit

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Isolation is what a policy does while its node is cut off from the
// cluster (see the package documentation for when that is).
type Isolation uint8

const (
	// Open decides on this node's own counts against the full limit: the
	// service stays up, and the cluster may admit up to limit × nodes
	// while partitioned.
	Open Isolation = iota
	// Closed denies every request while isolated: for limits whose excess
	// costs more than an outage (paid quotas, fragile backends).
	Closed
)

func (i Isolation) String() string {
	if i == Closed {
		return "closed"
	}
	return "open"
}

// DefaultMaxKeys is a policy's key cap when PolicyConfig.MaxKeys is 0.
const DefaultMaxKeys = 10_000

// OverflowKey is the key under which a policy counts requests for new keys
// once it holds MaxKeys keys, and keys longer than 512 bytes. All of them
// share one budget of Limit per Window, so a flood of distinct keys (forged
// client addresses, say) is limited as one consumer and cannot grow memory,
// while the keys already tracked keep their own budgets.
const OverflowKey = "\x00overflow"

// PolicyConfig is one limit. Every node of the cluster must configure a
// policy with the same Name and Window for their counts to add up; nodes
// ignore counts for a policy they do not have, or have with another window.
type PolicyConfig struct {
	Name      string
	Limit     int64         // requests per Window per key, cluster-wide; > 0
	Window    time.Duration // whole milliseconds, at least one second
	Isolation Isolation
	MaxKeys   int // 0: DefaultMaxKeys
}

func (c PolicyConfig) validate() error {
	switch {
	case c.Name == "" || len(c.Name) > maxNameLen:
		return fmt.Errorf("ratelimit: policy name %q: want 1 to %d bytes", c.Name, maxNameLen)
	case c.Name[0] == 0:
		// Names starting with NUL are the wire's extension groups
		// (claimsGroup): a policy of that name would read them as counts.
		return fmt.Errorf("ratelimit: policy name %q: must not start with a NUL byte", c.Name)
	case c.Limit <= 0 || c.Limit > maxCount:
		return fmt.Errorf("ratelimit: policy %q: limit %d out of range 1..%d", c.Name, c.Limit, int64(maxCount))
	case c.Window < time.Second || c.Window%time.Millisecond != 0:
		return fmt.Errorf("ratelimit: policy %q: window %v: want whole milliseconds, at least 1s", c.Name, c.Window)
	case c.Isolation > Closed:
		return fmt.Errorf("ratelimit: policy %q: unknown isolation %d", c.Name, c.Isolation)
	case c.MaxKeys < 0:
		return fmt.Errorf("ratelimit: policy %q: negative max keys", c.Name)
	}
	return nil
}

// A Policy is one limit's state on this node: its keys and their counts.
// It is safe for concurrent use. Allow, AllowN and Decide are its hot path.
type Policy struct {
	l      *Limiter
	name   string
	window time.Duration
	winNs  int64

	limit   atomic.Int64
	closed  atomic.Bool
	maxKeys atomic.Int64

	keys *keyMap

	overAdmitted  atomic.Int64
	overflowed    atomic.Int64
	evicted       atomic.Int64
	droppedPeer   atomic.Int64
	retiredAdmit  atomic.Int64 // admitted/denied of expired and evicted keys
	retiredDeny   atomic.Int64
	warnedOverWin atomic.Int64 // window of the last key-cap warning

	// holdID names the policy in holdings (holds.go).
	holdID string
}

func newPolicy(l *Limiter, c PolicyConfig) *Policy {
	p := &Policy{l: l, name: c.Name, window: c.Window, winNs: int64(c.Window), keys: newKeyMap()}
	p.holdID = holdID(c.Name, p.winNs)
	p.update(c)
	return p
}

// update applies the parts of c that can change without losing counts.
func (p *Policy) update(c PolicyConfig) {
	p.limit.Store(c.Limit)
	p.closed.Store(c.Isolation == Closed)
	mk := c.MaxKeys
	if mk == 0 {
		mk = DefaultMaxKeys
	}
	p.maxKeys.Store(int64(mk))
}

// Name returns the policy's name.
func (p *Policy) Name() string { return p.name }

// Limit returns the requests allowed per window per key.
func (p *Policy) Limit() int64 { return p.limit.Load() }

// Window returns the policy's window.
func (p *Policy) Window() time.Duration { return p.window }

// entry returns key's entry, creating it if needed. New keys beyond the cap,
// and keys too long to gossip, are counted under OverflowKey.
func (p *Policy) entry(key string, w int64) *entry {
	if e := p.keys.get(key); e != nil {
		return e
	}
	limit := p.maxKeys.Load()
	if len(key) <= maxKeyLen && key != OverflowKey {
		// At the cap the coldest of a sample of keys gives way: sharing
		// one overflow budget among every new key let a flood of distinct
		// keys starve every consumer that came after it.
		if int64(p.keys.len()) >= limit {
			if old := p.keys.evictColdest(w); old != nil {
				p.evicted.Add(1)
				p.retiredAdmit.Add(old.admitted.Load()) // the totals stay counters
				p.retiredDeny.Add(old.denied.Load())
			}
		}
		if e := p.keys.create(key, limit); e != nil {
			return e
		}
	}
	p.overflowed.Add(1)
	if old := p.warnedOverWin.Load(); old != w && p.warnedOverWin.CompareAndSwap(old, w) {
		p.l.log.Warn("rate limit key cap reached or key too long: sharing the overflow budget",
			"policy", p.name, "max_keys", limit, "key_len", len(key))
	}
	// Read-locked lookup first: under a flood of new keys this is the path
	// every request takes.
	if e := p.keys.get(OverflowKey); e != nil {
		return e
	}
	return p.keys.create(OverflowKey, -1)
}

// peerEntry returns the entry for a key a peer reported, or nil if the key
// is new and the cap is reached (the peer's counts for it are then dropped
// here; this node counts that key under OverflowKey too).
func (p *Policy) peerEntry(key []byte) *entry {
	if e := p.keys.getBytes(key); e != nil {
		return e
	}
	limit := p.maxKeys.Load()
	if string(key) == OverflowKey {
		limit = -1
	}
	e := p.keys.create(string(key), limit)
	if e == nil {
		p.droppedPeer.Add(1)
	}
	return e
}

var errPolicyExists = errors.New("ratelimit: duplicate policy name")
