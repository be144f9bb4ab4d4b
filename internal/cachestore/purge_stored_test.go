package cachestore

import (
	"testing"
	"time"
)

// A purge bounded by a time removes what was stored at or before it and
// keeps what was stored after, whatever the mode, and applied again it
// removes nothing more: a late or repeated purge spares newer responses.
func TestPurgeStoredBy(t *testing.T) {
	modes := []struct {
		name  string
		purge func(s *Store, by time.Time) int
	}{
		{"exact", func(s *Store, by time.Time) int { return s.PurgeExactStoredBy("api", "/a", by) }},
		{"prefix", func(s *Store, by time.Time) int { return s.PurgePrefixStoredBy("api", "/a", by) }},
		{"route", func(s *Store, by time.Time) int { return s.PurgeRouteStoredBy("api", by) }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			clk := newFakeClock()
			s := New(Options{MaxBytes: 1 << 20, Now: clk.Now})
			defer s.Close()
			s.Put("api /a", "old", entry("api", "/a", 10))
			s.Put("web /a", "old", entry("web", "/a", 10))
			clk.Advance(time.Second)
			purgeTime := clk.Now() // stored exactly then: "at or before"
			s.Put("api /a", "at", entry("api", "/a", 10))
			clk.Advance(time.Nanosecond)
			s.Put("api /a", "new", entry("api", "/a", 10))

			if n := m.purge(s, purgeTime); n != 2 {
				t.Fatalf("purged %d, want the old and the one stored at the purge's time", n)
			}
			for _, v := range []string{"old", "at"} {
				if _, ok := s.Get("api /a", v); ok {
					t.Errorf("variant %q stored by the purge's time survived", v)
				}
			}
			e, ok := s.Get("api /a", "new")
			if !ok {
				t.Fatal("the variant stored after the purge's time is gone")
			}
			if !e.StoredAt().Equal(purgeTime.Add(time.Nanosecond)) {
				t.Errorf("StoredAt = %v, want %v", e.StoredAt(), purgeTime.Add(time.Nanosecond))
			}
			if _, ok := s.Get("web /a", "old"); !ok {
				t.Error("another route's entry is gone")
			}
			if n := m.purge(s, purgeTime); n != 0 {
				t.Errorf("applied again: purged %d more", n)
			}
			checkConsistent(t, s)
		})
	}
}
