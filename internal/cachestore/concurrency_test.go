package cachestore

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentOperations runs lookups, puts, deletes, purges and stats
// from many goroutines over a small key space (so they collide), under a
// byte bound small enough to evict, then checks the store is consistent.
func TestConcurrentOperations(t *testing.T) {
	const (
		goroutines = 16
		ops        = 3000
		maxBytes   = 64 << 10
		maxEntry   = 4 << 10
	)
	clk := newFakeClock()
	var evicted atomic.Int64
	s := New(Options{
		MaxBytes: maxBytes, MaxEntryBytes: maxEntry, MaxVariants: 3, Now: clk.Now,
		OnEvict: func(string, int64, Reason) { evicted.Add(1) },
	})
	defer s.Close()
	routes := []string{"api", "web", "img"}
	var wg sync.WaitGroup
	var hits atomic.Int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for range ops {
				route := routes[r.IntN(len(routes))]
				path := "/p" + itoa(r.IntN(20))
				key := route + path
				switch op := r.IntN(100); {
				case op < 60:
					if e, ok := s.Lookup(key, nil); ok {
						// Readers may use what they got while writers replace it.
						if e.Key != key || len(e.Body) > maxEntry {
							t.Errorf("lookup %q got %q", key, e.Key)
						}
						hits.Add(1)
					}
				case op < 85:
					e := entry(route, path, r.IntN(3000))
					e.TTL = time.Duration(1+r.IntN(60)) * time.Second
					s.Put(key, "v"+itoa(r.IntN(4)), e)
				case op < 90:
					s.Delete(key)
				case op < 93:
					s.PurgeExact(route, path)
				case op < 96:
					s.PurgePrefix(route, "/p1")
				case op < 97:
					s.PurgeRoute(route)
				case op < 98:
					if r.IntN(10) == 0 {
						s.PurgeAll()
					}
				case op < 99:
					clk.Advance(time.Second)
				default:
					_ = s.Stats()
				}
			}
		}()
	}
	wg.Wait()
	checkConsistent(t, s)
	if _, held := s.Held(); held > maxBytes {
		t.Fatalf("quiet store holds %d bytes", held)
	}
	if hits.Load() == 0 || evicted.Load() == 0 {
		t.Fatalf("hits %d evictions %d: the test did not exercise the store", hits.Load(), evicted.Load())
	}
	// Everything left can still be purged, and the accounting reaches zero.
	s.PurgeAll()
	checkConsistent(t, s)
	if n, b := s.Held(); n != 0 || b != 0 {
		t.Fatalf("after PurgeAll: %d entries %d bytes", n, b)
	}
}
