package cachestore

import (
	"slices"
	"testing"
)

// purgeFixture stores, per route, entries on several paths; "/a" has two
// variants. Keys are "route path" (secondaries "v1", "v2").
func purgeFixture(t *testing.T, s *Store) {
	t.Helper()
	for _, route := range []string{"api", "web"} {
		for _, path := range []string{"/a", "/a/b", "/a/c", "/ab", "/b", ""} {
			if !s.Put(route+" "+path, "v1", entry(route, path, 10)) {
				t.Fatal("Put refused")
			}
		}
		s.Put(route+" /a", "v2", entry(route, "/a", 10))
	}
}

func present(s *Store) []string {
	var keys []string
	for _, route := range []string{"api", "web"} {
		for _, path := range []string{"/a", "/a/b", "/a/c", "/ab", "/b", ""} {
			for _, v := range []string{"v1", "v2"} {
				if _, ok := s.Get(route+" "+path, v); ok {
					keys = append(keys, route+" "+path+" "+v)
				}
			}
		}
	}
	return keys
}

func TestPurge(t *testing.T) {
	all := func() []string {
		s := New(Options{MaxBytes: 1 << 20})
		defer s.Close()
		purgeFixture(t, s)
		return present(s)
	}()
	if len(all) != 14 {
		t.Fatalf("fixture holds %d entries: %v", len(all), all)
	}
	without := func(gone ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(gone, k) })
	}
	tests := []struct {
		name  string
		purge func(s *Store) int
		gone  []string
	}{
		{"exact with two variants", func(s *Store) int { return s.PurgeExact("api", "/a") },
			[]string{"api /a v1", "api /a v2"}},
		{"exact one", func(s *Store) int { return s.PurgeExact("web", "/a/b") }, []string{"web /a/b v1"}},
		{"exact empty path", func(s *Store) int { return s.PurgeExact("api", "") }, []string{"api  v1"}},
		{"exact unknown path", func(s *Store) int { return s.PurgeExact("api", "/zzz") }, nil},
		{"exact other route's path", func(s *Store) int { return s.PurgeExact("nope", "/a") }, nil},
		{"prefix is a string prefix", func(s *Store) int { return s.PurgePrefix("api", "/a") },
			[]string{"api /a v1", "api /a v2", "api /a/b v1", "api /a/c v1", "api /ab v1"}},
		{"prefix with slash", func(s *Store) int { return s.PurgePrefix("web", "/a/") },
			[]string{"web /a/b v1", "web /a/c v1"}},
		{"prefix none", func(s *Store) int { return s.PurgePrefix("web", "/c") }, nil},
		{"empty prefix is the route", func(s *Store) int { return s.PurgePrefix("web", "") },
			[]string{"web /a v1", "web /a v2", "web /a/b v1", "web /a/c v1", "web /ab v1", "web /b v1", "web  v1"}},
		{"route", func(s *Store) int { return s.PurgeRoute("api") },
			[]string{"api /a v1", "api /a v2", "api /a/b v1", "api /a/c v1", "api /ab v1", "api /b v1", "api  v1"}},
		{"unknown route", func(s *Store) int { return s.PurgeRoute("nope") }, nil},
		{"all", func(s *Store) int { return s.PurgeAll() }, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newEvictLog()
			s := New(Options{MaxBytes: 1 << 20, OnEvict: log.hook})
			defer s.Close()
			purgeFixture(t, s)
			before := s.Stats()
			n := tt.purge(s)
			if n != len(tt.gone) {
				t.Errorf("purge returned %d, want %d", n, len(tt.gone))
			}
			if got, want := present(s), without(tt.gone...); !slices.Equal(got, want) {
				t.Errorf("left %v\nwant %v", got, want)
			}
			after := s.Stats()
			if _, ok := after["nope"]; ok {
				t.Error("purging an unknown route created it")
			}
			for _, route := range []string{"api", "web"} {
				var gone int64
				for _, k := range tt.gone {
					if k[:3] == route {
						gone++
					}
				}
				b, a := before[route], after[route]
				if a.Entries != b.Entries-gone || a.Evictions[ReasonPurged] != uint64(gone) ||
					log.count[route][ReasonPurged] != uint64(gone) {
					t.Errorf("%s: entries %d→%d, purged %d (hook %d), want %d gone",
						route, b.Entries, a.Entries, a.Evictions[ReasonPurged], log.count[route][ReasonPurged], gone)
				}
				if gone == 7 && a.Bytes != 0 {
					t.Errorf("%s: %d bytes left after purging it all", route, a.Bytes)
				}
			}
			checkConsistent(t, s)
		})
	}
}

// TestPurgeKeepsOtherRoutesVariants: a primary key whose variants were
// stored under two routes (a route renamed by a config reload) loses only
// the purged route's variant.
func TestPurgeKeepsOtherRoutesVariants(t *testing.T) {
	s := New(Options{MaxBytes: 1 << 20})
	defer s.Close()
	s.Put("GET /x", "old", entry("before", "/x", 1))
	s.Put("GET /x", "new", entry("after", "/x", 1))
	if n := s.PurgeRoute("before"); n != 1 {
		t.Fatalf("PurgeRoute = %d", n)
	}
	if _, ok := s.Get("GET /x", "new"); !ok {
		t.Fatal("the other route's variant went too")
	}
	if _, ok := s.Get("GET /x", "old"); ok {
		t.Fatal("the purged variant stayed")
	}
	checkConsistent(t, s)
}

// TestPurgeManyKeysOnOnePath: a path shared by many primary keys (consumer
// scopes) moves from the index's slice to its map and back, and is purged
// whole.
func TestPurgeManyKeysOnOnePath(t *testing.T) {
	s := New(Options{MaxBytes: 1 << 20})
	defer s.Close()
	const keys = 3 * maxFew
	for i := range keys {
		s.Put("GET /shared scope="+itoa(i), "", entry("api", "/shared", 1))
		s.Put("GET /shared scope="+itoa(i), "gzip", entry("api", "/shared", 1))
	}
	checkConsistent(t, s)
	for i := range keys - maxFew/2 {
		if n := s.Delete("GET /shared scope=" + itoa(i)); n != 2 {
			t.Fatalf("Delete = %d", n)
		}
		checkConsistent(t, s)
	}
	if n := s.PurgeExact("api", "/shared"); n != maxFew {
		t.Fatalf("PurgeExact = %d, want %d", n, maxFew)
	}
	if st := s.Stats()["api"]; st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkConsistent(t, s)
}
