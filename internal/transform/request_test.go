package transform

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/policy"
)

func TestRequestHeadersAndQuery(t *testing.T) {
	cases := []struct {
		name   string
		cfg    string
		target string
		hdr    map[string]string
		want   map[string][]string // nil value: absent
		query  string              // the raw query the upstream gets ("-": unchecked)
	}{
		{
			name: "templates",
			cfg: `
request:
  headers:
    set:
      X-Consumer: "{consumer}/{tier}"
      X-Client: "{client_ip} {request_id}"
      X-Order: "order-{path.id}"
      X-Page: "{query.page}"
      X-Copy: "{header.X-In}"
      X-Email: "{claim.email}"
      X-Braces: "{{literal}} and }}"
`,
			target: "/orders/42?page=3&q=a%20b",
			hdr:    map[string]string{"X-In": "hello"},
			want: map[string][]string{
				"X-Consumer": {"acme/gold"}, "X-Client": {"192.0.2.7 req-1"}, "X-Order": {"order-42"},
				"X-Page": {"3"}, "X-Copy": {"hello"}, "X-Email": {"ops@acme.test"}, "X-Braces": {"{literal} and }"},
			},
			query: "page=3&q=a%20b",
		},
		{
			name: "missing values are empty; unsafe values are not set",
			cfg: `
request:
  headers:
    set: {X-Nope: "{claim.nope}", X-Q: "{query.absent}", X-Evil: "{claim.evil}", X-Keep: "{header.X-Keep}"}
`,
			target: "/orders/1",
			hdr:    map[string]string{"X-Keep": "k"},
			want:   map[string][]string{"X-Nope": {""}, "X-Q": {""}, "X-Evil": nil, "X-Injected": nil, "X-Keep": {"k"}},
			query:  "",
		},
		{
			name: "remove rename set add, templates read the request as received",
			cfg: `
request:
  headers:
    remove: [X-Secret]
    rename: {X-Old: X-New}
    set: {X-Was-Old: "{header.X-Old}", X-Set: a}
    add: {X-Multi: b, X-Set: c}
`,
			target: "/orders/1",
			hdr:    map[string]string{"X-Secret": "s", "X-Old": "o", "X-Multi": "a", "X-Set": "z"},
			want: map[string][]string{
				"X-Secret": nil, "X-Old": nil, "X-New": {"o"}, "X-Was-Old": {"o"},
				"X-Set": {"a", "c"}, "X-Multi": {"a", "b"},
			},
			query: "",
		},
		{
			name: "query ops keep order and encoding of the others",
			cfg: `
request:
  query:
    remove: [debug]
    rename: {q: search}
    set: {page: "{path.id}", who: "{consumer} x"}
    add: {tag: "a&b"}
`,
			target: "/orders/7?z=%7E1&debug=1&q=a%2Bb&page=1&page=2&search=old",
			query:  "z=%7E1&search=a%2Bb&page=7&who=acme+x&tag=a%26b",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{}
			c := &counts{}
			h := build(t, tc.cfg, b, c)
			w, _ := do(t, h, "GET", tc.target, tc.hdr, nil)
			if w.Code != 200 || !b.saw.called {
				t.Fatalf("code %d, called %v", w.Code, b.saw.called)
			}
			for k, want := range tc.want {
				got := b.saw.header[k]
				if want == nil && got != nil || want != nil && strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.query != "-" && b.saw.query != tc.query {
				t.Errorf("query %q, want %q", b.saw.query, tc.query)
			}
			if c.get("request/applied") != 1 {
				t.Errorf("counted %v", c.m)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	legacy := `{"customer_id": 7, "lines": [{"sku": "A", "qty": 2, "note": "x"}], "internal": true}`
	cases := []struct {
		name     string
		cfg      string
		method   string
		hdr      map[string]string
		body     []byte
		code     int    // 0: forwarded (200)
		want     string // the upstream's body ("" with code: not called)
		wantCT   string
		errText  string // in the error body
		result   string
		wantBody bool // for skipped: the body as sent
	}{
		{
			name: "filter allow",
			cfg:  `{request: {body: {allow: [customer_id, "lines[].sku"]}}}`,
			body: []byte(legacy), want: `{"customer_id":7,"lines":[{"sku":"A"}]}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "filter deny",
			cfg:  `{request: {body: {deny: [internal, "lines[].note"]}}}`,
			body: []byte(legacy), want: `{"customer_id":7,"lines":[{"sku":"A","qty":2}]}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "map legacy to new",
			cfg: `
request:
  body:
    deny: [internal]
    map:
      - {op: rename, path: customer_id, key: customerId}
      - {op: move, from: lines, to: order.items}
      - {op: set, path: order.placedBy, var: consumer}
      - {op: set, path: order.version, value: 2}
      - {op: set, path: order.orderId, var: path.id}
`,
			body: []byte(legacy),
			want: `{"customerId":7,"order":{"items":[{"sku":"A","qty":2,"note":"x"}],"placedBy":"acme","version":2,"orderId":"9"}}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "jq with variables",
			cfg:  `{request: {body: {jq: '{who: $consumer, n: (.lines | length), id: $path.id, email: $claims.email, page: $query.p}'}}}`,
			body: []byte(legacy), want: `{"email":"ops@acme.test","id":"9","n":1,"page":"2","who":"acme"}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "xml to json",
			cfg:  `{request: {body: {from: xml}}}`,
			hdr:  map[string]string{"Content-Type": "application/xml"},
			body: []byte(`<order id="7"><item>A</item><item>B</item></order>`),
			want: `{"order":{"-id":"7","item":["A","B"]}}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "json to xml",
			cfg:  `{request: {body: {to: xml, xml: {root: req}}}}`,
			hdr:  map[string]string{"Content-Type": "application/json"},
			body: []byte(`{"a": 1, "b": "x"}`),
			want: `<req><a>1</a><b>x</b></req>`, wantCT: "application/xml", result: "applied",
		},
		{
			name: "keeps a JSON content type",
			cfg:  `{request: {body: {deny: [b]}}}`,
			hdr:  map[string]string{"Content-Type": "application/vnd.acme+json; charset=utf-8"},
			body: []byte(`{"a": 1, "b": "x"}`),
			want: `{"a":1}`, wantCT: "application/vnd.acme+json; charset=utf-8", result: "applied",
		},
		{
			name: "gzip",
			cfg:  `{request: {body: {deny: [internal]}}}`,
			hdr:  map[string]string{"Content-Encoding": "gzip"},
			body: gz(t, legacy), want: `{"customer_id":7,"lines":[{"sku":"A","qty":2,"note":"x"}]}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "deflate",
			cfg:  `{request: {body: {deny: [internal]}}}`,
			hdr:  map[string]string{"Content-Encoding": "deflate"},
			body: zlibBytes(`{"a":1,"internal":2}`), want: `{"a":1}`, wantCT: "application/json", result: "applied",
		},
		{
			name: "br refused",
			cfg:  `{request: {body: {deny: [internal]}}}`,
			hdr:  map[string]string{"Content-Encoding": "br"},
			body: []byte("\x0b\x02\x80{}\x03"), code: 415, errText: "unsupported content encoding: br", result: "failed",
		},
		{
			name: "bad gzip",
			cfg:  `{request: {body: {deny: [internal]}}}`,
			hdr:  map[string]string{"Content-Encoding": "gzip"},
			body: []byte("not gzip"), code: 400, errText: "invalid request body: bad gzip data", result: "failed",
		},
		{
			name: "invalid json",
			cfg:  `{request: {body: {deny: [internal]}}}`,
			body: []byte(`{"a": 1,}`), code: 400, errText: "invalid request body: invalid JSON at offset 8", result: "failed",
		},
		{
			name: "invalid json for jq",
			cfg:  `{request: {body: {jq: .}}}`,
			body: []byte(`{"a": 1} {}`), code: 400, errText: "invalid request body: not a single JSON value", result: "failed",
		},
		{
			name: "invalid xml",
			cfg:  `{request: {body: {from: xml}}}`,
			body: []byte(`<!DOCTYPE x><a/>`), code: 400, errText: "invalid request body: ", result: "failed",
		},
		{
			name: "jq error",
			cfg:  `{request: {body: {jq: 'error("no")'}}}`,
			body: []byte(`{}`), code: 502, errText: "transform failed", result: "failed",
		},
		{
			name: "too large: 413",
			cfg:  `{max_body: 16, request: {body: {deny: [a]}}}`,
			body: []byte(`{"a": "0123456789abcdef"}`), code: 413, errText: "request body larger", result: "failed",
		},
		{
			name: "too large once decoded: 413",
			cfg:  `{max_body: 64, request: {body: {deny: [a]}}}`,
			hdr:  map[string]string{"Content-Encoding": "gzip"},
			body: gz(t, `{"a":"`+strings.Repeat("x", 500)+`"}`), code: 413, errText: "request body larger", result: "failed",
		},
		{
			name: "too large: pass",
			cfg:  `{max_body: 16, request: {on_too_large: pass, body: {deny: [a]}}}`,
			body: []byte(`{"a": "0123456789abcdef"}`), want: `{"a": "0123456789abcdef"}`, result: "skipped", wantBody: true,
		},
		{
			name:   "empty body skipped",
			cfg:    `{request: {body: {map: [{op: set, path: x, value: 1}]}}}`,
			method: "POST", body: []byte{}, want: "", result: "skipped",
		},
		{
			name: "grpc skipped",
			cfg:  `{request: {body: {deny: [a]}}}`,
			hdr:  map[string]string{"Content-Type": "application/grpc"},
			body: []byte("\x00\x00\x00\x00\x02hi"), want: "\x00\x00\x00\x00\x02hi", result: "skipped", wantBody: true,
		},
		{
			name: "websocket skipped",
			cfg:  `{request: {body: {deny: [a]}}}`,
			hdr:  map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"},
			body: []byte(`{"a":1}`), want: `{"a":1}`, result: "skipped", wantBody: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{}
			c := &counts{}
			h := build(t, tc.cfg, b, c)
			method := tc.method
			if method == "" {
				method = "POST"
			}
			w, x := do(t, h, method, "/orders/9?p=2", tc.hdr, tc.body)
			if c.get("request/"+tc.result) != 1 {
				t.Errorf("counted %v, want request/%s", c.m, tc.result)
			}
			if tc.code != 0 {
				if w.Code != tc.code || b.saw.called {
					t.Fatalf("code %d (want %d), upstream called %v", w.Code, tc.code, b.saw.called)
				}
				if !strings.Contains(w.Body.String(), tc.errText) || x.Error == nil || x.Error.Status != tc.code {
					t.Errorf("error body %s, exchange error %v; want %q", w.Body.String(), x.Error, tc.errText)
				}
				if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
					t.Errorf("error Content-Length %s for %d bytes", cl, w.Body.Len())
				}
				return
			}
			if w.Code != 200 || !b.saw.called {
				t.Fatalf("code %d, called %v: %s", w.Code, b.saw.called, w.Body.String())
			}
			if b.saw.body != tc.want {
				t.Errorf("upstream body\n%s\nwant\n%s", b.saw.body, tc.want)
			}
			if tc.result != "applied" {
				return
			}
			if b.saw.length != int64(len(tc.want)) || b.saw.header.Get("Content-Length") != strconv.Itoa(len(tc.want)) {
				t.Errorf("length %d / %q for %d bytes", b.saw.length, b.saw.header.Get("Content-Length"), len(tc.want))
			}
			if ct := b.saw.header.Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("Content-Type %q, want %q", ct, tc.wantCT)
			}
			if ce := b.saw.header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q left", ce)
			}
		})
	}
}

// A chunked request (no Content-Length) over max_body is refused without
// reading more than max_body+1 bytes, or passed on whole.
func TestRequestChunkedTooLarge(t *testing.T) {
	body := `{"a":"` + strings.Repeat("x", 100) + `"}`
	for _, pass := range []bool{false, true} {
		cfg := `{max_body: 32, request: {body: {deny: [b]}}}`
		if pass {
			cfg = `{max_body: 32, request: {on_too_large: pass, body: {deny: [b]}}}`
		}
		b := &backend{}
		h := build(t, cfg, b, nil)
		r, _ := http.NewRequest("POST", "http://example.com/orders/1", &onlyReader{strings.NewReader(body)})
		r.ContentLength = -1
		w := newRecorderServe(t, h, r)
		if !pass {
			if w.Code != 413 || b.saw.called {
				t.Errorf("reject: %d, called %v", w.Code, b.saw.called)
			}
			continue
		}
		if w.Code != 200 || b.saw.body != body {
			t.Errorf("pass: %d, upstream got %q", w.Code, b.saw.body)
		}
	}
}

func TestRequestBodyJSONKeepsNumbers(t *testing.T) {
	b := &backend{}
	h := build(t, `{request: {body: {map: [{op: wrap, key: data}]}}}`, b, nil)
	do(t, h, "POST", "/orders/1", nil, []byte(`{"n": 9007199254740993, "f": 0.10}`))
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b.saw.body), &v); err != nil || b.saw.body != `{"data":{"n":9007199254740993,"f":0.10}}` {
		t.Errorf("body %s (%v)", b.saw.body, err)
	}
}

func zlibBytes(s string) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

// The route's max_body_bytes bounds what the transform reads, whatever
// on_too_large says.
func TestRequestRouteMaxBodyBytes(t *testing.T) {
	c := parseTransform(t, `{max_body: 1MiB, request: {on_too_large: pass, body: {deny: [b]}}}`)
	b := &backend{}
	h, err := Policy(Deps{}).Build(&config.Route{Name: "r", Transform: c, MaxBodyBytes: 16}, policy.Env{Route: "r"}, b)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"a": "` + strings.Repeat("x", 40) + `"}`
	for _, known := range []bool{true, false} {
		r, _ := http.NewRequest("POST", "http://example.com/orders/1", &onlyReader{strings.NewReader(body)})
		r.ContentLength = -1
		if known {
			r.ContentLength = int64(len(body))
		}
		w := newRecorderServe(t, h, r)
		if w.Code != 413 || b.saw.called {
			t.Errorf("length known %v: %d, upstream called %v", known, w.Code, b.saw.called)
		}
	}
	w, _ := do(t, h, "POST", "/orders/1", nil, []byte(`{"a":1,"b":2}`))
	if w.Code != 200 || b.saw.body != `{"a":1}` {
		t.Errorf("small body: %d %q", w.Code, b.saw.body)
	}
}
