package httpcache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name   string
		values []string
		want   Directives
	}{
		{"empty", nil, Directives{}},
		{"only separators", []string{" , ,\t,"}, Directives{}},
		{"max-age", []string{"max-age=60"}, Directives{MaxAge: 60 * s, HasMaxAge: true}},
		{"case-insensitive names", []string{"MAX-AGE=60, Public"}, Directives{MaxAge: 60 * s, HasMaxAge: true, Public: true}},
		{"quoted delta", []string{`max-age="60"`}, Directives{MaxAge: 60 * s, HasMaxAge: true}},
		{"whitespace around", []string{"  max-age = 5 ,\tpublic "}, Directives{MaxAge: 5 * s, HasMaxAge: true, Public: true}},
		{"invalid max-age is stale", []string{"max-age=abc"}, Directives{HasMaxAge: true}},
		{"max-age without argument is stale", []string{"max-age"}, Directives{HasMaxAge: true}},
		{"negative max-age is stale", []string{"max-age=-1"}, Directives{HasMaxAge: true}},
		{"fractional max-age is stale", []string{"max-age=1.5"}, Directives{HasMaxAge: true}},
		{"empty max-age is stale", []string{"max-age="}, Directives{HasMaxAge: true}},
		{"2^31-1 kept", []string{"max-age=2147483647"}, Directives{MaxAge: 2147483647 * s, HasMaxAge: true}},
		{"2^31 kept", []string{"s-maxage=2147483648"}, Directives{SMaxAge: MaxDelta, HasSMaxAge: true}},
		{"over 2^31 clamped", []string{"max-age=99999999999999999999999"}, Directives{MaxAge: MaxDelta, HasMaxAge: true}},
		{"long invalid not clamped", []string{"max-age=99999999999999999999x"}, Directives{HasMaxAge: true}},
		{"first max-age wins", []string{"max-age=60, max-age=10"}, Directives{MaxAge: 60 * s, HasMaxAge: true}},
		{"first max-age wins across lines", []string{"max-age=60", "max-age=10"}, Directives{MaxAge: 60 * s, HasMaxAge: true}},
		{"first invalid max-age wins", []string{"max-age=x, max-age=10"}, Directives{HasMaxAge: true}},
		{"s-maxage", []string{"s-maxage=30, max-age=10"}, Directives{SMaxAge: 30 * s, HasSMaxAge: true, MaxAge: 10 * s, HasMaxAge: true}},
		{"no-cache unqualified", []string{"no-cache"}, Directives{NoCache: true}},
		{"no-cache quoted fields", []string{`no-cache="Set-Cookie, x-foo"`}, Directives{NoCache: true, NoCacheFields: []string{"Set-Cookie", "X-Foo"}}},
		{"no-cache token field", []string{"no-cache=set-cookie"}, Directives{NoCache: true, NoCacheFields: []string{"Set-Cookie"}}},
		{"no-cache empty list is unqualified", []string{`no-cache="", max-age=5`}, Directives{NoCache: true, MaxAge: 5 * s, HasMaxAge: true}},
		{"unqualified then qualified", []string{`no-cache, no-cache="a"`}, Directives{NoCache: true}},
		{"qualified then unqualified", []string{`no-cache="a"`, "no-cache"}, Directives{NoCache: true}},
		{"qualified ones add up", []string{`no-cache="a", no-cache="b, A"`}, Directives{NoCache: true, NoCacheFields: []string{"A", "B"}}},
		{"quoted commas and trailing junk", []string{`no-cache="a,b"junk, max-age=5`}, Directives{NoCache: true, NoCacheFields: []string{"A", "B"}, MaxAge: 5 * s, HasMaxAge: true}},
		{"escaped quote", []string{`no-cache="a\"b"`}, Directives{NoCache: true, NoCacheFields: []string{`a"b`}}},
		{"unterminated quote runs to the end", []string{`no-cache="a, max-age=5`}, Directives{NoCache: true, NoCacheFields: []string{"A", "max-age=5"}}},
		{"private unqualified", []string{"private"}, Directives{Private: true}},
		{"private fields", []string{`private="Set-Cookie"`}, Directives{Private: true, PrivateFields: []string{"Set-Cookie"}}},
		{"max-stale any", []string{"max-stale"}, Directives{HasMaxStale: true, MaxStaleAny: true}},
		{"max-stale value", []string{"max-stale=30"}, Directives{MaxStale: 30 * s, HasMaxStale: true}},
		{"invalid max-stale allows none", []string{"max-stale=x"}, Directives{HasMaxStale: true}},
		{"min-fresh", []string{"min-fresh=5"}, Directives{MinFresh: 5 * s, HasMinFresh: true}},
		{"invalid min-fresh demands the most", []string{"min-fresh=x"}, Directives{MinFresh: MaxDelta, HasMinFresh: true}},
		{"stale extensions", []string{"stale-while-revalidate=30, stale-if-error=60"}, Directives{
			StaleWhileRevalidate: 30 * s, HasStaleWhileRevalidate: true, StaleIfError: 60 * s, HasStaleIfError: true}},
		{"invalid stale extension ignored, later one applies", []string{"stale-while-revalidate=x, stale-while-revalidate=5, stale-if-error"}, Directives{
			StaleWhileRevalidate: 5 * s, HasStaleWhileRevalidate: true}},
		{"booleans", []string{"no-store, public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable, only-if-cached"}, Directives{
			NoStore: true, Public: true, MustRevalidate: true, ProxyRevalidate: true, MustUnderstand: true, NoTransform: true, Immutable: true, OnlyIfCached: true}},
		{"boolean with an argument still counts", []string{"no-store=1"}, Directives{NoStore: true}},
		{"unknown directives ignored", []string{`foo, bar=baz, community="UCI", =5`}, Directives{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCacheControl(tt.values); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCacheControl(%q) =\n%+v, want\n%+v", tt.values, got, tt.want)
			}
		})
	}
}

func TestRequestDirectivesPragma(t *testing.T) {
	tests := []struct {
		name        string
		header      http.Header
		wantNoCache bool
	}{
		{"pragma alone", http.Header{"Pragma": {"No-Cache"}}, true},
		{"pragma among others", http.Header{"Pragma": {`foo="a,b", no-cache`}}, true},
		{"cache-control present wins", http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=5"}}, false},
		{"other pragma", http.Header{"Pragma": {"foo"}}, false},
		{"none", http.Header{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequestDirectives(tt.header).NoCache; got != tt.wantNoCache {
				t.Errorf("NoCache = %v, want %v", got, tt.wantNoCache)
			}
		})
	}
	// Pragma means nothing in a response (RFC 9111 §5.4).
	if ResponseDirectives(http.Header{"Pragma": {"no-cache"}}).NoCache {
		t.Error("ResponseDirectives honoured Pragma")
	}
}

func TestDirectivesString(t *testing.T) {
	const s = time.Second
	tests := []struct {
		d    Directives
		want string
	}{
		{Directives{}, ""},
		{Directives{MaxAge: 60 * s, HasMaxAge: true, Public: true}, "max-age=60, public"},
		{Directives{HasMaxStale: true, MaxStaleAny: true, MinFresh: 5 * s, HasMinFresh: true}, "max-stale, min-fresh=5"},
		{Directives{NoCache: true, NoCacheFields: []string{"Set-Cookie", `a"b`}}, `no-cache="Set-Cookie, a\"b"`},
		{Directives{Private: true, NoStore: true}, "no-store, private"},
		{Directives{SMaxAge: MaxDelta, HasSMaxAge: true, StaleIfError: 1 * s, HasStaleIfError: true}, "s-maxage=2147483648, stale-if-error=1"},
	}
	for _, tt := range tests {
		got := tt.d.String()
		if got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if back := ParseCacheControl([]string{got}); !reflect.DeepEqual(back, tt.d) {
			t.Errorf("ParseCacheControl(%q) = %+v, want %+v", got, back, tt.d)
		}
	}
}
