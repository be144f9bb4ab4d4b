package cachestore

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// evictLog records OnEvict calls.
type evictLog struct {
	mu    sync.Mutex
	count map[string]map[Reason]uint64 // route → reason → entries
	bytes map[Reason]int64
}

func newEvictLog() *evictLog {
	return &evictLog{count: map[string]map[Reason]uint64{}, bytes: map[Reason]int64{}}
}

func (l *evictLog) hook(route string, bytes int64, reason Reason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[route] == nil {
		l.count[route] = map[Reason]uint64{}
	}
	l.count[route][reason]++
	l.bytes[reason] += bytes
}

func (l *evictLog) total(reason Reason) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, m := range l.count {
		n += m[reason]
	}
	return n
}

// entry returns an entry for route/path with a body of n bytes and a TTL of
// one hour.
func entry(route, path string, n int) *Entry {
	return &Entry{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"text/plain"}},
		Body:   make([]byte, n),
		Route:  route,
		Path:   path,
		TTL:    time.Hour,
	}
}

// checkConsistent verifies, on a quiet store, that the index and counters
// agree with what otter holds, and that otter's weight matches.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	s.CleanUp()
	type acc struct {
		entries, bytes int64
		refs           map[string]map[string]int32 // path → key → variants
	}
	want := map[string]*acc{}
	var entries, bytes int64
	for key, set := range s.cache.All() {
		var w int64
		if len(set.entries) == 0 || len(set.entries) > s.lim.maxVariants {
			t.Errorf("key %q: %d variants", key, len(set.entries))
		}
		for _, e := range set.entries {
			if e.Key != key {
				t.Errorf("entry under %q has Key %q", key, e.Key)
			}
			w += e.weight
			a := want[e.Route]
			if a == nil {
				a = &acc{refs: map[string]map[string]int32{}}
				want[e.Route] = a
			}
			a.entries++
			a.bytes += e.weight
			if a.refs[e.Path] == nil {
				a.refs[e.Path] = map[string]int32{}
			}
			a.refs[e.Path][key]++
		}
		if int64(set.weight) != w {
			t.Errorf("key %q: set weight %d, entries weigh %d", key, set.weight, w)
		}
		entries += int64(len(set.entries))
		bytes += w
	}
	if e, b := s.Held(); e != entries || b != bytes {
		t.Errorf("Held() = %d entries %d bytes, table has %d, %d", e, b, entries, bytes)
	}
	if ws := s.cache.WeightedSize(); int64(ws) != bytes {
		t.Errorf("otter WeightedSize = %d, table has %d bytes", ws, bytes)
	}
	for name, r := range s.ix.snapshot() {
		a := want[name]
		if a == nil {
			a = &acc{refs: map[string]map[string]int32{}}
		}
		r.mu.Lock()
		if r.entries != a.entries || r.bytes != a.bytes {
			t.Errorf("route %q: index has %d entries %d bytes, table %d, %d", name, r.entries, r.bytes, a.entries, a.bytes)
		}
		got := map[string]map[string]int32{}
		for path, pk := range r.paths {
			got[path] = map[string]int32{}
			for _, ref := range pk.few {
				got[path][ref.key] += ref.variants
			}
			for k, n := range pk.many {
				got[path][k] += n
			}
			if (len(pk.few) == 0) == (len(pk.many) == 0) {
				t.Errorf("route %q path %q: %d in the slice, %d in the map", name, path, len(pk.few), len(pk.many))
			}
		}
		r.mu.Unlock()
		if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(a.refs)) {
			t.Errorf("route %q: index paths %v, table %v", name, sorted(got), sorted(a.refs))
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("route %q in the table but not in the index", name)
	}
}

func sorted(m map[string]map[string]int32) []string {
	var out []string
	for p, keys := range m {
		for k, n := range keys {
			out = append(out, fmt.Sprintf("%s|%s|%d", p, k, n))
		}
	}
	sort.Strings(out)
	return out
}
