package httpcache

import (
	"testing"
	"time"
)

func TestCacheStatusString(t *testing.T) {
	tests := []struct {
		name   string
		cache  string
		status CacheStatus
		want   string
	}{
		{"minimal hit", "meshgate", CacheStatus{Hit: true}, "meshgate; hit"},
		{"hit with ttl", "meshgate", CacheStatus{Hit: true, TTL: 42 * time.Second}, "meshgate; hit; ttl=42"},
		{"ttl rounded down", "meshgate", CacheStatus{Hit: true, TTL: 42900 * time.Millisecond}, "meshgate; hit; ttl=42"},
		{"stale hit", "meshgate", CacheStatus{Hit: true, TTL: -412 * time.Second}, "meshgate; hit; ttl=-412"},
		{"just stale", "meshgate", CacheStatus{Hit: true, TTL: -500 * time.Millisecond}, "meshgate; hit; ttl=-1"},
		{"stored miss", "meshgate", CacheStatus{Fwd: FwdURIMiss, FwdStatus: 200, Stored: true}, "meshgate; fwd=uri-miss; fwd-status=200; stored"},
		{"validated", "meshgate", CacheStatus{Fwd: FwdStale, FwdStatus: 304, TTL: 60 * time.Second}, "meshgate; fwd=stale; fwd-status=304; ttl=60"},
		{"collapsed", "meshgate", CacheStatus{Fwd: FwdURIMiss, Collapsed: true, Stored: true}, "meshgate; fwd=uri-miss; stored; collapsed"},
		{"bypass", "meshgate", CacheStatus{Fwd: FwdBypass, FwdStatus: 502}, "meshgate; fwd=bypass; fwd-status=502"},
		{"hit wins over fwd", "meshgate", CacheStatus{Hit: true, Fwd: FwdMiss, FwdStatus: 200}, "meshgate; hit"},
		{"fwd that is not a token", "meshgate", CacheStatus{Fwd: "uri miss", FwdStatus: 200}, "meshgate"},
		{"fwd-status out of range", "meshgate", CacheStatus{Fwd: FwdMiss, FwdStatus: 42}, "meshgate; fwd=miss"},
		{"token detail", "meshgate", CacheStatus{Fwd: FwdRequest, Detail: "no-cache"}, "meshgate; fwd=request; detail=no-cache"},
		{"string detail", "meshgate", CacheStatus{Hit: true, Detail: `served "stale"`}, `meshgate; hit; detail="served \"stale\""`},
		{"string name", "Example CDN", CacheStatus{Hit: true}, `"Example CDN"; hit`},
		{"name with digit first", "3cache", CacheStatus{Hit: true}, `"3cache"; hit`},
		{"token name with colon and slash", "edge:1/a", CacheStatus{Hit: true}, "edge:1/a; hit"},
		{"unprintable bytes", "a\x00b\xffc", CacheStatus{Hit: true}, `"a?b?c"; hit`},
		{"backslash", `a\b`, CacheStatus{Hit: true}, `"a\\b"; hit`},
		{"empty name", "", CacheStatus{Fwd: FwdMethod}, `""; fwd=method`},
	}
	for _, tt := range tests {
		if got := tt.status.String(tt.cache); got != tt.want {
			t.Errorf("%s: String = %q, want %q", tt.name, got, tt.want)
		}
	}
}
