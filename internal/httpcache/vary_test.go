package httpcache

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestVaryKey(t *testing.T) {
	tests := []struct {
		name   string
		vary   []string
		header http.Header
		want   string
		wantOK bool
	}{
		{"no vary", nil, http.Header{"Accept": {"x"}}, "", true},
		{"empty vary", []string{" , "}, http.Header{}, "", true},
		{"star", []string{"*"}, http.Header{}, "", false},
		{"star among names", []string{"Accept", "Origin, *"}, http.Header{}, "", false},
		{"absent field", []string{"Accept-Encoding"}, http.Header{}, "15:accept-encoding!", true},
		{"empty field is not absent", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {""}}, "15:accept-encoding=0:", true},
		{"codings sorted", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip, br"}}, "15:accept-encoding=7:br,gzip", true},
		{"codings over lines", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip", " br "}}, "15:accept-encoding=7:br,gzip", true},
		{"weights dropped, case folded", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"GZIP;q=0.5 , br ; Q=1.0"}}, "15:accept-encoding=7:br,gzip", true},
		{"q=0 dropped when redundant", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip;q=0, br"}}, "15:accept-encoding=2:br", true},
		{"only q=0 leaves an empty set", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip;q=0.000"}}, "15:accept-encoding=0:", true},
		{"identity exclusion kept", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"identity;q=0, gzip"}}, "15:accept-encoding=17:gzip,identity;q=0", true},
		{"exclusions kept under star", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip;q=0, *"}}, "15:accept-encoding=10:*,gzip;q=0", true},
		{"duplicate coding: first wins", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip, gzip;q=0"}}, "15:accept-encoding=4:gzip", true},
		{"bad weight falls back", []string{"Accept-Encoding"}, http.Header{"Accept-Encoding": {"gzip;q=2, br"}}, "15:accept-encoding=12:gzip;q=2, br", true},
		{"names folded, deduplicated, sorted", []string{"accept-language, Accept", "ACCEPT"}, http.Header{
			"Accept":          {"Text/HTML ; Q=0.9 ;Charset=UTF-8, */*"},
			"Accept-Language": {"en-US, FR;q=0.5"},
		}, "6:accept=33:text/html;q=0.9;charset=UTF-8,*/*15:accept-language=14:en-us,fr;q=0.5", true},
		{"quoted parameter kept verbatim", []string{"Accept"}, http.Header{"Accept": {`text/plain; Format="A, B"`}}, `6:accept=24:text/plain;format="A, B"`, true},
		{"other fields trimmed and combined", []string{"X-Tenant"}, http.Header{"X-Tenant": {" a ", "", "b"}}, "8:x-tenant=3:a,b", true},
		{"other fields keep case", []string{"X-Tenant"}, http.Header{"X-Tenant": {"Acme"}}, "8:x-tenant=4:Acme", true},
		{"cookie lines joined with semicolons", []string{"Cookie"}, http.Header{"Cookie": {"a=1", "b=2"}}, "6:cookie=8:a=1; b=2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := VaryKey(tt.vary, tt.header)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("VaryKey = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestVaryKeyEquivalence(t *testing.T) {
	vary := []string{"Accept-Encoding, Accept-Language, Accept, X-Region"}
	same := [][2]http.Header{
		{{"Accept-Encoding": {"gzip, deflate, br"}}, {"Accept-Encoding": {"br,GZIP;q=0.9", "deflate;q=0.1"}}},
		{{"Accept-Language": {"de-DE,de;q=0.9"}}, {"Accept-Language": {" DE-de , DE ; q=0.9"}}},
		{{"Accept": {"text/html,application/xhtml+xml"}}, {"Accept": {"TEXT/HTML", "Application/XHTML+XML"}}},
		{{"X-Region": {"eu,west"}}, {"X-Region": {" eu", "west\t"}}},
	}
	for _, pair := range same {
		a, _ := VaryKey(vary, pair[0])
		b, _ := VaryKey(vary, pair[1])
		if a != b {
			t.Errorf("%v and %v: keys differ:\n%q\n%q", pair[0], pair[1], a, b)
		}
	}
	different := [][2]http.Header{
		{{"Accept-Encoding": {"gzip"}}, {"Accept-Encoding": {"br"}}},
		{{"Accept-Encoding": {"gzip"}}, {}},
		{{"Accept-Encoding": {""}}, {}},
		{{"Accept-Encoding": {"*"}}, {"Accept-Encoding": {"*, gzip;q=0"}}},
		{{"Accept-Language": {"en, de"}}, {"Accept-Language": {"de, en"}}},
		{{"Accept": {`text/plain;format="a"`}}, {"Accept": {`text/plain;format="A"`}}},
		{{"X-Region": {"EU"}}, {"X-Region": {"eu"}}},
		// Other fields are not split on commas: they need not be lists
		// (a User-Agent comment may hold one).
		{{"X-Region": {"eu, west"}}, {"X-Region": {"eu,west"}}},
	}
	for _, pair := range different {
		a, _ := VaryKey(vary, pair[0])
		b, _ := VaryKey(vary, pair[1])
		if a == b {
			t.Errorf("%v and %v share the key %q", pair[0], pair[1], a)
		}
	}
}

// TestVaryKeyNoCollision crafts values that would collide under a naive
// "name=value;" join, and checks that the keys differ and decode back to
// what went in.
func TestVaryKeyNoCollision(t *testing.T) {
	vary := []string{"A, B"}
	cases := []http.Header{
		{"A": {"1;b=2"}},              // naive: a=1;b=2;
		{"A": {"1"}, "B": {"2"}},      // naive: a=1;b=2;
		{"A": {"1!1:b=1:2"}},          // mimics this encoding's own syntax
		{"A": {"1"}, "B": {"2!"}},     //
		{"A": {"1=1:b!"}, "B": {"2"}}, //
	}
	seen := map[string]int{}
	for i, h := range cases {
		key, ok := VaryKey(vary, h)
		if !ok {
			t.Fatalf("case %d: not ok", i)
		}
		if j, dup := seen[key]; dup {
			t.Errorf("cases %d and %d collide on %q", j, i, key)
		}
		seen[key] = i
		fields, err := decodeVaryKey(key)
		if err != nil {
			t.Fatalf("case %d: %q: %v", i, key, err)
		}
		if len(fields) != 2 || fields[0].name != "a" || fields[1].name != "b" {
			t.Fatalf("case %d: decoded %+v", i, fields)
		}
		for _, f := range fields {
			want := h.Values(f.name)
			if f.present != (len(want) > 0) || (f.present && f.value != want[0]) {
				t.Errorf("case %d: field %s decoded as %+v, want %q", i, f.name, f, want)
			}
		}
	}
}

// varyField is one field decoded from a VaryKey.
type varyField struct {
	name    string
	present bool
	value   string
}

// decodeVaryKey parses a VaryKey back into its fields, failing on any key
// the encoding could not have produced.
func decodeVaryKey(key string) ([]varyField, error) {
	var out []varyField
	readPrefixed := func() (string, error) {
		n, rest, ok := strings.Cut(key, ":")
		if !ok {
			return "", errors.New("missing length")
		}
		l, err := strconv.Atoi(n)
		if err != nil || l < 0 || l > len(rest) || strconv.Itoa(l) != n {
			return "", errors.New("bad length " + strconv.Quote(n))
		}
		key = rest[l:]
		return rest[:l], nil
	}
	for key != "" {
		name, err := readPrefixed()
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errors.New("truncated after " + name)
		}
		f := varyField{name: name}
		switch key[0] {
		case '!':
			key = key[1:]
		case '=':
			key = key[1:]
			if f.value, err = readPrefixed(); err != nil {
				return nil, err
			}
			f.present = true
		default:
			return nil, errors.New("bad marker after " + name)
		}
		out = append(out, f)
	}
	return out, nil
}
