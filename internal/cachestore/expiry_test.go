package cachestore

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	clk := newFakeClock()
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, Now: clk.Now, OnEvict: log.hook})
	defer s.Close()
	e := entry("r", "/a", 10)
	e.TTL = 10 * time.Second
	s.Put("k", "", e)
	got, _ := s.Get("k", "")
	if want := t0.Add(10 * time.Second); !got.ExpiresAt().Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", got.ExpiresAt(), want)
	}

	clk.Advance(9 * time.Second)
	s.CleanUp()
	if _, ok := s.Get("k", ""); !ok {
		t.Fatal("gone before its TTL")
	}
	clk.Advance(time.Second)
	if _, ok := s.Get("k", ""); ok {
		t.Fatal("found at its TTL, before any clean-up")
	}
	s.CleanUp()
	if n, b := s.Held(); n != 0 || b != 0 {
		t.Fatalf("holding %d entries %d bytes after expiry", n, b)
	}
	if st := s.Stats()["r"]; st.Evictions[ReasonExpired] != 1 || log.total(ReasonExpired) != 1 {
		t.Fatalf("stats %+v, hook %v", st, log.count)
	}
	checkConsistent(t, s)
}

// TestExpiryOfOneVariant: a variant that expires before the rest of its set
// is hidden at once and released on the key's next write.
func TestExpiryOfOneVariant(t *testing.T) {
	clk := newFakeClock()
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, Now: clk.Now, OnEvict: log.hook})
	defer s.Close()
	short, long := entry("r", "/a", 10), entry("r", "/a", 10)
	short.TTL, long.TTL = 5*time.Second, 20*time.Second
	s.Put("k", "short", short)
	s.Put("k", "long", long)

	clk.Advance(6 * time.Second)
	s.CleanUp()
	if _, ok := s.Get("k", "short"); ok {
		t.Fatal("expired variant still served")
	}
	if _, ok := s.Get("k", "long"); !ok {
		t.Fatal("live variant lost")
	}
	if n, _ := s.Held(); n != 2 {
		t.Fatalf("held %d entries; the expired variant should wait for the key's next write", n)
	}
	s.Put("k", "other", entry("r", "/a", 1))
	if n, _ := s.Held(); n != 2 || log.total(ReasonExpired) != 1 {
		t.Fatalf("after a write: held %d, expired %d", n, log.total(ReasonExpired))
	}
	checkConsistent(t, s)

	clk.Advance(time.Hour)
	s.CleanUp()
	if n, _ := s.Held(); n != 0 || log.total(ReasonExpired) != 3 {
		t.Fatalf("after the set's expiry: held %d, expired %d", n, log.total(ReasonExpired))
	}
	checkConsistent(t, s)
}

// TestPutOverExpiredSet: a Put over a set that has expired but that otter
// has not removed yet reports the old variants as expired, not replaced.
func TestPutOverExpiredSet(t *testing.T) {
	clk := newFakeClock()
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, Now: clk.Now, OnEvict: log.hook})
	defer s.Close()
	e := entry("r", "/a", 10)
	e.TTL = time.Second
	s.Put("k", "v", e)
	s.Put("k", "w", e)
	clk.Advance(2 * time.Second)
	s.Put("k", "v", entry("r", "/a", 3))
	if got, ok := s.Get("k", "v"); !ok || len(got.Body) != 3 {
		t.Fatal("new entry not stored")
	}
	if log.total(ReasonExpired) != 2 || log.total(ReasonReplaced) != 0 {
		t.Fatalf("evictions %v", log.count)
	}
	if n, _ := s.Held(); n != 1 {
		t.Fatalf("held %d", n)
	}
	checkConsistent(t, s)
}

// TestExpiryRealClock: with the default clock, otter's periodic clean-up
// removes an expired entry without any call to the store.
func TestExpiryRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for otter's one-second tick")
	}
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, OnEvict: log.hook})
	defer s.Close()
	e := entry("r", "/a", 10)
	e.TTL = 50 * time.Millisecond
	s.Put("k", "", e)
	deadline := time.Now().Add(5 * time.Second)
	for log.total(ReasonExpired) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not expired after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := s.Held(); n != 0 {
		t.Fatalf("held %d", n)
	}
}
