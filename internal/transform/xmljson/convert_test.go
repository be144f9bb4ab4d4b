package xmljson

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/xml and testdata/json")

// xmlCaseOptions are the options of the testdata/xml cases that need some.
var xmlCaseOptions = map[string]Options{
	"one_item_list": {ArrayPaths: []string{"order.items.item", "order.items.item.tag"}},
	"rss":           {ArrayPaths: []string{"rss.channel.item", "rss.channel.item.category"}},
	"soap":          {ArrayPaths: []string{"soap:Envelope.soap:Body.m:GetOrderResponse.m:Order.m:Lines.m:Line"}},
}

// golden compares got with the file (rewritten with -update).
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -args -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// wellFormed parses b with encoding/xml's checking Token and counts the
// root elements.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.Directive:
			return errors.New("directive written")
		}
	}
	if roots != 1 || depth != 0 {
		return errors.New("not exactly one closed root element")
	}
	return nil
}

// TestXMLGolden: each testdata/xml/NAME.xml converts to NAME.json
// (indented for reading), that JSON back to NAME.roundtrip.xml, and the
// round-tripped XML to the same JSON again.
func TestXMLGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/xml/*.xml")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".roundtrip.xml") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o := xmlCaseOptions[name]
			js, err := XMLToJSON(in, o)
			if err != nil {
				t.Fatalf("XMLToJSON: %v", err)
			}
			golden(t, strings.TrimSuffix(f, ".xml")+".json", indentJSON(t, js))
			back, err := JSONToXML(js, o)
			if err != nil {
				t.Fatalf("JSONToXML: %v", err)
			}
			if err := wellFormed(back); err != nil {
				t.Fatalf("round trip is not well-formed: %v\n%s", err, back)
			}
			golden(t, strings.TrimSuffix(f, ".xml")+".roundtrip.xml", append(back, '\n'))
			again, err := XMLToJSON(back, o)
			if err != nil {
				t.Fatalf("XMLToJSON of the round trip: %v", err)
			}
			if !bytes.Equal(again, js) {
				t.Errorf("XML → JSON → XML → JSON changed:\n%s\n%s", js, again)
			}
			// The stream form agrees.
			c, _ := New(o)
			s, err := c.XMLToJSONReader(bytes.NewReader(in))
			if err != nil || !bytes.Equal(s, js) {
				t.Errorf("XMLToJSONReader = %s, %v", s, err)
			}
		})
	}
	if n < 12 {
		t.Fatalf("only %d XML cases", n)
	}
}

// TestJSONGolden: each testdata/json/NAME.json converts to NAME.xml, and
// that XML back to NAME.back.json.
func TestJSONGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/json/*.json")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".back.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			x, err := JSONToXML(in, Options{})
			if err != nil {
				t.Fatalf("JSONToXML: %v", err)
			}
			if err := wellFormed(x); err != nil {
				t.Fatalf("not well-formed: %v\n%s", err, x)
			}
			golden(t, strings.TrimSuffix(f, ".json")+".xml", append(x, '\n'))
			js, err := XMLToJSON(x, Options{})
			if err != nil {
				t.Fatalf("XMLToJSON: %v", err)
			}
			golden(t, strings.TrimSuffix(f, ".json")+".back.json", indentJSON(t, js))
			c, _ := New(Options{})
			s, err := c.JSONToXMLReader(bytes.NewReader(in))
			if err != nil || !bytes.Equal(s, x) {
				t.Errorf("JSONToXMLReader = %s, %v", s, err)
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d JSON cases", n)
	}
}

func TestJSONToXMLPrecise(t *testing.T) {
	for _, lit := range []string{
		"9007199254740993", "0.1", "1e400", "-0", "1E-7", "-1.5e+300",
		"123456789012345678901234567890.000000000000000000001", "0.30000000000000004",
	} {
		out, err := JSONToXML([]byte(`{"n":`+lit+`}`), Options{})
		if want := "<n>" + lit + "</n>"; err != nil || string(out) != want {
			t.Errorf("%s: %s, %v; want %s", lit, out, err, want)
		}
		out, err = JSONToXML([]byte(`{"a":{"-n":`+lit+`}}`), Options{})
		if want := `<a n="` + lit + `"/>`; err != nil || string(out) != want {
			t.Errorf("attribute %s: %s, %v; want %s", lit, out, err, want)
		}
	}
}

func TestJSONToXMLOptions(t *testing.T) {
	out, err := JSONToXML([]byte(`{"a":1,"b":2}`), Options{Root: "m:doc", Declaration: true})
	if want := `<?xml version="1.0" encoding="UTF-8"?><m:doc><a>1</a><b>2</b></m:doc>`; err != nil || string(out) != want {
		t.Errorf("got %s, %v; want %s", out, err, want)
	}
	for _, o := range []Options{
		{Root: "1x"}, {Root: "a b"}, {Root: "a:b:c"}, {MaxBytes: -1}, {MaxDepth: -1},
		{ArrayPaths: []string{"a"}}, {ArrayPaths: []string{""}}, {ArrayPaths: []string{"a..b"}}, {ArrayPaths: []string{"a.b c"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
		if _, err := JSONToXML([]byte(`{}`), o); err == nil {
			t.Errorf("JSONToXML with %+v accepted", o)
		}
		if _, err := XMLToJSON([]byte(`<a/>`), o); err == nil {
			t.Errorf("XMLToJSON with %+v accepted", o)
		}
	}
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Options()
	if got.Root != "root" || got.MaxBytes != 1<<20 || got.MaxDepth != 64 || got.MaxElements != 100000 || got.MaxOutputBytes != 8<<20 {
		t.Errorf("defaults: %+v", got)
	}
}

// bodyErr runs f and checks it failed with a BodyError of kind and a
// reason containing want, short enough to show a client.
func bodyErr(t *testing.T, name string, kind Kind, want string, err error) {
	t.Helper()
	var be *BodyError
	if !errors.As(err, &be) {
		t.Errorf("%s: error %v (%T), want a *BodyError", name, err, err)
		return
	}
	if be.Kind != kind || !strings.Contains(be.Error(), want) {
		t.Errorf("%s: %v (kind %v), want kind %v containing %q", name, be, be.Kind, kind, want)
	}
	if len(be.Error()) > 300 {
		t.Errorf("%s: error of %d bytes", name, len(be.Error()))
	}
}

func TestXMLToJSONRefused(t *testing.T) {
	long := strings.Repeat("n", 5000)
	for _, c := range []struct {
		name, in string
		kind     Kind
		want     string
	}{
		{"doctype", `<!DOCTYPE a><a/>`, KindUnsupported, "line 1, column 13: DOCTYPE"},
		{"billion laughs", `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>`, KindUnsupported, "DOCTYPE"},
		{"xxe", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, KindUnsupported, "DOCTYPE"},
		{"doctype after root", `<a/><!DOCTYPE a>`, KindUnsupported, "DOCTYPE"},
		{"undeclared entity", `<a>&xxe;</a>`, KindSyntax, "line 1"},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><a>caf` + "\xe9" + `</a>`, KindUnsupported, `encoding "ISO-8859-1" is not supported`},
		{"utf16 declared", `<?xml version="1.0" encoding="UTF-16"?><a/>`, KindUnsupported, "UTF-16"},
		{"utf16 bom", "\xff\xfe<\x00a\x00/\x00>\x00", KindUnsupported, "UTF-16 is not supported"},
		{"ascii with high byte", `<?xml version="1.0" encoding="us-ascii"?><a>caf` + "\xc3\xa9" + `</a>`, KindSyntax, "US-ASCII"},
		{"invalid utf8", "<a>\xff</a>", KindSyntax, "UTF-8"},
		{"empty", ``, KindSyntax, "no root element"},
		{"only comment", `<!-- x -->`, KindSyntax, "no root element"},
		{"two roots", `<a/><b/>`, KindSyntax, "second root"},
		{"text after root", `<a/>x`, KindSyntax, "text outside"},
		{"text before root", `x<a/>`, KindSyntax, "text outside"},
		{"mismatch", "<a>\n<b></a>", KindSyntax, "line 2, column 8: element <b> closed by </a>"},
		{"unclosed", `<a><b></b>`, KindSyntax, "<a> is not closed"},
		{"stray end", `</a>`, KindSyntax, "without a start tag"},
		{"repeated attribute", `<a x="1" x="2"/>`, KindSyntax, "attribute \"x\" repeated"},
		{"repeated attribute many", `<a b="" c="" d="" e="" f="" g="" h="" i="" j="" k="" b=""/>`, KindSyntax, "repeated"},
		{"three-part name", `<a:b:c/>`, KindSyntax, "element name"},
		{"empty prefix", `<:a/>`, KindUnsupported, "not a namespace-well-formed name"},
		{"empty local", `<a:/>`, KindUnsupported, "not a namespace-well-formed name"},
		{"digit local", `<a:1/>`, KindUnsupported, "not a namespace-well-formed name"},
		{"attr empty prefix", `<a :x="1"/>`, KindUnsupported, "attribute name"},
		{"long name mismatch", "<" + long + "></b>", KindSyntax, "…"},
		{"control char", "<a>\x01</a>", KindSyntax, "U+0001"},
		{"nul ref", "<a>&#0;</a>", KindSyntax, "U+0000"},
		{"too large", "<a>" + strings.Repeat("x", 100) + "</a>", KindLimit, "larger than 64 bytes"},
		{"too deep", strings.Repeat("<a>", 5) + strings.Repeat("</a>", 5), KindLimit, "deeper than 4"},
		{"too many", "<a><b/><b/><b/><b/></a>", KindLimit, "more than 4 elements"},
		{"too many with attributes", `<a w="" x="1"><b y="2"/></a>`, KindLimit, "more than 4 elements and attributes"},
		{"too many attributes", `<a><b c="" d="" e="" f=""/></a>`, KindLimit, "more than 3 attributes on one element"},
	} {
		o := Options{}
		if strings.HasPrefix(c.name, "too") {
			o = Options{MaxDepth: 4, MaxElements: 4, MaxAttributes: 3, MaxBytes: 64}
		}
		if c.name == "too deep" {
			o.MaxElements = 10 // else the count stops it first
		}
		if c.name == "too many attributes" {
			o.MaxElements = 10
		}
		_, err := XMLToJSON([]byte(c.in), o)
		bodyErr(t, c.name, c.kind, c.want, err)
		conv, _ := New(o)
		_, err = conv.XMLToJSONReader(strings.NewReader(c.in))
		bodyErr(t, c.name+" (reader)", c.kind, c.want, err)
	}
}

func TestXMLToJSONAccepted(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<a/>`, `{"a":""}`},
		{`<a>  x  </a>`, `{"a":"  x  "}`},
		{`<a x="1">  </a>`, `{"a":{"-x":"1"}}`},
		{`<a x="1"> y </a>`, `{"a":{"-x":"1","#text":" y "}}`},
		{`<a>x<!-- c -->y</a>`, `{"a":"xy"}`},
		{"<a>x<![CDATA[<y>]]>z</a>", `{"a":"x<y>z"}`},
		{`<a xmlns="urn:x" xmlns:p="urn:p" p:q="1"/>`, `{"a":{"-xmlns":"urn:x","-xmlns:p":"urn:p","-p:q":"1"}}`},
		{`<a><b>1</b><c/><b>2</b></a>`, `{"a":{"b":["1","2"],"c":""}}`},
		{"<a>\r\n</a>", `{"a":"\n"}`},
		{`<a>&#x2028;</a>`, `{"a":"\u2028"}`},
		{`<a>"\</a>`, `{"a":"\"\\"}`},
		{`<?xml version="1.0" encoding="ascii"?><a>&#233;</a>`, `{"a":"é"}`},
		{`<a b="1" c="2" d="3" e="4" f="5" g="6" h="7" i="8" j="9" k="10"/>`, `{"a":{"-b":"1","-c":"2","-d":"3","-e":"4","-f":"5","-g":"6","-h":"7","-i":"8","-j":"9","-k":"10"}}`},
		{`<r><x>1</x><y/><x>2</x><y/><z/><w/><v/><u/><t/><x>3</x></r>`, `{"r":{"x":["1","2","3"],"y":["",""],"z":"","w":"","v":"","u":"","t":""}}`},
	} {
		out, err := XMLToJSON([]byte(c.in), Options{})
		if err != nil || string(out) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.in, out, err, c.want)
		}
	}
	// '=', '<' and '>' in values, comments, CDATA and processing
	// instructions are not counted as attributes or elements.
	in := `<a x="=>" y='=>='><!-- = <b c=""/> --><![CDATA[<b c=""/> ]]]><?pi <b c=""/> ?><c d=">"/></a>`
	out, err := XMLToJSON([]byte(in), Options{MaxElements: 5, MaxAttributes: 2})
	if want := `{"a":{"-x":"=>","-y":"=>=","#text":"<b c=\"\"/> ]","c":{"-d":">"}}}`; err != nil || string(out) != want {
		t.Errorf("counting: %s, %v; want %s", out, err, want)
	}
	// ArrayPaths reach into arrays and below prefixes.
	out, err = XMLToJSON([]byte(`<p:r><p:l><i>1</i></p:l><p:l><i>2</i><i>3</i></p:l></p:r>`),
		Options{ArrayPaths: []string{"p:r.p:l", "p:r.p:l.i"}})
	if want := `{"p:r":{"p:l":[{"i":["1"]},{"i":["2","3"]}]}}`; err != nil || string(out) != want {
		t.Errorf("array paths: %s, %v; want %s", out, err, want)
	}
}

func TestJSONToXMLRefused(t *testing.T) {
	for _, c := range []struct {
		name, in string
		kind     Kind
		want     string
	}{
		{"space in key", `{"first name":"x"}`, KindUnsupported, `key "first name" is not an XML element name`},
		{"digit key", `{"a":{"1st":"x"}}`, KindUnsupported, `at a: key "1st"`},
		{"three-part key", `{"a:b:c":1}`, KindUnsupported, "not an XML element name"},
		{"empty key", `{"a":{"":1}}`, KindUnsupported, `key ""`},
		{"dash key", `{"a":{"-":1}}`, KindUnsupported, "attribute name"},
		{"hash key", `{"a":{"#comment":"x"}}`, KindUnsupported, "#comment"},
		{"5th edition name", `{"Ș":1}`, KindUnsupported, "not an XML element name"},
		{"bad key in empty array", `{"a":{"b c":[]}}`, KindUnsupported, "not an XML element name"},
		{"bad key in array", `{"a":{"b c":[1]}}`, KindUnsupported, "not an XML element name"},
		{"object attribute", `{"a":{"-x":{}}}`, KindUnsupported, "cannot be an attribute value"},
		{"array attribute", `{"a":{"-x":[1]}}`, KindUnsupported, "cannot be an attribute value"},
		{"repeated attribute", `{"a":{"-x":1,"-x":2}}`, KindUnsupported, "repeated"},
		{"repeated attribute many", `{"a":{"-a":1,"-b":1,"-c":1,"-d":1,"-e":1,"-f":1,"-g":1,"-h":1,"-i":1,"-a":2}}`, KindUnsupported, "repeated"},
		{"object text", `{"a":{"#text":{}}}`, KindUnsupported, "cannot be text"},
		{"repeated text", `{"a":{"#text":"x","#text":"y"}}`, KindUnsupported, "repeated"},
		{"nul", `{"a":"x\u0000"}`, KindUnsupported, "U+0000"},
		{"control in attribute", `{"a":{"-x":"\u001b"}}`, KindUnsupported, "U+001B"},
		{"fffe", `{"a":"\ufffe"}`, KindUnsupported, "U+FFFE"},
		{"empty", ``, KindSyntax, "empty body"},
		{"space only", " \n ", KindSyntax, "empty body"},
		{"trailing", `{"a":1} x`, KindSyntax, "line 1, column 9: unexpected 'x'"},
		{"two values", `{} {}`, KindSyntax, "after the top-level value"},
		{"unterminated", `{"a":"x`, KindSyntax, "unterminated string"},
		{"missing colon", `{"a" 1}`, KindSyntax, `expected ":"`},
		{"trailing comma", `{"a":1,}`, KindSyntax, "object key"},
		{"trailing comma array", `[1,]`, KindSyntax, "expected a value"},
		{"leading zero", `{"a":01}`, KindSyntax, "line 1, column 7"},
		{"bare dot", `{"a":1.}`, KindSyntax, "decimal point"},
		{"bad exponent", `{"a":1e}`, KindSyntax, "exponent"},
		{"plus", `{"a":+1}`, KindSyntax, "expected a value"},
		{"nan", `{"a":NaN}`, KindSyntax, "expected a value"},
		{"tru", `{"a":tru}`, KindSyntax, "expected true"},
		{"single quotes", `{'a':1}`, KindSyntax, "object key"},
		{"raw newline", "{\"a\":\"x\ny\"}", KindSyntax, "line 1, column 8: control character 0x0a"},
		{"bad escape", `{"a":"\x"}`, KindSyntax, "invalid escape"},
		{"bad unicode escape", `{"a":"\u12"}`, KindSyntax, `invalid \u escape`},
		{"line count", "{\n\"a\":\n  1,\n  ]", KindSyntax, "line 4, column 3"},
		{"too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, KindLimit, "larger than 64 bytes"},
		{"too deep", `[[[[[1]]]]]`, KindLimit, "deeper than 4"},
		{"too many", `[1,2,3,4,5]`, KindLimit, "more than 4 values"},
		{"too much output", `{"abcdefghijklmnopqrstuvwxyzabcdefghij":[0,0]}`, KindLimit, "converted body is larger than 64 bytes"},
	} {
		o := Options{MaxDepth: 4, MaxElements: 4, MaxBytes: 64, MaxOutputBytes: 64}
		if !strings.HasPrefix(c.name, "too") {
			o = Options{}
		}
		_, err := JSONToXML([]byte(c.in), o)
		bodyErr(t, c.name, c.kind, c.want, err)
		conv, _ := New(o)
		_, err = conv.JSONToXMLReader(strings.NewReader(c.in))
		bodyErr(t, c.name+" (reader)", c.kind, c.want, err)
	}
}

func TestJSONStrings(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`"\ud83d\ude00"`, "<root>😀</root>"},
		{`"\ud83d"`, "<root>\uFFFD</root>"},
		{`"\ud83dx"`, "<root>\uFFFDx</root>"},
		{`"\ude00\ud83d"`, "<root>\uFFFD\uFFFD</root>"},
		{"\"\xff\"", "<root>\uFFFD</root>"},
		{`"\u00e9\/\b"`, ""}, // \b is not an XML character
		{`"a\r\nb"`, "<root>a&#xD;\nb</root>"},
		{`""`, "<root/>"},
		{`null`, "<root/>"},
		{`[]`, "<root/>"},
		{`{"a":[]}`, "<root/>"},
		{`{"-a":"1"}`, `<root a="1"/>`},
		{`{"#text":"t"}`, `<root>t</root>`},
		{`{"a":[[]]}`, `<root><a/></root>`},
		{`{"a":{"b":[[1,2],[]]}}`, `<a><b><item>1</item><item>2</item></b><b/></a>`},
	} {
		out, err := JSONToXML([]byte(c.in), Options{})
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: accepted as %s", c.in, out)
			}
			continue
		}
		if err != nil || string(out) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.in, out, err, c.want)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReaderErrorsPassThrough(t *testing.T) {
	c, _ := New(Options{})
	for _, f := range []func(io.Reader) ([]byte, error){c.XMLToJSONReader, c.JSONToXMLReader} {
		_, err := f(io.MultiReader(strings.NewReader("<a>"), failingReader{}))
		var be *BodyError
		if err == nil || errors.As(err, &be) || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("reader error came back as %v", err)
		}
	}
}

func TestExactlyMaxBytes(t *testing.T) {
	in := []byte("<a>" + strings.Repeat("x", 57) + "</a>") // 64 bytes
	o := Options{MaxBytes: len(in)}
	c, _ := New(o)
	if _, err := c.XMLToJSON(in); err != nil {
		t.Errorf("XMLToJSON of exactly MaxBytes: %v", err)
	}
	if _, err := c.XMLToJSONReader(bytes.NewReader(in)); err != nil {
		t.Errorf("XMLToJSONReader of exactly MaxBytes: %v", err)
	}
	j := []byte(`{"a":"` + strings.Repeat("x", 56) + `"}`)
	if _, err := c.JSONToXMLReader(bytes.NewReader(j)); err != nil || len(j) != 64 {
		t.Errorf("JSONToXMLReader of exactly MaxBytes: %v", err)
	}
}

// TestConcurrentUse: one Converter serves many requests at once (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	c, err := New(Options{ArrayPaths: []string{"order.items.item"}})
	if err != nil {
		t.Fatal(err)
	}
	in := []byte(`<order><items><item sku="é">1</item></items><ünï>x</ünï></order>`)
	want, err := c.XMLToJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for range 8 {
		go func() {
			for range 50 {
				js, err := c.XMLToJSON(in)
				if err == nil && !bytes.Equal(js, want) {
					err = errors.New("different JSON")
				}
				if err == nil {
					_, err = c.JSONToXML(js)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
