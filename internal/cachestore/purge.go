package cachestore

// Purges remove what the route index lists when they look: an entry stored
// concurrently may survive, as it would had it arrived just after. Each
// returns how many variants it removed (reason "purged"). A purge scans only
// the named route's paths (PurgeExact none), under that route's lock alone,
// then removes the entries one primary key at a time outside it.

// PurgeExact removes the route's entries whose Path is path.
func (s *Store) PurgeExact(route, path string) int {
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	keys := r.collectExact(path)
	return s.purgeKeys(keys, func(e *Entry) bool { return e.Route == route && e.Path == path })
}

// PurgePrefix removes the route's entries whose Path starts with prefix.
func (s *Store) PurgePrefix(route, prefix string) int {
	match := hasPrefix(prefix)
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	keys := r.collect(match)
	return s.purgeKeys(keys, func(e *Entry) bool { return e.Route == route && match(e.Path) })
}

// PurgeRoute removes every entry of the route.
func (s *Store) PurgeRoute(route string) int {
	r := s.ix.lookup(route)
	if r == nil {
		return 0
	}
	keys := r.collect(anyPath)
	return s.purgeKeys(keys, func(e *Entry) bool { return e.Route == route })
}

// PurgeAll removes every entry.
func (s *Store) PurgeAll() int {
	n := 0
	for _, r := range s.ix.snapshot() {
		n += s.purgeKeys(r.collect(anyPath), func(*Entry) bool { return true })
	}
	return n
}

// purgeKeys removes, from each listed primary key, the variants that match
// selects. A key whose variants span several routes or paths keeps the
// others; a key listed twice is harmless, the second pass finds nothing.
func (s *Store) purgeKeys(keys []string, match func(*Entry) bool) int {
	n := 0
	for _, k := range keys {
		n += s.remove(k, match)
	}
	return n
}
