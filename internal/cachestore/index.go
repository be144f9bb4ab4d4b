package cachestore

import (
	"strings"
	"sync"
	"sync/atomic"
)

// index maps route → path → primary keys, for purges, and keeps the byte and
// entry accounting. It is updated only inside otter's per-key critical
// sections (the store's Compute functions and otter's atomic deletion
// callback), so for any one primary key it changes in the same order as the
// cache itself and never disagrees with it once the key's lock is released.
type index struct {
	mu     sync.RWMutex
	routes map[string]*routeIndex

	// bytes and entries total every route; bytes is what Put compares with
	// MaxBytes.
	bytes   atomic.Int64
	entries atomic.Int64
}

// routeIndex is one route's share of the index and its counters. Routes are
// never dropped: their eviction counters are cumulative.
type routeIndex struct {
	mu sync.Mutex
	// paths holds, per path, the primary keys with variants on that path.
	paths   map[string]pathKeys
	entries int64
	bytes   int64
	evicted [len(reasons)]uint64
}

// pathKeys counts the variants of each primary key on one path. Most paths
// have one primary key (one method, one scope), which a short slice holds
// more compactly than a map; a path with many (many consumer scopes, or
// every entry stored without a Path) moves to a map so that a write stays
// O(1).
type pathKeys struct {
	few  []primaryRef
	many map[string]int32
}

type primaryRef struct {
	key      string
	variants int32
}

// maxFew is the most primary keys a path keeps in its slice.
const maxFew = 8

func (p *pathKeys) add(key string) {
	if p.many != nil {
		p.many[key]++
		return
	}
	for i := range p.few {
		if p.few[i].key == key {
			p.few[i].variants++
			return
		}
	}
	if len(p.few) < maxFew {
		p.few = append(p.few, primaryRef{key: key, variants: 1})
		return
	}
	p.many = make(map[string]int32, 2*maxFew)
	for _, ref := range p.few {
		p.many[ref.key] = ref.variants
	}
	p.many[key] = 1
	p.few = nil
}

// remove takes one variant of key off the path and reports whether the
// path has no keys left.
func (p *pathKeys) remove(key string) (empty bool) {
	if p.many != nil {
		if p.many[key]--; p.many[key] <= 0 {
			delete(p.many, key)
		}
		return len(p.many) == 0
	}
	for i := range p.few {
		if p.few[i].key != key {
			continue
		}
		if p.few[i].variants--; p.few[i].variants == 0 {
			last := len(p.few) - 1
			p.few[i] = p.few[last]
			p.few[last] = primaryRef{} // drop the string for the GC
			p.few = p.few[:last]
		}
		break
	}
	return len(p.few) == 0
}

// appendKeys appends the path's primary keys to dst.
func (p *pathKeys) appendKeys(dst []string) []string {
	for _, ref := range p.few {
		dst = append(dst, ref.key)
	}
	for k := range p.many {
		dst = append(dst, k)
	}
	return dst
}

func newIndex() *index {
	return &index{routes: make(map[string]*routeIndex)}
}

// route returns the route's index, creating it on first use.
func (ix *index) route(name string) *routeIndex {
	ix.mu.RLock()
	r := ix.routes[name]
	ix.mu.RUnlock()
	if r != nil {
		return r
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if r = ix.routes[name]; r == nil {
		r = &routeIndex{paths: make(map[string]pathKeys)}
		ix.routes[name] = r
	}
	return r
}

// lookup returns the route's index, or nil if the route was never seen, so
// that purging an unknown route does not create it.
func (ix *index) lookup(name string) *routeIndex {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.routes[name]
}

// snapshot returns the routes known now.
func (ix *index) snapshot() map[string]*routeIndex {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string]*routeIndex, len(ix.routes))
	for k, v := range ix.routes {
		out[k] = v
	}
	return out
}

// add accounts for a variant that has just been stored.
func (ix *index) add(e *Entry) {
	r := ix.route(e.Route)
	r.mu.Lock()
	keys := r.paths[e.Path]
	keys.add(e.Key)
	r.paths[e.Path] = keys
	r.entries++
	r.bytes += e.weight
	r.mu.Unlock()
	ix.entries.Add(1)
	ix.bytes.Add(e.weight)
}

// remove accounts for a variant that has just left the store for reason.
func (ix *index) remove(e *Entry, reason Reason) {
	r := ix.route(e.Route)
	r.mu.Lock()
	if keys, ok := r.paths[e.Path]; ok {
		if keys.remove(e.Key) {
			delete(r.paths, e.Path)
		} else {
			r.paths[e.Path] = keys
		}
	}
	r.entries--
	r.bytes -= e.weight
	r.evicted[reason.index()]++
	r.mu.Unlock()
	ix.entries.Add(-1)
	ix.bytes.Add(-e.weight)
}

// collect returns the primary keys of route r with a variant on a path that
// match accepts. It scans the route's paths under the route's lock only, so
// a purge costs O(paths of that route) and blocks no other route; the
// matching entries are removed afterwards, outside the lock.
func (r *routeIndex) collect(match func(path string) bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for path, pk := range r.paths {
		if match(path) {
			keys = pk.appendKeys(keys)
		}
	}
	return keys
}

// collectExact is collect for one path, without the scan.
func (r *routeIndex) collectExact(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	pk := r.paths[path]
	return pk.appendKeys(nil)
}

func hasPrefix(prefix string) func(string) bool {
	return func(path string) bool { return strings.HasPrefix(path, prefix) }
}

func anyPath(string) bool { return true }
