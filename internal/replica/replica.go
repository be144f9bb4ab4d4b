// Package replica is the cluster's store of versioned resources: the routes
// and upstreams applied through the admin API, replicated to every node
// over gossip.
//
// Each resource (kind, name) is a last-writer-wins register. A version is a
// Lamport clock with the writing node's name as tiebreak, so every node
// orders two writes the same way without synchronised clocks: a write
// through node A after A has seen version (7, B) is stamped (8, A) and wins
// everywhere. A delete is a write too, a tombstone, so a node that missed
// it cannot bring the resource back through anti-entropy; tombstones are
// collected after TombstoneTTL, which must outlast the longest partition the
// cluster should heal from (a node cut off longer could resurrect a resource
// deleted meanwhile).
//
// The store carries opaque values; the node decodes and validates them (a
// peer's bytes are outside input) and keeps serving its current snapshot
// when one is invalid.
//
// Who wrote an item is not the store's business either, but it makes room
// for the answer: an item carries an opaque extension (Item.Ext), set by
// Options.Sign when this node writes it and stored and relayed verbatim, and
// a peer's item is applied only once Options.Verify accepts it. The node
// puts its writer's signature there (package itemsig): gossip relays items
// through every member, so without it any member could write any resource.
package replica

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/clock"
)

// Version orders writes: higher Clock wins, then the greater Node name.
type Version struct {
	Clock uint64
	Node  string
}

// Newer reports whether v wins over o.
func (v Version) Newer(o Version) bool {
	if v.Clock != o.Clock {
		return v.Clock > o.Clock
	}
	return v.Node > o.Node
}

func (v Version) String() string { return fmt.Sprintf("%d@%s", v.Clock, v.Node) }

// Item is one resource version. A tombstone has Deleted set and no Value.
type Item struct {
	Kind    string
	Name    string
	Value   []byte
	Deleted bool
	Version Version
	// Ext is the item's extension, opaque to the store: set by Options.Sign
	// on a write, stored and relayed with the item byte for byte (a
	// signature must reach every node as it was made), nil when unsigned.
	Ext []byte
	// Seen is when this node stored the version (local time; tombstone GC).
	Seen time.Time
}

// Options configure a Store.
type Options struct {
	Node string // this node's unique name (the version tiebreak)
	// Send broadcasts one encoded item (gossip.Send); nil: no broadcasts.
	Send func(key string, msg []byte)
	// OnChange is called, outside the store's lock, after a write or merge
	// changed what the store holds. Calls may come from several goroutines.
	OnChange func()
	// OnApplied (may be nil) is called like OnChange, with copies of the
	// items the write or merge stored (tombstones included), for owners
	// that act on an item itself rather than on the whole state.
	OnApplied func(items []Item)
	// Expired (may be nil) reports that a live item has served its purpose:
	// it is dropped without a tombstone when the store collects garbage,
	// and refused when a peer sends it again, so it cannot come back. It is
	// for items that record events rather than state (a cache purge), which
	// would otherwise stay for good; it must tell the same on every node
	// (decide from the item, not from when this node saw it) and be quick:
	// it runs under the store's lock.
	Expired func(it Item) bool
	// Sign (may be nil) is called by a write with the new item, before it
	// is stored or sent, to set its Ext (the writer's signature); an error
	// fails the write.
	Sign func(it *Item) error
	// Verify (may be nil) decides whether a peer's item may be applied: an
	// error refuses it (counted in Stats.Refused and returned, wrapping
	// ErrRefused, by Merge and MergeState, which the cluster logs at a
	// bounded rate). It is called only for items the store would apply —
	// newer than what it holds, not expired, within MaxClockJump — so a
	// push/pull of a state the node already has costs no verification, and
	// outside the store's lock, so a slow check blocks no reader. It may be
	// called from several goroutines at once.
	Verify       func(it Item) error
	Clock        clock.Clock
	TombstoneTTL time.Duration // default 24h
	// MaxItems bounds the store against a peer flooding it (default 10,000).
	MaxItems int
}

// Store is safe for concurrent use.
type Store struct {
	opts  Options
	mu    sync.Mutex
	clock uint64
	items map[key]*Item
	stats Stats
}

type key struct{ kind, name string }

// Stats are the store's counters.
type Stats struct {
	Items, Tombstones   int
	Applied, Stale, Bad uint64 // merged items: newer, not newer, malformed
	// Refused counts peers' items that Options.Verify refused.
	Refused uint64
}

// MaxClockJump bounds how far past the highest clock a node has seen a
// peer's version may be. Honest clocks grow by one per write; a version of
// 2^64-1 would win over every later write, pinning the resource for good.
// A jump of 2^32 writes at once is not a busy cluster but a forged or
// corrupt version, and refusing it keeps room for every later write.
const MaxClockJump = 1 << 32

// ErrFull is returned when a merge or write would exceed MaxItems.
var ErrFull = errors.New("replica: store full")

// ErrClockJump is returned for a peer's version more than MaxClockJump past
// the highest clock this node has seen (the item is refused).
var ErrClockJump = errors.New("replica: version clock jumps too far ahead")

// ErrRefused wraps Options.Verify's error for a refused item.
var ErrRefused = errors.New("replica: item refused")

// ErrClockExhausted is returned by a write when the clock has no successor
// (it is never wrapped to a version that would lose to every other).
var ErrClockExhausted = errors.New("replica: version clock exhausted")

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = 24 * time.Hour
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = 10000
	}
	return &Store{opts: opts, items: make(map[key]*Item)}
}

// Kind is the gossip tag of the store's messages.
func (s *Store) Kind() byte { return 'r' }

// Put writes value as the newest version of (kind, name).
func (s *Store) Put(kind, name string, value []byte) (Version, error) {
	return s.write(kind, name, value, false)
}

// Delete writes a tombstone, also for a name the store never held (it then
// hides the nodes' file entries of that name); it reports false when the
// name is already deleted.
func (s *Store) Delete(kind, name string) (Version, bool, error) {
	s.mu.Lock()
	cur := s.items[key{kind, name}]
	s.mu.Unlock()
	if cur != nil && cur.Deleted {
		return Version{}, false, nil
	}
	v, err := s.write(kind, name, nil, true)
	return v, err == nil, err
}

func (s *Store) write(kind, name string, value []byte, deleted bool) (Version, error) {
	if kind == "" || name == "" {
		return Version{}, errors.New("replica: kind and name are required")
	}
	s.mu.Lock()
	k := key{kind, name}
	if _, ok := s.items[k]; !ok && len(s.items) >= s.opts.MaxItems {
		s.mu.Unlock()
		return Version{}, ErrFull
	}
	if s.clock == math.MaxUint64 {
		s.mu.Unlock()
		return Version{}, ErrClockExhausted
	}
	it := &Item{Kind: kind, Name: name, Value: append([]byte(nil), value...), Deleted: deleted,
		Version: Version{Clock: s.clock + 1, Node: s.opts.Node}, Seen: s.opts.Clock.Now()}
	if s.opts.Sign != nil {
		// Under the lock: the version must be the one the store holds
		// next, and signing (one ECDSA signature, ~30 µs) is cheap next to
		// the admin API call that asked for it.
		if err := s.opts.Sign(it); err != nil {
			s.mu.Unlock()
			return Version{}, fmt.Errorf("replica: sign %s/%s: %w", kind, name, err)
		}
	}
	s.clock++
	s.items[k] = it
	applied := []Item{*it}
	s.mu.Unlock()
	s.broadcast(it)
	s.changed(applied)
	return it.Version, nil
}

func (s *Store) broadcast(it *Item) {
	if s.opts.Send != nil {
		s.opts.Send("r/"+it.Kind+"/"+it.Name, encodeItem(nil, it))
	}
}

func (s *Store) changed(applied []Item) {
	if s.opts.OnChange != nil {
		s.opts.OnChange()
	}
	if s.opts.OnApplied != nil {
		s.opts.OnApplied(applied)
	}
}

// Get returns the live item (kind, name).
func (s *Store) Get(kind, name string) (Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[key{kind, name}]
	if it == nil || it.Deleted {
		return Item{}, false
	}
	return *it, true
}

// List returns every item of kind, tombstones included, sorted by name.
func (s *Store) List(kind string) []Item {
	s.mu.Lock()
	out := make([]Item, 0, len(s.items))
	for k, it := range s.items {
		if k.kind == kind {
			out = append(out, *it)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	for _, it := range s.items {
		if it.Deleted {
			st.Tombstones++
		} else {
			st.Items++
		}
	}
	return st
}

// Merge applies one broadcast item; relay reports that it was news.
func (s *Store) Merge(msg []byte) (relay bool, err error) {
	it, err := decodeMessage(msg)
	if err != nil {
		s.mu.Lock()
		s.stats.Bad++
		s.mu.Unlock()
		return false, err
	}
	applied, err := s.apply([]*Item{it})
	if len(applied) > 0 {
		s.changed(applied)
	}
	return len(applied) > 0, err
}

// LocalState encodes every item, tombstones included (anti-entropy).
func (s *Store) LocalState() []byte {
	s.gc()
	s.mu.Lock()
	defer s.mu.Unlock()
	return encodeState(s.items)
}

// MergeState applies a peer's LocalState. Newer items are not relayed:
// the peer's push/pull with the others repairs them in turn.
func (s *Store) MergeState(state []byte) error {
	items, err := decodeState(state, s.opts.MaxItems)
	if err != nil {
		s.mu.Lock()
		s.stats.Bad++
		s.mu.Unlock()
		return err
	}
	applied, err := s.apply(items)
	if len(applied) > 0 {
		s.changed(applied)
	}
	return err
}

// apply stores the items that are newer than what the store holds, once
// Options.Verify accepts them, and advances the Lamport clock past every
// version it stores. It returns copies of the items it stored.
//
// Verification runs between two passes under the lock: the first picks
// the items that would be applied (the others are counted and need no
// check), the second applies those verified, checking again, since a write
// or another merge may have come in between.
func (s *Store) apply(items []*Item) (applied []Item, err error) {
	s.mu.Lock()
	candidates := items[:0:0]
	for _, it := range items {
		ok, e := s.admissible(it, true)
		err = cmp.Or(err, e)
		if ok {
			candidates = append(candidates, it)
		}
	}
	s.mu.Unlock()
	if s.opts.Verify != nil && len(candidates) > 0 {
		verified := candidates[:0]
		var refused uint64
		for _, it := range candidates {
			if verr := s.opts.Verify(*it); verr != nil {
				refused++
				err = cmp.Or(err, fmt.Errorf("%w: %s/%s at %v: %w", ErrRefused, it.Kind, it.Name, it.Version, verr))
				continue
			}
			verified = append(verified, it)
		}
		candidates = verified
		if refused > 0 {
			s.mu.Lock()
			s.stats.Refused += refused
			s.mu.Unlock()
		}
	}
	if len(candidates) == 0 {
		return nil, err
	}
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range candidates {
		if ok, e := s.admissible(it, false); !ok {
			err = cmp.Or(err, e)
			continue
		}
		s.clock = max(s.clock, it.Version.Clock)
		it.Seen = now
		s.items[key{it.Kind, it.Name}] = it
		s.stats.Applied++
		applied = append(applied, *it)
	}
	return applied, err
}

// admissible reports whether the store would apply it now (s.mu held), and
// why not when that is an error; count says whether to count a refusal
// (the first pass does; the second counts only what changed in between).
func (s *Store) admissible(it *Item, count bool) (bool, error) {
	if it.Version.Clock > s.clock && it.Version.Clock-s.clock > MaxClockJump {
		if count {
			s.stats.Bad++
		}
		return false, fmt.Errorf("%w: %s/%s at %v, this node's clock %d", ErrClockJump, it.Kind, it.Name, it.Version, s.clock)
	}
	cur, ok := s.items[key{it.Kind, it.Name}]
	if ok && !it.Version.Newer(cur.Version) || s.expired(it) {
		s.stats.Stale++
		return false, nil
	}
	if !ok && len(s.items) >= s.opts.MaxItems {
		return false, ErrFull
	}
	return true, nil
}

// expired reports whether it is a live item that Options.Expired retires.
func (s *Store) expired(it *Item) bool {
	return s.opts.Expired != nil && !it.Deleted && s.opts.Expired(*it)
}

// gc drops tombstones older than TombstoneTTL and expired items.
func (s *Store) gc() {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, it := range s.items {
		if it.Deleted && now.Sub(it.Seen) > s.opts.TombstoneTTL || s.expired(it) {
			delete(s.items, k)
		}
	}
}
