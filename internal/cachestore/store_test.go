package cachestore

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
	"unsafe"
)

func TestWeight(t *testing.T) {
	base := int64(EntryOverhead)
	tests := []struct {
		name               string
		primary, secondary string
		e                  Entry
		want               int64
	}{
		{"empty", "", "", Entry{}, base},
		{"keys and names", "GET /a", "gzip", Entry{Route: "api", Path: "/a"}, base + 6 + 4 + 3 + 2},
		{"body counts cap", "", "", Entry{Body: make([]byte, 10, 100)}, base + 100},
		{
			"headers", "", "",
			Entry{Header: http.Header{"A": {"xy", "z"}, "Bb": {}}},
			base + (1 + HeaderFieldOverhead + 2 + HeaderValueOverhead + 1 + HeaderValueOverhead) + (2 + HeaderFieldOverhead),
		},
		{"vary", "", "", Entry{Vary: []string{"accept-encoding"}}, base + 15 + HeaderValueOverhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			e.Key, e.Secondary = tt.primary, tt.secondary
			if got := weigh(&e); got != tt.want {
				t.Fatalf("weigh = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEntryOverheadCoversTheStruct(t *testing.T) {
	if size := unsafe.Sizeof(Entry{}); EntryOverhead < size+100 {
		t.Fatalf("EntryOverhead %d no longer covers Entry (%d bytes) plus otter's node", EntryOverhead, size)
	}
}

// sized returns an entry whose weight under primary/secondary is exactly w.
func sized(t *testing.T, primary, secondary string, w int64) *Entry {
	t.Helper()
	e := entry("r", "/p", 0)
	probe := *e
	probe.Key, probe.Secondary = primary, secondary
	body := w - weigh(&probe)
	if body < 0 {
		t.Fatalf("weight %d below the fixed cost %d", w, weigh(&probe))
	}
	e.Body = make([]byte, body)
	return e
}

func TestPutRefuses(t *testing.T) {
	const maxEntry = 4096
	tests := []struct {
		name  string
		entry func(t *testing.T) *Entry
		want  bool
	}{
		{"nil", func(*testing.T) *Entry { return nil }, false},
		{"zero TTL", func(*testing.T) *Entry { e := entry("r", "/p", 1); e.TTL = 0; return e }, false},
		{"negative TTL", func(*testing.T) *Entry { e := entry("r", "/p", 1); e.TTL = -time.Second; return e }, false},
		{"at MaxEntryBytes", func(t *testing.T) *Entry { return sized(t, "k", "s", maxEntry) }, true},
		{"one byte over", func(t *testing.T) *Entry { return sized(t, "k", "s", maxEntry+1) }, false},
		{"far over", func(t *testing.T) *Entry { return entry("r", "/p", 1<<20) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{MaxBytes: 1 << 20, MaxEntryBytes: maxEntry})
			defer s.Close()
			if got := s.Put("k", "s", tt.entry(t)); got != tt.want {
				t.Fatalf("Put = %v, want %v", got, tt.want)
			}
			_, found := s.Get("k", "s")
			if found != tt.want {
				t.Fatalf("Get found = %v after Put returned %v", found, tt.want)
			}
			checkConsistent(t, s)
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		o                Options
		maxEntry, maxSet int64
		maxVariants      int
	}{
		{Options{MaxBytes: 800}, 100, 750, DefaultMaxVariants}, // a set as large as the store evicts down to
		{Options{MaxBytes: 800, MaxEntryBytes: 5000, MaxVariants: 3}, 750, 750, 3},
		{Options{MaxBytes: 1 << 40, MaxEntryBytes: 1 << 40}, 1<<32 - 1, 1<<32 - 1, DefaultMaxVariants},
	}
	for _, tt := range tests {
		l := tt.o.limits()
		if l.maxEntry != tt.maxEntry || l.maxSet != tt.maxSet || l.maxVariants != tt.maxVariants {
			t.Errorf("%+v: limits %+v", tt.o, l)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New with MaxBytes 0 did not panic")
		}
	}()
	New(Options{})
}

func TestPutStoresACopy(t *testing.T) {
	s := New(Options{MaxBytes: 1 << 20})
	defer s.Close()
	e := entry("api", "/a", 10)
	e.Key = "ignored"
	if !s.Put("GET /a", "", e) {
		t.Fatal("Put refused")
	}
	got, ok := s.Get("GET /a", "")
	if !ok || got == e {
		t.Fatalf("Get = %p, %v; want a stored copy of %p", got, ok, e)
	}
	if got.Key != "GET /a" || e.Key != "ignored" || e.weight != 0 {
		t.Fatalf("Put changed the caller's entry or did not set Key: %q %q", got.Key, e.Key)
	}
	if got.Weight() != weigh(got) || !got.ExpiresAt().After(time.Now()) {
		t.Fatalf("stored entry weight %d expires %v", got.Weight(), got.ExpiresAt())
	}
}

func TestVariants(t *testing.T) {
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, OnEvict: log.hook})
	defer s.Close()
	const primary = "GET example.com/doc"
	encodings := []string{"gzip", "br", "identity"}
	for _, enc := range encodings {
		e := entry("api", "/doc", 100)
		e.Vary = []string{"Accept-Encoding"}
		e.Header = http.Header{"Content-Encoding": {enc}}
		if !s.Put(primary, "accept-encoding="+enc, e) {
			t.Fatalf("Put %s refused", enc)
		}
	}
	s.Put("GET example.com/other", "", entry("api", "/other", 1))

	for _, enc := range encodings {
		got, ok := s.Get(primary, "accept-encoding="+enc)
		if !ok || got.Header.Get("Content-Encoding") != enc {
			t.Fatalf("Get(%s) = %v, %v", enc, got, ok)
		}
		// The match function a policy would use: recompute the secondary
		// key from the request for the variant's Vary list.
		req := http.Header{"Accept-Encoding": {enc}}
		got, ok = s.Lookup(primary, func(e *Entry) bool {
			return e.Secondary == "accept-encoding="+req.Get(e.Vary[0])
		})
		if !ok || got.Header.Get("Content-Encoding") != enc {
			t.Fatalf("Lookup(%s) = %v, %v", enc, got, ok)
		}
	}
	if _, ok := s.Get(primary, "accept-encoding=zstd"); ok {
		t.Fatal("found a variant that was never stored")
	}
	if got, _ := s.Lookup(primary, nil); got.Header.Get("Content-Encoding") != "identity" {
		t.Fatalf("Lookup(nil) = %v, want the newest variant", got.Header)
	}

	// Replacing one variant keeps the others.
	old, _ := s.Get(primary, "accept-encoding=br")
	s.Put(primary, "accept-encoding=br", entry("api", "/doc", 7))
	if got, _ := s.Get(primary, "accept-encoding=br"); got == old || len(got.Body) != 7 {
		t.Fatal("variant not replaced")
	}
	if len(old.Body) != 100 {
		t.Fatal("a replaced entry changed under its reader")
	}
	if st := s.Stats()["api"]; st.Entries != 4 || st.Evictions[ReasonReplaced] != 1 {
		t.Fatalf("stats after replace: %+v", st)
	}
	checkConsistent(t, s)

	if n := s.Delete(primary); n != 3 {
		t.Fatalf("Delete = %d, want 3", n)
	}
	for _, enc := range encodings {
		if _, ok := s.Get(primary, "accept-encoding="+enc); ok {
			t.Fatalf("%s survived Delete", enc)
		}
	}
	if _, ok := s.Get("GET example.com/other", ""); !ok {
		t.Fatal("Delete removed another key")
	}
	if n := s.Delete(primary); n != 0 {
		t.Fatalf("second Delete = %d", n)
	}
	st := s.Stats()["api"]
	if st.Entries != 1 || st.Evictions[ReasonPurged] != 3 || st.Evictions[ReasonReplaced] != 1 {
		t.Fatalf("stats after Delete: %+v", st)
	}
	if log.total(ReasonPurged) != 3 || log.total(ReasonReplaced) != 1 {
		t.Fatalf("OnEvict log %v", log.count)
	}
	checkConsistent(t, s)
}

func TestMaxVariantsDropsTheOldest(t *testing.T) {
	log := newEvictLog()
	s := New(Options{MaxBytes: 1 << 20, MaxVariants: 2, OnEvict: log.hook})
	defer s.Close()
	for _, v := range []string{"a", "b", "c"} {
		s.Put("k", v, entry("r", "/k", 1))
	}
	for v, want := range map[string]bool{"a": false, "b": true, "c": true} {
		if _, ok := s.Get("k", v); ok != want {
			t.Errorf("variant %s present = %v, want %v", v, ok, want)
		}
	}
	if log.total(ReasonSize) != 1 {
		t.Fatalf("evictions %v, want one for size", log.count)
	}
	checkConsistent(t, s)
}

// TestByteBoundSequential: with one writer, the store holds at most MaxBytes
// whenever Put has returned, and its accounting matches otter's.
func TestByteBoundSequential(t *testing.T) {
	const maxBytes = 64 << 10
	tests := []struct {
		name     string
		maxEntry int64
		bodies   func(r *rand.Rand) int
		keys     int
	}{
		{"small bodies many keys", 2 << 10, func(r *rand.Rand) int { return r.IntN(1500) }, 1000},
		{"mixed sizes", 16 << 10, func(r *rand.Rand) int { return r.IntN(15 << 10) }, 200},
		{"large bodies few keys", 32 << 10, func(r *rand.Rand) int { return 8<<10 + r.IntN(20<<10) }, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newEvictLog()
			s := New(Options{MaxBytes: maxBytes, MaxEntryBytes: tt.maxEntry, OnEvict: log.hook})
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 2))
			var stored, refused int
			for i := range 3000 {
				key := "GET /k" + itoa(r.IntN(tt.keys))
				e := entry("r"+itoa(i%3), "/k", tt.bodies(r))
				if !s.Put(key, itoa(r.IntN(3)), e) {
					refused++
					continue
				}
				stored++
				if _, held := s.Held(); held > maxBytes {
					t.Fatalf("put %d: holding %d bytes, max %d", i, held, maxBytes)
				}
			}
			if ws := s.cache.WeightedSize(); ws > maxBytes {
				t.Fatalf("otter weighs %d, max %d", ws, maxBytes)
			}
			if log.total(ReasonSize) == 0 {
				t.Fatal("no size evictions: the test did not fill the store")
			}
			var statEntries int64
			for _, st := range s.Stats() {
				statEntries += st.Entries
			}
			if e, _ := s.Held(); statEntries != e {
				t.Fatalf("stats total %d entries, Held %d", statEntries, e)
			}
			t.Logf("stored %d refused %d, size evictions %d", stored, refused, log.total(ReasonSize))
			checkConsistent(t, s)
		})
	}
}

// TestByteBoundConcurrent: with W writers, an observation right after a Put
// returns sees at most MaxBytes plus the other writers' in-flight entries,
// and the store is back under MaxBytes when they stop.
func TestByteBoundConcurrent(t *testing.T) {
	const (
		maxBytes = 128 << 10
		maxEntry = 8 << 10
		writers  = 8
	)
	s := New(Options{MaxBytes: maxBytes, MaxEntryBytes: maxEntry})
	defer s.Close()
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 2000 {
				s.Put("k"+itoa(r.IntN(500)), "", entry("r", "/p", r.IntN(maxEntry-EntryOverhead-100)))
				if _, held := s.Held(); held > maxBytes+(writers-1)*maxEntry {
					done <- errorf("writer %d put %d: %d bytes held", w, i, held)
					return
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s.CleanUp()
	if _, held := s.Held(); held > maxBytes {
		t.Fatalf("quiet store holds %d bytes, max %d", held, maxBytes)
	}
	checkConsistent(t, s)
}

// TestEvictionReasons: OnEvict and Stats agree, per reason, on what left.
func TestEvictionReasons(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		run  func(s *Store, clk *fakeClock)
		want map[Reason]uint64
	}{
		{"replaced", Options{}, func(s *Store, _ *fakeClock) {
			s.Put("k", "v", entry("r", "/k", 1))
			s.Put("k", "v", entry("r", "/k", 2))
		}, map[Reason]uint64{ReasonReplaced: 1}},
		{"purged", Options{}, func(s *Store, _ *fakeClock) {
			s.Put("k", "a", entry("r", "/k", 1))
			s.Put("k", "b", entry("r", "/k", 1))
			s.Delete("k")
		}, map[Reason]uint64{ReasonPurged: 2}},
		{"expired", Options{}, func(s *Store, clk *fakeClock) {
			s.Put("k", "a", entry("r", "/k", 1))
			s.Put("j", "a", entry("r", "/j", 1))
			clk.Advance(2 * time.Hour)
			s.CleanUp()
		}, map[Reason]uint64{ReasonExpired: 2}},
		{"size by variants", Options{MaxVariants: 1}, func(s *Store, _ *fakeClock) {
			s.Put("k", "a", entry("r", "/k", 1))
			s.Put("k", "b", entry("r", "/k", 1))
		}, map[Reason]uint64{ReasonSize: 1}},
		{"size by bytes", Options{MaxBytes: 10 * 1024, MaxEntryBytes: 1024}, func(s *Store, _ *fakeClock) {
			for i := range 100 {
				s.Put("k"+itoa(i), "", entry("r", "/k", 400))
			}
		}, nil}, // checked below: every entry not held was evicted for size
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newEvictLog()
			clk := newFakeClock()
			o := tt.opts
			if o.MaxBytes == 0 {
				o.MaxBytes = 1 << 20
			}
			o.Now, o.OnEvict = clk.Now, log.hook
			s := New(o)
			defer s.Close()
			tt.run(s, clk)
			s.CleanUp()
			st := s.Stats()["r"]
			want := tt.want
			if want == nil {
				want = map[Reason]uint64{ReasonSize: uint64(100 - st.Entries)}
				if st.Entries == 0 || st.Entries == 100 {
					t.Fatalf("%d entries held", st.Entries)
				}
			}
			for _, reason := range reasons {
				if st.Evictions[reason] != want[reason] || log.count["r"][reason] != want[reason] {
					t.Errorf("%s: stats %d, OnEvict %d, want %d", reason, st.Evictions[reason], log.count["r"][reason], want[reason])
				}
			}
			checkConsistent(t, s)
		})
	}
}

// Insert is Put that returns the stored copy: keyed, weighed, not e.
func TestInsertReturnsTheStoredCopy(t *testing.T) {
	s := New(Options{MaxBytes: 1 << 20})
	t.Cleanup(s.Close)
	e := entry("r", "/p", 10)
	got := s.Insert("k", "v", e)
	if got == nil || got == e || got.Key != "k" || got.Secondary != "v" || got.Weight() == 0 {
		t.Fatalf("Insert = %+v", got)
	}
	if cur, ok := s.Get("k", "v"); !ok || cur != got {
		t.Fatalf("Get = %p, want %p", cur, got)
	}
	if e.Key != "" || e.Weight() != 0 {
		t.Error("Insert changed its argument")
	}
	if s.Insert("k", "", &Entry{}) != nil {
		t.Error("an entry without TTL inserted")
	}
}
