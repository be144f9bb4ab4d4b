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
package replica

import (
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
	Expired      func(it Item) bool
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
	s.clock++
	it := &Item{Kind: kind, Name: name, Value: append([]byte(nil), value...), Deleted: deleted,
		Version: Version{Clock: s.clock, Node: s.opts.Node}, Seen: s.opts.Clock.Now()}
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

// apply stores the items that are newer than what the store holds and
// advances the Lamport clock past every version seen. It returns copies of
// the items it stored.
func (s *Store) apply(items []*Item) (applied []Item, err error) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if it.Version.Clock > s.clock {
			if it.Version.Clock-s.clock > MaxClockJump {
				s.stats.Bad++
				err = fmt.Errorf("%w: %s/%s at %v, this node's clock %d", ErrClockJump, it.Kind, it.Name, it.Version, s.clock)
				continue
			}
			s.clock = it.Version.Clock
		}
		k := key{it.Kind, it.Name}
		cur, ok := s.items[k]
		if ok && !it.Version.Newer(cur.Version) || s.expired(it) {
			s.stats.Stale++
			continue
		}
		if !ok && len(s.items) >= s.opts.MaxItems {
			err = ErrFull
			continue
		}
		it.Seen = now
		s.items[k] = it
		s.stats.Applied++
		applied = append(applied, *it)
	}
	return applied, err
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
