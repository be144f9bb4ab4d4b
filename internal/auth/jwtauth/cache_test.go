package jwtauth

import (
	"fmt"
	"testing"
	"time"
)

func TestCacheServesVerifiedToken(t *testing.T) {
	p := newIDP(t, rsaA())
	v, _ := ready(t, p, nil)
	tok := rsaA().sign(t, claims(nil), nil)
	first := mustVerify(t, v, tok)
	if second := mustVerify(t, v, tok); second != first {
		t.Fatal("a repeated token was verified again instead of served from the cache")
	}
	// Failures are not cached.
	wantErr(t, v, rsaA().sign(t, claims(map[string]any{"aud": "x"}), nil), ErrAudience)
	if n := len(v.cache.entries); n != 1 {
		t.Errorf("cache has %d entries, want 1", n)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	p := newIDP(t, ecA())
	v, fc := ready(t, p, nil)
	tok := ecA().sign(t, claims(map[string]any{"exp": t0.Add(2 * time.Minute).Unix()}), nil)
	mustVerify(t, v, tok)
	fc.Advance(2*time.Minute + time.Second)
	wantErr(t, v, tok, ErrExpired)
}

func TestCacheEntryLivesAtMostMaxTTL(t *testing.T) {
	p := newIDP(t, ecA())
	v, fc := ready(t, p, func(o *IssuerOptions) { o.Cache.MaxTTL = time.Minute })
	tok := ecA().sign(t, claims(nil), nil) // exp in 1h
	first := mustVerify(t, v, tok)
	fc.Advance(59 * time.Second)
	if mustVerify(t, v, tok) != first {
		t.Fatal("not cached within MaxTTL")
	}
	fc.Advance(time.Second)
	if mustVerify(t, v, tok) == first {
		t.Fatal("served from the cache after MaxTTL")
	}
	if e := v.cache.entries[v.cache.key(tok)]; !e.until.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("re-verified entry until %v", e.until)
	}
}

func TestCacheBounded(t *testing.T) {
	p := newIDP(t, ecA())
	v, fc := ready(t, p, func(o *IssuerOptions) { o.Cache.MaxEntries = 10 })
	for i := range 50 {
		exp := t0.Add(time.Duration(1+i%2) * time.Minute) // half run out first
		mustVerify(t, v, ecA().sign(t, claims(map[string]any{"jti": fmt.Sprint(i), "exp": exp.Unix()}), nil))
		if n := len(v.cache.entries); n > 10 {
			t.Fatalf("cache has %d entries, max 10", n)
		}
		if i == 25 {
			fc.Advance(time.Minute) // some entries run out: evicted first
		}
	}
	// Run-out entries dropped to make room are not evictions: only live
	// ones pushed out are (what a flood of distinct tokens causes).
	if n, ev := v.CacheStats(); n > 10 || ev == 0 || ev >= 40 {
		t.Errorf("CacheStats = %d entries, %d evictions; want at most 10, and some live ones evicted but fewer than 40", n, ev)
	}
}

func TestCacheDisabled(t *testing.T) {
	p := newIDP(t, ecA())
	v, _ := ready(t, p, func(o *IssuerOptions) { o.Cache.MaxEntries = -1 })
	tok := ecA().sign(t, claims(nil), nil)
	if mustVerify(t, v, tok) == mustVerify(t, v, tok) {
		t.Fatal("cached although disabled")
	}
}
