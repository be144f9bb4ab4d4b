package httpcache

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPackedHeader(t *testing.T) {
	long := strings.Repeat("v", 300) // a length of two uvarint bytes
	for _, h := range []http.Header{
		nil,
		{},
		{"Content-Type": {"text/plain"}},
		{"Content-Length": {"1024"}, "Vary": {"A", "B"}, "Empty": {}, "Blank": {""}, "Long": {long}, "x-lower": {"1"}},
	} {
		p := Pack(h)
		got := p.Header()
		if len(got) != len(h) || !maps.EqualFunc(got, h, slices.Equal[[]string]) {
			t.Errorf("Pack(%v).Header() = %v", h, got)
		}
		n := 0
		for _, v := range h {
			n += len(v)
		}
		if p.Values() != n {
			t.Errorf("Pack(%v).Values() = %d, want %d", h, p.Values(), n)
		}
		for k, v := range h {
			first, count := p.First(k)
			if count != len(v) || (count > 0 && first != v[0]) || p.Get(k) != first {
				t.Errorf("Pack(%v).First(%q) = %q, %d", h, k, first, count)
			}
		}
		if first, count := p.First("Missing"); first != "" || count != 0 {
			t.Errorf("Pack(%v).First(Missing) = %q, %d", h, first, count)
		}
		// AppendFields shares one array when it has the room.
		vals := make([]string, 1, 1+n)
		fields := map[string][]string{}
		vals = p.AppendFields(vals, func(k string, v []string) {
			if cap(v) != len(v) {
				t.Errorf("field %q: cap %d, len %d", k, cap(v), len(v))
			}
			fields[k] = v
		})
		if len(vals) != 1+n || !maps.EqualFunc(fields, map[string][]string(h), slices.Equal[[]string]) {
			t.Errorf("Pack(%v).AppendFields: %v, %d values", h, fields, len(vals))
		}
	}
	var zero PackedHeader
	if zero.Values() != 0 || zero.Get("A") != "" || len(zero.Header()) != 0 {
		t.Error("the zero PackedHeader is not empty")
	}
}

// NewFacts agrees with FreshnessLifetime, CurrentAge and the directives
// it keeps.
func TestFacts(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := date.Format(http.TimeFormat)
	req, resp := date.Add(-2*time.Second), date.Add(time.Second)
	for _, h := range []http.Header{
		{},
		{"Cache-Control": {"max-age=60, stale-while-revalidate=5, stale-if-error=7"}, "Date": {d}, "Age": {"10"}},
		{"Cache-Control": {"s-maxage=30, max-age=60, public, must-revalidate"}, "ETag": {`"e"`}},
		{"Expires": {date.Add(time.Hour).Format(http.TimeFormat)}, "Date": {d}},
		{"Expires": {"0"}, "Date": {d}, "Cache-Control": {"no-cache, proxy-revalidate"}},
		{"Last-Modified": {date.Add(-100 * time.Hour).Format(http.TimeFormat)}, "Date": {d}},
		{"Date": {"garbage"}, "Age": {"x"}},
	} {
		for _, status := range []int{200, 302} {
			f := NewFacts(status, h, req, resp)
			life, heuristic := FreshnessLifetime(ResponseInfo{Status: status, Header: h}, true)
			dir := ResponseDirectives(h)
			now := resp.Add(42 * time.Second)
			switch {
			case !f.Parsed:
				t.Errorf("%v: not parsed", h)
			case f.Lifetime != life || f.Heuristic != heuristic:
				t.Errorf("%v %d: lifetime %v %v, want %v %v", h, status, f.Lifetime, f.Heuristic, life, heuristic)
			case CurrentAgeFrom(f.InitialAge, resp, now) != CurrentAge(ResponseInfo{Status: status, Header: h}, req, resp, now):
				t.Errorf("%v: age %v, want %v", h, CurrentAgeFrom(f.InitialAge, resp, now), CurrentAge(ResponseInfo{Status: status, Header: h}, req, resp, now))
			case f.Explicit != (dir.HasMaxAge || dir.HasSMaxAge || len(h.Values("Expires")) > 0):
				t.Errorf("%v: explicit %v", h, f.Explicit)
			case f.HasValidator != (h.Get("ETag") != "" || h.Get("Last-Modified") != ""):
				t.Errorf("%v: validator %v", h, f.HasValidator)
			}
			kept := f.Directives()
			want := Directives{StaleWhileRevalidate: dir.StaleWhileRevalidate, HasStaleWhileRevalidate: dir.HasStaleWhileRevalidate,
				StaleIfError: dir.StaleIfError, HasStaleIfError: dir.HasStaleIfError, NoCache: dir.NoCache,
				MustRevalidate: dir.MustRevalidate, ProxyRevalidate: dir.ProxyRevalidate, HasSMaxAge: dir.HasSMaxAge, Public: dir.Public}
			if kept.String() != want.String() || kept.StaleIfError != want.StaleIfError || kept.StaleWhileRevalidate != want.StaleWhileRevalidate {
				t.Errorf("%v: directives %v, want %v", h, kept, want)
			}
		}
	}
}
