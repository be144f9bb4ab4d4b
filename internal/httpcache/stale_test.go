package httpcache

import (
	"testing"
	"time"
)

func cc(s string) Directives { return ParseCacheControl([]string{s}) }

func TestUsableFresh(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name          string
		req           string
		age, lifetime time.Duration
		want          bool
	}{
		{"fresh", "", 10 * s, 60 * s, true},
		{"age equal to lifetime is stale", "", 60 * s, 60 * s, false},
		{"stale", "", 61 * s, 60 * s, false},
		{"zero lifetime", "", 0, 0, false},
		{"request no-cache", "no-cache", 0, 60 * s, false},
		{"request max-age within", "max-age=10", 10 * s, 60 * s, true},
		{"request max-age exceeded", "max-age=10", 11 * s, 60 * s, false},
		{"request max-age=0", "max-age=0", 1 * s, 60 * s, false},
		{"min-fresh met", "min-fresh=50", 10 * s, 60 * s, true},
		{"min-fresh missed", "min-fresh=51", 10 * s, 60 * s, false},
		{"invalid min-fresh", "min-fresh=x", 0, 3600 * s, false},
		{"max-stale does not matter when fresh", "max-stale=5", 10 * s, 60 * s, true},
	}
	for _, tt := range tests {
		if got := UsableFresh(cc(tt.req), tt.age, tt.lifetime); got != tt.want {
			t.Errorf("%s: UsableFresh = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRequiresValidation(t *testing.T) {
	for in, want := range map[string]bool{
		"":                          false,
		"max-age=60":                false,
		"no-cache":                  true,
		`no-cache="Set-Cookie"`:     true,
		"must-revalidate":           false,
		"no-store, must-understand": false,
	} {
		if got := RequiresValidation(cc(in)); got != want {
			t.Errorf("RequiresValidation(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestServeStale(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name          string
		resp, req     string
		age, lifetime time.Duration
		reason        StaleReason
		want          bool
	}{
		{"swr within", "max-age=60, stale-while-revalidate=30", "", 90 * s, 60 * s, StaleRevalidating, true},
		{"swr beyond", "max-age=60, stale-while-revalidate=30", "", 91 * s, 60 * s, StaleRevalidating, false},
		{"swr is not sie", "max-age=60, stale-while-revalidate=30", "", 70 * s, 60 * s, StaleError, false},
		{"sie within", "max-age=60, stale-if-error=300", "", 360 * s, 60 * s, StaleError, true},
		{"sie beyond", "max-age=60, stale-if-error=300", "", 361 * s, 60 * s, StaleError, false},
		{"sie is not swr", "max-age=60, stale-if-error=300", "", 70 * s, 60 * s, StaleRevalidating, false},
		{"no permission", "max-age=60", "", 61 * s, 60 * s, StaleRevalidating, false},
		{"unknown reason", "max-age=60, stale-while-revalidate=30, stale-if-error=30", "", 61 * s, 60 * s, 0, false},
		{"must-revalidate forbids", "max-age=60, must-revalidate, stale-if-error=300", "", 61 * s, 60 * s, StaleError, false},
		{"proxy-revalidate forbids", "max-age=60, proxy-revalidate, stale-while-revalidate=30", "", 61 * s, 60 * s, StaleRevalidating, false},
		{"s-maxage forbids", "s-maxage=60, stale-while-revalidate=30", "", 61 * s, 60 * s, StaleRevalidating, false},
		{"no-cache forbids", "no-cache, stale-if-error=300", "", 61 * s, 60 * s, StaleError, false},
		{"must-revalidate beats max-stale", "max-age=60, must-revalidate", "max-stale", 61 * s, 60 * s, StaleRevalidating, false},
		{"request no-cache", "max-age=60, stale-while-revalidate=30", "no-cache", 61 * s, 60 * s, StaleRevalidating, false},
		{"request max-age=0", "max-age=60, stale-while-revalidate=30", "max-age=0", 61 * s, 60 * s, StaleRevalidating, false},
		{"request max-age without max-stale", "max-age=60, stale-while-revalidate=30", "max-age=3600", 61 * s, 60 * s, StaleRevalidating, false},
		{"request max-age with max-stale", "max-age=60", "max-age=3600, max-stale=10", 61 * s, 60 * s, StaleRevalidating, true},
		{"request max-age exceeded with max-stale", "max-age=60", "max-age=60, max-stale", 61 * s, 60 * s, StaleRevalidating, false},
		{"request min-fresh", "max-age=60, stale-while-revalidate=30", "min-fresh=1", 61 * s, 60 * s, StaleRevalidating, false},
		{"max-stale any", "max-age=60", "max-stale", 1e6 * s, 60 * s, StaleRevalidating, true},
		{"max-stale within", "max-age=60", "max-stale=10", 70 * s, 60 * s, StaleError, true},
		{"max-stale beyond refuses despite swr", "max-age=60, stale-while-revalidate=300", "max-stale=10", 71 * s, 60 * s, StaleRevalidating, false},
		{"invalid max-stale allows none", "max-age=60", "max-stale=x", 61 * s, 60 * s, StaleRevalidating, false},
		{"request sie without response permission", "max-age=60", "stale-if-error=30", 90 * s, 60 * s, StaleError, true},
		{"request sie narrower than response", "max-age=60, stale-if-error=300", "stale-if-error=30", 91 * s, 60 * s, StaleError, false},
		{"request sie with max-age", "max-age=60", "max-age=3600, stale-if-error=30", 90 * s, 60 * s, StaleError, true},
		{"request sie does not allow swr", "max-age=60", "stale-if-error=30", 61 * s, 60 * s, StaleRevalidating, false},
		{"heuristic zero lifetime", "stale-while-revalidate=30", "", 30 * s, 0, StaleRevalidating, true},
	}
	for _, tt := range tests {
		if got := ServeStale(cc(tt.resp), cc(tt.req), tt.age, tt.lifetime, tt.reason); got != tt.want {
			t.Errorf("%s: ServeStale = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStaleIfErrorStatus(t *testing.T) {
	for status, want := range map[int]bool{500: true, 502: true, 503: true, 504: true, 501: false, 505: false, 404: false, 200: false} {
		if got := StaleIfErrorStatus(status); got != want {
			t.Errorf("StaleIfErrorStatus(%d) = %v, want %v", status, got, want)
		}
	}
}
