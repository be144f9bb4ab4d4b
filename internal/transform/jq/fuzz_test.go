package jq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed corpora under testdata/fuzz")

// fuzzPrograms run on every fuzzed body. Those marked same must give the
// input back (as decoded).
var fuzzPrograms = []struct {
	expr string
	same bool
}{
	{`.`, true},
	{`tojson | fromjson`, true},
	{`[tostream] as $s | fromstream($s[])`, true},
	{`[paths]`, false},
	{`[.. | numbers | . + 1]`, false},
	{`walk(if type == "object" then with_entries(.key |= ascii_upcase) else . end)`, false},
	{`.. |= (if type == "string" then "\($consumer):\(.)" else . end)`, false},
	{`{consumer: $consumer, type: type, length: (length? // null), keys: (keys? // null), first: (.[0]? // .a?)}`, false},
	{`[.[]?] | sort | unique | map(tostring)`, false},
	{`if type == "array" then .[0] else .a end`, false},
}

// fuzzMax keeps the fuzzer's documents small enough to hit ErrTooLarge.
const fuzzMax = 4096

// runSeeds are committed under testdata/fuzz/FuzzRun (go test -run
// TestFuzzSeeds -args -update-fuzz-seeds rewrites them) so that plain go
// test replays them.
var runSeeds = map[string]string{
	"object":       `{"id":7,"user":{"first":"Ada","tags":["a","b"]},"n":null,"ok":true}`,
	"array":        `[1,"two",[3],{"four":4},null,false]`,
	"numbers":      `[9007199254740993,12345678901234567890,-0,0.1,1.0,1e2,1E400,5e-324,-9223372036854775808]`,
	"strings":      `{"e":"a\"b\\c\n\u0000\ud83d\ude00é\u2028","k\u00e9y":""}`,
	"scalar":       `"just a string"`,
	"null":         `null`,
	"nested":       `[[[[[[[[[[{"a":[[[[]]]]}]]]]]]]]]]`,
	"duplicate":    `{"a":1,"a":2}`,
	"whitespace":   " \t\n{ \"a\" : [ ] }\r\n",
	"invalid-utf8": "{\"a\":\"\xff\xfe\"}",
	"lone-surr":    `"\ud800"`,
	"truncated":    `{"a":[1,2`,
	"trailing":     `{} {}`,
	"empty":        ``,
	"bad-literal":  `[NaN, Infinity]`,
	"long-number":  `[` + strings.Repeat("9", maxNumberLen+1) + `]`,
	"large":        `["` + strings.Repeat("x", fuzzMax) + `"]`,
	"keys":         `{"b":{"d":1,"c":2},"a":[{"z":0,"y":1}]}`,
}

func FuzzRun(f *testing.F) {
	for _, s := range runSeeds {
		f.Add([]byte(s))
	}
	progs := make([]*Program, len(fuzzPrograms))
	for i, fp := range fuzzPrograms {
		progs[i] = mustCompile(f, fp.expr, Options{Timeout: 250 * time.Millisecond, MaxBytes: fuzzMax, Vars: []string{"consumer"}})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := append([]byte(nil), body...)
		for i, p := range progs {
			out, err := p.Run(context.Background(), body, []any{"c"})
			if !bytes.Equal(body, orig) {
				t.Fatalf("%s modified the body", p)
			}
			if err != nil {
				var re *RunError
				if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTimeout) && !errors.As(err, &re) {
					t.Fatalf("%s on %q: untyped error %v", p, body, err)
				}
				if i == 0 && errors.As(err, &re) {
					t.Fatalf(". on %q: %v", body, err)
				}
				continue
			}
			if !json.Valid(out) || len(out) > fuzzMax {
				t.Fatalf("%s on %q: %d bytes, invalid JSON %q", p, body, len(out), out)
			}
			if fuzzPrograms[i].same {
				in, _ := decode(body)
				got, err := decode(out)
				if err != nil || !reflect.DeepEqual(in, got) {
					t.Fatalf("%s on %q = %q (%v)", p, body, out, err)
				}
			}
		}
	})
}

// TestFuzzSeeds checks the committed corpora exist (and rewrites them
// with -update-fuzz-seeds).
func TestFuzzSeeds(t *testing.T) {
	projection := map[string]string{}
	for i, doc := range projectionDocs {
		projection[fmt.Sprintf("doc-%02d", i)] = doc
	}
	fast := map[string]string{}
	for i, doc := range fastDocs {
		fast[fmt.Sprintf("doc-%02d", i)] = doc
	}
	for fuzz, seeds := range map[string]map[string]string{"FuzzRun": runSeeds, "FuzzDecode": codecSeeds, "FuzzProjection": projection, "FuzzFast": fast} {
		checkSeeds(t, filepath.Join("testdata", "fuzz", fuzz), seeds)
	}
}

func checkSeeds(t *testing.T, dir string, seeds map[string]string) {
	if *updateSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) < len(seeds) {
		t.Fatalf("%s: %d seed files (%v); run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err)
	}
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n[]byte(") {
			t.Fatalf("%s: not a fuzz seed (%v)", fi.Name(), err)
		}
	}
}
