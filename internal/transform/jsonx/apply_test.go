package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/testenv"
)

type applyCase struct {
	name string
	spec Spec
	vars Vars
	in   string
	want string
}

func runCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.spec)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			in := []byte(tc.in)
			orig := bytes.Clone(in)
			got, err := p.Apply(in, tc.vars, Limits{})
			if err != nil {
				t.Fatalf("Apply(%s): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("Apply(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
			if !bytes.Equal(in, orig) {
				t.Errorf("input modified: %s", in)
			}
			if len(got) > 0 && !json.Valid(got) {
				t.Errorf("output is not valid JSON: %s", got)
			}
		})
	}
}

func deny(paths ...string) Spec  { return Spec{Deny: paths} }
func allow(paths ...string) Spec { return Spec{Allow: paths} }
func ops(o ...Op) Spec           { return Spec{Ops: o} }

func TestDeny(t *testing.T) {
	runCases(t, []applyCase{
		{"top", deny("b"), nil, `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`},
		{"first and last", deny("a", "c"), nil, `{"a":1,"b":2,"c":3}`, `{"b":2}`},
		{"all", deny("a", "b"), nil, `{"a":1,"b":2}`, `{}`},
		{"nested", deny("a.b"), nil, `{"a":{"b":1,"c":2},"b":3}`, `{"a":{"c":2},"b":3}`},
		{"leading dot", deny(".a.b"), nil, `{"a":{"b":1,"c":2}}`, `{"a":{"c":2}}`},
		{"prefix and longer", deny("a", "a.b"), nil, `{"a":{"b":1},"x":1}`, `{"x":1}`},
		{"array elements", deny("items[].secret"), nil,
			`{"items":[{"id":1,"secret":"s"},{"id":2},{"secret":3,"id":3},7,null,[{"secret":1}]]}`,
			`{"items":[{"id":1},{"id":2},{"id":3},7,null,[{"secret":1}]]}`},
		{"arrays of arrays", deny("m[][].x"), nil,
			`{"m":[[{"x":1,"y":2}],[],[{"x":3},{"y":4}]],"x":0}`, `{"m":[[{"y":2}],[],[{},{"y":4}]],"x":0}`},
		{"root array", deny("[].x"), nil, `[{"x":1,"y":2},{"x":3}]`, `[{"y":2},{}]`},
		{"nested arrays in objects", deny("a[].b[].c"), nil,
			`{"a":[{"b":[{"c":1,"d":2}]},{"b":{"c":1}}]}`, `{"a":[{"b":[{"d":2}]},{"b":{"c":1}}]}`},
		{"missing", deny("nope", "a.nope", "x[].y"), nil, `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{"type mismatch", deny("a.b", "s[].x"), nil, `{"a":"str","s":{"x":1}}`, `{"a":"str","s":{"x":1}}`},
		{"scalar root", deny("a"), nil, `42`, `42`},
		{"duplicates all removed", deny("a"), nil, `{"a":1,"b":2,"a":3}`, `{"b":2}`},
		{"escaped input key", deny("a"), nil, `{"\u0061":1,"b":2}`, `{"b":2}`},
		{"quoted path key with dot", deny(`"a.b"`), nil, `{"a.b":1,"a":{"b":2}}`, `{"a":{"b":2}}`},
		{"quoted path key with quote", deny(`"say \"hi\""`), nil, `{"say \"hi\"":1,"x":2}`, `{"x":2}`},
		{"unicode key", deny("é", "日本"), nil, `{"é":1,"\u65e5\u672c":2,"e":3}`, `{"e":3}`},
		{"empty key", deny(`""`), nil, `{"":1,"a":2}`, `{"a":2}`},
		{"many keys (map)", deny("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"), nil,
			`{"a":1,"z":0,"j":2,"i":{"x":1}}`, `{"z":0}`},
	})
}

func TestAllow(t *testing.T) {
	runCases(t, []applyCase{
		{"top", allow("a", "c"), nil, `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`},
		{"order from input", allow("c", "a"), nil, `{"a":1,"b":2,"c":3}`, `{"a":1,"c":3}`},
		{"nested", allow("a.b"), nil, `{"a":{"b":1,"c":2},"b":3}`, `{"a":{"b":1}}`},
		{"whole subtree", allow("a"), nil, `{"a":{"b":[1,{"c":2}]},"b":3}`, `{"a":{"b":[1,{"c":2}]}}`},
		{"prefix wins", allow("a", "a.b"), nil, `{"a":{"b":1,"c":2}}`, `{"a":{"b":1,"c":2}}`},
		{"array elements", allow("items[].id"), nil,
			`{"items":[{"id":1,"x":2},{"x":3},{"id":{"deep":1}}],"other":1}`,
			`{"items":[{"id":1},{},{"id":{"deep":1}}]}`},
		{"array scalars dropped", allow("items[].id"), nil, `{"items":[1,{"id":2},"s",null,[]]}`, `{"items":[{"id":2}]}`},
		{"array whole", allow("items"), nil, `{"items":[1,2],"x":1}`, `{"items":[1,2]}`},
		{"array whole with []", allow("items[]"), nil, `{"items":[1,[2]],"x":1}`, `{"items":[1,[2]]}`},
		{"arrays of arrays", allow("m[][].x"), nil, `{"m":[[{"x":1,"y":2},3],[]],"n":1}`, `{"m":[[{"x":1}],[]]}`},
		{"root array", allow("[].id"), nil, `[{"id":1,"x":2},{"x":3}]`, `[{"id":1},{}]`},
		{"scalar on the way dropped", allow("a.b", "c"), nil, `{"a":"s","c":1}`, `{"c":1}`},
		{"array for key dropped", allow("a.b"), nil, `{"a":[{"b":1}]}`, `{}`},
		{"object for [] dropped", allow("a[].b"), nil, `{"a":{"b":1}}`, `{}`},
		{"object and array rules", allow("a.b", "a[].c"), nil, `{"a":[{"b":1,"c":2}]}`, `{"a":[{"c":2}]}`},
		{"missing", allow("nope"), nil, `{"a":1}`, `{}`},
		{"root", allow("."), nil, `{"a":1}`, `{"a":1}`},
		{"root scalar", allow("a"), nil, `"text"`, `null`},
		{"root array for key", allow("a"), nil, `[1]`, `null`},
		{"duplicates kept", allow("a"), nil, `{"a":1,"b":2,"a":3}`, `{"a":1,"a":3}`},
		{"escaped input key", allow("é"), nil, `{"\u00e9":1,"e":2}`, `{"\u00e9":1}`},
		{"many keys (map)", allow("a", "b", "c", "d", "e", "f", "g", "h", "i", "j.k"), nil,
			`{"a":1,"z":0,"j":{"k":1,"l":2}}`, `{"a":1,"j":{"k":1}}`},
	})
}

func TestRename(t *testing.T) {
	r := func(path, key string) Spec { return ops(Op{Kind: "rename", Path: path, Key: key}) }
	runCases(t, []applyCase{
		{"top keeps position", r("b", "B"), nil, `{"a":1,"b":2,"c":3}`, `{"a":1,"B":2,"c":3}`},
		{"nested", r("a.b", "x"), nil, `{"a":{"b":1,"c":2}}`, `{"a":{"x":1,"c":2}}`},
		{"array elements", r("items[].old", "new"), nil,
			`{"items":[{"old":1},{"other":2},{"old":3,"new":4}]}`, `{"items":[{"new":1},{"other":2},{"new":3}]}`},
		{"arrays of arrays", r("m[][].a", "b"), nil, `{"m":[[{"a":1}],[{"a":2},5]]}`, `{"m":[[{"b":1}],[{"b":2},5]]}`},
		{"onto existing: overwrites", r("a", "b"), nil, `{"b":0,"a":1,"c":2}`, `{"b":1,"c":2}`},
		{"missing: no-op", r("x", "y"), nil, `{"y":1}`, `{"y":1}`},
		{"missing parent: no-op", r("x.y", "z"), nil, `{"x":1}`, `{"x":1}`},
		{"duplicates all renamed", r("a", "b"), nil, `{"a":1,"a":2}`, `{"b":1,"b":2}`},
		{"new key is escaped", r("a", "quo\"te\n"), nil, `{"a":1}`, `{"quo\"te\n":1}`},
		{"new key with dot is literal", r("a", "x.y"), nil, `{"a":1}`, `{"x.y":1}`},
		{"escaped source key", r("é", "e"), nil, `{"\u00e9":1}`, `{"e":1}`},
		{"renamed then matched by value", Spec{Ops: []Op{
			{Kind: "rename", Path: "a", Key: "é"}, {Kind: "rename", Path: "é", Key: "z"}}}, nil, `{"a":1}`, `{"z":1}`},
	})
}

func TestMove(t *testing.T) {
	m := func(from, to string) Spec { return ops(Op{Kind: "move", From: from, To: to}) }
	runCases(t, []applyCase{
		{"top", m("a", "b"), nil, `{"a":1,"c":2}`, `{"c":2,"b":1}`},
		{"creates objects", m("a", "x.y.z"), nil, `{"a":[1],"c":2}`, `{"c":2,"x":{"y":{"z":[1]}}}`},
		{"into existing object", m("a", "x.a"), nil, `{"a":1,"x":{"k":0}}`, `{"x":{"k":0,"a":1}}`},
		{"out of nested", m("user.name.first", "first_name"), nil,
			`{"user":{"name":{"first":"Ada","last":"L"}}}`, `{"user":{"name":{"last":"L"}},"first_name":"Ada"}`},
		{"onto existing: replaces in place", m("a", "b"), nil, `{"b":0,"c":1,"a":2}`, `{"b":2,"c":1}`},
		{"onto existing duplicates", m("a", "b"), nil, `{"b":0,"b":1,"a":2}`, `{"b":2}`},
		{"parent onto itself", m("a.b", "a"), nil, `{"x":0,"a":{"b":{"c":1}},"y":1}`, `{"x":0,"a":{"c":1},"y":1}`},
		{"missing: no-op", m("nope", "x.y"), nil, `{"a":1}`, `{"a":1}`},
		{"destination through scalar: no-op", m("a", "s.b"), nil, `{"a":1,"s":"str"}`, `{"a":1,"s":"str"}`},
		{"in array elements", m("items[].price.amount", "items[].amount"), nil,
			`{"items":[{"price":{"amount":"1.10","cur":"EUR"}},{"id":2},{"price":{"amount":3}}]}`,
			`{"items":[{"price":{"cur":"EUR"},"amount":"1.10"},{"id":2},{"price":{},"amount":3}]}`},
		{"in root array", m("[].a", "[].b.c"), nil, `[{"a":1},{"a":2},3]`, `[{"b":{"c":1}},{"b":{"c":2}},3]`},
		{"duplicate source: last value", m("a", "b"), nil, `{"a":1,"a":2}`, `{"b":2}`},
		{"scalar root: no-op", m("a", "b"), nil, `"x"`, `"x"`},
		{"number precision", m("a", "b"), nil, `{"a":9007199254740993}`, `{"b":9007199254740993}`},
	})
}

func TestWrapExtract(t *testing.T) {
	runCases(t, []applyCase{
		{"wrap object", ops(Op{Kind: "wrap", Key: "data"}), nil, `{"a":1}`, `{"data":{"a":1}}`},
		{"wrap scalar", ops(Op{Kind: "wrap", Key: "data"}), nil, ` 1e400 `, `{"data":1e400}`},
		{"wrap array", ops(Op{Kind: "wrap", Key: "d"}), nil, `[1,[2]]`, `{"d":[1,[2]]}`},
		{"wrap twice", ops(Op{Kind: "wrap", Key: "a"}, Op{Kind: "wrap", Key: "b"}), nil, `1`, `{"b":{"a":1}}`},
		{"wrap odd key", ops(Op{Kind: "wrap", Key: "a\"b"}), nil, `1`, `{"a\"b":1}`},
		{"extract", ops(Op{Kind: "extract", Path: "data"}), nil, `{"meta":1,"data":{"a":1}}`, `{"a":1}`},
		{"extract nested", ops(Op{Kind: "extract", Path: "a.b"}), nil, `{"a":{"b":[1,2],"c":3}}`, `[1,2]`},
		{"extract scalar", ops(Op{Kind: "extract", Path: "a"}), nil, `{"a":"\u00e9"}`, `"\u00e9"`},
		{"extract missing: null", ops(Op{Kind: "extract", Path: "nope"}), nil, `{"a":1}`, `null`},
		{"extract type mismatch: null", ops(Op{Kind: "extract", Path: "a.b"}), nil, `{"a":[{"b":1}]}`, `null`},
		{"extract then wrap", ops(Op{Kind: "extract", Path: "a"}, Op{Kind: "wrap", Key: "w"}), nil,
			`{"a":{"x":1},"b":2}`, `{"w":{"x":1}}`},
		{"extract then set", ops(Op{Kind: "extract", Path: "a"}, Op{Kind: "set", Path: "n", Value: json.RawMessage(`1`)}), nil,
			`{"a":{"x":1},"b":2}`, `{"x":1,"n":1}`},
		{"extract duplicate: last", ops(Op{Kind: "extract", Path: "a"}), nil, `{"a":1,"a":2}`, `2`},
	})
}

type countingVars struct {
	MapVars
	n *int
}

func (c countingVars) Lookup(name string) (string, bool) { *c.n++; return c.MapVars.Lookup(name) }

func TestSet(t *testing.T) {
	c := func(path, v string) Op { return Op{Kind: "set", Path: path, Value: json.RawMessage(v)} }
	v := func(path, name string) Op { return Op{Kind: "set", Path: path, Var: name} }
	vars := MapVars{"consumer": "acme", "client_ip": "192.0.2.1", "header.X-Foo": "a\"b\\c\n<>&\u2028",
		"bad": "x\xffy", "claim.email": "ada@example.com", "empty": ""}
	runCases(t, []applyCase{
		{"constant scalar", ops(c("v", `2`)), nil, `{"a":1}`, `{"a":1,"v":2}`},
		{"constant compacted", ops(c("v", ` { "x" : [ 1 , 2 ] } `)), nil, `{}`, `{"v":{"x":[1,2]}}`},
		{"constant precise", ops(c("v", `1.000000000000000000001`)), nil, `{}`, `{"v":1.000000000000000000001}`},
		{"overwrite in place", ops(c("a", `"x"`)), nil, `{"a":1,"b":2}`, `{"a":"x","b":2}`},
		{"creates objects", ops(c("a.b.c", `true`)), nil, `{"z":0}`, `{"z":0,"a":{"b":{"c":true}}}`},
		{"through scalar: no-op", ops(c("a.b", `1`)), nil, `{"a":"s"}`, `{"a":"s"}`},
		{"on array root: no-op", ops(c("a", `1`)), nil, `[1]`, `[1]`},
		{"root", ops(c(".", `{"new":1}`)), nil, `{"old":1}`, `{"new":1}`},
		{"root var", ops(v(".", "consumer")), vars, `{"old":1}`, `"acme"`},
		{"array elements", ops(c("items[].cur", `"EUR"`)), nil,
			`{"items":[{"a":1},{"cur":"USD","b":2},3]}`, `{"items":[{"a":1,"cur":"EUR"},{"cur":"EUR","b":2},3]}`},
		{"array elements object constant", ops(c("items[].o", `{"k":[1]}`)), nil,
			`{"items":[{},{}]}`, `{"items":[{"o":{"k":[1]}},{"o":{"k":[1]}}]}`},
		{"var", ops(v("who", "consumer"), v("ip", "client_ip")), vars, `{}`, `{"who":"acme","ip":"192.0.2.1"}`},
		{"var escaped", ops(v("h", "header.X-Foo")), vars, `{}`, `{"h":"a\"b\\c\n<>&` + "\u2028" + `"}`},
		{"var invalid UTF-8", ops(v("b", "bad")), vars, `{}`, `{"b":"x\ufffdy"}`},
		{"var empty string", ops(v("e", "empty")), vars, `{}`, `{"e":""}`},
		{"var missing: no-op", ops(v("x", "nope")), vars, `{"a":1}`, `{"a":1}`},
		{"nil vars: no-op", ops(v("x", "consumer")), nil, `{"a":1}`, `{"a":1}`},
		{"var in array elements", ops(v("items[].by", "claim.email")), vars,
			`{"items":[{},{"by":1}]}`, `{"items":[{"by":"ada@example.com"},{"by":"ada@example.com"}]}`},
		{"ops see into constants", ops(c("a", `{"b":{"c":1}}`), Op{Kind: "rename", Path: "a.b.c", Key: "d"}), nil,
			`{}`, `{"a":{"b":{"d":1}}}`},
	})
	t.Run("var looked up once per op", func(t *testing.T) {
		n := 0
		p := MustCompile(ops(v("items[].by", "consumer")))
		out, err := p.Apply([]byte(`{"items":[{},{},{}]}`), countingVars{vars, &n}, Limits{})
		if err != nil || n != 1 {
			t.Fatalf("out %s err %v lookups %d", out, err, n)
		}
	})
}

func TestDelete(t *testing.T) {
	d := func(path string) Op { return Op{Kind: "delete", Path: path} }
	runCases(t, []applyCase{
		{"top", ops(d("a")), nil, `{"a":1,"b":2}`, `{"b":2}`},
		{"nested", ops(d("a.b")), nil, `{"a":{"b":1,"c":2}}`, `{"a":{"c":2}}`},
		{"array elements", ops(d("items[].x")), nil, `{"items":[{"x":1,"y":2},{"y":3},4]}`, `{"items":[{"y":2},{"y":3},4]}`},
		{"arrays of arrays", ops(d("[][].x")), nil, `[[{"x":1}],[{"x":2,"y":3}]]`, `[[{}],[{"y":3}]]`},
		{"missing: no-op", ops(d("x.y")), nil, `{"x":{}}`, `{"x":{}}`},
		{"duplicates", ops(d("a")), nil, `{"a":1,"a":2,"b":3}`, `{"b":3}`},
	})
}

func TestFilterThenOps(t *testing.T) {
	runCases(t, []applyCase{
		{"denied data cannot be moved", Spec{Deny: []string{"user.password"},
			Ops: []Op{{Kind: "move", From: "user.password", To: "pw"}}}, nil,
			`{"user":{"name":"a","password":"x"}}`, `{"user":{"name":"a"}}`},
		{"set survives allow", Spec{Allow: []string{"a"},
			Ops: []Op{{Kind: "set", Path: "consumer", Var: "consumer"}}}, MapVars{"consumer": "c"},
			`{"a":1,"b":2}`, `{"a":1,"consumer":"c"}`},
		{"ops in order", ops(
			Op{Kind: "rename", Path: "a", Key: "b"},
			Op{Kind: "move", From: "b", To: "c.d"},
			Op{Kind: "wrap", Key: "w"},
			Op{Kind: "delete", Path: "w.x"},
		), nil, `{"a":1,"x":2}`, `{"w":{"c":{"d":1}}}`},
	})
}

func TestPrecisionAndFidelity(t *testing.T) {
	p := MustCompile(Spec{})
	cases := []struct{ in, want string }{
		{`9007199254740993`, `9007199254740993`},
		{`[9007199254740993, 0.1, 1e400, -0, -0.0, 1E+999999, 1e-400, 123456789012345678901234567890, 0.30000000000000004, 2.5E-3]`,
			`[9007199254740993,0.1,1e400,-0,-0.0,1E+999999,1e-400,123456789012345678901234567890,0.30000000000000004,2.5E-3]`},
		{`{"s":"\u00e9\ud83d\ude00\u0000\"\\\/\b\f\n\r\t","t":"é😀"}`, `{"s":"\u00e9\ud83d\ude00\u0000\"\\\/\b\f\n\r\t","t":"é😀"}`},
		{`"\ud800"`, `"\ud800"`}, // lone surrogate: legal JSON syntax, kept as is
		{"{ \"b\" : 1 ,\n\t\"a\" : [ ] , \"c\" : { } }\r\n", `{"b":1,"a":[],"c":{}}`},
		{`{"z":1,"y":2,"x":3,"z":4}`, `{"z":1,"y":2,"x":3,"z":4}`},
		{`true`, `true`}, {`null`, `null`}, {`""`, `""`}, {`[[[]]]`, `[[[]]]`},
		{"\"\u2028\u2029\"", "\"\u2028\u2029\""},
	}
	for _, tc := range cases {
		got, err := p.Apply([]byte(tc.in), nil, Limits{})
		if err != nil || string(got) != tc.want {
			t.Errorf("Apply(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	// Number precision through every kind of op.
	q := MustCompile(Spec{Deny: []string{"drop"}, Ops: []Op{
		{Kind: "rename", Path: "a", Key: "b"},
		{Kind: "move", From: "b", To: "c.d"},
		{Kind: "set", Path: "e", Value: json.RawMessage(`-0.0e-0`)},
		{Kind: "wrap", Key: "w"},
		{Kind: "extract", Path: "w"},
	}})
	got, err := q.Apply([]byte(`{"a":9007199254740993,"drop":1,"n":[1e400,-0]}`), nil, Limits{})
	if want := `{"n":[1e400,-0],"c":{"d":9007199254740993},"e":-0.0e-0}`; err != nil || string(got) != want {
		t.Errorf("got %s, %v; want %s", got, err, want)
	}
}

func TestEmptyBody(t *testing.T) {
	for _, body := range []string{"", " ", "\r\n\t "} {
		for _, tc := range []struct {
			name string
			spec Spec
			want string
		}{
			{"identity", Spec{}, ""},
			{"deny", deny("a"), ""},
			{"allow", allow("a"), ""},
			{"rename", ops(Op{Kind: "rename", Path: "a", Key: "b"}), ""},
			{"move", ops(Op{Kind: "move", From: "a", To: "b"}), ""},
			{"delete", ops(Op{Kind: "delete", Path: "a"}), ""},
			{"extract", ops(Op{Kind: "extract", Path: "a"}), ""},
			{"wrap", ops(Op{Kind: "wrap", Key: "data"}), `{"data":{}}`},
			{"set", ops(Op{Kind: "set", Path: "a.b", Value: json.RawMessage(`1`)}), `{"a":{"b":1}}`},
			{"set root", ops(Op{Kind: "set", Path: ".", Value: json.RawMessage(`[]`)}), `[]`},
			{"set missing var", ops(Op{Kind: "set", Path: "a", Var: "nope"}), ""},
			{"set fan-out", ops(Op{Kind: "set", Path: "items[].a", Value: json.RawMessage(`1`)}), `{}`},
		} {
			got, err := MustCompile(tc.spec).Apply([]byte(body), MapVars{}, Limits{MaxBytes: 100})
			if err != nil || string(got) != tc.want {
				t.Errorf("%s on %q: got %q, %v; want %q", tc.name, body, got, err, tc.want)
			}
		}
	}
}

func TestInvalidJSON(t *testing.T) {
	p := MustCompile(Spec{Deny: []string{"a"}, Ops: []Op{{Kind: "wrap", Key: "w"}}})
	cases := []struct {
		in     string
		offset int
		reason string
	}{
		{`{`, 1, "unexpected end of input"},
		{`{"a":1,}`, 7, `unexpected '}', expected a string key`},
		{`{"a" 1}`, 5, "expected ':'"},
		{`{"a":}`, 5, "unexpected '}'"},
		{`{a:1}`, 1, "unexpected 'a', expected a string key"},
		{`{'a':1}`, 1, `unexpected "'"`},
		{`[1,]`, 3, "unexpected ']'"},
		{`[1 2]`, 3, "unexpected '2'"},
		{`[`, 1, "unexpected end of input"},
		{`]`, 0, "unexpected ']'"},
		{`{"a":1}}`, 7, "after the JSON value"},
		{`{} {}`, 3, "after the JSON value"},
		{`"abc`, 4, "unexpected end of input in string"},
		{"\"a\x01\"", 2, "control character byte 0x01 in string"},
		{"\"a\nb\"", 2, "control character byte 0x0a"},
		{`"\x"`, 1, "invalid escape"},
		{`"\u12G4"`, 5, "invalid \\u escape"},
		{`"\u12"`, 5, "invalid \\u escape"},
		{`"\`, 2, "unexpected end of input in string"},
		{"\"\xff\"", 1, "invalid UTF-8"},
		{"\"\xed\xa0\x80\"", 1, "invalid UTF-8"},      // encoded surrogate
		{"\xef\xbb\xbf{}", 0, "unexpected byte 0xef"}, // BOM
		{`01`, 1, "unexpected '1'"},
		{`-`, 1, "unexpected end of input in number"},
		{`-a`, 1, "unexpected 'a' in number"},
		{`1.`, 2, "in number"},
		{`1.e5`, 2, "unexpected 'e' in number"},
		{`1e`, 2, "in number"},
		{`1e+`, 3, "in number"},
		{`+1`, 0, "unexpected '+'"},
		{`.5`, 0, "unexpected '.'"},
		{`NaN`, 0, "unexpected 'N'"},
		{`Infinity`, 0, "unexpected 'I'"},
		{`tru`, 3, "unexpected end of input"},
		{`trUe`, 2, "unexpected 'U'"},
		{`nul`, 3, "unexpected end of input"},
		{`falsy`, 4, "unexpected 'y'"},
		{`truex`, 4, "after the JSON value"},
		{"\x00", 0, "unexpected byte 0x00"},
		{"{\"a\":1,\x00}", 7, "byte 0x00"},
		{`[1,2`, 4, "unexpected end of input"},
		{`{"a":[1,{"b":2]}`, 14, "unexpected ']'"},
		{"\u00a0{}", 0, "unexpected byte 0xc2"}, // NBSP is not JSON whitespace
		{"{}\x0b", 2, "byte 0x0b"},
	}
	for _, tc := range cases {
		got, err := p.Apply([]byte(tc.in), nil, Limits{})
		var be *BodyError
		if !errors.As(err, &be) {
			t.Errorf("Apply(%q) = %s, %v; want a *BodyError", tc.in, got, err)
			continue
		}
		if be.Offset != tc.offset || !strings.Contains(be.Reason, tc.reason) {
			t.Errorf("Apply(%q): %v; want offset %d, reason containing %q", tc.in, err, tc.offset, tc.reason)
		}
		if json.Valid([]byte(tc.in)) && !strings.Contains(tc.reason, "UTF-8") {
			t.Errorf("%q: encoding/json accepts it", tc.in)
		}
		if errors.Is(err, ErrTooDeep) || errors.Is(err, ErrTooLarge) {
			t.Errorf("%q: unexpected sentinel in %v", tc.in, err)
		}
	}
	_, err := p.Apply([]byte(`{"a":1,}`), nil, Limits{})
	if want := `invalid JSON at offset 7: unexpected '}', expected a string key`; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestLimits(t *testing.T) {
	id := MustCompile(Spec{})
	nest := func(n int, open, close string) []byte {
		return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
	}
	// Depth.
	if _, err := id.Apply(nest(128, "[", "]"), nil, Limits{}); err != nil {
		t.Errorf("depth 128: %v", err)
	}
	for _, body := range [][]byte{
		nest(129, "[", "]"),
		nest(129, `{"a":`, "}"),
		[]byte(strings.Repeat("[", 10_000_000)),           // unterminated attack
		[]byte(strings.Repeat(`{"a":[`, 1_000_000)),       // mixed
		[]byte(`{"ok":` + strings.Repeat("[", 200) + `}`), // deep and invalid: depth wins
	} {
		_, err := id.Apply(body, nil, Limits{})
		var be *BodyError
		if !errors.Is(err, ErrTooDeep) || !errors.As(err, &be) {
			t.Errorf("deep body (%d bytes): %v; want ErrTooDeep *BodyError", len(body), err)
		} else if be.Reason != "nesting deeper than 128" {
			t.Errorf("reason %q", be.Reason)
		}
	}
	if _, err := id.Apply(nest(3, "[", "]"), nil, Limits{MaxDepth: 2}); !errors.Is(err, ErrTooDeep) {
		t.Errorf("MaxDepth 2: %v", err)
	}
	if _, err := id.Apply(nest(2, "[", "]"), nil, Limits{MaxDepth: 2}); err != nil {
		t.Errorf("MaxDepth 2: %v", err)
	}
	// Size: input, output.
	if _, err := id.Apply([]byte(`[1,2,3]`), nil, Limits{MaxBytes: 6}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("input over MaxBytes: %v", err)
	}
	if _, err := id.Apply([]byte(`[1, 2]`), nil, Limits{MaxBytes: 5}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("input over MaxBytes by whitespace (the raw input counts): %v", err)
	}
	if out, err := id.Apply([]byte(`[1,2]`), nil, Limits{MaxBytes: 5}); err != nil || string(out) != `[1,2]` {
		t.Errorf("input at MaxBytes: %s %v", out, err)
	}
	wrap := MustCompile(ops(Op{Kind: "wrap", Key: "data"}))
	if _, err := wrap.Apply([]byte(`[1,2,3]`), nil, Limits{MaxBytes: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("output over MaxBytes: %v", err)
	}
	fan := MustCompile(ops(Op{Kind: "set", Path: "[].x", Value: json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)}))
	if _, err := fan.Apply([]byte(`[{},{},{},{}]`), nil, Limits{MaxBytes: 1500}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("output growth over MaxBytes: %v", err)
	}
	var be *BodyError
	if _, err := wrap.Apply([]byte(`[1,2,3]`), nil, Limits{MaxBytes: 10}); errors.As(err, &be) {
		t.Errorf("ErrTooLarge must not be a BodyError")
	}
}

func TestNilProgramAndAliasing(t *testing.T) {
	var p *Program
	in := []byte(` {"a" : 1} `)
	out, err := p.Apply(in, nil, Limits{})
	if err != nil || string(out) != `{"a":1}` {
		t.Fatalf("%s %v", out, err)
	}
	// The result must not alias pooled memory: a later Apply cannot change it.
	q := MustCompile(Spec{})
	a, _ := q.Apply([]byte(`{"x":"first"}`), nil, Limits{})
	b, _ := q.Apply([]byte(`{"y":"second"}`), nil, Limits{})
	if string(a) != `{"x":"first"}` || string(b) != `{"y":"second"}` {
		t.Fatalf("aliasing: %s %s", a, b)
	}
}

func TestConcurrentApply(t *testing.T) {
	p := MustCompile(Spec{Deny: []string{"items[].secret"}, Ops: []Op{
		{Kind: "set", Path: "who", Var: "consumer"},
		{Kind: "move", From: "items[].a", To: "items[].b.c"},
		{Kind: "wrap", Key: "data"},
	}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				who := strings.Repeat("x", g+i%7)
				in := `{"items":[{"a":1,"secret":2},{"a":` + strings.Repeat("9", g+1) + `}]}`
				want := `{"data":{"items":[{"b":{"c":1}},{"b":{"c":` + strings.Repeat("9", g+1) + `}}],"who":"` + who + `"}}`
				out, err := p.Apply([]byte(in), MapVars{"consumer": who}, Limits{})
				if err != nil || string(out) != want {
					t.Errorf("got %s %v want %s", out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// AppendApply appends what Apply returns, keeps dst's bytes, and with
// room in dst allocates nothing.
func TestAppendApply(t *testing.T) {
	p := MustCompile(Spec{Deny: []string{"b"}})
	dst := append(make([]byte, 0, 64), "kept:"...)
	out, err := p.AppendApply(dst, []byte(`{"a":1,"b":2}`), nil, Limits{})
	if err != nil || string(out) != `kept:{"a":1}` {
		t.Fatalf("AppendApply = %q, %v", out, err)
	}
	if want, _ := p.Apply([]byte(`{"a":1,"b":2}`), nil, Limits{}); string(out[len("kept:"):]) != string(want) {
		t.Errorf("AppendApply %q, Apply %q", out, want)
	}
	if testenv.RaceEnabled {
		t.Log("allocations not counted: the race detector drops pooled state at random (make test counts them in a run without it)")
		return
	}
	buf, body := make([]byte, 0, 64), []byte(`{"a":1,"b":2}`)
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = p.AppendApply(buf[:0], body, nil, Limits{})
	}); n != 0 {
		t.Errorf("%v allocations a run with room in dst", n)
	}
}
