package jq

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// stdDecode is what decode replaced: encoding/json with UseNumber.
func stdDecode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// codecSeeds are valid documents for the decoder and encoder tests and
// the FuzzDecode corpus.
var codecSeeds = map[string]string{
	"nested-arrays":  `[[],[[]],[[1,[2,[3]]]],[{}],[[{"a":[[]]}]]]`,
	"escapes":        `"\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u00e9\u20ac\u2028\u2029<>&"`,
	"unicode":        `{"é":"日本語","emoji":"😀","k\u00e9y":"\u65e5\u672c"}`,
	"surrogates":     `["\ud83d\ude00","\uD83D\uDE00","\ud800","\udc00","\ud800\ud800","\ud800x","\udc00\ud800","\ud800\u0041","a\ud83dz"]`,
	"invalid-utf8":   "[\"\xff\",\"a\xc3\",\"\xed\xa0\x80\",\"\xf4\x90\x80\x80\",\"\xc0\xaf\",\"ok\xe2\x82\"]",
	"invalid-in-key": "{\"\xff\":1,\"\xfe\":2}",
	"numbers":        `[0,-0,1,-1,0.1,-0.0,1.0,1e2,1E+2,1e-2,2e308,1e400,-1E400,5e-324,9007199254740993,12345678901234567890,-9223372036854775809,0.10000000000000000001]`,
	"empty":          `[{},[],"",{"":""},{"a":{}},{"a":[]}]`,
	"duplicates":     `{"a":1,"b":2,"a":3,"a":{"x":1},"b":null}`,
	"whitespace":     " \t\r\n[ 1 , { \"a\" : true } , null ]\n\t ",
	"literals":       `[true,false,null]`,
	"scalar":         `"just a string"`,
	"large-object":   `{"k9":9,"k1":1,"k5":5,"k3":3,"k8":8,"k2":2,"k7":7,"k0":0,"k6":6,"k4":4,"K":{},"kk":[]}`,
	"long-array":     `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,[0,1,2,3,4,5,6,7,8,9,10],18,19]`,
	"html":           `{"<a href=\"x\">":"&amp; \u003c \u003e \u0026"}`,
}

func TestDecodeLikeEncodingJSON(t *testing.T) {
	docs := []string{
		`null`, `0`, `-0`, `123`, `0.1`, `1e400`, `"a"`, `""`, `{}`, `[]`,
		strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
		strings.Repeat(`{"a":`, maxDepth) + "0" + strings.Repeat("}", maxDepth),
		`"` + strings.Repeat("x", 5000) + `\n"`,
		`[` + strings.Repeat("1,", 3000) + `1]`,
		`-` + strings.Repeat("9", maxNumberLen-1),
	}
	for _, s := range codecSeeds {
		docs = append(docs, s)
	}
	for _, s := range docs {
		want, err := stdDecode([]byte(s))
		if err != nil {
			t.Fatalf("%.40q: encoding/json: %v", s, err)
		}
		got, err := decode([]byte(s))
		if err != nil {
			t.Errorf("%.40q: %v", s, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.40q:\n got %#v\nwant %#v", s, got, want)
		}
	}
}

// TestDecodeStrings pins what encoding/json does with bad Unicode: each
// byte of invalid UTF-8 and each lone surrogate becomes U+FFFD; a
// surrogate followed by a non-surrogate escape leaves that escape to be
// decoded on its own.
func TestDecodeStrings(t *testing.T) {
	const r = "\uFFFD"
	for _, c := range []struct{ in, want string }{
		{`"\u00e9\u20AC"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud800"`, r},
		{`"\udc00"`, r},
		{`"\ud800\ud800"`, r + r},
		{`"\ud800\u0041"`, r + "A"},
		{`"\ud800\\"`, r + `\`},
		{"\"\xff\xfe\"", r + r},
		{"\"\xed\xa0\x80\"", r + r + r}, // a surrogate encoded in UTF-8
		{"\"a\xc3\"", "a" + r},
		{`"\/\b\f\n\r\t\"\\"`, "/\b\f\n\r\t\"\\"},
		{`"\u0000"`, "\x00"},
	} {
		v, err := decode([]byte(c.in))
		if err != nil || v != c.want {
			t.Errorf("%q: %q, %v; want %q", c.in, v, err, c.want)
		}
	}
}

func TestDecodeNumbers(t *testing.T) {
	for _, s := range []string{"0", "-0", "0.1", "1.0", "1e2", "1E+2", "1e-2", "1e400", "-1E400", "9007199254740993", "12345678901234567890"} {
		v, err := decode([]byte(s))
		if err != nil || v != json.Number(s) {
			t.Errorf("%s: %#v, %v; want json.Number", s, v, err)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, s := range []string{
		``, ` `, "\n\t\r ",
		`{`, `[`, `"`, `"abc`, `"\`, `"\u12`, `{"a"`, `{"a":`, `{"a":1`, `[1,`, `[1`, `tru`, `nul`, `-`,
		`{"a":1}x`, `1 2`, `[] []`, `{} ,`, `"a" "b"`, `0 0`, `null null`, `1x`,
		`{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`, `{1:2}`, `{a:1}`, `{'a':1}`,
		`'a'`, `NaN`, `Infinity`, `-Infinity`, `undefined`, `True`, `nulls`, `truefalse`,
		`01`, `-01`, `00`, `1.`, `.5`, `+1`, `1e`, `1e+`, `1E-`, `-.5`, `0x10`, `1.e5`, `--1`,
		"\"a\x00b\"", "\"a\nb\"", "\"\x1f\"", `"\x41"`, `"\U0041"`, `"\u00zz"`, `"\ud800\uzzzz"`, `"\a"`,
		"\xef\xbb\xbf{}", // a byte order mark, which encoding/json refuses too
		"\x00", "[1]\x00", "\v1", "\f1",
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth+1) + "0" + strings.Repeat("}", maxDepth+1),
		`[` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `]`,
		`1` + strings.Repeat("0", maxNumberLen),
		`{"a":[` + strings.Repeat("1", maxNumberLen+1) + `]}`,
	} {
		if json.Valid([]byte(s)) && !longNumber([]byte(s)) {
			t.Errorf("%.40q: encoding/json accepts it", s)
		}
		v, err := decode([]byte(s))
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%.40q: %#v, %v; want ErrInvalidInput", s, v, err)
		}
	}
}

func TestEncodeLikeGojq(t *testing.T) {
	ascii := make([]byte, 128)
	for i := range ascii {
		ascii[i] = byte(i)
	}
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	values := []any{
		nil, true, false, 0, -1, math.MaxInt, math.MinInt,
		0.0, math.Copysign(0, -1), 0.1, 1.5, 1e20, 1e21, 123456789e15, 1e-6, 1e-7, 1.5e-9, 5e-324, math.MaxFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1),
		big.NewInt(0), big1, new(big.Int).Lsh(big.NewInt(1), 200),
		json.Number("1.0"), json.Number("-0"), json.Number("1E400"),
		"", string(ascii), "é日本😀\u2028\u2029<>&", "\xff\xfea\xc3", "\xed\xa0\x80", "\uFFFD",
		[]any{}, map[string]any{}, []any{nil, []any{[]any{}}, map[string]any{"": []any{}}},
		map[string]any{"b": 1, "a": 2, "é": 3, "A": 4, "": 5, "\xff": 6, "aa": 7, "a\x00": 8},
		map[string]any{"k9": 9, "k1": 1, "k5": 5, "k3": 3, "k8": 8, "k2": 2, "k7": 7, "k0": 0, "k6": 6, "k4": 4,
			"z": map[string]any{"y": []any{map[string]any{"q": 1, "p": 2}}, "x": nil}},
	}
	for _, s := range codecSeeds {
		v, err := decode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	for _, v := range values {
		want, err := gojq.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(v, DefaultMaxBytes)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%#v:\n got %s (%v)\nwant %s", v, got, err, want)
		}
	}
}

// TestEncodeLimit: the output is refused past the limit, at exactly one
// byte over whatever was being written.
func TestEncodeLimit(t *testing.T) {
	for _, v := range []any{
		strings.Repeat("a", 8),
		"a\x01b",
		json.Number("1234567890"),
		new(big.Int).Lsh(big.NewInt(1), 40),
		[]any{1, "x", nil, 2.5},
		map[string]any{"abc": []any{true}, "d": map[string]any{"e": "f"}},
	} {
		want, _ := gojq.Marshal(v)
		if got, err := encode(v, len(want)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s at its length: %s, %v", want, got, err)
		}
		if got, err := encode(v, len(want)-1); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s one byte over: %s, %v", want, got, err)
		}
	}
	// A type gojq never yields is a *RunError, not a panic.
	var re *RunError
	if _, err := encode([]any{int64(1)}, DefaultMaxBytes); !errors.As(err, &re) {
		t.Errorf("int64: %v", err)
	}
}

// TestCodecPools: values decoded earlier are not disturbed by later
// decodes and encodes reusing pooled scratch space.
func TestCodecPools(t *testing.T) {
	first, err := decode([]byte(codecSeeds["large-object"]))
	if err != nil {
		t.Fatal(err)
	}
	snapshot, _ := gojq.Marshal(first)
	for _, s := range codecSeeds {
		v, err := decode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := encode(v, DefaultMaxBytes); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := gojq.Marshal(first); !bytes.Equal(again, snapshot) {
		t.Fatalf("an earlier value changed:\n%s\n%s", snapshot, again)
	}
}

// FuzzDecode holds the decoder to encoding/json (same values on valid
// input, a clean ErrInvalidInput on anything else) and the encoder to
// gojq.Marshal.
func FuzzDecode(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		got, err := decode(b)
		if !bytes.Equal(b, orig) {
			t.Fatalf("decode modified its input")
		}
		if !json.Valid(b) || longNumber(b) {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("%q: %#v, %v; want ErrInvalidInput", b, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want, err := stdDecode(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v (%v)", b, got, want, err)
		}
		enc, err := encode(got, DefaultMaxBytes)
		ref, _ := gojq.Marshal(got)
		if err != nil || !bytes.Equal(enc, ref) {
			t.Fatalf("%q: encoded %q (%v), gojq %q", b, enc, err, ref)
		}
		if !utf8.Valid(enc) || !json.Valid(enc) {
			t.Fatalf("%q: encoded %q", b, enc)
		}
	})
}

// longNumber reports whether valid JSON b holds a number literal over
// maxNumberLen characters (which decode refuses).
func longNumber(b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if n, ok := tok.(json.Number); ok && len(n) > maxNumberLen {
			return true
		}
	}
}

// TestNamedStringSlices: http.Header and url.Values convert as the JSON
// round trip converts them.
func TestNamedStringSlices(t *testing.T) {
	type myValues map[string][]string
	for _, v := range []any{
		http.Header{"X-A": {"1", "2"}, "X-Nil": nil, "X-Empty": {}, "X-Html": {"<a>&\u2028"}},
		http.Header(nil),
		http.Header{},
		url.Values{"q": {"a b", "é"}},
		myValues{"k": {"v"}},
		http.Header{"X-Bad": {"\xff"}}, // left to encoding/json
		http.Header{"\xfe": {"v"}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := stdDecode(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := normalize(v)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%#v: %#v, %v; want %#v", v, got, err, want)
		}
	}
	if _, ok := namedStringSlices(http.Header{"X": {"\xff"}}); ok {
		t.Error("invalid UTF-8 converted directly")
	}
}
