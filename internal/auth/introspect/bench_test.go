package introspect

import (
	"context"
	"testing"
	"time"
)

// benchIntrospector has testToken's active answer cached.
func benchIntrospector(b *testing.B) *Introspector {
	p := newIdP(b, answer(active(time.Time{}, "")))
	in, err := New(Options{Endpoint: p.URL, ClientID: testID, ClientSecret: testSecret, CacheMax: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(in.Close)
	if _, err := in.Introspect(context.Background(), testToken); err != nil {
		b.Fatal(err)
	}
	return in
}

// BenchmarkCached is the per-request cost of a token already introspected.
func BenchmarkCached(b *testing.B) {
	in := benchIntrospector(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Introspect(ctx, testToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedParallel(b *testing.B) {
	in := benchIntrospector(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := in.Introspect(ctx, testToken); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
