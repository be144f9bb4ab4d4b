package cachestore

// RouteStats is one route's share of the store. Hits and misses are the
// cache policy's to count; the store knows what it holds and what left.
type RouteStats struct {
	// Entries and Bytes are the variants and weight held now.
	Entries int64
	Bytes   int64
	// Evictions counts, since the store was created, the entries that left
	// it, by reason; every Reason is present.
	Evictions map[Reason]uint64
}

// Stats returns every route the store has seen, including those holding
// nothing now, whose eviction counts still matter to a metrics exporter.
func (s *Store) Stats() map[string]RouteStats {
	routes := s.ix.snapshot()
	out := make(map[string]RouteStats, len(routes))
	for name, r := range routes {
		r.mu.Lock()
		st := RouteStats{Entries: r.entries, Bytes: r.bytes, Evictions: make(map[Reason]uint64, len(reasons))}
		for i, reason := range reasons {
			st.Evictions[reason] = r.evicted[i]
		}
		r.mu.Unlock()
		out[name] = st
	}
	return out
}
