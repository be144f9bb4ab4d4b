package jsonx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		in, canon string
		steps     int
	}{
		{"", ".", 0},
		{".", ".", 0},
		{"a", "a", 1},
		{".a.b", "a.b", 2},
		{"a.b.c", "a.b.c", 3},
		{"items[]", "items[]", 2},
		{"items[].id", "items[].id", 3},
		{"m[][]", "m[][]", 3},
		{"m[][].x", "m[][].x", 4},
		{"[]", "[]", 1},
		{".[]", "[]", 1},
		{"[].a", "[].a", 2},
		{"[][].a[]", "[][].a[]", 4},
		{`"a.b".c`, `"a.b".c`, 2},
		{`"a"`, "a", 1},
		{`"a"[].b`, "a[].b", 3},
		{`""`, `""`, 1},
		{`"sp ace"`, `"sp ace"`, 1},
		{`"say \"hi\""`, `"say \"hi\""`, 1},
		{`"\u00e9"`, "é", 1},
		{"é.日本", "é.日本", 2},
		{`"[x]"`, `"[x]"`, 1},
		{`a\b`, `a\b`, 1},
		{`"tab\t"`, `"tab\t"`, 1},
		{"$ref.@id.-1", "$ref.@id.-1", 3},
	}
	for _, tc := range cases {
		steps, err := parsePath(tc.in)
		if err != nil {
			t.Errorf("parsePath(%q): %v", tc.in, err)
			continue
		}
		if len(steps) != tc.steps || formatPath(steps) != tc.canon {
			t.Errorf("parsePath(%q) = %d steps %q; want %d %q", tc.in, len(steps), formatPath(steps), tc.steps, tc.canon)
		}
	}
	bad := []struct{ in, reason string }{
		{"..", "empty key"},
		{"a..b", "empty key"},
		{"a.", "trailing '.'"},
		{".a.", "trailing '.'"},
		{"a.[]", "missing key before"},
		{"a[0]", "array indexes are not supported"},
		{"a[", "expected \"[]\""},
		{"a]", "unexpected ']'"},
		{`a"b`, "unexpected '\"'"},
		{`"a`, "unterminated"},
		{`"a\"`, "unterminated"},
		{`"a"b`, "expected '.' or '[]'"},
		{`"\x"`, "invalid quoted key"},
		{"\"a\x01\"", "invalid quoted key"},
		{"a b", "space"},
		{"a\tb", "space"},
		{"a\xff", "invalid UTF-8"},
		{"[]x", "expected '.' or '[]'"},
		{"a[]b", "expected '.' or '[]'"},
	}
	for _, tc := range bad {
		_, err := parsePath(tc.in)
		var pe *PathError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("parsePath(%q) = %v; want a PathError with %q", tc.in, err, tc.reason)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"allow and deny", Spec{Allow: []string{"a"}, Deny: []string{"b"}}, "exclusive"},
		{"bad allow path", Spec{Allow: []string{"a", "b..c"}}, `allow[1]: path "b..c": empty key at offset 2`},
		{"bad deny path", Spec{Deny: []string{"a[1]"}}, "deny[0]"},
		{"deny root", Spec{Deny: []string{"."}}, "cannot deny the whole document"},
		{"deny root empty", Spec{Deny: []string{""}}, "cannot deny the whole document"},
		{"deny array", Spec{Deny: []string{"a[]"}}, "must end in a key"},
		{"unknown kind", Spec{Ops: []Op{{Kind: "copy"}}}, `ops[0] (copy): unknown Kind "copy"`},
		{"kind case", Spec{Ops: []Op{{Kind: "Rename"}}}, "unknown Kind"},
		{"unused field", Spec{Ops: []Op{{Kind: "move", Path: "a", From: "a", To: "b"}}}, "Path is not used by move (it takes From, To)"},
		{"unused Value", Spec{Ops: []Op{{Kind: "delete", Path: "a", Value: raw("1")}}}, "Value is not used by delete"},
		{"rename needs key", Spec{Ops: []Op{{Kind: "rename", Path: "a"}}}, "Key is required"},
		{"rename needs path", Spec{Ops: []Op{{Kind: "rename", Key: "a"}}}, "Path is required"},
		{"rename From/To", Spec{Ops: []Op{{Kind: "rename", From: "a", To: "b"}}}, "From is not used by rename (it takes Path, Key)"},
		{"rename to itself", Spec{Ops: []Op{{Kind: "rename", Path: "x.a", Key: "a"}}}, "already has the key"},
		{"rename root", Spec{Ops: []Op{{Kind: "rename", Path: ".", Key: "a"}}}, "cannot be the whole document"},
		{"rename array", Spec{Ops: []Op{{Kind: "rename", Path: "a[]", Key: "b"}}}, "must end in a key"},
		{"rename bad key", Spec{Ops: []Op{{Kind: "rename", Path: "a", Key: "\xff"}}}, "UTF-8"},
		{"move needs To", Spec{Ops: []Op{{Kind: "move", From: "a"}}}, "To is required"},
		{"move bad From", Spec{Ops: []Op{{Kind: "move", From: "a.", To: "b"}}}, `From: path "a.": trailing '.'`},
		{"move root", Spec{Ops: []Op{{Kind: "move", From: ".", To: "b"}}}, "cannot be the whole document"},
		{"move onto itself", Spec{Ops: []Op{{Kind: "move", From: "a.b", To: ".a.b"}}}, "same path"},
		{"move inside itself", Spec{Ops: []Op{{Kind: "move", From: "a", To: "a.b"}}}, "is inside From"},
		{"move inside itself fan", Spec{Ops: []Op{{Kind: "move", From: "x[].a", To: "x[].a.b.c"}}}, "is inside From"},
		{"move fan-out mismatch", Spec{Ops: []Op{{Kind: "move", From: "items[].a", To: "b"}}}, "same prefix"},
		{"move fan-out mismatch 2", Spec{Ops: []Op{{Kind: "move", From: "a[].x", To: "b[].x"}}}, "same prefix"},
		{"move to array", Spec{Ops: []Op{{Kind: "move", From: "a", To: "b[]"}}}, "must end in a key"},
		{"wrap needs key", Spec{Ops: []Op{{Kind: "wrap"}}}, "Key is required"},
		{"wrap Path", Spec{Ops: []Op{{Kind: "wrap", Path: "a", Key: "b"}}}, "Path is not used by wrap"},
		{"extract root", Spec{Ops: []Op{{Kind: "extract", Path: "."}}}, "does nothing"},
		{"extract array", Spec{Ops: []Op{{Kind: "extract", Path: "a[].b"}}}, `"[]" is not allowed`},
		{"set no path", Spec{Ops: []Op{{Kind: "set", Value: raw("1")}}}, `use "." for the whole document`},
		{"set no value", Spec{Ops: []Op{{Kind: "set", Path: "a"}}}, "Value or Var is required"},
		{"set both", Spec{Ops: []Op{{Kind: "set", Path: "a", Value: raw("1"), Var: "consumer"}}}, "exclusive"},
		{"set invalid value", Spec{Ops: []Op{{Kind: "set", Path: "a", Value: raw("{")}}}, "Value: invalid JSON at offset 1"},
		{"set two values", Spec{Ops: []Op{{Kind: "set", Path: "a", Value: raw("1 2")}}}, "after the JSON value"},
		{"set array", Spec{Ops: []Op{{Kind: "set", Path: "a[]", Value: raw("1")}}}, "must end in a key"},
		{"set bad var", Spec{Ops: []Op{{Kind: "set", Path: "a", Var: "has space"}}}, "invalid name"},
		{"delete root", Spec{Ops: []Op{{Kind: "delete", Path: "."}}}, "cannot be the whole document"},
		{"path too long", Spec{Deny: []string{strings.Repeat("a.", 64) + "a"}}, "more than 64 steps"},
		{"value too deep", Spec{Ops: []Op{{Kind: "set", Path: "a", Value: raw(strings.Repeat("[", 129) + strings.Repeat("]", 129))}}}, "nesting deeper than 128"},
		{"op index", Spec{Ops: []Op{{Kind: "wrap", Key: "a"}, {Kind: "delete", Path: "a..b"}}}, "ops[1] (delete): Path: "},
	}
	for _, tc := range cases {
		p, err := Compile(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Compile = %v, %v; want error containing %q", tc.name, p, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "jsonx: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
	}
	if _, err := Compile(Spec{Deny: []string{strings.Repeat("a.", 63) + "a"}}); err != nil {
		t.Errorf("64 steps: %v", err)
	}
	if _, err := Compile(Spec{}); err != nil {
		t.Errorf("empty spec: %v", err)
	}
}
