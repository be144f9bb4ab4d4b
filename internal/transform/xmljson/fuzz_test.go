package xmljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora from the seeds and the testdata/xml and testdata/json cases")

// xmlSeeds are shapes beyond the golden corpus (which is seeded too):
// near-misses of every check, and the attacks in small.
var xmlSeeds = map[string]string{
	"doctype":        `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`,
	"deep":           strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70),
	"attrs":          `<a b="1" c='2' d="&lt;=&gt;" xmlns:p="u" p:e="3"/>`,
	"mixed":          `<a>x<b>y</b>z<b/>w</a>`,
	"cdata":          `<a><![CDATA[<]]>]]&gt;<![CDATA[]]></a>`,
	"entities":       `<a>&amp;&lt;&gt;&quot;&apos;&#x1F600;&#65;</a>`,
	"bom":            "\xEF\xBB\xBF<a/>",
	"utf16":          "\xFF\xFE<\x00a\x00/\x00>\x00",
	"latin1":         `<?xml version="1.0" encoding="latin1"?><a/>`,
	"ascii":          `<?xml version="1.0" encoding="US-ASCII"?><a>b</a>`,
	"array path":     `<a><b><c>1</c></b></a>`,
	"two roots":      `<a/><a/>`,
	"unclosed":       `<a><b>`,
	"names":          `<a:b:c/>`,
	"dup attr":       `<a x="" x=""/>`,
	"pi and comment": `<?xml version="1.0"?><!--c--><?p d?><a><!--c--><?p d?></a><!--c-->`,
	"cr":             "<a x=\"\r\n\">\r\n\r</a>",
	"spaces":         "<a> <b> </b> </a>",
	"empty":          "",
	"version":        `<?xml version="0"?><a/>`,
}

// jsonSeeds likewise.
var jsonSeeds = map[string]string{
	"numbers":   `[0,-0,1.5e+300,1e400,9007199254740993,-1E-7,0.1]`,
	"bad nums":  `[01,1.,-,1e,+1,.5]`,
	"strings":   `["\u0000","\ud800","\ud83d\ude00","\/\b\f\n\r\t","` + "\xff" + `"]`,
	"attrs":     `{"a":{"-x":1,"-y":null,"#text":"t","b":[1,[2,[]],{}]}}`,
	"bad keys":  `{"a b":1,"1":2,"":3,"-":4,"#x":5,"a:b:c":6}`,
	"deep":      strings.Repeat("[", 70) + strings.Repeat("]", 70),
	"top":       `"s"`,
	"literals":  `[true,false,null,tru]`,
	"trailing":  `{} x`,
	"dup":       `{"a":{"-x":1,"-x":2}}`,
	"ws":        " \t\r\n{ \"a\" : [ 1 , 2 ] } \n",
	"controls":  `{"a":"\u001f\ufffe"}`,
	"empty":     ``,
	"root item": `{"item":[1]}`,
}

// fuzzConverter has an array path, small limits (so that the fuzzer finds
// them), and big is for the round trips, which grow JSON's depth (arrays)
// and XML's size.
var (
	fuzzConverter, _ = New(Options{ArrayPaths: []string{"a.b", "a.b.c"}, MaxDepth: 16, MaxElements: 1000, MaxAttributes: 8})
	bigConverter, _  = New(Options{ArrayPaths: []string{"a.b", "a.b.c"}, MaxDepth: 64, MaxElements: 1 << 20, MaxAttributes: 8, MaxBytes: 64 << 20})
)

func checkBodyError(t *testing.T, err error) {
	t.Helper()
	var be *BodyError
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *BodyError", err, err)
	}
	if be.Reason == "" || be.Kind < KindSyntax || be.Kind > KindUnsupported || len(be.Error()) > 300 {
		t.Fatalf("bad BodyError %+v", be)
	}
}

func FuzzXMLToJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := fuzzConverter.XMLToJSON(in)
		sout, serr := fuzzConverter.XMLToJSONReader(bytes.NewReader(in))
		if (err == nil) != (serr == nil) || !bytes.Equal(out, sout) {
			t.Fatalf("bytes: %s, %v; stream: %s, %v", out, err, sout, serr)
		}
		if err != nil {
			checkBodyError(t, err)
			checkBodyError(t, serr)
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(out, &top); err != nil || len(top) != 1 {
			t.Fatalf("not an object with one key: %s", out)
		}
		back, err := bigConverter.JSONToXML(out)
		if err != nil {
			t.Fatalf("JSON → XML of %s: %v", out, err)
		}
		if err := wellFormed(back); err != nil {
			t.Fatalf("%s → %s: %v", out, back, err)
		}
		again, err := bigConverter.XMLToJSON(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip %q → %s → %s → %s, %v", in, out, back, again, err)
		}
	})
}

func FuzzJSONToXML(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		// The parser agrees with encoding/json on what is JSON.
		p := jsonParser{in: in, maxDepth: 10_000, maxCount: 1 << 30}
		_, perr := p.document()
		var be *BodyError
		if !(errors.As(perr, &be) && be.Kind == KindLimit) && (perr == nil) != json.Valid(in) {
			t.Fatalf("parser: %v; json.Valid: %v", perr, json.Valid(in))
		}
		out, err := fuzzConverter.JSONToXML(in)
		sout, serr := fuzzConverter.JSONToXMLReader(bytes.NewReader(in))
		if (err == nil) != (serr == nil) || !bytes.Equal(out, sout) {
			t.Fatalf("bytes: %s, %v; stream: %s, %v", out, err, sout, serr)
		}
		if err != nil {
			checkBodyError(t, err)
			return
		}
		if perr != nil {
			t.Fatalf("converted what the parser refuses (%v): %s", perr, out)
		}
		if err := wellFormed(out); err != nil {
			t.Fatalf("%s → %s: %v", in, out, err)
		}
		js, err := bigConverter.XMLToJSON(out)
		if err != nil || !json.Valid(js) {
			t.Fatalf("%s → %s → %s, %v", in, out, js, err)
		}
	})
}

// TestFuzzSeeds checks the committed corpora (testdata/fuzz, replayed by
// plain go test) exist, and rewrites them with -update-fuzz-seeds from the
// seeds above and the golden inputs.
func TestFuzzSeeds(t *testing.T) {
	for _, c := range []struct {
		fuzz, glob string
		seeds      map[string]string
	}{
		{"FuzzXMLToJSON", "testdata/xml/*.xml", xmlSeeds},
		{"FuzzJSONToXML", "testdata/json/*.json", jsonSeeds},
	} {
		dir := filepath.Join("testdata", "fuzz", c.fuzz)
		if *updateSeeds {
			all := map[string]string{}
			for k, v := range c.seeds {
				all[strings.ReplaceAll(k, " ", "-")] = v
			}
			files, _ := filepath.Glob(c.glob)
			for _, f := range files {
				if strings.Contains(filepath.Base(f), ".roundtrip.") || strings.Contains(filepath.Base(f), ".back.") {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				all["golden-"+strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))] = string(b)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, s := range all {
				body := "go test fuzz v1\n[]byte(" + strconv.Quote(s) + ")\n"
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := os.ReadDir(dir)
		if err != nil || len(files) < len(c.seeds) {
			t.Fatalf("%s: %d seed files (%v); run go test -run TestFuzzSeeds -args -update-fuzz-seeds", dir, len(files), err)
		}
		for _, fi := range files {
			b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
			if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n[]byte(") {
				t.Errorf("%s/%s: not a go test fuzz v1 file of []byte", dir, fi.Name())
			}
		}
	}
}
