package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// fuzzPrograms exercise every op and both filters, with fan-out, on the
// shapes the seed corpus uses.
var fuzzPrograms = []*Program{
	MustCompile(Spec{}),
	MustCompile(Spec{Deny: []string{"a", "b.c", "items[].id", "[].x", "m[][].y", `"a.b"`}}),
	MustCompile(Spec{Allow: []string{"a", "b.c", "items[].id", "[].x", "m[][]", "é"}}),
	MustCompile(Spec{Allow: []string{"."}}),
	MustCompile(Spec{Ops: []Op{
		{Kind: "rename", Path: "a", Key: "b"},
		{Kind: "move", From: "b", To: "x.y.z"},
		{Kind: "move", From: "items[].id", To: "items[].ref.id"},
		{Kind: "delete", Path: "c"},
		{Kind: "set", Path: "items[].k", Value: json.RawMessage(`{"n":[1e400,-0]}`)},
		{Kind: "set", Path: "who", Var: "consumer"},
		{Kind: "wrap", Key: "data"},
	}}),
	MustCompile(Spec{Deny: []string{"secret"}, Ops: []Op{
		{Kind: "extract", Path: "data"},
		{Kind: "rename", Path: "[].a", Key: "A"},
		{Kind: "set", Path: ".", Var: "missing"},
		{Kind: "move", From: "a.b", To: "a"},
	}}),
	MustCompile(Spec{Ops: []Op{
		{Kind: "set", Path: "a.b", Value: json.RawMessage(`"\u00e9"`)},
		{Kind: "extract", Path: "a"},
		{Kind: "wrap", Key: "w"},
		{Kind: "set", Path: ".", Var: "consumer"},
	}}),
}

// maxNesting returns the nesting depth of valid JSON.
func maxNesting(b []byte) int {
	depth, max, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[' || c == '{':
			depth++
			if depth > max {
				max = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return max
}

func FuzzApply(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `null`, `{"a":1,"b":{"c":2},"items":[{"id":1},{"id":"x","k":0}]}`,
		`[{"x":1,"y":2},{"x":[]}]`, `{"m":[[{"y":1}],[]]}`, `{"data":[{"a":{"b":1}}],"secret":1}`,
		`{"a":9007199254740993,"b":-0,"c":1e400}`, `"\ud83d\ude00"`, `{"\u00e9":"\u0000"}`,
		`{"a":1,}`, `[1,2`, "\"\xff\"", `{"a":{"b":[{"c":[[[]]]}]}}`,
	} {
		f.Add([]byte(s))
	}
	vars := MapVars{"consumer": "acme\x00\xff"}
	f.Fuzz(func(t *testing.T, body []byte) {
		empty := len(bytes.TrimLeft(body, " \t\r\n")) == 0
		valid := json.Valid(body)
		var firstErr error
		for i, p := range fuzzPrograms {
			out, err := p.Apply(body, vars, Limits{MaxBytes: 1 << 20})
			if i == 0 {
				firstErr = err
			} else if (err == nil) != (firstErr == nil) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("program %d: error %v, identity: %v", i, err, firstErr)
			}
			if err != nil {
				var be *BodyError
				if !errors.As(err, &be) {
					if errors.Is(err, ErrTooLarge) {
						continue
					}
					t.Fatalf("program %d: unexpected error type %T: %v", i, err, err)
				}
				if be.Offset < 0 || be.Offset > len(body) {
					t.Fatalf("offset %d out of range", be.Offset)
				}
				if valid && utf8.Valid(body) && !errors.Is(err, ErrTooDeep) {
					t.Fatalf("program %d rejects valid JSON %q: %v", i, body, err)
				}
				if errors.Is(err, ErrTooDeep) && valid && maxNesting(body) <= DefaultMaxDepth {
					t.Fatalf("ErrTooDeep for depth %d", maxNesting(body))
				}
				continue
			}
			if !empty && !valid {
				t.Fatalf("program %d accepts invalid JSON %q", i, body)
			}
			if len(out) == 0 {
				if !empty {
					t.Fatalf("program %d: empty output for %q", i, body)
				}
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("program %d: invalid output %q for %q", i, out, body)
			}
			if i == 0 {
				var want bytes.Buffer
				if err := json.Compact(&want, body); err != nil || !bytes.Equal(out, want.Bytes()) {
					t.Fatalf("identity: got %q want %q (%v)", out, want.Bytes(), err)
				}
			}
			if i == 3 && !bytes.Equal(out, mustApply(t, fuzzPrograms[0], body)) {
				t.Fatalf("allow root differs from identity")
			}
		}
	})
}

func mustApply(t *testing.T, p *Program, body []byte) []byte {
	out, err := p.Apply(body, nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", ".", "a", ".a.b", "items[].id", "m[][]", "[].x", `"a.b".c`, `"\u00e9"`, `"say \"hi\""`,
		"a..b", "a[0]", `"a`, "a.", "a.[]", "é.日本", "\xff", `""`, `"\ud800"`,
	} {
		f.Add(s, "k")
	}
	f.Fuzz(fuzzCompileBody)
}

var fuzzCompileDoc = []byte(`{"a":{"b":[{"c":1}],"a.b":2},"items":[{"id":1},{"id":[1,{"x":2}]}],"":{"":3},"é":[[{"x":1}]]}`)

func fuzzCompileBody(t *testing.T, path, key string) {
	doc := fuzzCompileDoc
	{
		steps, err := parsePath(path)
		if err == nil {
			canon := formatPath(steps)
			again, err := parsePath(canon)
			if err != nil || !stepsEqual(steps, again) || formatPath(again) != canon {
				t.Fatalf("%q: canonical %q does not round-trip: %v", path, canon, err)
			}
			for _, st := range steps {
				if !st.arr && (!utf8.ValidString(st.key) || !json.Valid(st.qkey)) {
					t.Fatalf("%q: bad key %q / %q", path, st.key, st.qkey)
				}
			}
		} else {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(path) {
				t.Fatalf("%q: bad error %v", path, err)
			}
		}
		specs := []Spec{
			{Allow: []string{path}}, {Deny: []string{path}},
			{Ops: []Op{{Kind: "rename", Path: path, Key: key}}},
			{Ops: []Op{{Kind: "move", From: path, To: "z.z"}}},
			{Ops: []Op{{Kind: "move", From: "a", To: path}}},
			{Ops: []Op{{Kind: "move", From: path, To: key}}},
			{Ops: []Op{{Kind: "wrap", Key: key}}},
			{Ops: []Op{{Kind: "extract", Path: path}}},
			{Ops: []Op{{Kind: "set", Path: path, Value: json.RawMessage(key)}}},
			{Ops: []Op{{Kind: "set", Path: path, Var: key}}},
			{Ops: []Op{{Kind: "delete", Path: path}}},
		}
		for _, s := range specs {
			p, err := Compile(s)
			if err != nil {
				continue
			}
			out, err := p.Apply(doc, MapVars{key: key}, Limits{})
			if err != nil || (len(out) > 0 && !json.Valid(out)) {
				if len(out) > 200 {
					out = append(out[:200:200], "..."...)
				}
				t.Fatalf("spec %+v: %q %v", s, out, err)
			}
		}
	}
}
