package jq

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/itchyny/gojq"
)

// needString renders a need: "all" for nil, "*" for a whole value, else
// {name:need,...,[]:need}.
func needString(n *need) string {
	switch {
	case n == nil:
		return "all"
	case n.all:
		return "*"
	}
	var parts []string
	for k, c := range n.keys {
		parts = append(parts, k+":"+needString(c))
	}
	slices.Sort(parts)
	if n.each != nil {
		parts = append(parts, "[]:"+needString(n.each))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestProjection(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`{id, name, items: [.items[] | {sku, qty}]}`, `{id:*,items:{[]:{qty:*,sku:*}},name:*}`},
		{benchExpr, `{customer:{email:*,first:*,last:*},items:{[]:{price:*,qty:*,sku:*}},order:{id:*}}`},
		{`.a.b`, `{a:{b:*}}`},
		{`.a."b c".["d"]`, `{a:{b c:{d:*}}}`},
		{`.a[]?`, `{a:{[]:*}}`},
		{`[.[] | .x]`, `{[]:{x:*}}`},
		{`map(.a)`, `{[]:{a:*}}`},
		{`select(.a) | .b`, `{a:*,b:*}`},
		{`if .a then .b elif .c then .d end`, "all"}, // yields . when nothing matches
		{`if .a then .b else .c end`, `{a:*,b:*,c:*}`},
		{`.a // .b | .c`, `{a:{c:*},b:{c:*}}`},
		{`try .a.b catch .`, `{a:{b:*}}`},
		{`{(.k): .v, "x\(.y)": 1, "z", $consumer}`, `{k:*,v:*,y:*,z:*}`},
		{`{a: .x.y, b: [.x[] | .z]}`, `{x:{y:*,[]:{z:*}}}`},
		{`.x | (.y, (.[] | .z))`, `{x:{y:*,[]:{z:*}}}`},
		{`"\(.a)-\(.b)", @base64 "\(.c)", -.d, .e + .f, .g == .h`, `{a:*,b:*,c:*,d:*,e:*,f:*,g:*,h:*}`},
		{`.a | keys`, `{a:*}`},
		{`{a: .a} | .a.b`, `{a:*}`},
		{`[.a, .b] | sort`, `{a:*,b:*}`},
		{`$consumer | .x`, "all"}, // the body is not read: nothing to project
		{`.a | 1`, `{a:*}`},
		// Given up on: the whole body.
		{`.`, "all"},
		{`.[0]`, "all"},
		{`.a[1:]`, "all"},
		{`.a as $x | $x`, "all"},
		{`def f: .a; f`, "all"},
		{`reduce .[] as $x (0; . + $x)`, "all"},
		{`..`, "all"},
		{`.a = 1`, "all"},
		{`first(.items[]) | .sku`, "all"},
		{`.[.k]`, "all"},
		{`{"\(.k)"}`, "all"},
		{`label $out | .a`, "all"},
		{`tojson`, "all"},
		{`@base64`, "all"},
		{`select(.a)`, "all"},
	} {
		q, err := gojq.Parse(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := needString(projection(q)); got != c.want {
			t.Errorf("%s: %s, want %s", c.expr, got, c.want)
		}
	}
}

// projectedPrograms are compared with and without projection, by
// TestProjectionSameResults and FuzzProjection.
var projectedPrograms = []string{
	`{id, name, items: [.items[] | {sku, qty}]}`,
	benchExpr,
	`.a.b`, `.a[]`, `.a[]?`, `[.[]? | .x?]`, `.items[] | .sku`, `[.items[] | .sku?]`,
	`map(.a)`, `map(.a?)`, `.a | map(.b)`, `select(.a) | .b`, `if .a then .b else .c end`,
	`.a // .b | .c`, `try .a.b catch .`, `try (.a | .[]) catch .`, `.a.b.c?`,
	`{(.k): .v}`, `"\(.a)-\(.b)"`, `{"a b"}`, `.["a b"]`, `{a: .x.y, b: [.x[] | .z]}`,
	`.x.y, (.x[] | .z)`, `.a.b | tostring`, `-.n`, `.a + .b`, `.a == .b`, `{a: .a} | .a.b`,
	`.v.deep`, `[.items[] | select(.qty > 0) | .price]`, `.a | 1`, `{$consumer, c: .a.c}`,
}

// projectionDocs exercise mismatches: names looked up in arrays and
// scalars, .[] over objects and scalars, duplicates, missing members.
var projectionDocs = []string{
	`{"a":{"b":1,"c":2},"b":[1,2],"x":{"y":1,"z":2}}`,
	`{"a":[{"b":1}],"items":"str","k":"key","v":{"deep":{"er":1}}}`,
	`{"items":[{"sku":"a","qty":1,"price":2},{"sku":"b"},"str",[1,2],null,{"sku":[1],"qty":{"x":1}}]}`,
	`{"items":{"k1":{"sku":"a","qty":1,"x":2},"k2":[1,2]},"x":[{"z":1,"q":2},{"z":{"w":1}}]}`,
	`{"a":1,"a":{"b":{"c":3},"d":4},"x":{"y":1,"y":[3]},"n":-0,"k":"a b","v":9007199254740993}`,
	`{"a":{"b":[{"c":1}],"c":{"c":2}},"b":null,"c":false,"order":{"id":1,"x":[1]},"customer":[1,2]}`,
	`{"order":{"id":"o","more":{"deep":[1,2,3]}},"customer":{"first":"A","last":"L","email":"e","phone":"p"},` +
		`"items":[{"sku":"s","qty":2,"price":3.5,"tags":["a"]},{"sku":"t","qty":0,"price":1}],"other":{"x":[1,{"y":2}]}}`,
	`[1,2,3]`, `[{"a":1,"b":2},{"a":[3]}]`, `"str"`, `null`, `7`, `{"a":null}`, `{}`, `[]`, `{"a":{}}`,
	`{"a":"x","b":"y","a b":{"c":1},"g":[1,{"h":2}],"h":[1,{"h":2}]}`,
}

func TestProjectionSameResults(t *testing.T) {
	for _, expr := range projectedPrograms {
		projected, whole := projectedPair(t, expr)
		for _, doc := range projectionDocs {
			compareRuns(t, projected, whole, []byte(doc))
		}
	}
}

// projectedPair compiles expr twice: as Compile does, and decoding the
// whole body.
func projectedPair(tb testing.TB, expr string) (*Program, *Program) {
	o := Options{Vars: requestVars, Timeout: time.Minute}
	p := mustCompile(tb, expr, o)
	w := mustCompile(tb, expr, o)
	w.need = nil
	p.fast, w.fast = nil, nil // both on gojq: the fast path has its own tests
	return p, w
}

func compareRuns(tb testing.TB, projected, whole *Program, body []byte) {
	tb.Helper()
	got, gerr := projected.Run(context.Background(), body, requestValues())
	want, werr := whole.Run(context.Background(), body, requestValues())
	if string(got) != string(want) || errString(gerr) != errString(werr) {
		tb.Errorf("%s on %s (projection %s):\n got %s, %v\nwant %s, %v",
			projected, body, needString(projected.need), got, gerr, want, werr)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzProjection: projected runs give what whole-body runs give,
// errors included.
func FuzzProjection(f *testing.F) {
	for _, doc := range projectionDocs {
		f.Add([]byte(doc))
	}
	type pair struct{ projected, whole *Program }
	var pairs []pair
	for _, expr := range projectedPrograms {
		p, w := projectedPair(f, expr)
		if p.need == nil {
			f.Fatalf("%s: not projected", expr)
		}
		pairs = append(pairs, pair{p, w})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range pairs {
			compareRuns(t, p.projected, p.whole, body)
		}
	})
}
