package transform

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/exchange"
)

// nopWriter is a response writer that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

func headerRequest(tb testing.TB) *http.Request {
	r := httptest.NewRequest("GET", "/orders/1?page=2", nil)
	r.Header.Set("X-Api-Version", "1")
	return r.WithContext(exchange.With(context.Background(), testExchange(tb, "/orders/1")))
}

// The work of a route that only sets constant headers allocates nothing,
// on either side.
func TestHeaderOnlyAllocations(t *testing.T) {
	for _, cfg := range []string{
		`{request: {headers: {set: {X-Api-Version: "2", X-Gateway: meshgate}, remove: [X-Debug]}}}`,
		`{response: {headers: {set: {X-Api-Version: "2"}, remove: [Server]}, status: [{from: 404, to: 410}]}}`,
		`{request: {headers: {set: {X-Api-Version: "2"}}}, response: {headers: {set: {X-Api-Version: "2"}}}}`,
	} {
		h := build(t, cfg, okHandler, nopCounter{})
		r := headerRequest(t)
		w := &nopWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
			t.Errorf("%s: %v allocations per request", cfg, n)
		}
		if r.Header.Get("X-Api-Version") != "2" && w.h.Get("X-Api-Version") != "2" {
			t.Errorf("%s: not set", cfg)
		}
	}
}

func BenchmarkRequestHeadersConstant(b *testing.B) {
	h := build(b, `{request: {headers: {set: {X-Api-Version: "2", X-Gateway: meshgate}, remove: [X-Debug]}}}`, okHandler, nopCounter{})
	r := headerRequest(b)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkRequestHeadersTemplated(b *testing.B) {
	h := build(b, `{request: {headers: {set: {X-Consumer: "{consumer}", X-Order: "order-{path.id}"}}}}`, okHandler, nopCounter{})
	r := headerRequest(b)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkResponseHeadersConstant(b *testing.B) {
	h := build(b, `{response: {headers: {set: {X-Api-Version: "2"}, remove: [Server]}}}`, okHandler, nopCounter{})
	r := headerRequest(b)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// benchBody is a 1 KiB order.
var benchBody = func() []byte {
	var b strings.Builder
	b.WriteString(`{"customer_id": 7, "internal": true, "lines": [`)
	for i := range 12 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"sku": "SKU-0000` + string(rune('A'+i)) + `", "qty": 2, "price": {"amount": 12.50, "cur": "EUR"}, "note": "x"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}()

func BenchmarkRequestBodyMap(b *testing.B) {
	h := build(b, `
request:
  body:
    deny: [internal, "lines[].note"]
    map:
      - {op: rename, path: customer_id, key: customerId}
      - {op: move, from: "lines[].price.amount", to: "lines[].amount"}
      - {op: set, path: placedBy, var: consumer}
`, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }), nopCounter{})
	x := testExchange(b, "/orders/1")
	ctx := exchange.With(context.Background(), x)
	w := &nopWriter{h: http.Header{}}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/orders/1", bytes.NewReader(benchBody)).WithContext(ctx)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkResponseBodyXMLToJSON(b *testing.B) {
	xml := []byte(`<order id="7"><customer>acme</customer>` + strings.Repeat(`<item sku="A"><qty>2</qty><price>12.50</price></item>`, 16) + `</order>`)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(xml)
	})
	h := build(b, `{response: {body: {from: xml, deny: [order.customer]}}}`, next, nopCounter{})
	r := headerRequest(b)
	b.SetBytes(int64(len(xml)))
	b.ReportAllocs()
	for b.Loop() {
		w := &nopWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
	}
}
