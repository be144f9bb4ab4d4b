package httpcache

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseCacheControl feeds arbitrary field lines (one per "\n") to the
// parser. Besides not panicking, the result must be well-formed, format to
// a value that parses back to it, and not depend on how directives are
// spread over lines (absent quotes, which may span commas).
func FuzzParseCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, data string) {
		lines := strings.Split(data, "\n")
		d := ParseCacheControl(lines)
		checkDirectives(t, d)

		s := d.String()
		back := ParseCacheControl([]string{s})
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip of %q through %q:\n got %+v\nwant %+v", data, s, back, d)
		}
		if again := back.String(); again != s {
			t.Fatalf("String not canonical: %q then %q", s, again)
		}

		if !strings.Contains(data, `"`) {
			if joined := ParseCacheControl([]string{strings.Join(lines, ",")}); !reflect.DeepEqual(joined, d) {
				t.Fatalf("lines %q and their combination differ:\n%+v\n%+v", lines, d, joined)
			}
		}
	})
}

func checkDirectives(t *testing.T, d Directives) {
	t.Helper()
	deltas := []struct {
		name string
		v    time.Duration
		has  bool
	}{
		{"max-age", d.MaxAge, d.HasMaxAge},
		{"s-maxage", d.SMaxAge, d.HasSMaxAge},
		{"max-stale", d.MaxStale, d.HasMaxStale},
		{"min-fresh", d.MinFresh, d.HasMinFresh},
		{"stale-while-revalidate", d.StaleWhileRevalidate, d.HasStaleWhileRevalidate},
		{"stale-if-error", d.StaleIfError, d.HasStaleIfError},
	}
	for _, x := range deltas {
		if x.v < 0 || x.v > MaxDelta || x.v%time.Second != 0 || (!x.has && x.v != 0) {
			t.Fatalf("%s = %v (present %v)", x.name, x.v, x.has)
		}
	}
	if d.MaxStaleAny && (!d.HasMaxStale || d.MaxStale != 0) {
		t.Fatalf("max-stale any with %+v", d)
	}
	for _, fl := range []struct {
		set    bool
		fields []string
	}{{d.NoCache, d.NoCacheFields}, {d.Private, d.PrivateFields}} {
		if fl.fields == nil {
			continue
		}
		if !fl.set || len(fl.fields) == 0 {
			t.Fatalf("fields %q without their directive", fl.fields)
		}
		for i, n := range fl.fields {
			if n == "" || strings.Contains(n, ",") || slices.Contains(fl.fields[:i], n) {
				t.Fatalf("bad field list %q", fl.fields)
			}
		}
	}
}

// FuzzVaryKey computes keys for an arbitrary Vary and request header
// ("Name: value" lines). Besides not panicking, a key must decode to the
// Vary's names, folded, deduplicated and sorted (so it is unambiguous), and
// must not change when the Vary is reordered or re-cased, when the header
// lines gain surrounding whitespace, or when the decoded values are fed
// back in (normalizing is idempotent).
func FuzzVaryKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, vary, header string) {
		h := http.Header{}
		for line := range strings.SplitSeq(header, "\n") {
			name, value, _ := strings.Cut(line, ":")
			h.Add(name, value)
		}
		key, ok := VaryKey([]string{vary}, h)

		var names []string
		star := false
		for _, n := range strings.Split(vary, ",") {
			n = strings.Trim(n, " \t")
			switch {
			case n == "*":
				star = true
			case n != "":
				names = append(names, lowerASCII(n))
			}
		}
		if star {
			if ok || key != "" {
				t.Fatalf("Vary %q: got %q, %v for a star", vary, key, ok)
			}
			return
		}
		if !ok {
			t.Fatalf("Vary %q: not ok", vary)
		}
		slices.Sort(names)
		names = slices.Compact(names)

		fields, err := decodeVaryKey(key)
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		var decoded []string
		for _, fl := range fields {
			decoded = append(decoded, fl.name)
		}
		if !slices.Equal(decoded, names) {
			t.Fatalf("key %q names %q, want %q", key, decoded, names)
		}

		members := strings.Split(vary, ",")
		slices.Reverse(members)
		for i, m := range members {
			members[i] = upperASCII(m)
		}
		if other, _ := VaryKey(members, h); other != key {
			t.Fatalf("reordered Vary %q: %q, want %q", members, other, key)
		}

		padded := http.Header{}
		for name, values := range h {
			for _, v := range values {
				padded.Add(name, " \t"+v+" ")
			}
		}
		if other, _ := VaryKey([]string{vary}, padded); other != key {
			t.Fatalf("padded header: %q, want %q", other, key)
		}

		again := http.Header{}
		for _, fl := range fields {
			if fl.present {
				again.Add(fl.name, fl.value)
			}
		}
		if other, _ := VaryKey([]string{vary}, again); other != key {
			t.Fatalf("decoded values fed back: %q, want %q", other, key)
		}
	})
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
