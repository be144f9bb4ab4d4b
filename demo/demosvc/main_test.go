package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func do(t *testing.T, h http.Handler, method, path, body string, hdr ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, rec.Body, err)
		}
	}
	return rec, m
}

func TestHealthz(t *testing.T) {
	rec, _ := do(t, newService("orders", "v1", "x").handler(), "GET", "/healthz", "")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestCatalogProduct(t *testing.T) {
	h := newService("catalog", "v1", "127.0.0.1:1").handler()
	rec, m := do(t, h, "GET", "/products/42", "", "X-Forwarded-For", "10.1.2.3", "X-Api-Version", "1", "Cookie", "secret")
	if rec.Code != 200 || m["service"] != "catalog" || m["version"] != "v1" || m["instance"] != "127.0.0.1:1" ||
		m["method"] != "GET" || m["path"] != "/products/42" {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	hdrs := m["headers"].(map[string]any)
	if hdrs["X-Forwarded-For"] != "10.1.2.3" || hdrs["X-Api-Version"] != "1" || hdrs["Cookie"] != nil {
		t.Errorf("headers = %v; want the selected ones only", hdrs)
	}
	p := m["product"].(map[string]any)
	if p["id"] != "42" || p["stock"] != nil {
		t.Errorf("product = %v", p)
	}
	if !strings.HasPrefix(rec.Body.String(), `{"service":"catalog","version":"v1",`) {
		t.Errorf("the envelope should come first: %s", rec.Body)
	}

	_, m = do(t, newService("catalog", "v2", "x").handler(), "GET", "/products/42", "")
	if p := m["product"].(map[string]any); p["stock"] == nil {
		t.Errorf("v2 product has no stock: %v", p)
	}
}

func TestOrders(t *testing.T) {
	h := newService("orders", "v1", "x").handler()
	rec, m := do(t, h, "POST", "/orders", `{"item":"book","qty":2}`)
	if rec.Code != 201 {
		t.Fatalf("POST status %d: %s", rec.Code, rec.Body)
	}
	o := m["order"].(map[string]any)
	if o["id"] != "ord-1" || o["item"] != "book" || o["qty"] != 2.0 || rec.Header().Get("Location") != "/orders/ord-1" {
		t.Errorf("order = %v, Location %q", o, rec.Header().Get("Location"))
	}
	rec, m = do(t, h, "GET", "/orders", "")
	if list := m["orders"].([]any); rec.Code != 200 || len(list) != 1 {
		t.Errorf("GET /orders = %d %s", rec.Code, rec.Body)
	}
	// ?product=ID keeps the orders of that product only (the product page's).
	if rec, _ := do(t, h, "POST", "/orders", `{"product":"42","qty":1}`); rec.Code != 201 {
		t.Fatalf("POST of product 42: status %d", rec.Code)
	}
	for query, want := range map[string]int{"": 2, "?product=42": 1, "?product=7": 0} {
		rec, m := do(t, h, "GET", "/orders"+query, "")
		list, ok := m["orders"].([]any)
		if rec.Code != 200 || !ok || len(list) != want {
			t.Errorf("GET /orders%s = %d %s; want %d orders", query, rec.Code, rec.Body, want)
		}
	}
	if rec, _ := do(t, h, "POST", "/orders", `[1,2]`); rec.Code != 400 {
		t.Errorf("POST of a non-object: status %d", rec.Code)
	}
	if rec, _ := do(t, h, "DELETE", "/orders", ""); rec.Code != 405 || rec.Header().Get("Allow") == "" {
		t.Errorf("DELETE /orders: status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestCatalogProductXML: catalog's XML API answers the product alone, as
// XML; v2 adds the stock.
func TestCatalogProductXML(t *testing.T) {
	rec, _ := do(t, newService("catalog", "v1", "x").handler(), "GET", "/xml/products/42", "")
	want := `<product id="42"><name>Product 42</name><price>42.99</price><tag>demo</tag></product>` + "\n"
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/xml; charset=utf-8" || rec.Body.String() != want {
		t.Errorf("GET /xml/products/42 = %d %q %q; want 200 application/xml %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
	}
	rec, _ = do(t, newService("catalog", "v2", "x").handler(), "GET", "/xml/products/a<b", "")
	if want := `<product id="a&lt;b"><name>Product a&lt;b</name><price>9.99</price><stock>12</stock><tag>demo</tag></product>` + "\n"; rec.Body.String() != want {
		t.Errorf("v2 GET /xml/products/a<b = %q; want %q", rec.Body, want)
	}
}

// TestOrdersQuote: POST /orders/quote prices today's format, shows it as
// received, keeps no order, and refuses anything else (a legacy body).
func TestOrdersQuote(t *testing.T) {
	h := newService("orders", "v1", "x").handler()
	body := `{"order":{"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1}], "customer":{"id":7}}}`
	rec, m := do(t, h, "POST", "/orders/quote", body)
	if rec.Code != 200 {
		t.Fatalf("POST /orders/quote: %d %s", rec.Code, rec.Body)
	}
	if want := `"received":{"order":{"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1}],"customer":{"id":7}}}`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("answer %s lacks %s", rec.Body, want)
	}
	q := m["quote"].(map[string]any)
	if q["customer"] != 7.0 || q["units"] != 3.0 || q["total"] != 29.97 || q["internal_cost"] != 18.45 {
		t.Errorf("quote = %v", q)
	}
	if _, m := do(t, h, "GET", "/orders", ""); len(m["orders"].([]any)) != 0 {
		t.Errorf("a quote kept an order: %v", m["orders"])
	}
	for _, bad := range []string{
		`{"customer_id":7,"line_items":[{"sku":"A1","quantity":2}]}`,
		`{"order":{"customer":{"id":7},"items":[]}}`,
		`{"order":{"customer":{"id":7},"items":[{"sku":"A1","qty":0}]}}`,
		`{"order":{"customer":{"id":7},"items":[{"sku":"A1","qty":1.5}]}}`,
		`{"order":{"items":[{"sku":"A1","qty":1}]}}`,
		`{"order":{"customer":{"id":7},"items":[{"sku":"A1","qty":1}]}} {}`,
		`customer_id=7`,
	} {
		if rec, m := do(t, h, "POST", "/orders/quote", bad); rec.Code != 400 || !strings.HasPrefix(m["error"].(string), "want ") {
			t.Errorf("POST /orders/quote %s: %d %s; want 400 with the format", bad, rec.Code, rec.Body)
		}
	}
	if rec, _ := do(t, h, "GET", "/orders/quote", ""); rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET /orders/quote: status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestOtherPathsEcho(t *testing.T) {
	rec, m := do(t, newService("payments", "v3", "x").handler(), "PUT", "/anything/at/all", "")
	if rec.Code != 200 || m["service"] != "payments" || m["path"] != "/anything/at/all" || m["method"] != "PUT" {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
}

func TestPayments(t *testing.T) {
	h := newService("payments", "v1", "x").handler()
	rec, m := do(t, h, "POST", "/charge", `{"order":"ord-7","amount":19.98}`, "X-Meshgate-Caller", "spiffe://demo.meshgate/orders")
	if rec.Code != 201 {
		t.Fatalf("POST /charge: %d %s", rec.Code, rec.Body)
	}
	p := m["payment"].(map[string]any)
	if p["id"] != "pay-1" || p["order"] != "ord-7" || p["amount"] != 19.98 || p["status"] != "captured" ||
		p["caller"] != "spiffe://demo.meshgate/orders" || rec.Header().Get("Location") != "/payments/pay-1" {
		t.Errorf("payment = %v, Location %q", p, rec.Header().Get("Location"))
	}
	if _, m := do(t, h, "GET", "/payments/pay-1", ""); m["payment"].(map[string]any)["order"] != "ord-7" {
		t.Errorf("GET /payments/pay-1 = %v", m)
	}
	if rec, m := do(t, h, "GET", "/payments/p-1", ""); rec.Code != 200 || m["payment"].(map[string]any)["status"] != "unknown" {
		t.Errorf("GET /payments/p-1 = %d %v", rec.Code, m)
	}
	rec, m = do(t, h, "GET", "/payments/options?amount=42.99", "")
	if opts, _ := m["options"].(map[string]any); rec.Code != 200 || opts == nil || opts["amount"] != 42.99 ||
		!strings.Contains(rec.Body.String(), `"methods":["card","paypal"]`) || !strings.Contains(rec.Body.String(), `"installments":[{"monthly":14.33,"months":3}]`) {
		t.Errorf("GET /payments/options?amount=42.99 = %d %s", rec.Code, rec.Body)
	}
	for _, q := range []string{"", "?amount=0", "?amount=x", "?amount=-3", "?amount=NaN", "?amount=Inf"} {
		if rec, _ := do(t, h, "GET", "/payments/options"+q, ""); rec.Code != 400 {
			t.Errorf("GET /payments/options%s: status %d, want 400", q, rec.Code)
		}
	}
	for _, body := range []string{`{"order":"x"}`, `{"amount":-1}`, `[]`} {
		if rec, _ := do(t, h, "POST", "/charge", body); rec.Code != 400 {
			t.Errorf("POST /charge %s: status %d", body, rec.Code)
		}
	}
	// Other methods on /charge echo (the several-host demo's GET /charge).
	if rec, m := do(t, h, "GET", "/charge", ""); rec.Code != 200 || m["service"] != "payments" {
		t.Errorf("GET /charge = %d %v", rec.Code, m)
	}
}

// TestOrdersChargeThroughOutbound stands a fake outbound listener in for
// the sidecar: POST /orders must call it with Host payments, carry the
// request id and the trace context, and keep the payment in the order; a
// failed charge is 502 and keeps no order.
func TestOrdersChargeThroughOutbound(t *testing.T) {
	var gotHost, gotID string
	var gotTrace []string
	fail := false
	outbound := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotID = r.Host, r.Header.Get("X-Request-Id")
		gotTrace = []string{r.Header.Get("Traceparent"), r.Header.Get("Tracestate"), r.Header.Get("Baggage")}
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":503,"error":"circuit open"}`)
			return
		}
		r.Header.Set("X-Meshgate-Caller", "spiffe://demo.meshgate/orders")
		newService("payments", "v1", "p").handler().ServeHTTP(w, r)
	}))
	defer outbound.Close()

	svc := newService("orders", "v2", "x")
	svc.outbound = outbound.URL
	h := svc.handler()
	trace := []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x", "user=42"}
	rec, m := do(t, h, "POST", "/orders", `{"item":"book","qty":2}`, "X-Request-Id", "req-1",
		"Traceparent", trace[0], "Tracestate", trace[1], "Baggage", trace[2])
	if rec.Code != 201 {
		t.Fatalf("POST /orders: %d %s", rec.Code, rec.Body)
	}
	if gotHost != "payments" || gotID != "req-1" {
		t.Errorf("payments called with Host %q, X-Request-Id %q; want payments, req-1", gotHost, gotID)
	}
	if !slices.Equal(gotTrace, trace) {
		t.Errorf("payments called with traceparent, tracestate, baggage %q; want %q", gotTrace, trace)
	}
	p := m["order"].(map[string]any)["payment"].(map[string]any)
	if p["order"] != "ord-1" || p["amount"] != 19.98 || p["caller"] != "spiffe://demo.meshgate/orders" {
		t.Errorf("payment in the order = %v", p)
	}

	fail = true
	rec, m = do(t, h, "POST", "/orders", `{"item":"pen"}`)
	if rec.Code != 502 || !strings.Contains(m["error"].(string), "503") {
		t.Errorf("POST /orders while payments fails = %d %s", rec.Code, rec.Body)
	}
	if _, m := do(t, h, "GET", "/orders", ""); len(m["orders"].([]any)) != 1 {
		t.Errorf("orders after a failed charge: %v; want the first one only", m["orders"])
	}
}

// TestPaymentsGRPC serves payments over plain HTTP/2 as its sidecar reaches
// it (h2c with prior knowledge) and calls the health service and
// reflection; HTTP/1.1 JSON keeps working on the same port.
func TestPaymentsGRPC(t *testing.T) {
	h, stop := withGRPC(slog.New(slog.DiscardHandler), newService("payments", "v1", "x").handler())
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	defer stop()

	conn, err := grpc.NewClient(strings.TrimPrefix(srv.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"", "payments"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Health/Check(%q) = %v, %v; want SERVING", name, resp, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v; want grpc.health.v1.Health", names)
	}

	resp, err := http.Get(srv.URL + "/payments/p-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
		t.Errorf("GET /payments/p-1 = %s %s", resp.Proto, resp.Status)
	}
}
