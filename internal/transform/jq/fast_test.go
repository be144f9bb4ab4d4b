package jq

import (
	"context"
	"testing"
	"time"
)

// fastPrograms are in the fast path's subset; TestFastSameAsGojq and
// FuzzFast compare their runs with gojq's.
var fastPrograms = []string{
	`{id, name, items: [.items[] | {sku, qty}]}`,
	`.`, `.a`, `.a.b`, `.["a b"]`, `."a b".c`, `.a[0]`, `.a[-1]`, `.items[1].sku`, `.a[5]`,
	`[.items[] | .sku]`, `[.a[], .b]`, `[.x[] | .z, .q]`, `{a: .a[0], b: [.a[] | .b]}`,
	`{$consumer, c: .a.c}`, `{"k": 1.50, n: null, t: true, f: false, s: "str\u00e9\n", e: 1e2, z: -0}`,
	`[.a[][]]`, `[]`, `[.[]]`, `.a | {b, c}`, `.a | .b`, `{x: (.a | .b)}`, `(.a)`,
	`[.items[] | {sku, q: .qty, price: .price}]`, `$headers`, `{h: $headers, c: $claims, p: $path}`,
	`[.a[] | [.b[]]]`, `[.items[] | .tags[]]`, `{z: 1, a: 2, m: {y: .y, b: .b}}`, `[1, "two", null]`,
	`{"a b": .k, "é": .v, "\u0000": 1}`, `.customer | {email, phone}`, `[.order, .customer]`,
}

// notFastPrograms are outside the subset (or may yield several values).
var notFastPrograms = []string{
	`.a?`, `.a[]`, `.a, .b`, `{a: .b[]}`, `{(.k): 1}`, `{"\(.k)": 1}`, `{a: 1, a: 2}`, `.a[1:]`,
	`.[.k]`, `map(.a)`, `length`, `.a + 1`, `"\(.a)"`, `{a: 1} | .a`, `[.a][0]`, `def f: .; f`,
	`.a as $x | $x`, `..`, `if .a then 1 else 2 end`, `try .a`, `reduce .[] as $x (0; .)`, `$consumer | .a`,
	`.a | .b[]`, `[.[]] | .[0]`, `.[1e3]`, `.[1.5]`,
}

func TestFastSubset(t *testing.T) {
	o := Options{Vars: requestVars}
	for _, expr := range fastPrograms {
		if p := mustCompile(t, expr, o); p.fast == nil {
			t.Errorf("%s: not on the fast path", expr)
		}
	}
	for _, expr := range notFastPrograms {
		if p := mustCompile(t, expr, o); p.fast != nil {
			t.Errorf("%s: on the fast path", expr)
		}
	}
}

// fastDocs add shapes for the subset's paths to projectionDocs and
// runSeeds: escapes and invalid UTF-8 in strings and keys, arrays of
// arrays, numbers in every form.
var fastDocs = []string{
	`{"id":"o1","name":"N","items":[{"sku":"a","qty":1,"x":2},{"sku":"b","qty":2.50}],"extra":[1,2]}`,
	`{"a":[[1,2],[3]],"b":"x"}`,
	`{"a":[{"b":[1,2]},{"b":[]}]}`,
	`{"a":[{"b":1}]}`,
	`{"items":[{"tags":["a","b"]},{"tags":[]}]}`,
	`{"a\u0020b":{"c":1},"a b":2}`,
	`{"k":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","v":"` + "\x7f\xff" + `","é":1}`,
	`{"a":{"b":-0.0e+00,"c":1E400},"x":{"y":12345678901234567890}}`,
	`{"customer":{"email":"e@x","phone":null,"email":"last"},"order":{"id":1}}`,
	` [ {"sku" : "a" } , 1 ] `,
	`{"a":[1,2,3],"b":{"c":[]}}`,
	`{"k":"\u2028\u2029<>&","v":{"b":{"d":1,"c":2}}}`,
	`{"y":"` + "\xed\xa0\x80" + `","b":1}`,
}

// slowTwin is p without its fast form: what gojq answers.
func slowTwin(tb testing.TB, p *Program) *Program {
	tb.Helper()
	w := mustCompile(tb, p.expr, Options{Vars: requestVars, Timeout: time.Minute, MaxBytes: p.maxBytes})
	w.fast = nil
	return w
}

func TestFastSameAsGojq(t *testing.T) {
	docs := append(append([]string{}, fastDocs...), projectionDocs...)
	for _, s := range runSeeds {
		docs = append(docs, s)
	}
	for _, expr := range fastPrograms {
		p := mustCompile(t, expr, Options{Vars: requestVars, Timeout: time.Minute, MaxBytes: fuzzMax})
		slow := slowTwin(t, p)
		fast := 0
		for _, doc := range docs {
			if compareFast(t, p, slow, []byte(doc)) {
				fast++
			}
		}
		if fast == 0 {
			t.Errorf("%s: no document took the fast path", expr)
		}
	}
}

// compareFast checks that p answers body as gojq does; it reports
// whether the fast path answered.
func compareFast(tb testing.TB, p, slow *Program, body []byte) bool {
	tb.Helper()
	got, gerr := p.Run(context.Background(), body, requestValues())
	want, werr := slow.Run(context.Background(), body, requestValues())
	if string(got) != string(want) || errString(gerr) != errString(werr) {
		tb.Errorf("%s on %q:\n got %s, %v\nwant %s, %v", p, body, got, gerr, want, werr)
	}
	if p.fast == nil {
		return false
	}
	vals := requestValues()
	for i, v := range vals {
		vals[i], _ = normalize(v)
	}
	_, ok := runFast(p.fast, body, vals, p.maxBytes)
	return ok
}

// FuzzFast: the fast path answers as gojq does, or leaves the body to it.
func FuzzFast(f *testing.F) {
	for _, doc := range fastDocs {
		f.Add([]byte(doc))
	}
	type pair struct{ p, slow *Program }
	var pairs []pair
	for _, expr := range fastPrograms {
		p := mustCompile(f, expr, Options{Vars: requestVars, Timeout: time.Minute, MaxBytes: fuzzMax})
		pairs = append(pairs, pair{p, slowTwin(f, p)})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, x := range pairs {
			compareFast(t, x.p, x.slow, body)
		}
	})
}
