package transform

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestResponse(t *testing.T) {
	const order = `{"id": 7, "items": [{"sku": "A", "cost": 3}], "secret": "s"}`
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name    string
		cfg     string
		method  string
		reqHdr  map[string]string
		status  int
		header  map[string]string
		body    []byte
		chunked bool

		code     int
		want     string            // the client's body
		wantHdr  map[string]string // "" value: absent
		result   string
		errorOut bool // a generated error, not the upstream's response
	}{
		{
			name: "filter", cfg: `{response: {body: {deny: [secret, "items[].cost"]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Etag": `"v1"`, "Content-Md5": "x", "Digest": "sha-256=x", "Accept-Ranges": "bytes"},
			body:   []byte(order), code: 200, want: `{"id":7,"items":[{"sku":"A"}]}`, result: "applied",
			wantHdr: map[string]string{"Etag": `W/"v1"`, "Content-Md5": "", "Digest": "", "Accept-Ranges": "", "Content-Type": "application/json"},
		},
		{
			name: "weak etag stays", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Etag": `W/"v1"`},
			body:   []byte(order), code: 200, want: `{"id":7,"items":[{"sku":"A","cost":3}]}`, result: "applied",
			wantHdr: map[string]string{"Etag": `W/"v1"`},
		},
		{
			name: "unchanged body keeps its etag", cfg: `{response: {body: {deny: [nothing]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Etag": `"v1"`},
			body:   []byte(`{"a":1}`), code: 200, want: `{"a":1}`, result: "applied",
			wantHdr: map[string]string{"Etag": `"v1"`},
		},
		{
			name: "map", cfg: `{response: {body: {map: [{op: extract, path: items}, {op: wrap, key: data}]}}}`,
			header: jsonHdr, body: []byte(order), code: 200, want: `{"data":[{"sku":"A","cost":3}]}`, result: "applied",
		},
		{
			name: "jq", cfg: `{response: {body: {jq: '{total: (.items | map(.cost) | add), by: $consumer}'}}}`,
			header: jsonHdr, body: []byte(order), code: 200, want: `{"by":"acme","total":3}`, result: "applied",
		},
		{
			name: "xml to json", cfg: `{response: {body: {from: xml, xml: {array_paths: [order.item]}}}}`,
			header: map[string]string{"Content-Type": "text/xml; charset=utf-8"},
			body:   []byte(`<order id="7"><item>A</item></order>`), code: 200, want: `{"order":{"-id":"7","item":["A"]}}`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/json"},
		},
		{
			name: "json to xml", cfg: `{response: {body: {to: xml}}}`,
			header: jsonHdr, body: []byte(`{"order": {"id": 7}}`), code: 200, want: `<order><id>7</id></order>`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/xml"},
		},
		{
			name: "accept prefers xml", cfg: `{response: {body: {to: accept}}}`,
			reqHdr: map[string]string{"Accept": "application/json;q=0.5, application/xml"},
			header: jsonHdr, body: []byte(`{"order": {"id": 7}}`), code: 200, want: `<order><id>7</id></order>`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/xml", "Vary": "Accept"},
		},
		{
			name: "accept text/xml", cfg: `{response: {body: {to: accept}}}`,
			reqHdr: map[string]string{"Accept": "text/xml, */*;q=0.1"},
			header: jsonHdr, body: []byte(`{"order": {"id": 7}}`), code: 200, want: `<order><id>7</id></order>`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "text/xml"},
		},
		{
			name: "accept prefers json", cfg: `{response: {body: {to: accept}}}`,
			reqHdr: map[string]string{"Accept": "application/xml;q=0.9, application/json"},
			header: jsonHdr, body: []byte(`{"order": {"id": 7}}`), code: 200, want: `{"order": {"id": 7}}`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/json", "Vary": "Accept"},
		},
		{
			name: "xml backend, accept xml", cfg: `{response: {body: {from: xml, to: accept, deny: [order.secret]}}}`,
			reqHdr: map[string]string{"Accept": "application/xml"},
			header: map[string]string{"Content-Type": "application/xml"},
			body:   []byte(`<order><id>7</id><secret>s</secret></order>`), code: 200, want: `<order><id>7</id></order>`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/xml"},
		},
		{
			name: "status map by status", cfg: `{response: {status: [{from: 404, to: 410}]}}`,
			status: 404, header: jsonHdr, body: []byte(`{}`), code: 410, want: `{}`, result: "applied",
		},
		{
			name: "status map by field", cfg: `{response: {status: [{from: 200, if_field: error.code, to: 422}, {from: 500, to: 503}]}}`,
			header: jsonHdr, body: []byte(`{"error": {"code": "E1"}}`), code: 422, want: `{"error": {"code": "E1"}}`, result: "applied",
		},
		{
			name: "status map: a null field does not match", cfg: `{response: {status: [{if_field: error, to: 422}]}}`,
			header: jsonHdr, body: []byte(`{"error": null, "result": 1}`), code: 200, want: `{"error": null, "result": 1}`, result: "applied",
		},
		{
			name: "status map then shape: an error is converted, not reshaped", cfg: `{response: {status: [{if_field: error, to: 422}], body: {map: [{op: extract, path: data}]}}}`,
			header: jsonHdr, body: []byte(`{"error": "bad"}`), code: 422, want: `{"error": "bad"}`, result: "applied",
		},
		{
			name: "gzip", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip", "Etag": `"z"`},
			body:   gz(t, order), code: 200, want: `{"id":7,"items":[{"sku":"A","cost":3}]}`, result: "applied",
			wantHdr: map[string]string{"Content-Encoding": "", "Etag": `W/"z"`},
		},
		{
			name: "chunked upstream is still held", cfg: `{response: {body: {deny: [secret]}}}`,
			header: jsonHdr, body: []byte(order), chunked: true, code: 200, want: `{"id":7,"items":[{"sku":"A","cost":3}]}`, result: "applied",
		},
		{
			name: "max_body pass", cfg: `{max_body: 16, response: {body: {deny: [secret]}}}`,
			header: jsonHdr, body: []byte(order), code: 200, want: order, result: "skipped",
		},
		{
			name: "max_body pass, chunked", cfg: `{max_body: 16, response: {body: {deny: [secret]}}}`,
			header: jsonHdr, body: []byte(order), chunked: true, code: 200, want: order, result: "skipped",
		},
		{
			name: "max_body pass, known length", cfg: `{max_body: 16, response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Content-Length": strconv.Itoa(len(order))},
			body:   []byte(order), code: 200, want: order, result: "skipped",
		},
		{
			name: "max_body reject", cfg: `{max_body: 16, response: {on_too_large: reject, body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "X-Upstream": "1"},
			body:   []byte(order), chunked: true, code: 502, want: "upstream body larger", result: "failed", errorOut: true,
		},
		{
			name: "max_body reject once decoded", cfg: `{max_body: 64, response: {on_too_large: reject, body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Upstream": "1"},
			body:   gz(t, `{"a":"`+strings.Repeat("x", 300)+`"}`), code: 502, want: "upstream body larger", result: "failed", errorOut: true,
		},
		{
			name: "invalid json: 502, nothing half-written", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "X-Upstream": "1", "Set-Cookie": "a=b"},
			body:   []byte(`{"id": 7,`), code: 502, want: `invalid upstream body: invalid JSON at offset 9`, result: "failed", errorOut: true,
		},
		{
			name: "invalid xml: 502", cfg: `{response: {body: {from: xml}}}`,
			header: map[string]string{"Content-Type": "application/xml", "X-Upstream": "1"},
			body:   []byte(`<a><b></a>`), code: 502, want: `invalid upstream body: `, result: "failed", errorOut: true,
		},
		{
			name: "bad gzip: 502", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Upstream": "1"},
			body:   []byte(`nope`), code: 502, want: `invalid upstream body: bad gzip data`, result: "failed", errorOut: true,
		},
		{
			name: "json key no xml name: 502", cfg: `{response: {body: {to: xml}}}`,
			header: map[string]string{"Content-Type": "application/json", "X-Upstream": "1"},
			body:   []byte(`{"first name": 1}`), code: 502, want: `invalid upstream body: `, result: "failed", errorOut: true,
		},
		{
			name: "jq failure: 502", cfg: `{response: {body: {jq: '.[]'}}}`,
			header: map[string]string{"Content-Type": "application/json", "X-Upstream": "1"},
			body:   []byte(`[1, 2]`), code: 502, want: `transform failed`, result: "failed", errorOut: true,
		},
		{
			name: "event stream passes", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "text/event-stream"},
			body:   []byte("data: {\"secret\": 1}\n\n"), chunked: true, code: 200, want: "data: {\"secret\": 1}\n\n", result: "skipped",
		},
		{
			name: "other content type passes", cfg: `{response: {body: {deny: [secret]}, headers: {set: {X-Route: r}}}}`,
			header: map[string]string{"Content-Type": "text/html"},
			body:   []byte("<p>{</p>"), code: 200, want: "<p>{</p>", result: "skipped",
			wantHdr: map[string]string{"X-Route": "r"},
		},
		{
			name: "br passes", cfg: `{response: {body: {deny: [secret]}}}`,
			header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"},
			body:   []byte("\x0b\x02\x80{}\x03"), code: 200, want: "\x0b\x02\x80{}\x03", result: "skipped",
			wantHdr: map[string]string{"Content-Encoding": "br"},
		},
		{
			name: "HEAD passes", cfg: `{response: {body: {deny: [secret]}}}`, method: "HEAD",
			header: map[string]string{"Content-Type": "application/json", "Content-Length": "40"},
			code:   200, want: "", result: "skipped", wantHdr: map[string]string{"Content-Length": "40"},
		},
		{
			name: "204 passes", cfg: `{response: {body: {deny: [secret]}}}`,
			status: 204, code: 204, want: "", result: "skipped",
		},
		{
			name: "headers templated from the request", cfg: `{response: {headers: {set: {X-Who: "{consumer}@{path.id}"}, remove: [Server], rename: {X-Old: X-New}}}}`,
			header: map[string]string{"Content-Type": "text/plain", "Server": "upstream/1", "X-Old": "o"},
			body:   []byte("hi"), code: 200, want: "hi", result: "applied",
			wantHdr: map[string]string{"X-Who": "acme@9", "Server": "", "X-Old": "", "X-New": "o"},
		},
		{
			name: "headers apply after the body transform", cfg: `{response: {headers: {set: {Content-Type: application/vnd.v2+json}}, body: {deny: [secret]}}}`,
			header: jsonHdr, body: []byte(order), code: 200, want: `{"id":7,"items":[{"sku":"A","cost":3}]}`, result: "applied",
			wantHdr: map[string]string{"Content-Type": "application/vnd.v2+json"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{status: tc.status, header: tc.header, body: tc.body, chunked: tc.chunked}
			c := &counts{}
			h := build(t, tc.cfg, b, c)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			w, x := do(t, h, method, "/orders/9", tc.reqHdr, nil)
			if w.Code != tc.code {
				t.Errorf("code %d, want %d", w.Code, tc.code)
			}
			if c.get("response/"+tc.result) != 1 {
				t.Errorf("counted %v, want response/%s", c.m, tc.result)
			}
			got := w.Body.String()
			if tc.errorOut {
				if !strings.Contains(got, tc.want) || x.Error == nil {
					t.Errorf("error body %q, want %q", got, tc.want)
				}
				for _, k := range []string{"X-Upstream", "Set-Cookie", "Content-Encoding"} {
					if v := w.Header().Get(k); v != "" {
						t.Errorf("the upstream's %s: %s reached the client", k, v)
					}
				}
				if w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("error Content-Type %q", w.Header().Get("Content-Type"))
				}
			} else if got != tc.want {
				t.Errorf("body\n%q\nwant\n%q", got, tc.want)
			}
			if method != "HEAD" && tc.code != 204 {
				if cl := w.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(w.Body.Len()) {
					t.Errorf("Content-Length %s for %d bytes", cl, w.Body.Len())
				}
				if tc.result == "applied" && tc.header["Content-Encoding"] == "" && w.Header().Get("Content-Length") == "" && w.Body.Len() > 0 &&
					(strings.Contains(tc.cfg, "body:") || strings.Contains(tc.cfg, "if_field")) {
					t.Errorf("no Content-Length on a transformed response")
				}
			}
			for k, want := range tc.wantHdr {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

// A stream is passed on as it comes: the client has each flushed event
// before the upstream is done.
func TestResponseStreamFlushes(t *testing.T) {
	var rec *httptest.ResponseRecorder
	seen := make(chan string, 2)
	b := &backend{serve: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("data: 1\n\n"))
		http.NewResponseController(w).Flush()
		seen <- rec.Body.String()
		_, _ = w.Write([]byte("data: 2\n\n"))
	}}
	h := build(t, `{response: {body: {deny: [x]}, headers: {set: {X-T: "1"}}}}`, b, nil)
	r := httptest.NewRequest("GET", "/orders/1", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := <-seen; got != "data: 1\n\n" || !rec.Flushed {
		t.Errorf("before the upstream finished the client had %q (flushed %v)", got, rec.Flushed)
	}
	if rec.Body.String() != "data: 1\n\ndata: 2\n\n" || rec.Header().Get("X-T") != "1" {
		t.Errorf("stream %q, headers %v", rec.Body.String(), rec.Header())
	}
}

// The upstream request is made to send what can be read whole.
func TestResponseAsksForReadableBodies(t *testing.T) {
	b := &backend{header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{}`)}
	h := build(t, `{response: {body: {deny: [x]}}}`, b, nil)
	do(t, h, "GET", "/orders/1", map[string]string{"Accept-Encoding": "br, gzip;q=0.8, zstd", "Range": "bytes=0-10", "If-Range": `"x"`}, nil)
	if got := b.saw.header.Get("Accept-Encoding"); got != "gzip;q=0.8" {
		t.Errorf("Accept-Encoding %q", got)
	}
	if b.saw.header.Get("Range") != "" || b.saw.header.Get("If-Range") != "" {
		t.Errorf("range headers forwarded: %v", b.saw.header)
	}
	do(t, h, "GET", "/orders/1", map[string]string{"Accept-Encoding": "br"}, nil)
	if got := b.saw.header.Get("Accept-Encoding"); got != "identity" {
		t.Errorf("Accept-Encoding %q", got)
	}
}

// The proxy's own errors (from the error table) are not transformed: not
// their status, headers or body, whether the route reads bodies or not.
func TestResponseLeavesGeneratedErrors(t *testing.T) {
	b := &backend{serve: func(w http.ResponseWriter, r *http.Request) {
		// as the forwarder answers a failed attempt
		writeConnectFailed(w, exchangeOf(r))
	}}
	for _, cfg := range []string{
		`{response: {status: [{if_field: error, to: 200}, {from: 502, to: 503}], body: {to: xml}, headers: {set: {X-T: "1"}}}}`,
		`{response: {status: [{from: 502, to: 503}], headers: {set: {X-T: "1"}, remove: [Content-Type]}}}`,
		`{response: {status: [{from: 502, to: 503}], headers: {set: {X-T: "{consumer}"}}}}`,
	} {
		h := build(t, cfg, b, nil)
		w, _ := do(t, h, "GET", "/orders/1", nil, nil)
		if w.Code != 502 || !strings.HasPrefix(w.Body.String(), `{"status":502`) || w.Header().Get("X-T") != "" ||
			w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: generated error changed: %d %v %s", cfg, w.Code, w.Header(), w.Body.String())
		}
	}
}

// Status rules and header ops without a body: mapped and set, not for
// gRPC's status.
func TestResponseBodiless(t *testing.T) {
	b := &backend{status: 404, header: map[string]string{"Content-Type": "application/grpc"}}
	h := build(t, `{response: {status: [{from: 404, to: 410}], headers: {set: {X-T: "{consumer}"}}}}`, b, nil)
	w, _ := do(t, h, "GET", "/orders/1", nil, nil)
	if w.Code != 410 || w.Header().Get("X-T") != "acme" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
	w, _ = do(t, h, "POST", "/orders/1", map[string]string{"Content-Type": "application/grpc"}, []byte("\x00"))
	if w.Code != 404 || w.Header().Get("X-T") != "acme" {
		t.Errorf("gRPC: %d %v", w.Code, w.Header())
	}
}

func TestPrefersXML(t *testing.T) {
	cases := []struct {
		accept string
		xml    bool
		typ    string
	}{
		{"", false, ""},
		{"application/json", false, ""},
		{"application/xml", true, typeXML},
		{"text/xml", true, typeTextXML},
		{"*/*", false, ""},
		{"application/*", false, ""},
		{"application/xml, application/json", false, ""},
		{"application/xml;q=1, application/json;q=0.9", true, typeXML},
		{"application/json;q=0.5, */*", true, typeXML},
		{"text/*, application/json;q=0.2", true, typeTextXML},
		{"application/json;q=0, application/xml;q=0.001", true, typeXML},
		{"application/xml;q=0, text/xml;q=0", false, ""},
		{"Application/XML; Q=0.8 , application/json ; q=0.7", true, typeXML},
		{"text/html", false, ""},
		{"application/xml;q=bogus, application/json;q=0.9", true, typeXML},
		{"text/xml;q=0.5, application/xml;q=0.5, application/json;q=0.4", true, typeXML},
	}
	for _, tc := range cases {
		var hdr []string
		if tc.accept != "" {
			hdr = []string{tc.accept}
		}
		xml, typ := prefersXML(hdr)
		if xml != tc.xml || typ != tc.typ {
			t.Errorf("Accept %q: %v %q, want %v %q", tc.accept, xml, typ, tc.xml, tc.typ)
		}
	}
	if n := testing.AllocsPerRun(100, func() { prefersXML([]string{"text/xml;q=0.5, application/json;q=0.4, */*;q=0.1"}) }); n != 0 {
		t.Errorf("prefersXML allocates %v times", n)
	}
}

// A Counter that is not a Binder counts every request through Transform;
// a Binder's series are resolved once, at build, and counted into.
func TestCounterBoundOrNot(t *testing.T) {
	for _, bound := range []bool{true, false} {
		c := &counts{}
		var count Counter = c
		if !bound {
			count = unbound{c}
		}
		b := &backend{header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"id": 7, "secret": "s"}`)}
		h := build(t, `{response: {body: {deny: [secret]}}}`, b, count)
		for range 3 {
			if w, _ := do(t, h, "GET", "/orders/9", nil, nil); w.Code != 200 {
				t.Fatalf("bound %v: code %d", bound, w.Code)
			}
		}
		if got := c.get("response/applied"); got != 3 {
			t.Errorf("bound %v: counted %v, want response/applied 3", bound, c.m)
		}
		if _, ok := count.(Binder); ok != bound {
			t.Errorf("bound %v: the counter is a Binder: %v", bound, ok)
		}
	}
}

// A mapped body is sent from the buffer the mapping wrote, and the held
// body's storage is the next response's buffer: responses of every size,
// one after another and at once, each get their own document whole.
func TestMappedBodiesReuseBuffers(t *testing.T) {
	doc := func(n int) string {
		return fmt.Sprintf(`{"id":%d,"pad":%q,"secret":"s","items":[{"sku":"A","cost":%d}]}`, n, strings.Repeat("x", n*97%3000), n)
	}
	want := func(n int) string {
		return fmt.Sprintf(`{"order_id":%d,"pad":%q,"items":[{"sku":"A"}]}`, n, strings.Repeat("x", n*97%3000))
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(doc(n)))
	})
	h := build(t, `{response: {body: {deny: [secret, "items[].cost"], map: [{op: rename, path: id, key: order_id}]}}}`, next, nil)
	check := func(n int) error {
		w, _ := do(t, h, "GET", "/orders/9?n="+strconv.Itoa(n), nil, nil)
		if got := w.Body.String(); w.Code != 200 || got != want(n) {
			return fmt.Errorf("n=%d: %d %q, want %q", n, w.Code, got, want(n))
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(want(n))) {
			return fmt.Errorf("n=%d: Content-Length %s, body %d bytes", n, cl, len(want(n)))
		}
		return nil
	}
	for n := range 60 {
		if err := check(n); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := g; n < 200; n += 8 {
				if err := check(n); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
