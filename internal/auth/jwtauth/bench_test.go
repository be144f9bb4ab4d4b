package jwtauth

import (
	"context"
	"testing"
)

// benchVerify verifies one token b.N times. With the cache off, each
// iteration is a full parse, signature check and claims check.
func benchVerify(b *testing.B, k testKey, cache bool) {
	p := newIDP(b, k)
	v, _ := ready(b, p, func(o *IssuerOptions) {
		if !cache {
			o.Cache.MaxEntries = -1
		}
	})
	tok := k.sign(b, claims(nil), nil)
	ctx := context.Background()
	mustVerify(b, v, tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B)  { benchVerify(b, rsaA(), false) }
func BenchmarkVerifyES256(b *testing.B)  { benchVerify(b, ecA(), false) }
func BenchmarkVerifyEdDSA(b *testing.B)  { benchVerify(b, edA(), false) }
func BenchmarkVerifyCached(b *testing.B) { benchVerify(b, rsaA(), true) }

// BenchmarkVerifyCachedParallel is the cached path under contention.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	p := newIDP(b, rsaA())
	v, _ := ready(b, p, nil)
	tok := rsaA().sign(b, claims(nil), nil)
	mustVerify(b, v, tok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
