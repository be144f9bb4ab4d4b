package aggregate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	doc := []byte(` { "user" : {"id": "u\/1", "n": -1.5e3, "ok": false, "none": null,
		"tags": [ "a", {"k": [10, 20]} ], "a\u002eb": 1, "dup": 1, "dup": {"x": 2}}, "": 5 } `)
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"", string(bytes.TrimSpace(doc)), true},
		{"user.id", `"u\/1"`, true},
		{"user.n", `-1.5e3`, true},
		{"user.ok", `false`, true},
		{"user.none", `null`, true},
		{"user.tags.0", `"a"`, true},
		{"user.tags.1.k.1", `20`, true},
		{"user.tags.1.k.2", ``, false},
		{"user.tags.01", ``, false},
		{"user.tags.-1", ``, false},
		{"user.tags.x", ``, false},
		{"user.id.x", ``, false},
		{"user.dup.x", `2`, true}, // the last of duplicate keys
		{"user.missing", ``, false},
		{"user.a.b", ``, false},
		{"x", ``, false},
	} {
		var path []string
		if tc.path != "" {
			path = strings.Split(tc.path, ".")
		}
		v, ok := lookup(doc, path)
		if ok != tc.ok || string(v) != tc.want {
			t.Errorf("%q: %q %v, want %q %v", tc.path, v, ok, tc.want, tc.ok)
		}
	}
	if v, ok := lookup(doc, []string{""}); !ok || string(v) != "5" {
		t.Errorf("empty key: %q %v", v, ok)
	}
	for raw, want := range map[string]string{`"a\"b\u00e9"`: `a"bé`, `12`: `12`, `true`: `true`} {
		if got, kind := scalar(nil, []byte(raw)); kind != kindScalar || string(got) != want {
			t.Errorf("scalar %s: %q %v", raw, got, kind)
		}
	}
	for _, raw := range []string{`null`, `{}`, `[1]`, ``} {
		if _, kind := scalar(nil, []byte(raw)); kind == kindScalar {
			t.Errorf("scalar %s: a scalar", raw)
		}
	}
}

// FuzzLookup checks lookup against encoding/json on valid documents (the
// same value, or nothing, at every path) and that it never panics on
// anything else.
func FuzzLookup(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"x"}]}}`), "a.b.1.c")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		var steps []string
		if path != "" {
			steps = strings.Split(path, ".")
		}
		got, ok := lookup(doc, steps)
		if ok {
			end, vok := skipValue(got, 0)
			if !vok || end != len(got) {
				t.Fatalf("lookup returned %q, not one value", got)
			}
			_, _ = scalar(nil, got)
		}
		at, valid := validJSON(doc)
		if valid != json.Valid(doc) {
			t.Fatalf("validJSON(%q) = %v (at %d), encoding/json says %v", doc, valid, at, !valid)
		}
		if !valid {
			if at < 0 || at > len(doc) {
				t.Fatalf("validJSON(%q): offset %d", doc, at)
			}
			return
		}
		want, wantOK := reference(t, doc, steps)
		if ok != wantOK {
			t.Fatalf("%q in %q: found %v (%q), encoding/json %v", path, doc, ok, got, wantOK)
		}
		if !ok {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("%q in %q: %q is not JSON", path, doc, got)
		}
		if v := decode(t, got); !reflect.DeepEqual(v, want) {
			t.Fatalf("%q in %q: %#v, encoding/json %#v", path, doc, v, want)
		}
		if s, kind := scalar(nil, got); kind == kindScalar {
			if str, isStr := want.(string); isStr && string(s) != str {
				t.Fatalf("%q: scalar %q, want %q", got, s, str)
			}
		}
	})
}

func decode(t *testing.T, doc []byte) any {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", doc, err)
	}
	return v
}

// reference is lookup by encoding/json.
func reference(t *testing.T, doc []byte, steps []string) (any, bool) {
	v := decode(t, doc)
	for _, s := range steps {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[s]; !ok {
				return nil, false
			}
		case []any:
			n, ok := arrayIndex(s)
			if !ok || n >= len(x) {
				return nil, false
			}
			v = x[n]
		default:
			return nil, false
		}
	}
	return v, true
}
