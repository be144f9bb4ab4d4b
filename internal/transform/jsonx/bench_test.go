package jsonx

import (
	"encoding/json"
	"testing"
)

// doc1KiB is a typical API response of about 1 KiB.
var doc1KiB = []byte(`{"id":"ord_7f3a9c2e","status":"shipped",` +
	`"customer":{"id":9007199254740993,"name":"Ada Lovelace","email":"ada@example.com","password_hash":"$2a$10$abcdefghijklmnopqrstuv",` +
	`"address":{"line1":"12 Analytical St","city":"London","postcode":"N1 9GU","country":"GB"}},` +
	`"items":[` +
	`{"sku":"A-100","name":"Difference engine gear","qty":2,"price":{"amount":"19.99","currency":"EUR"},"internal":{"cost":7.1,"supplier":"s-1"}},` +
	`{"sku":"B-220","name":"Punch card (box of 500)","qty":1,"price":{"amount":"4.50","currency":"EUR"},"internal":{"cost":1.2,"supplier":"s-2"}},` +
	`{"sku":"C-310","name":"Brass crank, \u00e9dition sp\u00e9ciale","qty":5,"price":{"amount":"12.00","currency":"EUR"},"internal":{"cost":3.3,"supplier":"s-1"}},` +
	`{"sku":"D-404","name":"Lubricant \ud83d\udee2","qty":1,"price":{"amount":"0.10","currency":"EUR"},"internal":{"cost":0.01,"supplier":"s-3"}}],` +
	`"totals":{"subtotal":"84.49","tax":"16.05","shipping":"0","total":"100.54","exact":0.30000000000000004},` +
	`"meta":{"trace":"4bf92f3577b34da6a3ce929d0e0e4736","flags":[true,false,null],"big":1e400}}`)

type benchVars struct{}

func (benchVars) Lookup(name string) (string, bool) {
	switch name {
	case "consumer":
		return "acme-mobile", true
	case "request_id":
		return "01HXYZ3K6Q8W2E4R5T7Y9U1I3O", true
	}
	return "", false
}

func benchApply(b *testing.B, p *Program) {
	if len(doc1KiB) < 1000 || len(doc1KiB) > 1080 || !json.Valid(doc1KiB) {
		b.Fatalf("fixture is %d bytes", len(doc1KiB))
	}
	b.SetBytes(int64(len(doc1KiB)))
	b.ReportAllocs()
	var vars Vars = benchVars{}
	lim := Limits{MaxBytes: 1 << 20}
	for b.Loop() {
		if _, err := p.Apply(doc1KiB, vars, lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIdentity1KiB(b *testing.B) { benchApply(b, MustCompile(Spec{})) }

func BenchmarkFilterDeny1KiB(b *testing.B) {
	benchApply(b, MustCompile(Spec{Deny: []string{
		"customer.password_hash", "items[].internal", "meta.trace", "totals.exact",
	}}))
}

func BenchmarkFilterAllow1KiB(b *testing.B) {
	benchApply(b, MustCompile(Spec{Allow: []string{
		"id", "status", "customer.name", "items[].sku", "items[].qty", "items[].price", "totals.total",
	}}))
}

var mapSpec = Spec{
	Deny: []string{"customer.password_hash", "items[].internal"},
	Ops: []Op{
		{Kind: "rename", Path: "id", Key: "order_id"},
		{Kind: "move", From: "customer.address.postcode", To: "customer.zip"},
		{Kind: "move", From: "items[].price.amount", To: "items[].unit_price"},
		{Kind: "delete", Path: "items[].price"},
		{Kind: "set", Path: "items[].legacy", Value: json.RawMessage(`true`)},
		{Kind: "set", Path: "meta.consumer", Var: "consumer"},
		{Kind: "set", Path: "meta.request_id", Var: "request_id"},
		{Kind: "set", Path: "version", Value: json.RawMessage(`{"api":1,"format":"legacy"}`)},
		{Kind: "wrap", Key: "data"},
	},
}

func BenchmarkMap1KiB(b *testing.B) { benchApply(b, MustCompile(mapSpec)) }
