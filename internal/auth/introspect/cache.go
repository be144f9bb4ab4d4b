package introspect

// evictSample is how many entries a full cache looks at to choose one to
// evict: enough to usually find an expired or short-lived one, few enough
// to keep inserting O(1).
const evictSample = 8

// store caches e under k, evicting first if the cache is full. Called with
// i.mu held.
func (i *Introspector) store(k key, e entry) {
	if _, ok := i.cache[k]; !ok && len(i.cache) >= i.o.MaxEntries {
		i.evict()
	}
	i.cache[k] = e
}

// evict deletes, among a few entries sampled by Go's randomized map
// iteration order, the one that expires first. Exact LRU would need a
// list touched, under the lock, on every cache hit.
func (i *Introspector) evict() {
	var victim key
	var found bool
	var soonest entry
	n := 0
	for k, e := range i.cache {
		if !found || e.until.Before(soonest.until) {
			victim, soonest, found = k, e, true
		}
		if n++; n == evictSample {
			break
		}
	}
	if found {
		delete(i.cache, victim)
		i.evictions++
	}
}

// CacheStats reports the answers cached and those evicted to make room
// (the cache is keyed by client-supplied tokens: its bound is MaxEntries).
func (i *Introspector) CacheStats() (entries int, evictions uint64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.cache), i.evictions
}
