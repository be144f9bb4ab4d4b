package node

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// bodySeen is what bodyEchoBackend reports about the request it received.
type bodySeen struct {
	Path            string              `json:"path"`
	Query           string              `json:"query"`
	Headers         map[string][]string `json:"headers"`
	Body            string              `json:"body"`
	ContentLength   int64               `json:"content_length"`
	ContentType     string              `json:"content_type"`
	ContentEncoding string              `json:"content_encoding"`
}

// bodyEchoBackend answers every request with a JSON description of it,
// body included; calls counts the requests.
func bodyEchoBackend(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(bodySeen{Path: r.URL.Path, Query: r.URL.RawQuery, Headers: r.Header, Body: string(b),
			ContentLength: r.ContentLength, ContentType: r.Header.Get("Content-Type"), ContentEncoding: r.Header.Get("Content-Encoding")})
	}))
	t.Cleanup(s.Close)
	return s
}

// send does a request with a body and returns the response, its body read.
func send(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// checkLength: the response says its length, and it is right.
func checkLength(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("%s: Content-Length %d (%q) for %d bytes", what, resp.ContentLength, resp.Header.Get("Content-Length"), len(body))
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("%s: Content-Encoding %q on a transformed body", what, ce)
	}
}

// A legacy client's format mapped to a new backend's, through a real edge:
// headers and query templated, the body filtered and mapped, gzip and
// chunked bodies included, invalid ones refused before the backend.
func TestTransformLegacyClientToNewBackend(t *testing.T) {
	var calls atomic.Int64
	b := bodyEchoBackend(t, &calls)
	e := startEdge(t, fmt.Sprintf(`
log: {access: stdout}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: legacy-orders
    match: {path: {template: "/v1/orders/{id}"}, methods: [POST]}
    rewrite: {path: "/v2/orders/{id}"}
    upstream: b
    transform:
      request:
        headers:
          set: {X-Api-Version: "2", X-Order: "order-{path.id}"}
          remove: [X-Legacy-Client]
        query:
          rename: {cust: customer}
        body:
          deny: [internal]
          map:
            - {op: rename, path: customer_id, key: customerId}
            - {op: move, from: lines, to: order.items}
            - {op: set, path: order.id, var: path.id}
upstreams: [{name: b, endpoints: [{address: %q}]}]
`, addr(b)))
	base := e.url("public")
	legacy := `{"customer_id": 7, "lines": [{"sku": "A", "qty": 2}], "internal": {"score": 9}}`
	want := `{"customerId":7,"order":{"items":[{"sku":"A","qty":2}],"id":"42"}}`

	var gzipped bytes.Buffer
	zw := gzip.NewWriter(&gzipped)
	_, _ = zw.Write([]byte(legacy))
	_ = zw.Close()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		body func() io.Reader
	}{
		{"plain", map[string]string{"Content-Type": "application/json"}, func() io.Reader { return strings.NewReader(legacy) }},
		// No length: the client sends it chunked.
		{"chunked gzip", map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"},
			func() io.Reader { return io.MultiReader(bytes.NewReader(gzipped.Bytes())) }},
	} {
		hdr := map[string]string{"X-Legacy-Client": "1"}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		resp, body := send(t, "POST", base+"/v1/orders/42?cust=7&page=1", hdr, tc.body())
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
		var s bodySeen
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("%s: backend said %q: %v", tc.name, body, err)
		}
		if s.Body != want {
			t.Errorf("%s: backend got\n%s\nwant\n%s", tc.name, s.Body, want)
		}
		if s.ContentLength != int64(len(want)) || s.ContentType != "application/json" || s.ContentEncoding != "" {
			t.Errorf("%s: backend got length %d, type %q, encoding %q", tc.name, s.ContentLength, s.ContentType, s.ContentEncoding)
		}
		if s.Path != "/v2/orders/42" || s.Query != "customer=7&page=1" {
			t.Errorf("%s: backend got %s?%s", tc.name, s.Path, s.Query)
		}
		if got := s.Headers["X-Api-Version"]; len(got) != 1 || got[0] != "2" {
			t.Errorf("%s: X-Api-Version %v", tc.name, got)
		}
		if got := s.Headers["X-Order"]; len(got) != 1 || got[0] != "order-42" {
			t.Errorf("%s: X-Order %v", tc.name, got)
		}
		if _, ok := s.Headers["X-Legacy-Client"]; ok {
			t.Errorf("%s: X-Legacy-Client forwarded", tc.name)
		}
	}

	// An invalid body is refused with the reason, before the backend.
	before := calls.Load()
	resp, body := send(t, "POST", base+"/v1/orders/42", map[string]string{"Content-Type": "application/json"}, strings.NewReader(`{"customer_id": 7,}`))
	if resp.StatusCode != 400 || !strings.Contains(body, "invalid request body: invalid JSON at offset 18") {
		t.Errorf("invalid body: %d %s", resp.StatusCode, body)
	}
	checkLength(t, "400", resp, body)
	if calls.Load() != before {
		t.Error("the backend got an invalid body")
	}
	// Counted by route, side and result.
	if n := metricValue(t, e.node, `meshgate_transforms_total{result="applied",route="legacy-orders",side="request"}`); n != 2 {
		t.Errorf("applied request transforms counted %v, want 2", n)
	}
	if n := metricValue(t, e.node, `meshgate_transforms_total{result="failed",route="legacy-orders",side="request"}`); n != 1 {
		t.Errorf("failed request transforms counted %v, want 1", n)
	}
}

// An XML backend served as JSON (and as XML to clients that ask for it),
// and a JSON backend served as XML by Accept, with Content-Type and
// Content-Length right; a broken upstream body is a 502.
func TestTransformXMLAndJSONBackends(t *testing.T) {
	const orderXML = `<?xml version="1.0" encoding="UTF-8"?>
<order id="7"><customer>acme</customer><item sku="A">2</item><secret>s</secret></order>`
	xmlBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, "<order><item></order>")
			return
		}
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.Header().Set("Etag", `"v7"`)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, orderXML)
			_ = zw.Close()
			return
		}
		_, _ = io.WriteString(w, orderXML)
	}))
	t.Cleanup(xmlBackend.Close)
	jsonBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Chunked, flushed as it goes: still held and transformed whole.
		_, _ = io.WriteString(w, `{"id": 7, "tags": ["a", `)
		http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, `"b"], "internal": true}`)
	}))
	t.Cleanup(jsonBackend.Close)

	e := startEdge(t, fmt.Sprintf(`
log: {access: stdout}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: legacy-xml
    match: {path: {prefix: /orders}}
    upstream: xml
    transform:
      response:
        body:
          from: xml
          deny: [order.secret]
          to: accept
          xml: {array_paths: [order.item]}
  - name: broken
    match: {path: {prefix: /broken}}
    upstream: xml
    transform:
      response:
        body: {from: xml}
  - name: modern-json
    match: {path: {prefix: /items}}
    upstream: json
    transform:
      response:
        body:
          allow: [id, tags]
          to: accept
          xml: {root: response}
upstreams:
  - {name: xml, endpoints: [{address: %q}]}
  - {name: json, endpoints: [{address: %q}]}
`, addr(xmlBackend), addr(jsonBackend)))
	base := e.url("public")

	// JSON for a JSON client (the backend answered gzip: decoded here).
	resp, body := send(t, "GET", base+"/orders/7", map[string]string{"Accept": "application/json", "Accept-Encoding": "gzip, br"}, nil)
	if resp.StatusCode != 200 || body != `{"order":{"-id":"7","customer":"acme","item":[{"-sku":"A","#text":"2"}]}}` {
		t.Fatalf("XML as JSON: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("XML as JSON: Content-Type %q", ct)
	}
	if et := resp.Header.Get("Etag"); et != `W/"v7"` {
		t.Errorf("XML as JSON: ETag %q", et)
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept") {
		t.Errorf("XML as JSON: Vary %q", resp.Header.Get("Vary"))
	}
	checkLength(t, "XML as JSON", resp, body)

	// XML for an XML client.
	resp, body = send(t, "GET", base+"/orders/7", map[string]string{"Accept": "application/xml, application/json;q=0.5"}, nil)
	if resp.StatusCode != 200 || body != `<order id="7"><customer>acme</customer><item sku="A">2</item></order>` {
		t.Errorf("XML as XML: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Errorf("XML as XML: Content-Type %q", ct)
	}
	checkLength(t, "XML as XML", resp, body)

	// A JSON backend, as XML by Accept, and as JSON otherwise.
	resp, body = send(t, "GET", base+"/items/7", map[string]string{"Accept": "text/html, application/xml;q=0.9, */*;q=0.1"}, nil)
	if resp.StatusCode != 200 || body != `<response><id>7</id><tags>a</tags><tags>b</tags></response>` {
		t.Errorf("JSON as XML: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("JSON as XML: Content-Type %q", ct)
	}
	checkLength(t, "JSON as XML", resp, body)
	resp, body = send(t, "GET", base+"/items/7", nil, nil)
	if resp.StatusCode != 200 || body != `{"id":7,"tags":["a","b"]}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("JSON as JSON: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	checkLength(t, "JSON as JSON", resp, body)

	// A broken upstream body: 502, nothing of it sent.
	resp, body = send(t, "GET", base+"/broken", nil, nil)
	if resp.StatusCode != 502 || !strings.Contains(body, "invalid upstream body") || strings.Contains(body, "<order>") {
		t.Errorf("broken upstream body: %d %s", resp.StatusCode, body)
	}
	checkLength(t, "502", resp, body)
}
