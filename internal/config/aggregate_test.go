package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// aggregateFull is a product page composite, a call definition, and two
// BFF groups whose members reuse them (the example of docs/config.md).
const aggregateFull = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams:
  - {name: catalog, endpoints: [{address: "127.0.0.1:2"}]}
  - {name: pricing, endpoints: [{address: "127.0.0.1:3"}]}
  - {name: inventory, endpoints: [{address: "127.0.0.1:4"}]}
  - {name: reviews, endpoints: [{address: "127.0.0.1:5"}]}
auth:
  jwt: [{name: hydra, issuer: "https://idp/", algorithms: [RS256]}]
calls:
  - name: price
    upstream: pricing
    path: /prices/{path.id}
    query: {currency: "{query.currency}"}
    timeout: 300ms
    retry: {attempts: 3, on: [connect-failure, "503"]}
bff:
  - name: mobile
    path_prefix: /m
    headers: [{name: X-Client, exact: mobile}]
  - name: web
    hosts: [www.example.com]
routes:
  - name: product-page
    match: {path: {template: "/products/{id}"}, methods: [GET]}
    auth: {methods: [hydra]}
    timeout: 3s
    aggregate:
      timeout: 2s
      max_body: 2MiB
      max_concurrency: 500
      missing: "null"
      calls:
        - name: item
          upstream: catalog
          path: /items/{path.id}
          headers: {X-User: "{claim.sub}", X-Request: "{request_id}"}
          pass_headers: [Authorization, Accept-Language]
          max_body: 512KiB
          response_headers: [ETag]
          transform: {allow: [sku, name, description]}
        - use: price
          query: {currency: "{query.currency}", sku: "{call.item.sku}"}
        - name: stock
          upstream: inventory
          method: POST
          path: /stock/query
          headers: {Content-Language: en}
          body: {sku: "{call.item.sku}", store: "{header.X-Store}", skus: ["{call.item.sku}"]}
          into: availability.stock
          timeout: 500ms
          retry: {attempts: 2, on: [reset], non_idempotent: true}
        - name: reviews
          upstream: reviews
          path: /reviews
          query: {product: "{path.id}"}
          optional: true
          depends_on: [item]
          into: .
          transform:
            from: xml
            map: [{op: extract, path: reviews}]
            xml: {array_paths: [reviews.review]}
      transform:
        map: [{op: set, path: served_to, var: consumer}]
        to: accept
        xml: {root: page}
  - name: mobile-product
    bff: mobile
    match: {path: {template: "/products/{id}"}}
    aggregate:
      calls:
        - {name: item, upstream: catalog, path: "/items/{path.id}", transform: {allow: [sku, name]}}
        - {use: price, name: cost, into: pricing.cost}
  - name: web-product
    bff: web
    match: {path: {template: "/products/{id}"}}
    timeout: 10s
    aggregate:
      calls:
        - {name: item, upstream: catalog, path: "/items/{path.id}"}
  - name: mobile-home
    bff: mobile
    upstream: catalog
`

func TestAggregateFull(t *testing.T) {
	c, err := Parse("f.yaml", []byte(aggregateFull))
	if err != nil {
		t.Fatal(err)
	}
	page := c.Routes[0]
	a := page.Aggregate
	if a.Timeout.D() != 2*time.Second || a.MaxBody != 2<<20 || a.MaxConcurrency != 500 || a.Missing != MissingNull || len(a.Calls) != 4 {
		t.Errorf("aggregate %+v", a)
	}
	if a.Transform.From != BodyJSON || a.Transform.To != BodyAccept {
		t.Errorf("aggregate.transform %+v", a.Transform)
	}
	if page.Retry != nil || page.Timeout.D() != 3*time.Second {
		t.Errorf("a composite route gets no retry, and keeps its timeout: %+v %s", page.Retry, page.Timeout.D())
	}
	stock := a.Calls[2]
	if stock.Method != "POST" || string(stock.Body) != `{"sku":"{call.item.sku}","store":"{header.X-Store}","skus":["{call.item.sku}"]}` ||
		stock.Into != "availability.stock" || stock.Retry.Attempts != 2 || stock.Retry.BackoffBase != 0 {
		t.Errorf("stock (as written, not defaulted) %+v", stock)
	}
	if r := a.Calls[3]; !r.IsOptional() || r.Into != IntoRoot || !slices.Equal(r.DependsOn, []string{"item"}) || r.Transform.From != BodyXML || r.Transform.To != "" {
		t.Errorf("reviews %+v", r)
	}
	// Defaults of a composite that sets nothing: the deadline is
	// DefaultAggregateTimeout, and the route's timeout the same.
	m := c.Routes[1]
	if ma := m.Aggregate; ma.Timeout != DefaultAggregateTimeout || m.Timeout != DefaultAggregateTimeout || ma.MaxBody != DefaultAggregateMaxBody ||
		ma.MaxConcurrency != DefaultAggregateConcurrency || ma.Missing != MissingOmit || ma.Transform != nil || m.Retry != nil {
		t.Errorf("defaults %+v, route timeout %s", ma, m.Timeout.D())
	}
	// A route's timeout is the composite's deadline.
	if w := c.Routes[2]; w.Aggregate.Timeout.D() != 10*time.Second || w.Timeout.D() != 10*time.Second {
		t.Errorf("web-product: aggregate.timeout %s, timeout %s", w.Aggregate.Timeout.D(), w.Timeout.D())
	}
	// Calls are not defaulted: a default would override the definition.
	if call := m.Aggregate.Calls[1]; call.Method != "" || call.MaxBody != 0 || call.Timeout != 0 || call.Retry != nil || call.Upstream != "" {
		t.Errorf("a call using a definition was defaulted: %+v", call)
	}
	// A non-composite route keeps its default retry.
	if h := c.Routes[3]; h.Retry == nil || h.Retry.Attempts != 2 {
		t.Errorf("mobile-home retry %+v", h.Retry)
	}

	// Defaults are idempotent (Overlay applies them again).
	before := fmt.Sprintf("%+v %+v", c.Routes[1], *c.Routes[1].Aggregate)
	applyDefaults(c)
	if after := fmt.Sprintf("%+v %+v", c.Routes[1], *c.Routes[1].Aggregate); after != before {
		t.Errorf("defaults applied twice:\n%s\n%s", before, after)
	}

	// The calls resolved with the definition.
	got := c.ResolvedCalls(m.Aggregate)
	if cost := got[1]; cost.Name != "cost" || cost.Use != "price" || cost.Upstream != "pricing" || cost.Path != "/prices/{path.id}" ||
		cost.Into != "pricing.cost" || cost.Timeout.D() != 300*time.Millisecond || cost.Retry.Attempts != 3 {
		t.Errorf("resolved cost %+v", cost)
	}

	// Effective matches: each member in its group.
	routes, err := ApplyBFF(c.Routes, c.BFF)
	if err != nil {
		t.Fatal(err)
	}
	if p := routes[1].Match.Path; p.Template != "/m/products/{id}" || len(routes[1].Match.Headers) != 1 {
		t.Errorf("mobile-product match %+v %+v", p, routes[1].Match)
	}
	if h := routes[2].Match.Hosts; !slices.Equal(h, []string{"www.example.com"}) || routes[2].Match.Path.Template != "/products/{id}" {
		t.Errorf("web-product match %+v", routes[2].Match)
	}
	if p := routes[3].Match.Path; p == nil || p.Prefix != "/m" {
		t.Errorf("mobile-home, without a path, gets the group's prefix: %+v", p)
	}
	if c.Routes[1].Match.Path.Template != "/products/{id}" {
		t.Error("ApplyBFF modified the routes")
	}

	// A composite route survives replication, and Overlay validates it
	// against the file's definitions and groups.
	data, err := EncodeResource(c.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRoute("r", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if again, _ := EncodeResource(r); string(again) != string(data) {
		t.Fatalf("round trip:\n%s\nwant\n%s", again, data)
	}
	r.Name, r.Listeners, r.BFF = "extra", []string{"l"}, "mobile"
	r.Aggregate.Calls[1].Use = "cost"
	data, _ = EncodeResource(r)
	_, err = Overlay(c, []Resource{{Kind: KindRoute, Name: "extra", Value: data}})
	if err == nil || !strings.Contains(err.Error(), `route "extra": aggregate.calls[1]: unknown call definition "cost" (known: price)`) {
		t.Fatalf("overlay of a route using an unknown definition: %v", err)
	}
}

// aggregateBase has upstreams u and v, the definition def, and a
// composite r whose call a ends at line 14; cases add from line 15: a
// call's field (indented 10), another call (8), an aggregate field (6) or
// a route field (4).
const aggregateBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams:
  - {name: u, endpoints: [{address: "127.0.0.1:2"}]}
  - {name: v, endpoints: [{address: "127.0.0.1:3"}]}
calls:
  - {name: def, upstream: u, path: "/d/{path.id}"}
routes:
  - name: r
    match: {path: {template: "/items/{id}"}}
    aggregate:
      calls:
        - name: a
          upstream: u
          path: /a/{path.id}
`

// Each invalid composite is rejected at the field concerned, and nothing
// else is.
func TestAggregateErrors(t *testing.T) {
	cases := []struct {
		name, add string
		at        string // line:col
		want      string
	}{
		// The route.
		{"upstream too", "    upstream: u", "15:15", `route "r": set one of upstream, split and aggregate: a composite's calls name their own upstreams`},
		{"split too", "    split: [{upstream: u, weight: 1}]", "15:12", `route "r": set one of upstream, split and aggregate`},
		{"rewrite", "    rewrite: {strip_prefix: /x}", "15:14", `route "r": rewrite does not apply to a composite route: each call's path says what is sent`},
		{"retry", "    retry: {attempts: 2}", "15:12", `route "r": retry does not apply to a composite route: use the call's retry (aggregate.calls[].retry)`},
		{"per_try_timeout", "    per_try_timeout: 1s", "15:22", `route "r": per_try_timeout does not apply to a composite route: use the call's timeout (aggregate.calls[].timeout)`},
		{"transform", "    transform: {response: {headers: {remove: [A]}}}", "15:16", `route "r": transform does not apply to a composite route: use aggregate.transform for the combined response, and a call's transform for its own`},

		// The aggregate.
		{"timeout over the route's", "      timeout: 2s\n    timeout: 1s", "15:16", `route "r": aggregate.timeout 2s exceeds the route's timeout 1s (set either: each defaults to the other)`},
		{"max_body", "      max_body: 65MiB", "15:17", `route "r": aggregate.max_body 65MiB must be at most 64MiB (the combined response is held in memory)`},
		{"max_concurrency", "      max_concurrency: -1", "15:24", `route "r": aggregate.max_concurrency -1 must be 1..1000000`},
		{"max_concurrency high", "      max_concurrency: 1000001", "15:24", `aggregate.max_concurrency 1000001 must be 1..1000000`},
		{"missing", "      missing: nil", "15:16", `route "r": aggregate.missing "nil" must be omit (leave the key out) or null`},
		{"missing plain null", "      missing: null", "15:16", `route "r": aggregate.missing: a plain null is YAML's null, which means not set (omit); write missing: "null" (quoted)`},
		{"transform from xml", "      transform: {from: xml, deny: [a]}", "15:25", `route "r": aggregate.transform.from "xml": the combined document is JSON; remove from`},
		{"transform nothing", "      transform: {to: json}", "15:18", `route "r": aggregate.transform does nothing`},
		{"transform jq", "      transform: {jq: \".a |\"}", "15:23", `route "r": aggregate.transform.jq: at line 1, column 5 of the expression`},

		// Resolving and naming calls.
		{"unknown use", "        - {use: nope}", "15:17", `route "r": aggregate.calls[1]: unknown call definition "nope" (known: def)`},
		{"no name", "        - {upstream: u, path: /b}", "15:11", `route "r": aggregate.calls[1]: name is required (or use, taking a definition of calls and its name)`},
		{"bad name", "        - {name: a.b, upstream: u, path: /b}", "15:18", `route "r": call name "a.b" must start with a letter or _ and hold only letters, digits, _ and -`},
		{"duplicate name", "        - {name: a, upstream: u, path: /b}", "15:18", `route "r": two calls are named "a" (aggregate.calls[0] (line 12) and [1]); call names are unique in a composite`},
		{"duplicate by use", "        - {use: def}\n        - {use: def}", "16:17", `route "r": two calls are named "def" (aggregate.calls[1] (line 15), and this one by its definition); give one a name`},

		// A call's fields.
		{"unknown upstream", "        - {name: b, upstream: w, path: /b}", "15:31", `route "r", call "b": unknown upstream "w"`},
		{"no upstream", "        - {name: b, path: /b}", "15:11", `route "r", call "b": upstream is required (the upstreams[] entry the call is sent to)`},
		{"no path", "        - {name: b, upstream: u}", "15:11", `route "r", call "b": path is required (the path sent upstream, such as /items/{path.id})`},
		{"method", "          method: get", "15:19", `route "r", call "a": method "get" must be an upper-case token such as GET or POST`},
		{"relative path", "        - {name: b, upstream: u, path: b}", "15:40", `route "r", call "b": path "b" must start with /`},
		{"path with query", "        - {name: b, upstream: u, path: \"/b?x=1\"}", "15:40", `route "r", call "b": path: a path may not hold spaces, control characters, "?" or "#" (query parameters go under query)`},
		{"path template", "        - {name: b, upstream: u, path: \"/b/{id\"}", "15:40", `route "r", call "b": path: template "/b/{id": "{" at offset 3 is not closed by "}"`},
		{"unknown variable", "        - {name: b, upstream: u, path: \"/b/{user}\"}", "15:40", `route "r", call "b": path: {user}: unknown variable (known: consumer, tier, client_ip, request_id, path.NAME, query.NAME, header.NAME, claim.NAME, call.NAME.PATH; write {{ and }} for literal braces)`},
		{"path parameter", "        - {name: b, upstream: u, path: \"/b/{path.name}\"}", "15:40", `route "r", call "b": path: {path.name}: the route's path template has no parameter {name} (it has: id)`},
		{"claim without auth", "          headers: {X-User: \"{claim.sub}\"}", "15:29", `route "r", call "a": headers.X-User: {claim.sub}: the route has no auth, so requests carry no claims`},
		{"unknown call", "        - {name: b, upstream: u, path: \"/b/{call.x.id}\"}", "15:40", `route "r", call "b": path: {call.x.id}: no call "x" in this composite (known: a, b)`},
		{"own call", "        - {name: b, upstream: u, path: \"/b/{call.b.id}\"}", "15:40", `route "r", call "b": path: {call.b.id}: a call cannot read its own response`},
		{"call path", "        - {name: b, upstream: u, path: \"/b/{call.a..id}\"}", "15:40", `route "r", call "b": path: {call.a..id}: the path ".id" has an empty key`},
		{"call without name", "        - {name: b, upstream: u, path: \"/b/{call.}\"}", "15:40", `route "r", call "b": path: {call.}: call. needs a call's name, such as call.user.id`},
		{"body with GET", "          body: {x: 1}", "15:17", `route "r", call "a": body: a GET call sends no body; set method (POST, PUT, PATCH, …) or remove body`},
		{"body template", "          method: POST\n          body: {x: [\"{nope}\"]}", "16:17", `route "r", call "a": body.x[0]: {nope}: unknown variable`},
		{"header hop-by-hop", "          headers: {Connection: close}", "15:33", `route "r", call "a": headers: header "Connection" is a framing, routing or hop-by-hop header, which meshgate manages; it cannot be set`},
		{"header host", "          headers: {host: x}", "15:27", `header "host" is a framing, routing or hop-by-hop header`},
		{"header meshgate", "          headers: {X-Meshgate-Consumer: x}", "15:42", `route "r", call "a": headers: header "X-Meshgate-Consumer" is reserved`},
		{"header content-type with body", "          method: PUT\n          body: {a: 1}\n          headers: {Content-Type: text/plain}", "17:35", `route "r", call "a": headers: Content-Type is application/json, set for the call's body; remove it here`},
		{"header line break", "          headers: {X-A: \"a\\r\\nb\"}", "15:26", `route "r", call "a": headers.X-A: a header value must be UTF-8 without control characters or line breaks`},
		{"header twice", "          headers: {X-A: a, x-a: b}", "15:34", `route "r", call "a": headers has "X-A" and "x-a": header names are case-insensitive; keep one`},
		{"query name", "          query: {\"a b\": x}", "15:26", `route "r", call "a": query: query parameter name "a b" must be non-empty UTF-8 without spaces`},
		{"query value", "          query: {q: \"{query.}\"}", "15:22", `route "r", call "a": query.q: {query.}: query. needs a name`},
		{"pass_headers framing", "          pass_headers: [Authorization, Transfer-Encoding]", "15:41", `route "r", call "a": pass_headers: header "Transfer-Encoding" is a framing, routing or hop-by-hop header, which meshgate manages; it cannot be passed`},
		{"pass_headers content-type", "          pass_headers: [Content-Type]", "15:26", `pass_headers: no call gets the client's body, so none gets its Content-Type`},
		{"pass_headers twice", "          pass_headers: [Accept, accept]", "15:34", `route "r", call "a": pass_headers lists "accept" twice (pass_headers[0] and pass_headers[1])`},
		{"response_headers cache", "          response_headers: [ETag, Cache-Control]", "15:36", `route "r", call "a": response_headers: header "Cache-Control" of the composite's response is set by meshgate from every part`},
		{"response_headers framing", "          response_headers: [Content-Length]", "15:30", `header "Content-Length" belongs to the call's own response`},
		{"response_headers name", "          response_headers: [\"X Y\"]", "15:30", `route "r", call "a": response_headers: invalid header name "X Y"`},
		{"timeout over the deadline", "          timeout: 6s", "15:20", `route "r", call "a": timeout 6s must be within 0..5s, the composite's deadline (aggregate.timeout)`},
		{"retry attempts", "          retry: {attempts: 11}", "15:29", `route "r", call "a": retry.attempts 11 must be 1..10`},
		{"retry condition", "          retry: {on: [reset, gateway-error]}", "15:31", `route "r", call "a": unknown retry condition "gateway-error"`},
		{"retry backoff", "          retry: {backoff_base: 1s}", "15:18", `route "r", call "a": retry.backoff_max is less than backoff_base`},
		{"depends_on unknown", "          depends_on: [b]", "15:24", `route "r", call "a": depends_on: no call "b" in this composite (known: a)`},
		{"depends_on itself", "          depends_on: [a]", "15:24", `route "r", call "a": depends_on: a call cannot depend on itself`},
		{"into syntax", "          into: a..b", "15:17", `route "r", call "a": into "a..b" must be "." (merge the call's object at the root) or a dotted key path such as user or data.user`},
		{"into taken", "        - {name: b, upstream: u, path: /b, into: a}", "15:50", `route "r": calls "a" and "b" both go into "a" (aggregate.calls[0] (line 12)); give each its own place, or "." to merge objects at the root`},
		{"transform to xml", "          transform: {deny: [a], to: xml}", "15:38", `route "r", call "a": transform.to "xml": a call's response becomes part of the combined JSON document`},
		{"transform from", "          transform: {from: yaml, deny: [a]}", "15:29", `route "r", call "a": transform.from "yaml" must be json or xml`},
		{"transform var", "          transform: {map: [{op: set, path: x, var: path.nope}]}", "15:53", `route "r", call "a": transform.map[0]: var "path.nope": the route's path template has no parameter {nope}`},
		{"max_body", "          max_body: 65MiB", "15:21", `route "r", call "a": max_body 65MiB must be at most 64MiB (a call's response is held in memory)`},

		// Definitions, checked in the composites that use them.
		{"definition's path parameter", "        - {use: def}\n  - name: s\n    match: {path: {prefix: /s}}\n    aggregate:\n      calls: [{use: def}]", "19:21",
			`route "s", call "def": path (from definition "def"): {path.id}: the route's match.path has no template, so there are no path parameters`},
		{"body of a definition with GET", "        - {use: def, name: b, body: {x: 1}}", "15:37", `route "r", call "b": body: a GET call sends no body`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrorAt(t, aggregateBase+tc.add+"\n", tc.at, tc.want)
		})
	}
}

// checkErrorAt parses y and wants exactly one error, at line:col,
// containing want.
func checkErrorAt(t *testing.T, y, at, want string) {
	t.Helper()
	_, err := Parse("f.yaml", []byte(y))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want an error at %s, got %v\n%s", at, err, y)
	}
	if len(es) != 1 || fmt.Sprintf("%d:%d", es[0].Line, es[0].Col) != at || !strings.Contains(es[0].Msg, want) {
		t.Fatalf("got\n  %v\nwant one error at %s containing\n  %s\nin\n%s", err, at, want, y)
	}
}

// Calls waiting for each other in a cycle are reported once, at the first
// call of the cycle, through depends_on and references alike.
func TestAggregateCycle(t *testing.T) {
	cases := []struct{ add, at, want string }{
		{"          depends_on: [b]\n        - {name: b, upstream: u, path: \"/b/{call.a.id}\"}", "12:11", "a → b → a"},
		{"        - {name: b, upstream: u, path: \"/b/{call.c}\"}\n        - {name: c, upstream: u, path: /c, method: POST, body: {x: \"{call.b.y}\"}}", "15:11", "b → c → b"},
		{"          query: {x: \"{call.c.id}\"}\n        - {name: b, upstream: u, path: /b, depends_on: [a]}\n        - {name: c, upstream: u, path: /c, headers: {X-B: \"{call.b}\"}}", "12:11", "a → c → b → a"},
	}
	for _, tc := range cases {
		checkErrorAt(t, aggregateBase+tc.add+"\n", tc.at,
			`route "r": calls wait for each other in a cycle: `+tc.want+` (through depends_on and {call.…} references); none of them could start`)
	}
	// A DAG is fine: a diamond.
	dag := "        - {name: b, upstream: u, path: \"/b/{call.a.id}\"}\n        - {name: c, upstream: u, path: /c, depends_on: [a]}\n" +
		"        - {name: d, upstream: v, path: \"/d/{call.b.x}/{call.c.y}\", depends_on: [a]}\n"
	if _, err := Parse("f.yaml", []byte(aggregateBase+dag)); err != nil {
		t.Fatal(err)
	}
	if got := findCycle([][]int{{1}, {2}, {1}}); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("findCycle = %v, want [1 2]", got)
	}
}

// Errors of whole files: what aggregateBase cannot hold.
func TestAggregateFileErrors(t *testing.T) {
	const head = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
`
	calls33 := "routes:\n  - name: r\n    aggregate:\n      calls:\n"
	for i := range MaxAggregateCalls + 1 {
		calls33 += fmt.Sprintf("        - {name: c%d, upstream: u, path: /c}\n", i)
	}
	cases := []struct{ name, body, at, want string }{
		{"neither", "routes: [{name: r}]\n", "3:10", `route "r": upstream (or split) is required, or aggregate for a composite route`},
		{"no calls", "routes:\n  - name: r\n    aggregate: {calls: []}\n", "5:24", `route "r": aggregate.calls: at least one call is required`},
		{"too many calls", calls33, "7:9", `route "r": aggregate has 33 calls; at most 32 are allowed (the fan-out of one request)`},

		// Definitions.
		{"definition without name", "calls: [{upstream: u}]\n", "3:9", `calls[0]: name is required: composites take a definition by its name (use: NAME)`},
		{"definition name", "calls: [{name: \"a b\"}]\n", "3:16", `call definition name "a b" must start with a letter or _`},
		{"definition twice", "calls:\n  - {name: a, upstream: u}\n  - {name: a}\n", "5:12", `duplicate call definition name "a" (first at line 4)`},
		{"definition uses", "calls: [{name: a}, {name: b, use: a}]\n", "3:35", `call definition "b": use takes a definition into a composite's call; a definition cannot take another`},
		{"definition upstream", "calls: [{name: a, upstream: w}]\n", "3:29", `call definition "a": unknown upstream "w"`},
		{"definition path", "calls: [{name: a, path: \"/a/{x\"}]\n", "3:25", `call definition "a": path: template "/a/{x": "{" at offset 3 is not closed`},
		{"definition variable", "calls: [{name: a, path: \"/a/{user}\"}]\n", "3:25", `call definition "a": path: {user}: unknown variable`},
		{"definition method", "calls: [{name: a, method: \"G T\"}]\n", "3:27", `call definition "a": method "G T" must be an upper-case token`},
		{"definition header", "calls: [{name: a, headers: {Upgrade: x}}]\n", "3:38", `call definition "a": headers: header "Upgrade" is a framing, routing or hop-by-hop header`},
		{"definition retry", "calls: [{name: a, retry: {attempts: 0, on: [x]}}]\n", "3:45", `call definition "a": unknown retry condition "x"`},
		{"definition transform", "calls: [{name: a, transform: {to: xml, deny: [a]}}]\n", "3:35", `call definition "a": transform.to "xml"`},
		{"definition max_body", "calls: [{name: a, max_body: 65MiB}]\n", "3:29", `call definition "a": max_body 65MiB must be at most 64MiB`},
		{"definition into", "calls: [{name: a, into: \"a.\"}]\n", "3:25", `call definition "a": into "a." must be`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrorAt(t, head+tc.body, tc.at, tc.want)
		})
	}

	// A definition's errors are reported where it is written, not again
	// in the composites that use it; what depends on the composite is
	// checked in each.
	y := head + `calls:
  - {name: d, upstream: w, path: "/d/{user}", headers: {"X Y": "{call.b.id}"}}
routes:
  - name: r
    aggregate:
      calls: [{use: d}, {name: b, upstream: u, path: /b}]
  - name: s
    match: {path: {prefix: /s}}
    aggregate:
      calls: [{use: d}]
`
	_, err := Parse("f.yaml", []byte(y))
	want := []string{
		`f.yaml:4:25: call definition "d": unknown upstream "w"`,
		`f.yaml:4:34: call definition "d": path: {user}: unknown variable (known: consumer, tier, client_ip, request_id, path.NAME, query.NAME, header.NAME, claim.NAME, call.NAME.PATH; write {{ and }} for literal braces)`,
		`f.yaml:4:64: call definition "d": headers: invalid header name "X Y"`,
		`f.yaml:12:21: route "s", call "d": headers.X Y (from definition "d"): {call.b.id}: no call "b" in this composite (known: d)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

// BFF groups and their members.
func TestBFFErrors(t *testing.T) {
	const head = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
`
	cases := []struct{ name, body, at, want string }{
		{"no name", "bff: [{hosts: [m.example.com]}]\n", "3:7", `bff[0]: name is required: routes join the group by its name (bff: NAME)`},
		{"name", "bff: [{name: \"m b\", hosts: [m.example.com]}]\n", "3:14", `bff group name "m b" may hold only letters, digits and -._~`},
		{"twice", "bff:\n  - {name: m, hosts: [a.example.com]}\n  - {name: m, hosts: [b.example.com]}\n", "5:12", `duplicate bff group name "m" (first at line 4)`},
		{"everything", "bff: [{name: m}]\n", "3:7", `bff group "m" selects every request: set hosts, path_prefix or headers`},
		{"host", "bff: [{name: m, hosts: [\"m.example.com:443\"]}]\n", "3:25", `host "m.example.com:443" must be a name or *.domain`},
		{"prefix relative", "bff: [{name: m, path_prefix: m}]\n", "3:30", `bff group "m": path_prefix "m" must start with /`},
		{"prefix root", "bff: [{name: m, path_prefix: /}]\n", "3:30", `bff group "m": path_prefix "/" selects nothing (every path starts with /): remove it, or name a segment such as /m`},
		{"prefix slash", "bff: [{name: m, path_prefix: /m/}]\n", "3:30", `bff group "m": path_prefix "/m/" must not end with /`},
		{"prefix empty segment", "bff: [{name: m, path_prefix: //m}]\n", "3:30", `bff group "m": path_prefix "//m" has an empty, . or .. segment`},
		{"prefix dots", "bff: [{name: m, path_prefix: /m/../x}]\n", "3:30", `has an empty, . or .. segment`},
		{"prefix template", "bff: [{name: m, path_prefix: \"/{v}\"}]\n", "3:30", `bff group "m": path_prefix "/{v}" is a literal path: no spaces, control characters, {, }, ?, # or *`},
		{"headers", "bff: [{name: m, headers: [{name: X-Client}]}]\n", "3:27", `"X-Client" needs exactly one of exact, regex, present`},

		// Members.
		{"unknown group", "bff: [{name: m, path_prefix: /m}]\nroutes: [{name: r, upstream: u, bff: web}]\n", "4:38", `route "r": unknown bff group "web" (known: m)`},
		{"no groups", "routes: [{name: r, upstream: u, bff: web}]\n", "3:38", `route "r": unknown bff group "web" (there are no bff groups)`},
		{"own hosts", "bff: [{name: m, hosts: [m.example.com]}]\nroutes: [{name: r, upstream: u, bff: m, match: {hosts: [x.example.com]}}]\n", "4:38",
			`route "r": bff group "m" selects hosts: its routes set no match.hosts of their own`},
		{"regex under a prefix", "bff: [{name: m, path_prefix: /m}]\nroutes: [{name: r, upstream: u, bff: m, match: {path: {regex: \"/a.*\"}}}]\n", "4:38",
			`route "r": bff group "m" has a path_prefix: a member's path cannot be a regex (use exact, prefix or template)`},
		{"duplicate in a group", "bff: [{name: m, path_prefix: /m}]\nroutes:\n  - {name: r, upstream: u, bff: m, match: {path: {exact: /a}}}\n  - {name: s, upstream: u, bff: m, match: {path: {exact: /a}}}\n", "6:43",
			`route "s" has the same match as route "r" (line 5); one of them can never be chosen`},
		{"duplicate of a member's effective match", "bff: [{name: m, path_prefix: /m}]\nroutes:\n  - {name: r, upstream: u, bff: m, match: {path: {exact: /a}}}\n  - {name: s, upstream: u, match: {path: {exact: /m/a}}}\n", "6:35",
			`route "s" has the same match as route "r"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrorAt(t, head+tc.body, tc.at, tc.want)
		})
	}
	// The same own path in two groups is no duplicate.
	y := head + `bff:
  - {name: m, path_prefix: /m}
  - {name: w, hosts: [www.example.com]}
routes:
  - {name: r, upstream: u, bff: m, match: {path: {exact: /a}}}
  - {name: s, upstream: u, bff: w, match: {path: {exact: /a}}}
  - {name: t, upstream: u, match: {path: {exact: /a}}}
`
	if _, err := Parse("f.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
}

// ResolvedCalls: a field the call sets overrides the definition's, as a
// whole (a map or list is replaced, not merged); the rest is the
// definition's.
func TestResolvedCalls(t *testing.T) {
	yes, no := true, false
	c := &Config{Calls: []AggregateCall{{
		Name: "user", Upstream: "users", Method: "POST", Path: "/users/{path.id}", Query: map[string]string{"a": "1", "b": "2"},
		Headers: map[string]string{"X-A": "a"}, PassHeaders: []string{"Authorization"}, Body: JSONValue(`{"a":1}`),
		Timeout: Duration(time.Second), Retry: &Retry{Attempts: 3}, Optional: &yes, DependsOn: []string{"x"}, Into: "u",
		Transform: &BodyTransform{Allow: []string{"id"}}, MaxBody: 1 << 10, ResponseHeaders: []string{"ETag"},
	}}}
	def := c.Calls[0]
	a := &Aggregate{Calls: []AggregateCall{
		{Use: "user"},
		{Use: "user", Name: "owner", Upstream: "v2", Method: "PUT", Path: "/o", Query: map[string]string{"c": "3"},
			Headers: map[string]string{}, PassHeaders: []string{}, Body: JSONValue(`[]`), Timeout: Duration(2 * time.Second),
			Retry: &Retry{Attempts: 1}, Optional: &no, DependsOn: []string{}, Into: ".", Transform: &BodyTransform{Deny: []string{"x"}},
			MaxBody: 5, ResponseHeaders: []string{}},
		{Name: "plain", Upstream: "u", Path: "/p"},
		{Use: "nope", Name: "n"},
	}}
	got := c.ResolvedCalls(a)
	want0 := def
	want0.Use = "user"
	if !reflect.DeepEqual(got[0], want0) {
		t.Errorf("use alone:\n%+v\nwant\n%+v", got[0], want0)
	}
	want1 := a.Calls[1]
	if !reflect.DeepEqual(got[1], want1) {
		t.Errorf("every field overridden:\n%+v\nwant\n%+v", got[1], want1)
	}
	if !reflect.DeepEqual(got[2], a.Calls[2]) || !reflect.DeepEqual(got[3], a.Calls[3]) {
		t.Errorf("a call without use, or of an unknown one, is as written: %+v %+v", got[2], got[3])
	}
	// Optional false overrides a definition's true: it is a pointer.
	if got[1].IsOptional() || !got[0].IsOptional() {
		t.Error("optional not overridden")
	}
	if !reflect.DeepEqual(c.Calls[0], def) || a.Calls[0].Upstream != "" {
		t.Error("ResolvedCalls modified its input")
	}
	// Partial overrides: the definition's other fields stay.
	a = &Aggregate{Calls: []AggregateCall{{Use: "user", Query: map[string]string{"q": "x"}, Timeout: Duration(time.Millisecond)}}}
	r := c.ResolvedCalls(a)[0]
	if r.Name != "user" || r.Upstream != "users" || r.Path != def.Path || !reflect.DeepEqual(r.Query, map[string]string{"q": "x"}) ||
		r.Timeout.D() != time.Millisecond || r.Retry != def.Retry || r.Into != "u" {
		t.Errorf("partial override: %+v", r)
	}
}

// DefaultCall defaults a resolved call, and never the definition's retry
// it shares.
func TestDefaultCall(t *testing.T) {
	got := DefaultCall(AggregateCall{Name: "user"})
	want := AggregateCall{Name: "user", Method: "GET", MaxBody: DefaultCallMaxBody, Into: "user",
		Retry: &Retry{Attempts: 2, On: []string{"connect-failure"}, BackoffBase: Duration(DefaultBackoffBase), BackoffMax: Duration(DefaultBackoffMax)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultCall = %+v, want %+v", got, want)
	}
	shared := &Retry{Attempts: 3}
	set := AggregateCall{Name: "p", Method: "POST", MaxBody: 5, Into: ".", Retry: shared}
	got = DefaultCall(set)
	if got.Method != "POST" || got.MaxBody != 5 || got.Into != "." || got.Retry.Attempts != 3 ||
		!slices.Equal(got.Retry.On, []string{"connect-failure", "reset", "503", "per-try-timeout"}) || got.Retry == shared || shared.On != nil {
		t.Errorf("DefaultCall of a set call = %+v (retry %+v), shared %+v", got, got.Retry, shared)
	}
}

func TestCallRef(t *testing.T) {
	for in, want := range map[string][3]any{
		"call.user":              {"user", "", true},
		"call.user.id":           {"user", "id", true},
		"call.user.items.0.sku":  {"user", "items.0.sku", true},
		"call.":                  {"", "", false},
		"consumer":               {"", "", false},
		"calls.user":             {"", "", false},
		"call.user-profile.name": {"user-profile", "name", true},
	} {
		call, path, ok := CallRef(in)
		if call != want[0] || path != want[1] || ok != want[2] {
			t.Errorf("CallRef(%q) = %q, %q, %v; want %v", in, call, path, ok, want)
		}
	}
}

// ApplyBFF places each member's match in its group's.
func TestApplyBFF(t *testing.T) {
	groups := []BFF{
		{Name: "m", PathPrefix: "/m", Headers: []ValueMatcher{{Name: "X-Client", Exact: "mobile"}}},
		{Name: "w", Hosts: []string{"www.example.com"}},
		{Name: "slash", PathPrefix: "/s/"},
	}
	own := []ValueMatcher{{Name: "Accept", Present: true}}
	routes := []Route{
		{Name: "exact", BFF: "m", Match: Match{Path: &Path{Exact: "/a"}, Headers: own}},
		{Name: "prefix", BFF: "m", Match: Match{Path: &Path{Prefix: "/api"}}},
		{Name: "template", BFF: "m", Match: Match{Path: &Path{Template: "/p/{id}"}, Methods: []string{"GET"}}},
		{Name: "root", BFF: "m", Match: Match{Path: &Path{Exact: "/"}}},
		{Name: "none", BFF: "m"},
		{Name: "hosts", BFF: "w", Match: Match{Path: &Path{Regex: "/r.*"}}},
		{Name: "alone", Match: Match{Hosts: []string{"x"}}},
		{Name: "slash", BFF: "slash", Match: Match{Path: &Path{Prefix: "/x"}}},
	}
	got, err := ApplyBFF(routes, groups)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders := []ValueMatcher{groups[0].Headers[0], own[0]}
	checks := []struct {
		ok   bool
		what string
	}{
		{got[0].Match.Path.Exact == "/m/a" && reflect.DeepEqual(got[0].Match.Headers, wantHeaders), "exact, headers prepended"},
		{got[1].Match.Path.Prefix == "/m/api" && len(got[1].Match.Headers) == 1, "prefix"},
		{got[2].Match.Path.Template == "/m/p/{id}" && slices.Equal(got[2].Match.Methods, []string{"GET"}), "template"},
		{got[3].Match.Path.Exact == "/m", "/ under /m"},
		{got[4].Match.Path != nil && got[4].Match.Path.Prefix == "/m", "no path: the prefix"},
		{slices.Equal(got[5].Match.Hosts, []string{"www.example.com"}) && got[5].Match.Path.Regex == "/r.*", "hosts; a regex without a prefix"},
		{reflect.DeepEqual(got[6], routes[6]), "a route of no group"},
		{got[7].Match.Path.Prefix == "/s/x", "a trailing / of the prefix"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: %+v", c.what, got)
		}
	}
	if routes[0].Match.Path.Exact != "/a" || len(routes[0].Match.Headers) != 1 || routes[4].Match.Path != nil {
		t.Error("ApplyBFF modified its input")
	}
	if same, _ := ApplyBFF(routes[6:7], nil); &same[0] != &routes[6] {
		t.Error("without groups or members, the routes are returned as they are")
	}

	for _, tc := range []struct {
		r    Route
		want string
	}{
		{Route{Name: "x", BFF: "nope"}, `route "x": unknown bff group "nope"`},
		{Route{Name: "x", BFF: "w", Match: Match{Hosts: []string{"a"}}}, `route "x": bff group "w" selects hosts: its routes set no match.hosts of their own`},
		{Route{Name: "x", BFF: "m", Match: Match{Path: &Path{Regex: "/a"}}}, `route "x": bff group "m" has a path_prefix: a member's path cannot be a regex`},
	} {
		if _, err := ApplyBFF([]Route{tc.r}, groups); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.r, err, tc.want)
		}
	}
}
