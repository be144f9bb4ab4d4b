package jq

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchExpr is a typical mapping: pick and rename fields, filter and
// reshape an array, compute a total, stamp the consumer.
const benchExpr = `{
  id: .order.id,
  customer: {name: "\(.customer.first) \(.customer.last)", email: .customer.email},
  items: [.items[] | select(.qty > 0) | {sku, qty, total: (.qty * .price)}],
  total: ([.items[] | .qty * .price] | add),
  consumer: $consumer,
  tenant: ($headers["X-Tenant"] // [] | first)
}`

// benchBody returns a JSON order of about 1 KiB.
func benchBody(tb testing.TB) []byte {
	var b strings.Builder
	b.WriteString(`{"order":{"id":"ord-12345","created":"2025-01-02T03:04:05Z","status":"paid"},`)
	b.WriteString(`"customer":{"first":"Ada","last":"Lovelace","email":"ada@example.com","phone":"+44 20 7946 0000"},"items":[`)
	for i := range 8 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%04d","name":"Item number %d","qty":%d,"price":%d.99,"tags":["a","b"]}`, i, i, i%3, 10+i)
	}
	b.WriteString(`],"shipping":{"method":"express","address":{"line1":"12 Example Street","city":"London","zip":"N1 9GU"}}}`)
	if n := b.Len(); n < 900 || n > 1200 {
		tb.Fatalf("body is %d bytes", n)
	}
	return []byte(b.String())
}

// BenchmarkRun1KiB: one run of a typical mapping on a 1 KiB document:
// decode, evaluate, encode, with the watchdog goroutine.
func BenchmarkRun1KiB(b *testing.B) {
	p := mustCompile(b, benchExpr, Options{Vars: requestVars, Timeout: time.Minute})
	body := benchBody(b)
	vars := requestValues()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(context.Background(), body, vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun1KiBIdentity: the fixed cost (decode, encode, watchdog).
func BenchmarkRun1KiBIdentity(b *testing.B) {
	p := mustCompile(b, `.`, Options{Timeout: time.Minute})
	body := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(context.Background(), body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(benchExpr, Options{Vars: requestVars}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode1KiB: the body to gojq's values.
func BenchmarkDecode1KiB(b *testing.B) {
	body := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode1KiB: gojq's values back to JSON.
func BenchmarkEncode1KiB(b *testing.B) {
	v, err := decode(benchBody(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encode(v, DefaultMaxBytes); err != nil {
			b.Fatal(err)
		}
	}
}

// reshapeExpr is a reshaping expression, which the fast path runs
// (fast.go): the shape of most transforms, and of the transform suite's jq.
const reshapeExpr = `{id: .order.id, email: .customer.email, items: [.items[] | {sku, qty}]}`

// BenchmarkReshape1KiB: one run of reshapeExpr on a 1 KiB document, on the
// fast path and on gojq (decode, VM on a worker, encode), the same result.
func BenchmarkReshape1KiB(b *testing.B) {
	body := benchBody(b)
	for _, fast := range []bool{true, false} {
		name := "gojq"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			p := mustCompile(b, reshapeExpr, Options{Timeout: time.Minute})
			if p.fast == nil {
				b.Fatal("not on the fast path")
			}
			if !fast {
				p.fast = nil
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Run(context.Background(), body, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
