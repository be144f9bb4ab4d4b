package cachestore

import (
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// Store is the response store: byte-bounded, TTL-expiring, purgeable by
// route and path. It is safe for concurrent use.
type Store struct {
	cache   *otter.Cache[string, *variants]
	ix      *index
	lim     limits
	now     func() int64
	onEvict func(route string, bytes int64, reason Reason)
}

// New returns an empty Store. It panics if o.MaxBytes is not positive: that
// is a configuration error the caller validates first.
func New(o Options) *Store {
	s := &Store{ix: newIndex(), lim: o.limits(), now: o.clock(), onEvict: o.OnEvict}
	s.cache = otter.Must(&otter.Options[string, *variants]{
		MaximumWeight: uint64(s.lim.evictTo),
		Weigher:       func(_ string, v *variants) uint32 { return v.weight },
		// Writing, not accessing: reads must not extend an HTTP response's
		// lifetime, and otter skips read-time expiry work for this kind.
		// SnapshotAtNano is the write's time on the same clock as expiresAt.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *variants]) time.Duration {
			return time.Duration(e.Value.expiresAt - e.SnapshotAtNano)
		}),
		// Atomic, not OnDeletion: it runs inside the removal, so the index
		// and the byte count never lag behind the table (which the byte
		// bound relies on), and it needs no goroutine per eviction.
		OnAtomicDeletion: s.onDeletion,
		Clock:            otterClock{s.now},
	})
	return s
}

// Lookup returns the newest live variant of primary that match accepts (nil
// accepts any). It takes no lock of the store and, when match does not
// allocate, allocates nothing. match runs for each live variant, newest
// first, until one accepts it; no lock is held while it runs.
func (s *Store) Lookup(primary string, match func(e *Entry) bool) (*Entry, bool) {
	got, ok := s.cache.GetEntry(primary)
	if !ok {
		return nil, false
	}
	// otter read its clock for this lookup; reuse it rather than read again.
	now := got.SnapshotAtNano
	for _, e := range got.Value.entries {
		if e.expiresAt <= now {
			continue // expired earlier than its set; released on the key's next write
		}
		if match == nil || match(e) {
			return e, true
		}
	}
	return nil, false
}

// Get returns the live variant of primary stored under secondary.
func (s *Store) Get(primary, secondary string) (*Entry, bool) {
	return s.Lookup(primary, func(e *Entry) bool { return e.Secondary == secondary })
}

// Put stores a copy of e as the variant secondary of primary, replacing the
// variant stored under the same keys, and returns true; or refuses it and
// returns false if e is nil, its TTL is not positive or its weight exceeds
// MaxEntryBytes. After Put the caller must not change e's Header, Body or
// Vary, which the stored copy shares.
//
// Put also drops the set's expired variants, and its oldest ones beyond
// MaxVariants. If the store is then over MaxBytes, Put runs otter's
// maintenance before returning (see the package doc for the bound).
func (s *Store) Put(primary, secondary string, e *Entry) bool {
	return s.Insert(primary, secondary, e) != nil
}

// Insert is Put returning the stored copy of e (nil: refused), which is
// immutable like every stored entry.
func (s *Store) Insert(primary, secondary string, e *Entry) *Entry {
	if e == nil || e.TTL <= 0 {
		return nil
	}
	stored := new(Entry)
	*stored = *e
	stored.Key, stored.Secondary = primary, secondary
	stored.weight = weigh(stored)
	if stored.weight > s.lim.maxEntry {
		return nil
	}
	now := s.now()
	stored.storedAt = now
	stored.expiresAt = now + int64(e.TTL)
	if stored.expiresAt < now { // overflow: a TTL of centuries
		stored.expiresAt = math.MaxInt64
	}

	var removed []eviction
	s.cache.Compute(primary, func(old *variants, found bool) (*variants, otter.ComputeOp) {
		b := setBuilder{ix: s.ix, lim: s.lim, now: now}
		b.ix.add(stored)
		b.keep(stored)
		if found {
			b.carry(old, func(v *Entry) bool { return v.Secondary == secondary }, ReasonReplaced)
		}
		// !found: there was no set, or an expired one, which otter removes
		// with CauseExpiration and onDeletion accounts for.
		removed = b.removed
		return b.set(), otter.WriteOp
	})
	s.notify(removed)

	if s.ix.bytes.Load() > s.lim.maxBytes {
		// Replay the write buffer and evict now rather than on otter's
		// maintenance goroutine, so the store is back under MaxBytes (with
		// one writer) by the time Put returns.
		s.cache.CleanUp()
	}
	return stored
}

// Delete removes every variant of primary and returns how many it removed
// (reason "purged"; expired variants it finds are reported as "expired" and
// not counted).
func (s *Store) Delete(primary string) int {
	return s.remove(primary, func(*Entry) bool { return true })
}

// remove drops the variants of primary that discard selects, reporting them
// as purged, and returns how many.
func (s *Store) remove(primary string, discard func(*Entry) bool) int {
	now := s.now()
	var removed []eviction
	s.cache.Compute(primary, func(old *variants, found bool) (*variants, otter.ComputeOp) {
		if !found {
			return nil, otter.CancelOp
		}
		b := setBuilder{ix: s.ix, lim: s.lim, now: now}
		b.carry(old, discard, ReasonPurged)
		removed = b.removed
		switch {
		case len(b.removed) == 0:
			return old, otter.CancelOp
		case len(b.kept) == 0:
			return nil, otter.InvalidateOp
		default:
			return b.set(), otter.WriteOp
		}
	})
	s.notify(removed)
	n := 0
	for _, r := range removed {
		if r.reason == ReasonPurged {
			n++
		}
	}
	return n
}

// onDeletion is otter's atomic deletion callback: it runs under the key's
// bucket lock as a set leaves the table. Sets that otter removes by itself
// (for size or expiry) are accounted here. Replacements and invalidations
// come only from the store's own Compute functions, which have accounted
// for every variant they dropped, and carried the rest into the new set.
func (s *Store) onDeletion(ev otter.DeletionEvent[string, *variants]) {
	var reason Reason
	switch ev.Cause {
	case otter.CauseOverflow:
		reason = ReasonSize
	case otter.CauseExpiration:
		reason = ReasonExpired
	default:
		return
	}
	if ev.Value == nil {
		return
	}
	for _, e := range ev.Value.entries {
		s.ix.remove(e, reason)
	}
	if s.onEvict != nil {
		for _, e := range ev.Value.entries {
			s.onEvict(e.Route, e.weight, reason)
		}
	}
}

// notify reports removals made under a Compute, once otter's lock is
// released.
func (s *Store) notify(removed []eviction) {
	if s.onEvict == nil {
		return
	}
	for _, r := range removed {
		s.onEvict(r.e.Route, r.e.weight, r.reason)
	}
}

// Held returns how many entries (variants) and bytes (weights) the store
// holds now.
func (s *Store) Held() (entries, bytes int64) {
	return s.ix.entries.Load(), s.ix.bytes.Load()
}

// MaxEntryBytes returns the largest weight Put accepts: a body longer than
// this can never be stored, so it is the natural limit for a [BodyWriter].
func (s *Store) MaxEntryBytes() int64 { return s.lim.maxEntry }

// CleanUp runs otter's pending maintenance now: replays buffered writes,
// removes expired sets and evicts down to MaxBytes. It is never required;
// tests use it after advancing their clock.
func (s *Store) CleanUp() { s.cache.CleanUp() }

// Close stops otter's periodic clean-up goroutine (which otherwise stops by
// itself once the Store is unreachable). The Store still works afterwards,
// with expired sets removed only by writes and reads.
func (s *Store) Close() { s.cache.StopAllGoroutines() }
