package cachestore

import "time"

// Purges bounded by the time an entry was stored. A purge that travels
// (over the cluster, say) may be applied after it was issued, or applied
// again; bounding it by its own time means a late or repeated application
// removes only what was stored before the purge, never a response fetched
// since, which is already the new content. The bound compares with the
// store's clock ([Options.Now]); which time to pass, given that the purge's
// issuer has another clock, is the caller's choice.

// StoredAt returns when Put stored the entry, on the store's clock. It is
// the zero time for an entry that was not stored.
func (e *Entry) StoredAt() time.Time {
	if e.storedAt == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.storedAt)
}

// PurgeExactStoredBy is [Store.PurgeExact] for the entries stored at or
// before t.
func (s *Store) PurgeExactStoredBy(route, path string, t time.Time) int {
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	by := t.UnixNano()
	return s.purgeKeys(r.collectExact(path), func(e *Entry) bool {
		return e.Route == route && e.Path == path && e.storedAt <= by
	})
}

// PurgePrefixStoredBy is [Store.PurgePrefix] for the entries stored at or
// before t.
func (s *Store) PurgePrefixStoredBy(route, prefix string, t time.Time) int {
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	match, by := hasPrefix(prefix), t.UnixNano()
	return s.purgeKeys(r.collect(match), func(e *Entry) bool {
		return e.Route == route && match(e.Path) && e.storedAt <= by
	})
}

// PurgeRouteStoredBy is [Store.PurgeRoute] for the entries stored at or
// before t.
func (s *Store) PurgeRouteStoredBy(route string, t time.Time) int {
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	by := t.UnixNano()
	return s.purgeKeys(r.collect(anyPath), func(e *Entry) bool {
		return e.Route == route && e.storedAt <= by
	})
}
