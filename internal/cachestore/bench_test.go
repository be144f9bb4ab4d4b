package cachestore

import (
	"net/http"
	"testing"
	"time"
)

func benchStore(b *testing.B, keys int) (*Store, []string) {
	b.Helper()
	s := New(Options{MaxBytes: 1 << 30})
	b.Cleanup(s.Close)
	names := make([]string, keys)
	for i := range names {
		names[i] = "GET example.com/item/" + itoa(i)
		for _, enc := range []string{"br", "gzip"} {
			e := entry("api", "/item/"+itoa(i), 2048)
			e.Vary = []string{"Accept-Encoding"}
			if !s.Put(names[i], enc, e) {
				b.Fatal("Put refused")
			}
		}
	}
	s.CleanUp()
	return s, names
}

// BenchmarkLookupHit: a hit whose match function reads the request, as the
// cache policy's will.
func BenchmarkLookupHit(b *testing.B) {
	s, names := benchStore(b, 1024)
	req := http.Header{"Accept-Encoding": {"gzip"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e, ok := s.Lookup(names[i&1023], func(e *Entry) bool {
			return e.Secondary == req.Get(e.Vary[0])
		})
		if !ok || e.Secondary != "gzip" {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLookupHitParallel(b *testing.B) {
	s, names := benchStore(b, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := s.Get(names[i&1023], "br"); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkLookupMiss(b *testing.B) {
	s, _ := benchStore(b, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Get("GET example.com/absent", ""); ok {
			b.Fatal("hit")
		}
	}
}

// BenchmarkPut replaces variants of a working set that fits, of one that
// does not (every Put evicts), and of one whose keys all share a path (many
// consumer scopes, or no Path at all).
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name      string
		maxBytes  int64
		sharePath bool
	}{{"fits", 1 << 30, false}, {"evicting", 1 << 20, false}, {"one path", 1 << 30, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Options{MaxBytes: bc.maxBytes})
			b.Cleanup(s.Close)
			entries := make([]*Entry, 4096)
			for i := range entries {
				path := "/item/" + itoa(i)
				if bc.sharePath {
					path = "/item"
				}
				entries[i] = entry("api", path, 2048)
				entries[i].Key = "GET example.com/item/" + itoa(i)
				entries[i].TTL = time.Hour
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := entries[i&4095]
				s.Put(e.Key, "gzip", e)
			}
		})
	}
}

func BenchmarkBodyWriter(b *testing.B) {
	piece := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(64 << 10)
	for b.Loop() {
		w := NewWriter(1 << 20)
		for range 16 {
			w.Write(piece)
		}
		if _, ok := w.Bytes(); !ok {
			b.Fatal("overflow")
		}
	}
}
