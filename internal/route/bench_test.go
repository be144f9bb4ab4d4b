package route

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// benchTable is a mixed table of 1,000 routes and requests of several shapes.
func benchTable(tb testing.TB) (*Table, []req) {
	tb.Helper()
	var routes []config.Route
	add := func(r config.Route) { routes = append(routes, r) }
	for i := range 300 {
		opts := []func(*config.Route){exact(fmt.Sprintf("/svc%d/health", i))}
		if i%3 == 0 {
			opts = append(opts, methods("GET", "HEAD"))
		}
		if i%10 == 0 {
			opts = append(opts, hosts(fmt.Sprintf("h%d.example.com", i)))
		}
		add(rt(fmt.Sprintf("exact-%d", i), opts...))
	}
	for i := range 250 {
		opts := []func(*config.Route){prefix(fmt.Sprintf("/p%d/api", i))}
		if i%5 == 0 {
			opts = append(opts, header(config.ValueMatcher{Name: "X-Tenant", Exact: fmt.Sprint(i)}))
		}
		if i%7 == 0 {
			opts = append(opts, hosts("*.example.com"))
		}
		add(rt(fmt.Sprintf("prefix-%d", i), opts...))
	}
	for i := range 150 {
		add(rt(fmt.Sprintf("tmpl-deep-%d", i), tmpl(fmt.Sprintf("/t%d/users/{uid}/orders/{oid}", i)), methods("GET")))
		add(rt(fmt.Sprintf("tmpl-%d", i), tmpl(fmt.Sprintf("/t%d/{x}/{rest...}", i))))
	}
	for i := range 100 {
		opts := []func(*config.Route){regex(fmt.Sprintf(`/re%d/[0-9]+(/.*)?`, i))}
		if i%2 == 0 {
			opts = append(opts, query(config.ValueMatcher{Name: "v", Regex: "[a-z]+"}))
		}
		add(rt(fmt.Sprintf("regex-%d", i), opts...))
	}
	for i := range 48 {
		add(rt(fmt.Sprintf("host-%d", i), prefix("/"), hosts(fmt.Sprintf("app%d.test", i))))
	}
	add(rt("catch-all", header(config.ValueMatcher{Name: "X-Debug", Present: true})))
	add(rt("root", prefix("/"), methods("GET")))
	if len(routes) != 1000 {
		tb.Fatalf("%d routes", len(routes))
	}
	tab, err := Compile(routes)
	if err != nil {
		tb.Fatal(err)
	}
	reqs := []req{
		{host: "api.test", method: "GET", path: "/svc150/health"},
		{host: "h10.example.com:443", method: "GET", path: "/svc10/health"},
		{host: "api.test", method: "GET", path: "/p120/api/v1/things", h: http.Header{"X-Tenant": {"120"}}},
		{host: "Www.Example.com", method: "POST", path: "/p77/api/x"},
		{host: "api.test", method: "GET", path: "/t99/users/5/orders/77"},
		{host: "api.test", method: "PUT", path: "/t42/abc/d/e/f"},
		{host: "api.test", method: "GET", path: "/re98/123/x", query: "a=1&v=abc"},
		{host: "app33.test", method: "DELETE", path: "/anything/here"},
		{host: "api.test", method: "GET", path: "/not/found/at/all"},
	}
	return tab, reqs
}

func BenchmarkMatch1000(b *testing.B) {
	tab, reqs := benchTable(b)
	for _, r := range reqs {
		var res Result
		tab.Match(r.host, r.method, r.path, r.h, r.query, &res)
		if res.Route == nil {
			b.Fatalf("%+v: no match", r)
		}
	}
	b.Run("mixed", func(b *testing.B) {
		b.ReportAllocs()
		var res Result
		i := 0
		for b.Loop() {
			r := &reqs[i%len(reqs)]
			tab.Match(r.host, r.method, r.path, r.h, r.query, &res)
			i++
		}
	})
	names := []string{"exact", "exact-host", "prefix-header", "prefix-wildcard", "template", "template-rest", "regex-query", "host-prefix", "fallback-root"}
	for j, r := range reqs {
		b.Run(names[j], func(b *testing.B) {
			b.ReportAllocs()
			var res Result
			for b.Loop() {
				tab.Match(r.host, r.method, r.path, r.h, r.query, &res)
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, c := range []struct{ name, path string }{
		{"canonical", "/api/v1/users/42/orders"},
		{"dotdot", "/public/%2e%2e/admin/x/./y//z"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = NormalizePath(c.path)
			}
		})
	}
}
