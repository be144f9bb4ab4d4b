package jq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustCompile(tb testing.TB, expr string, o Options) *Program {
	tb.Helper()
	p, err := Compile(expr, o)
	if err != nil {
		tb.Fatalf("Compile(%q): %v", expr, err)
	}
	return p
}

var requestVars = []string{"$consumer", "$client_ip", "$request_id", "path", "query", "headers", "claims"}

func requestValues() []any {
	return []any{
		"acme",
		"203.0.113.7",
		"req-1",
		"/orders/42",
		map[string]string{"page": "2"},
		http.Header{"X-Tenant": {"t1", "t2"}},
		map[string]any{"sub": "u-1", "scope": []any{"read", "write"}, "exp": 1700000000.0},
	}
}

func TestRun(t *testing.T) {
	const order = `{"id":7,"user":{"first":"Ada","last":"Lovelace","email":"ada@example.com"},` +
		`"items":[{"sku":"a","qty":2,"price":12.5},{"sku":"b","qty":0,"price":3},{"sku":"c","qty":1,"price":40}],"note":null}`
	for _, c := range []struct {
		name, expr, in, want string
	}{
		{"identity", `.`, order, `{"id":7,"items":[{"price":12.5,"qty":2,"sku":"a"},{"price":3,"qty":0,"sku":"b"},{"price":40,"qty":1,"sku":"c"}],"note":null,"user":{"email":"ada@example.com","first":"Ada","last":"Lovelace"}}`},
		{"field", `.user.email`, order, `"ada@example.com"`},
		{"missing field", `.nope.deeper`, order, `null`},
		{"select", `[.items[] | select(.qty > 0) | .sku]`, order, `["a","c"]`},
		{"map", `.items | map({sku, total: (.qty * .price)})`, order, `[{"sku":"a","total":25},{"sku":"b","total":0},{"sku":"c","total":40}]`},
		{"object construction", `{id: .id, name: "\(.user.first) \(.user.last)", count: (.items | length)}`, order, `{"count":3,"id":7,"name":"Ada Lovelace"}`},
		{"interpolation with vars", `{greeting: "hello \($consumer) from \($client_ip)", req: $request_id, path: $path}`, `{}`, `{"greeting":"hello acme from 203.0.113.7","path":"/orders/42","req":"req-1"}`},
		{"set from vars", `.meta = {consumer: $consumer, sub: $claims.sub, tenant: $headers["X-Tenant"][0], page: ($query.page | tonumber)}`, `{"a":1}`, `{"a":1,"meta":{"consumer":"acme","page":2,"sub":"u-1","tenant":"t1"}}`},
		{"claims array", `$claims.scope | index("write")`, `null`, `1`},
		{"arrays", `[.[] * 2] | {first: .[0], last: .[-1], mid: .[1:3], n: length}`, `[1,2,3,4]`, `{"first":2,"last":8,"mid":[4,6],"n":4}`},
		{"sort_by and group_by", `sort_by(.n) | group_by(.g) | map(map(.n))`, `[{"n":3,"g":"x"},{"n":1,"g":"y"},{"n":2,"g":"x"}]`, `[[2,3],[1]]`},
		{"del", `del(.user.email, .items)`, order, `{"id":7,"note":null,"user":{"first":"Ada","last":"Lovelace"}}`},
		{"with_entries", `with_entries(.key |= ascii_upcase)`, `{"a":1,"b":2}`, `{"A":1,"B":2}`},
		{"alternative", `{note: (.note // "none"), id: (.id // 0)}`, order, `{"id":7,"note":"none"}`},
		{"if", `if .qty > 1 then "many" elif .qty == 1 then "one" else "none" end`, `{"qty":1}`, `"one"`},
		{"reduce", `reduce .items[] as $i (0; . + $i.qty * $i.price)`, order, `65`},
		{"add", `[.items[].sku] | add`, order, `"abc"`},
		{"regex", `[.[] | select(test("^a.c$"))]`, `["abc","abd","xbc"]`, `["abc"]`},
		{"tojson fromjson", `.s |= fromjson | .t = (.s | tojson)`, `{"s":"{\"b\":1,\"a\":[true]}"}`, `{"s":{"a":[true],"b":1},"t":"{\"a\":[true],\"b\":1}"}`},
		{"base64", `.x | @base64`, `{"x":"hi"}`, `"aGk="`},
		{"try catch", `try error("boom") catch .`, `null`, `"boom"`},
		{"optional", `[.[] | .a?]`, `[1,{"a":2}]`, `[2]`},
		{"recursive", `[.. | numbers]`, `{"a":[1,{"b":2}],"c":3}`, `[1,2,3]`},
		{"keys sorted", `keys`, `{"b":1,"a":2,"c":3}`, `["a","b","c"]`},
		{"nested key order", `.`, `{"z":{"y":1,"x":2},"a":[{"d":1,"c":2}]}`, `{"a":[{"c":2,"d":1}],"z":{"x":2,"y":1}}`},
		{"string escapes", `.`, `"a\"b\\c\n\u0001é\u2028<>&"`, `"a\"b\\c\n\u0001é` + "\u2028" + `<>&"`},
		{"whitespace around", `.`, " \n\t{\"a\" : [ 1 , 2 ] }\n ", `{"a":[1,2]}`},
		{"nan and infinities", `[nan, infinite, -infinite]`, `null`, `[null,1.7976931348623157e+308,-1.7976931348623157e+308]`},
		{"now is allowed", `now | type`, `null`, `"number"`},
		{"one value of a generator", `first(.[])`, `[5,6]`, `5`},
		{"limit", `[limit(2; .[])]`, `[5,6,7]`, `[5,6]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, c.expr, Options{Vars: requestVars})
			got, err := p.Run(context.Background(), []byte(c.in), requestValues())
			if err != nil {
				t.Fatalf("Run(%q) on %s: %v", c.expr, c.in, err)
			}
			if string(got) != c.want {
				t.Fatalf("Run(%q) on %s\n got %s\nwant %s", c.expr, c.in, got, c.want)
			}
		})
	}
}

// TestPrecision: numbers gojq does not compute with keep their exact text;
// arithmetic keeps integers exact (int, then *big.Int) and decimals as
// float64.
func TestPrecision(t *testing.T) {
	for _, c := range []struct {
		expr, in, want string
	}{
		// Untouched numbers are copied as written, whatever their size.
		{`.`, `9007199254740993`, `9007199254740993`}, // 2^53+1
		{`.`, `12345678901234567890`, `12345678901234567890`},
		{`.`, `-123456789012345678901234567890`, `-123456789012345678901234567890`},
		{`.`, `0.1`, `0.1`},
		{`.`, `[1.0,1e2,1E+2,-0,0.10000000000000000001,1E400,5e-324]`, `[1.0,1e2,1E+2,-0,0.10000000000000000001,1E400,5e-324]`},
		{`{a: .x, b: [.y]}`, `{"x":9007199254740993,"y":12345678901234567890}`, `{"a":9007199254740993,"b":[12345678901234567890]}`},
		{`sort`, `[12345678901234567891,12345678901234567890,0.1]`, `[0.1,12345678901234567890,12345678901234567891]`},
		{`tostring`, `1.10`, `"1.10"`},
		{`tojson`, `[12345678901234567890]`, `"[12345678901234567890]"`},
		// Integer arithmetic is exact: int64, then big integers.
		{`. + 0`, `9007199254740993`, `9007199254740993`},
		{`. + 1`, `9007199254740993`, `9007199254740994`},
		{`. + 1`, `12345678901234567890`, `12345678901234567891`},
		{`. * .`, `12345678901234567890`, `152415787532388367501905199875019052100`},
		{`. - 1`, `-9223372036854775808`, `-9223372036854775809`},
		{`. / 3`, `9`, `3`},
		// Decimals compute as float64.
		{`. + 0`, `0.1`, `0.1`},
		{`.[0] + .[1]`, `[0.1,0.2]`, `0.30000000000000004`},
		{`. + 0`, `1.0`, `1`},
		{`. + 0`, `0.10000000000000000001`, `0.1`},
		{`. + 0`, `1E400`, `1.7976931348623157e+308`},
		{`. / 3`, `1`, `0.3333333333333333`},
		{`. + 0.5`, `9007199254740993`, `9007199254740992`}, // 2^53+1 becomes 2^53 as a float64,
		// Comparisons are numeric.
		{`.[0] == .[1]`, `[1.0,1]`, `true`},
		{`.[0] < .[1]`, `[12345678901234567890,12345678901234567891]`, `true`},
	} {
		p := mustCompile(t, c.expr, Options{})
		got, err := p.Run(context.Background(), []byte(c.in), nil)
		if err != nil {
			t.Errorf("%s on %s: %v", c.expr, c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s on %s = %s, want %s", c.expr, c.in, got, c.want)
		}
	}

	// Variables: Go integers of any width stay exact.
	p := mustCompile(t, `[$a, $b, $c, $d, $a + 1, $d + 1]`, Options{Vars: []string{"a", "b", "c", "d"}})
	got, err := p.Run(context.Background(), []byte(`null`), []any{int64(1<<53 + 1), uint64(math.MaxUint64), json.Number("0.1"), new(big.Int).Lsh(big.NewInt(1), 70)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[9007199254740993,18446744073709551615,0.1,1180591620717411303424,9007199254740994,1180591620717411303425]`; string(got) != want {
		t.Fatalf("vars: %s, want %s", got, want)
	}
}

func TestOneValue(t *testing.T) {
	for _, expr := range []string{`empty`, `select(.a)`, `.[]`, `1, 2`, `repeat(.)`} {
		p := mustCompile(t, expr, Options{})
		_, err := p.Run(context.Background(), []byte(`{"a":false,"b":1}`), nil)
		var re *RunError
		if !errors.As(err, &re) {
			t.Errorf("%s: err %v (%T), want *RunError", expr, err, err)
			continue
		}
		if !strings.Contains(re.Msg, "exactly one") {
			t.Errorf("%s: %q", expr, re.Msg)
		}
	}
	// A later error wins over "more than one".
	p := mustCompile(t, `1, error("second")`, Options{})
	_, err := p.Run(context.Background(), []byte(`null`), nil)
	if re := (*RunError)(nil); !errors.As(err, &re) || re.Msg != "error: second" {
		t.Fatalf("err %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	for _, c := range []struct{ expr, in, msg string }{
		{`error("boom")`, `null`, `error: boom`},
		{`error({"code": 400})`, `null`, `error: {"code":400}`},
		{`error(["x" * 2000])`, `null`, `error: (a value over 1 KiB)`},
		{`error("x" * 2000)`, `null`, `error: ` + strings.Repeat("x", maxRunErrorLen) + " ..."},
		{`.a.b`, `{"a":"str"}`, `expected an object but got: string ("str")`},
		{`.[] + 1`, `{"a":"s"}`, `cannot add: string ("s") and number (1)`},
		{`1 / 0`, `null`, `cannot divide number (1) by: number (0)`},
		{`.x | tonumber`, `{"x":"abc"}`, `tonumber cannot be applied to "abc"`},
	} {
		p := mustCompile(t, c.expr, Options{Timeout: 10 * time.Second})
		_, err := p.Run(context.Background(), []byte(c.in), nil)
		var re *RunError
		if !errors.As(err, &re) {
			t.Errorf("%s: err %v (%T), want *RunError", c.expr, err, err)
			continue
		}
		if !strings.HasPrefix(re.Msg, c.msg) || len(re.Msg) > maxRunErrorLen+20 {
			t.Errorf("%s: message %q, want prefix %q", c.expr, re.Msg, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "jq: ") {
			t.Errorf("%s: Error() = %q", c.expr, err)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	p := mustCompile(t, `.`, Options{})
	for _, in := range []string{
		``, `   `, `{"a":`, `{"a":1}x`, `1 2`, `nul`, `{"a":1,}`, `[1,]`, `NaN`, `'a'`, `{a:1}`,
		`1` + strings.Repeat("0", maxNumberLen),
		`{"a":[` + strings.Repeat("1", maxNumberLen+1) + `]}`,
	} {
		out, err := p.Run(context.Background(), []byte(in), nil)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%.40q: out %s, err %v, want ErrInvalidInput", in, out, err)
		}
	}
	// The longest number accepted passes through unchanged.
	long := `-` + strings.Repeat("9", maxNumberLen-1)
	if out, err := p.Run(context.Background(), []byte(long), nil); err != nil || string(out) != long {
		t.Fatalf("number of %d characters: %v", len(long), err)
	}
}

func TestTooLarge(t *testing.T) {
	const limit = 1000
	p := mustCompile(t, `.`, Options{MaxBytes: limit})

	// Input over the limit is refused before decoding: invalid JSON gets
	// ErrTooLarge, not ErrInvalidInput.
	_, err := p.Run(context.Background(), bytes.Repeat([]byte("x"), limit+1), nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("input over the limit: %v", err)
	}
	exact := []byte(`"` + strings.Repeat("a", limit-2) + `"`)
	if out, err := p.Run(context.Background(), exact, nil); err != nil || !bytes.Equal(out, exact) {
		t.Fatalf("input at the limit: %v", err)
	}

	for _, c := range []struct {
		expr string
		ok   bool
	}{
		{`"a" * 998`, true}, // exactly 1000 bytes encoded
		{`"a" * 999`, false},
		{`[range(300)] | map("xy")`, false},
		{`"\u0001" * 200`, false},                       // 6 bytes each once escaped
		{`reduce range(1000) as $i (1; . * 10)`, false}, // a 1001-digit integer
		// Shared subtrees: 2^60 leaves in 60 steps; refused without
		// walking them.
		{`reduce range(60) as $i (0; [., .])`, false},
		{`reduce range(60) as $i ({}; {a: ., b: .})`, false},
	} {
		p := mustCompile(t, c.expr, Options{MaxBytes: limit, Timeout: 10 * time.Second})
		start := time.Now()
		out, err := p.Run(context.Background(), []byte(`null`), nil)
		switch {
		case c.ok && (err != nil || len(out) != limit):
			t.Errorf("%s: %d bytes, %v", c.expr, len(out), err)
		case !c.ok && !errors.Is(err, ErrTooLarge):
			t.Errorf("%s: %d bytes, err %v, want ErrTooLarge", c.expr, len(out), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: %v", c.expr, d)
		}
	}
}

// TestTimeout: loops that never end are stopped at the deadline.
func TestTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, expr := range []string{
		`def f: f; f`,
		`last(repeat(.))`,
		`[range(1e9)]`,
		`range(1e9) | empty`,
		`reduce range(1e9) as $i (0; . + $i)`,
		`until(false; .)`,
		`[limit(1e8; repeat("xxxxxxxxxx"))] | add | length`,
		`reduce range(40) as $i (12345678901234567890; . * .)`, // doubling big integers
	} {
		p := mustCompile(t, expr, Options{Timeout: timeout})
		start := time.Now()
		_, err := p.Run(context.Background(), []byte(`0`), nil)
		d := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("%s: %v, want ErrTimeout", expr, err)
		}
		// Generous: the machine may be busy (and -race is slow); the
		// logged times are the finding.
		if d < timeout || d > timeout+2*time.Second {
			t.Errorf("%s: returned after %v (timeout %v)", expr, d, timeout)
		}
		t.Logf("%-55s stopped after %v", expr, d.Round(100*time.Microsecond))
	}
}

// TestTimeoutOneStep: a single builtin call that outlasts the deadline
// (here: comparing a value with 2^22 shared leaves, far longer than the
// 1 ms deadline on any machine) is not interruptible,
// but Run still answers at the deadline and counts the straggler.
func TestTimeoutOneStep(t *testing.T) {
	const timeout = time.Millisecond
	p := mustCompile(t, `reduce range(22) as $i ([0]; [., .]) | . == .`, Options{Timeout: timeout})
	start := time.Now()
	_, err := p.Run(context.Background(), []byte(`null`), nil)
	d := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("the comparison finished before the deadline (%v, %v): the test no longer exercises a step that outlasts it", d, err)
	}
	if d > timeout+2*time.Second {
		t.Errorf("returned after %v", d)
	}
	t.Logf("returned after %v; stragglers %d", d, Stragglers())
	deadline := time.Now().Add(time.Minute)
	for Stragglers() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := Stragglers(); n != 0 {
		t.Fatalf("stragglers %d after a minute", n)
	}
	t.Logf("step finished after %v", time.Since(start))
}

func TestContext(t *testing.T) {
	p := mustCompile(t, `def f: f; f`, Options{Timeout: time.Minute})

	// A caller's deadline shorter than Timeout applies.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Run(ctx, []byte(`null`), nil); !errors.Is(err, ErrTimeout) || time.Since(start) > 10*time.Second {
		t.Fatalf("caller deadline: %v after %v", err, time.Since(start))
	}

	// A caller's cancellation is context.Canceled, not a timeout.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := p.Run(ctx, []byte(`null`), nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := p.Run(ctx, []byte(`null`), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("already canceled: %v", err)
	}
}

// TestRefused: everything that reaches outside the body is refused at
// Compile, with a position.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		expr, name string
		line, col  int
	}{
		{`env`, "env", 1, 1},
		{`env.HOME`, "env", 1, 1},
		{`$ENV`, "$ENV", 1, 1},
		{`$ENV.PATH`, "$ENV", 1, 1},
		{`{a: 1, $ENV}`, "$ENV", 1, 8},
		{`"home: \(env.HOME)"`, "env", 1, 10},
		{`input`, "input", 1, 1},
		{`inputs`, "inputs", 1, 1},
		{`[., first(inputs)]`, "inputs", 1, 11},
		{`debug`, "debug", 1, 1},
		{`debug("msg")`, "debug", 1, 1},
		{`. as $x | stderr`, "stderr", 1, 11},
		{`input_filename`, "input_filename", 1, 1},
		{`input_line_number`, "input_line_number", 1, 1},
		{`halt`, "halt", 1, 1},
		{".a\n| halt_error", "halt_error", 2, 3},
		{`halt_error(1)`, "halt_error", 1, 1},
		{`"x" | modulemeta`, "modulemeta", 1, 7},
		{`get_search_list`, "get_search_list", 1, 1},
		{`def env: {}; env`, "env", 1, 14},
		{`def f: .env | env; f`, "env", 1, 15},
		{`import "a" as a; .`, "modules", 1, 1},
		{`include "b"; .`, "modules", 1, 1},
		{`import "c" as $c; $c`, "modules", 1, 1},
	} {
		p, err := Compile(c.expr, Options{})
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("%s: program %v, err %v, want *CompileError", c.expr, p, err)
			continue
		}
		if !strings.Contains(ce.Msg, c.name) || !strings.Contains(ce.Msg, "not allowed") {
			t.Errorf("%s: %q", c.expr, ce.Msg)
		}
		if ce.Line != c.line || ce.Column != c.col {
			t.Errorf("%s: at %d:%d, want %d:%d (%v)", c.expr, ce.Line, ce.Column, c.line, c.col, err)
		}
	}

	// Fields, keys and strings of the same names are fine.
	p := mustCompile(t, `{env: .env, input: .["input"], "halt": "debug", $__ok} | .env`, Options{Vars: []string{"__ok"}})
	if out, err := p.Run(context.Background(), []byte(`{"env":"prod","input":1}`), []any{1}); err != nil || string(out) != `"prod"` {
		t.Fatalf("field named env: %s, %v", out, err)
	}

	// gojq does not implement $__loc__ (jq 1.7): a compile error, not a
	// refusal.
	if _, err := Compile(`$__loc__`, Options{}); err == nil || !strings.Contains(err.Error(), "variable not defined: $__loc__") {
		t.Fatalf("$__loc__: %v", err)
	}
	// Module-qualified names cannot resolve without a module loader.
	if _, err := Compile(`m::f`, Options{}); err == nil {
		t.Fatal("m::f compiled")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		expr      string
		o         Options
		line, col int
		msg       string
	}{
		{`.a | {`, Options{}, 1, 7, "syntax error: unexpected EOF"},
		{".a |\n  .b ]", Options{}, 2, 6, `syntax error: unexpected token "]"`},
		{`"é" | }`, Options{}, 1, 7, `syntax error: unexpected token "}"`},
		{`"abc`, Options{}, 1, 5, "unterminated string"},
		{".a |\n  nosuch(1)", Options{}, 2, 3, "function not defined: nosuch/1"},
		{`"nosuch" | nosuch`, Options{}, 1, 12, "function not defined: nosuch/0"},
		{`$consumer`, Options{}, 1, 1, "variable not defined: $consumer"},
		{``, Options{}, 0, 0, "empty expression"},
		{` # only a comment`, Options{}, 0, 0, ""},
		{`.`, Options{Vars: []string{"1x"}}, 0, 0, `invalid variable name "$1x"`},
		{`.`, Options{Vars: []string{"a-b"}}, 0, 0, "invalid variable name"},
		{`.`, Options{Vars: []string{"$a", "a"}}, 0, 0, "declared twice"},
		{`.`, Options{Vars: []string{"ENV"}}, 0, 0, "reserved"},
	} {
		_, err := Compile(c.expr, c.o)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("%q: %v (%T), want *CompileError", c.expr, err, err)
			continue
		}
		if !strings.Contains(ce.Msg, c.msg) || ce.Line != c.line || ce.Column != c.col {
			t.Errorf("%q: %d:%d %q, want %d:%d %q", c.expr, ce.Line, ce.Column, ce.Msg, c.line, c.col, c.msg)
		}
	}
}

func TestOptions(t *testing.T) {
	p := mustCompile(t, `[$a, $b]`, Options{Vars: []string{"a", "$b"}})
	if p.timeout != DefaultTimeout || p.maxBytes != DefaultMaxBytes {
		t.Fatalf("defaults: %v %d", p.timeout, p.maxBytes)
	}
	if got := p.Vars(); !reflect.DeepEqual(got, []string{"$a", "$b"}) {
		t.Fatalf("Vars() = %v", got)
	}
	if p.String() != `[$a, $b]` {
		t.Fatalf("String() = %q", p)
	}
	if _, err := p.Run(context.Background(), []byte(`null`), []any{1}); err == nil {
		t.Fatal("one value for two variables")
	}
	if _, err := p.Run(context.Background(), []byte(`null`), []any{1, make(chan int)}); err == nil {
		t.Fatal("a channel as a value")
	}
	type claims struct {
		Sub string `json:"sub"`
	}
	out, err := p.Run(context.Background(), []byte(`null`), []any{[]any{int32(1), float32(0.5), json.RawMessage(`{"x":1.50}`)}, claims{"u"}})
	if err != nil || string(out) != `[[1,0.5,{"x":1.50}],{"sub":"u"}]` {
		t.Fatalf("converted values: %s, %v", out, err)
	}
}

// TestNoMutation: Run modifies neither the body nor the variables, even
// when the expression updates them.
func TestNoMutation(t *testing.T) {
	p := mustCompile(t, `.a.b = 1 | .c += [$claims | .x = 2] | .d = ($claims | del(.sub))`, Options{Vars: []string{"claims"}})
	body := []byte(`{"a":{"b":0},"c":[]}`)
	orig := append([]byte(nil), body...)
	claims := map[string]any{"sub": "u", "list": []any{1}}
	for range 3 {
		out, err := p.Run(context.Background(), body, []any{claims})
		if err != nil || string(out) != `{"a":{"b":1},"c":[{"list":[1],"sub":"u","x":2}],"d":{"list":[1]}}` {
			t.Fatalf("%s %v", out, err)
		}
	}
	if !bytes.Equal(body, orig) || !reflect.DeepEqual(claims, map[string]any{"sub": "u", "list": []any{1}}) {
		t.Fatalf("modified: %s %v", body, claims)
	}
}

func TestConcurrent(t *testing.T) {
	// A long timeout: eight runs share two CPUs under -race.
	p := mustCompile(t, benchExpr, Options{Vars: requestVars, Timeout: 10 * time.Second})
	body := benchBody(t)
	want, err := p.Run(context.Background(), body, requestValues())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := p.Run(context.Background(), body, requestValues())
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
