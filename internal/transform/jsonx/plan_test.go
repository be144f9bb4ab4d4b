package jsonx

import (
	"bytes"
	"encoding/json"
	"testing"
)

// scanBoth reads body with program p, through fastContainer and through
// the general loop only, and fails if they differ.
func scanBoth(t *testing.T, p *Program, body []byte) {
	t.Helper()
	run := func(slow bool) (out []byte, tape []tapeEntry, present bool, err error) {
		sc := scanner{s: body, maxDepth: 40, rec: true, slow: slow}
		t := p.deny
		if p.allow != nil {
			t, sc.allow = p.allow, true
		}
		present, ok := sc.document(t, true)
		if !ok {
			return nil, nil, present, sc.err
		}
		return sc.out, sc.tape, present, nil
	}
	fo, ft, fp, fe := run(false)
	so, st, sp, se := run(true)
	if !bytes.Equal(fo, so) || fp != sp || errString(fe) != errString(se) || len(ft) != len(st) {
		t.Fatalf("%q: fast %q %v %v, general %q %v %v", body, fo, fp, fe, so, sp, se)
	}
	for i := range ft {
		if ft[i] != st[i] {
			t.Fatalf("%q: tape %d: fast %v, general %v", body, i, ft[i], st[i])
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzScanPaths: fastContainer, which reads most bodies, and the general
// loop, which reads the rest and words errors, agree on everything.
func FuzzScanPaths(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"c":2},"items":[{"id":1},{"id":"x","k":0}]}`, ` { "a" : [ 1 , { "b" : null } ] } `,
		`[{"x":1,"y":2},{"x":[]}]`, `{"m":[[{"y":1}],[]]}`, `{"a":{"b":[{"c":[[[]]]}]}}`, `{"\u00e9":"\u0000","a.b":1}`,
		`{"a":1,}`, `[1,2`, "\"\xff\"", `{"a":01}`, `[tru]`, `{"a" 1}`, "[" + `{"a":[` + "]", `{"é":[1,{"x":-0.5e+3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range fuzzPrograms {
			scanBoth(t, p, body)
		}
	})
}

var (
	planPaths = []string{"a", "b", "c", "a.b", "a.c", "b.a", "b.c", "x.y", "x.z", "a.b.c", "items[].a", "items[].b",
		"items[].b.c", "items[].x.y", "[].a", "[].b", "[].a.b", `"\u00e9"`, "items", "x", "a.x"}
	planKeys   = []string{"a", "b", "c", "x", "y", "z", "é", "items"}
	planValues = []string{`1`, `"s"`, `{"q":[1,{"r":2}]}`, `[]`, `null`, `{}`}
)

// opsFrom makes up to ten ops from fuzz bytes, three each, on a few paths
// and keys, so that they often meet.
func opsFrom(sel []byte) Spec {
	var s Spec
	pick := func(xs []string, b byte) string { return xs[int(b)%len(xs)] }
	for ; len(sel) >= 3 && len(s.Ops) < 10; sel = sel[3:] {
		x, y := sel[1], sel[2]
		var o Op
		switch sel[0] % 12 {
		case 0:
			o = Op{Kind: "rename", Path: pick(planPaths, x), Key: pick(planKeys, y)}
		case 1, 2:
			o = Op{Kind: "delete", Path: pick(planPaths, x)}
		case 3, 4:
			o = Op{Kind: "set", Path: pick(planPaths, x), Value: json.RawMessage(pick(planValues, y))}
		case 5:
			o = Op{Kind: "set", Path: pick(planPaths, x), Var: pick([]string{"v", "missing"}, y)}
		case 6, 7, 8:
			o = Op{Kind: "move", From: pick(planPaths, x), To: pick(planPaths, y)}
		case 9, 10:
			o = Op{Kind: "wrap", Key: pick(planKeys, x)}
		case 11:
			o = Op{Kind: "extract", Path: pick(planPaths, x)}
		}
		if _, err := Compile(Spec{Ops: []Op{o}}); err == nil {
			s.Ops = append(s.Ops, o)
		}
	}
	if len(sel) > 0 {
		switch sel[0] % 3 {
		case 1:
			s.Deny = []string{"b.c", "items[].x"}
		case 2:
			s.Allow = []string{"a", "items[].b", "x", "[].a"}
		}
	}
	return s
}

// FuzzPlan: ops run as a plan, while the body is read, give what they give
// on the tree, which defines them.
func FuzzPlan(f *testing.F) {
	for i, d := range []string{
		`{"a":{"b":1,"c":{"x":2}},"b":{"a":[1],"c":3},"items":[{"a":1,"b":{"c":2}},{"b":3},5,{"x":{"y":1}}],"x":{"y":1}}`,
		`{"a":1,"a":2,"b":{"c":1,"c":2},"items":[{"a":1,"a":2}]}`,
		`[{"a":1,"b":{"a":2}},{"a":{"b":3}},7,[{"a":1}]]`,
		` { "a" : { "b" : 1 } , "items" : [ { "b" : { "c" : 1 } } ] } `,
		`{"\u00e9":1,"b":2,"items":[{"x":{"y":1,"z":2}}]}`, ``, `1`, `{}`,
	} {
		f.Add([]byte{byte(i), 6, 1, 3, 3, 7, 0, 2, 4, 9, 1}, []byte(d))
		f.Add([]byte{byte(i * 7), 7, 10, 2, 1, 11, 3, 9, 2, 5}, []byte(d))
	}
	vars := MapVars{"v": "V\u2028"}
	f.Fuzz(func(t *testing.T, sel, body []byte) {
		p, err := Compile(opsFrom(sel))
		if err != nil || p.plan == nil {
			return
		}
		tree := *p
		tree.plan = nil
		for _, lim := range []Limits{{}, {MaxBytes: 40}} {
			got, err := p.Apply(body, vars, lim)
			want, werr := tree.Apply(body, vars, lim)
			if !bytes.Equal(got, want) || errString(err) != errString(werr) {
				t.Fatalf("%+v on %q: plan %q %v, tree %q %v", opsFrom(sel), body, got, err, want, werr)
			}
		}
	})
}

// TestPlanFollowed: the maps of the benchmarks run as plans, without the
// tree.
func TestPlanFollowed(t *testing.T) {
	for _, s := range []Spec{
		mapSpec,
		{Ops: []Op{
			{Kind: "rename", Path: "id", Key: "order_id"},
			{Kind: "move", From: "customer.email", To: "contact.email"},
			{Kind: "move", From: "items[].price.amount", To: "items[].amount"},
			{Kind: "wrap", Key: "data"},
		}},
	} {
		p := MustCompile(s)
		if p.plan == nil {
			t.Fatalf("%+v: no plan", s)
		}
		d := &doc{lit: p.lit, prog: p, vals: make([]opValue, len(p.ops))}
		ps := d.planState(p.plan, benchVars{})
		if present, err := d.filter(doc1KiB, p, DefaultMaxDepth, ps); !present || err != nil || ps.bail {
			t.Errorf("%+v: present %v, error %v, plan given up %v", s, present, err, ps.bail)
		}
	}
}
