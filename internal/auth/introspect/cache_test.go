package introspect

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// introspectAt calls Introspect and checks the result and the server's call
// count so far.
func introspectAt(t *testing.T, in *Introspector, p *idp, token string, wantErr error, wantCalls int64) {
	t.Helper()
	_, err := in.Introspect(context.Background(), token)
	if err != wantErr {
		t.Fatalf("err %v, want %v", err, wantErr)
	}
	if n := p.requests.Load(); n != wantCalls {
		t.Fatalf("%d calls, want %d", n, wantCalls)
	}
}

// An active answer is cached until exp, when the token is inactive even if
// the server (here stale) still says active.
func TestCachedUntilExp(t *testing.T) {
	p := newIdP(t, answer(active(t0.Add(time.Minute), "")))
	in, clk := newTest(t, p, Options{})
	introspectAt(t, in, p, testToken, nil, 1)
	clk.Advance(time.Minute - time.Nanosecond)
	introspectAt(t, in, p, testToken, nil, 1)
	clk.Advance(time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrInactive, 2)
	introspectAt(t, in, p, testToken, ErrInactive, 2) // cached inactive
}

func TestCachedAtMostCacheMax(t *testing.T) {
	p := newIdP(t, answer(active(t0.Add(time.Hour), "")))
	in, clk := newTest(t, p, Options{CacheMax: 5 * time.Minute})
	introspectAt(t, in, p, testToken, nil, 1)
	clk.Advance(5*time.Minute - time.Nanosecond)
	introspectAt(t, in, p, testToken, nil, 1)
	clk.Advance(time.Nanosecond)
	introspectAt(t, in, p, testToken, nil, 2)
}

func TestCachedCacheMaxWithoutExp(t *testing.T) {
	p := newIdP(t, answer(active(time.Time{}, "")))
	in, clk := newTest(t, p, Options{CacheMax: time.Minute})
	introspectAt(t, in, p, testToken, nil, 1)
	clk.Advance(time.Minute - time.Nanosecond)
	introspectAt(t, in, p, testToken, nil, 1)
	p.set(answer(`{"active":false}`)) // revoked
	clk.Advance(time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrInactive, 2)
}

func TestInactiveCached(t *testing.T) {
	p := newIdP(t, answer(`{"active":false}`))
	in, clk := newTest(t, p, Options{InactiveTTL: 10 * time.Second})
	introspectAt(t, in, p, testToken, ErrInactive, 1)
	clk.Advance(10*time.Second - time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrInactive, 1)
	introspectAt(t, in, p, testToken+"x", ErrInactive, 2) // another token
	clk.Advance(time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrInactive, 3)
}

func TestAudienceMismatchCached(t *testing.T) {
	p := newIdP(t, answer(active(t0.Add(time.Minute), "")))
	in, clk := newTest(t, p, Options{Audiences: []string{"other"}})
	introspectAt(t, in, p, testToken, ErrAudience, 1)
	clk.Advance(time.Minute - time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrAudience, 1)
	clk.Advance(time.Nanosecond)
	introspectAt(t, in, p, testToken, ErrInactive, 2)
}

// Failures are not cached: the next request asks again.
func TestUnavailableNotCached(t *testing.T) {
	p := newIdP(t, answer(`garbage`))
	in, _ := newTest(t, p, Options{})
	if _, err := in.Introspect(context.Background(), testToken); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	p.set(answer(active(time.Time{}, "")))
	introspectAt(t, in, p, testToken, nil, 2)
}

func TestCacheBounded(t *testing.T) {
	p := newIdP(t, answer(`{"active":false}`))
	in, _ := newTest(t, p, Options{MaxEntries: 3})
	for n := range 20 {
		introspectAt(t, in, p, fmt.Sprint("token-", n), ErrInactive, int64(n+1))
		if c := in.cached(); c > 3 {
			t.Fatalf("%d entries cached", c)
		}
	}
	if n, ev := in.CacheStats(); n != 3 || ev != 17 {
		t.Errorf("CacheStats = %d entries, %d evictions; want 3, 17", n, ev)
	}
}

// A full cache evicts the entry expiring first: here the inactive answer,
// not the active ones.
func TestEvictsSoonestExpiry(t *testing.T) {
	p := newIdP(t, answer(active(time.Time{}, "")))
	in, _ := newTest(t, p, Options{MaxEntries: 3})
	introspectAt(t, in, p, "a1", nil, 1)
	p.set(answer(`{"active":false}`))
	introspectAt(t, in, p, "i1", ErrInactive, 2)
	p.set(answer(active(time.Time{}, "")))
	introspectAt(t, in, p, "a2", nil, 3)
	introspectAt(t, in, p, "a3", nil, 4) // evicts i1
	introspectAt(t, in, p, "a1", nil, 4)
	introspectAt(t, in, p, "a2", nil, 4)
	introspectAt(t, in, p, "i1", nil, 5)
}
