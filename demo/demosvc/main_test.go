package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
	if rec, _ := do(t, h, "POST", "/orders", `[1,2]`); rec.Code != 400 {
		t.Errorf("POST of a non-object: status %d", rec.Code)
	}
	if rec, _ := do(t, h, "DELETE", "/orders", ""); rec.Code != 405 || rec.Header().Get("Allow") == "" {
		t.Errorf("DELETE /orders: status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestOtherPathsEcho(t *testing.T) {
	rec, m := do(t, newService("payments", "v3", "x").handler(), "PUT", "/anything/at/all", "")
	if rec.Code != 200 || m["service"] != "payments" || m["path"] != "/anything/at/all" || m["method"] != "PUT" {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
}
