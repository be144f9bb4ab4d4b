package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/transform/jsonx"
)

// transformFull uses every field of routes[].transform.
const transformFull = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
auth:
  jwt: [{name: hydra, issuer: "https://idp/", algorithms: [RS256]}]
routes:
  - name: orders
    match: {path: {template: "/orders/{id}"}}
    upstream: u
    auth: {methods: [hydra]}
    transform:
      max_body: 2MiB
      request:
        headers:
          add: {X-Via: "edge {request_id}"}
          set: {X-Consumer: "{consumer}/{tier}", X-Email: "{claim.email}", X-Lit: "{{consumer}} }}"}
          remove: [X-Debug]
          rename: {X-Legacy-Token: X-Token}
        query:
          add: {tag: "{header.X-Tag}"}
          set: {customer: "{path.id}", ip: "{client_ip}"}
          remove: [trace]
          rename: {q: search}
        body:
          from: xml
          deny: [internal, "items[].cost"]
          map:
            - {op: rename, path: order.name, key: full_name}
            - {op: move, from: order.email, to: contact.email}
            - {op: wrap, key: data}
            - {op: extract, path: data}
            - {op: set, path: meta.source, value: {by: edge, n: 12345678901234567890, big: 1e400, "null": !json null}}
            - {op: set, path: meta.consumer, var: consumer}
            - {op: delete, path: debug}
          jq: |
            . + {served: $consumer, claims: $claims}
          to: json
          xml: {array_paths: [order.item, "soap:Envelope.soap:Body"]}
        on_too_large: reject
      response:
        headers:
          set: {Content-Type: application/json}
        status:
          - {from: 200, if_field: error, to: 422}
          - {from: 404, to: 410}
          - {to: 503, if_field: "\"retry.after\""}
        on_too_large: reject
  - name: catalog
    match: {path: {prefix: /catalog}}
    upstream: u
    transform:
      response:
        headers: {remove: [Server]}
        body:
          allow: [id, "items[].sku"]
          to: accept
          xml: {root: catalog}
`

func TestTransformFull(t *testing.T) {
	c, err := Parse("f.yaml", []byte(transformFull))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Routes[0].Transform
	if tr.MaxBody != 2<<20 || tr.Request.OnTooLarge != "reject" || tr.Response.OnTooLarge != "reject" {
		t.Errorf("transform: %+v", tr)
	}
	rb := tr.Request.Body
	if rb.From != "xml" || rb.To != "json" || len(rb.Map) != 7 || rb.JQ != ". + {served: $consumer, claims: $claims}\n" {
		t.Errorf("request body: %+v", rb)
	}
	if got := string(rb.Map[4].Value); got != `{"by":"edge","n":12345678901234567890,"big":1e400,"null":null}` {
		t.Errorf("set value = %s", got)
	}
	if _, err := jsonx.Compile(rb.Spec()); err != nil {
		t.Errorf("the validated spec does not compile: %v", err)
	}
	if got := tr.Response.Status[2]; got.From != 0 || got.To != 503 || got.IfField != `"retry.after"` {
		t.Errorf("status: %+v", got)
	}
	// Defaults of a body without from and to, and of a side without
	// on_too_large.
	cat := c.Routes[1].Transform
	if cat.MaxBody != DefaultTransformMaxBody || cat.Request != nil || cat.Response.OnTooLarge != "pass" ||
		cat.Response.Body.From != "json" || cat.Response.Body.To != "accept" {
		t.Errorf("catalog transform: %+v %+v", cat, cat.Response.Body)
	}

	// A route with a transform survives replication, and Overlay
	// validates a cluster route's transform.
	data, err := EncodeResource(c.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRoute("r", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if again, _ := EncodeResource(r); string(again) != string(data) || string(r.Transform.Request.Body.Map[4].Value) != string(rb.Map[4].Value) {
		t.Fatalf("round trip:\n%s\nwant\n%s", again, data)
	}
	r.Name, r.Listeners, r.Match = "extra", []string{"l"}, Match{Path: &Path{Prefix: "/extra"}}
	data, _ = EncodeResource(r)
	_, err = Overlay(c, []Resource{{Kind: KindRoute, Name: "extra", Value: data}})
	if err == nil || !strings.Contains(err.Error(), `route "extra": transform.request.query.set.customer: {path.id}: the route's match.path has no template`) {
		t.Fatalf("overlay of a route whose template variables lost their template: %v", err)
	}
}

// Defaults apply to what is present, and nothing is added.
func TestTransformDefaults(t *testing.T) {
	cases := []struct {
		transform string
		check     func(*Transform) bool
	}{
		{`{request: {headers: {set: {X-A: b}}}}`, func(tr *Transform) bool {
			return tr.MaxBody == 1<<20 && tr.Request.OnTooLarge == "reject" && tr.Request.Body == nil && tr.Response == nil
		}},
		{`{max_body: 64MiB, response: {body: {deny: [a]}}}`, func(tr *Transform) bool {
			return tr.MaxBody == MaxTransformBody && tr.Response.OnTooLarge == "pass" && tr.Response.Body.From == "json" && tr.Response.Body.To == "json"
		}},
		{`{request: {body: {from: xml}}}`, func(tr *Transform) bool { return tr.Request.Body.From == "xml" && tr.Request.Body.To == "json" }},
		{`{request: {body: {to: xml}}}`, func(tr *Transform) bool { return tr.Request.Body.From == "json" && tr.Request.Body.To == "xml" }},
		{`{response: {on_too_large: reject, status: [{from: 500, to: 502}]}}`, func(tr *Transform) bool { return tr.Response.OnTooLarge == "reject" }},
		// Headers only on a gRPC route, and a body on a route that
		// excludes gRPC.
		{`{request: {headers: {add: {X-A: "{consumer}"}}}, response: {headers: {rename: {A: B}}}}`, func(tr *Transform) bool { return true }},
		{`{request: {headers: {remove: [Content-Type]}}}`, func(tr *Transform) bool { return true }},
		{`{request: {body: {map: [{op: set, path: ., value: {}}]}}}`, func(tr *Transform) bool { return string(tr.Request.Body.Map[0].Value) == "{}" }},
	}
	for i, tc := range cases {
		y := fmt.Sprintf(`listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
routes:
  - {name: r, upstream: u, transform: %s}
  - name: g
    upstream: u
    match: {headers: [{name: content-type, exact: application/grpc}]}
    transform: {request: {headers: {set: {X-Edge: "1"}}}}
  - name: not-grpc
    upstream: u
    match: {headers: [{name: content-type, regex: "application/grpc.*", invert: true}]}
    transform: {request: {body: {deny: [secret]}}}
`, tc.transform)
		c, err := Parse("f.yaml", []byte(y))
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if tr := c.Routes[0].Transform; !tc.check(tr) {
			t.Errorf("case %d %s: got %+v", i, tc.transform, tr)
		}
		// Defaults are idempotent (Overlay applies them again).
		before := fmt.Sprintf("%+v", *c.Routes[0].Transform)
		applyDefaults(c)
		if after := fmt.Sprintf("%+v", *c.Routes[0].Transform); after != before {
			t.Errorf("case %d: defaults applied twice: %s, then %s", i, before, after)
		}
	}
}

// transformBase puts a route's transform at line 10; cases add its fields
// from line 11, indented by six spaces.
const transformBase = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
auth:
  api_keys: [{name: keys, header: X-Api-Key}]
routes:
  - name: r
    upstream: u
    match: {path: {template: "/items/{id}"}}
    auth: {methods: [keys]}
    transform:
`

// Each invalid transform is rejected at its line with a message that says
// what to do, and with no other error.
func TestTransformErrors(t *testing.T) {
	cases := []struct {
		name, fields string
		line         int
		want         string
	}{
		{"max_body over 64MiB", "max_body: 65MiB\nrequest: {headers: {remove: [A]}}", 11, `route "r": transform.max_body 65MiB must be at most 64MiB`},
		{"no side", "max_body: 1MiB", 11, "transform needs request or response"},
		{"empty request", "request: {}", 11, "transform.request does nothing: set headers, query or body"},
		{"empty response", "response: {on_too_large: pass}", 11, "transform.response does nothing: set headers, body or status"},
		{"request pass", "request:\n  headers: {remove: [A]}\n  on_too_large: pass", 13, `transform.request.on_too_large "pass" must be reject: a request body over max_body is refused with 413`},
		{"response drop", "response:\n  headers: {remove: [A]}\n  on_too_large: drop", 13, `transform.response.on_too_large "drop" must be pass (send the body untransformed) or reject (answer 502)`},
		{"response query", "response:\n  query: {add: {a: b}}", 12, "transform.response.query: query parameters belong to the request; move them to transform.request.query"},
		{"request status", "request:\n  status: [{from: 500, to: 502}]", 12, "transform.request.status: a request has no status; map the upstream's status under transform.response.status"},

		// Header and query names.
		{"header token", "request:\n  headers: {set: {\"X A\": b}}", 12, `transform.request.headers.set: invalid header name "X A"`},
		{"header reserved", "request:\n  headers:\n    add: {X-Meshgate-Consumer: b}", 13, `header "X-Meshgate-Consumer" is reserved: X-Meshgate-* headers are set by meshgate`},
		{"header hop-by-hop", "response:\n  headers:\n    remove: [Connection]", 13, `transform.response.headers.remove: header "Connection" is a framing, routing or hop-by-hop header`},
		{"header host rename", "request:\n  headers:\n    rename: {X-Host: Host}", 13, `transform.request.headers.rename: header "Host" is a framing, routing or hop-by-hop header`},
		{"content-type with body", "response:\n  headers: {set: {content-type: text/plain}}\n  body: {deny: [a]}", 12, "transform.response.headers.set: Content-Type is set by the body transform"},
		{"header twice", "request:\n  headers:\n    set: {X-A: a,\n          x-a: b}", 14, `transform.request.headers.set has "X-A" and "x-a": header names are case-insensitive; keep one`},
		{"remove twice", "request:\n  headers:\n    remove: [X-A, x-a]", 13, `transform.request.headers.remove lists "x-a" twice (remove[0] and remove[1])`},
		{"rename to itself", "request:\n  headers:\n    rename: {X-A: x-a}", 13, `transform.request.headers.rename renames "X-A" to itself`},
		{"rename onto one", "request:\n  headers:\n    rename: {X-A: X-C,\n             X-B: X-C}", 14, `transform.request.headers.rename renames both "X-A" and "X-B" to "X-C"; keep one`},
		{"query name", "request:\n  query:\n    set: {\"a b\": x}", 13, `transform.request.query.set: query parameter name "a b" must be non-empty UTF-8 without spaces`},

		// Templates.
		{"unknown variable", "request:\n  headers:\n    set: {X-User: \"{user}\"}", 13, "transform.request.headers.set.X-User: {user}: unknown variable (known: consumer, tier, client_ip, request_id, path.NAME, query.NAME, header.NAME, claim.NAME; write {{ and }} for literal braces)"},
		{"unclosed brace", "request:\n  headers:\n    set: {X-A: \"a{consumer\"}", 13, `template "a{consumer": "{" at offset 1 is not closed by "}" (write "{{" for a literal "{")`},
		{"lone closing brace", "request:\n  query:\n    add: {a: \"x}\"}", 13, `template "x}": "}" at offset 1 closes nothing (write "}}" for a literal "}")`},
		{"empty variable", "request:\n  headers:\n    set: {X-A: \"{}\"}", 13, `empty variable "{}" at offset 0 (write "{{}}" for a literal "{}")`},
		{"line break", "request:\n  headers:\n    set: {X-A: \"a\\r\\nX-B: b\"}", 13, "transform.request.headers.set.X-A: a header value must be UTF-8 without control characters or line breaks"},
		{"too long", "request:\n  headers:\n    set: {X-A: " + strings.Repeat("a", MaxTemplateLen+1) + "}", 13, "the value is 4097 bytes; at most 4096 are allowed"},
		{"path parameter", "request:\n  headers:\n    set: {X-A: \"{path.name}\"}", 13, "{path.name}: the route's path template has no parameter {name} (it has: id)"},
		{"variable without name", "request:\n  headers:\n    set: {X-A: \"{query.}\"}", 13, "{query.}: query. needs a name, such as query.id"},
		{"reserved header variable", "request:\n  headers:\n    set: {X-A: \"{header.X-Meshgate-Tier}\"}", 13, "X-Meshgate-* headers are removed from clients' requests; use {consumer} or {tier}"},
		{"claims of API keys", "response:\n  headers:\n    set: {X-A: \"{claim.sub}\"}", 13, "{claim.sub}: the route's auth methods are all API keys, which carry no claims"},

		// Bodies.
		{"from", "request:\n  body: {from: yaml, deny: [a]}", 12, `transform.request.body.from "yaml" must be json or xml`},
		{"to", "response:\n  body:\n    deny: [a]\n    to: html", 14, `transform.response.body.to "html" must be json, xml or accept`},
		{"accept on requests", "request:\n  body:\n    deny: [a]\n    to: accept", 14, "transform.request.body.to: accept picks XML or JSON by the client's Accept header"},
		{"allow and deny", "response:\n  body:\n    allow: [a]\n    deny: [b]", 14, "transform.response.body: set allow or deny, not both"},
		{"allow path", "response:\n  body:\n    allow: [a, \"b..c\"]", 13, `transform.response.body.allow[1]: path "b..c": empty key at offset 2`},
		{"deny root", "response:\n  body:\n    deny: [.]", 13, `transform.response.body.deny[0]: ".": cannot deny the whole document`},
		{"deny array", "response:\n  body:\n    deny: [\"items[]\"]", 13, `deny[0]: "items[]": must end in a key (to remove an array, deny its key)`},
		{"nothing to do", "response:\n  body: {from: json}", 12, "transform.response.body does nothing: set allow, deny, map or jq, or convert with from and to"},
		{"xml root without xml", "response:\n  body:\n    deny: [a]\n    xml: {root: r}", 14, "transform.response.body.xml.root names the root element of XML written from JSON: it needs to: xml (or accept)"},
		{"xml root name", "response:\n  body:\n    to: xml\n    xml: {root: \"1st\"}", 14, `transform.response.body.xml.root: root "1st" is not an XML element name`},
		{"array paths without xml", "response:\n  body:\n    to: xml\n    xml: {array_paths: [a.b]}", 14, "transform.response.body.xml.array_paths shape JSON read from XML: it needs from: xml"},
		{"array path of the root", "response:\n  body:\n    from: xml\n    xml:\n      array_paths: [a.b, a]", 15, `transform.response.body.xml.array_paths[1]: array path "a" names only the root element, which is never an array`},

		// Map ops.
		{"op missing", "response:\n  body:\n    map:\n      - {path: a}", 14, "transform.response.body.map[0]: op is required: rename, move, wrap, extract, set or delete"},
		{"op unknown", "response:\n  body:\n    map:\n      - {op: copy, path: a}", 14, `transform.response.body.map[0]: op "copy" must be rename, move, wrap, extract, set or delete`},
		{"field not taken", "response:\n  body:\n    map:\n      - op: wrap\n        key: data\n        path: a", 16, "transform.response.body.map[0]: path is not used by wrap (it takes key)"},
		{"field missing", "response:\n  body:\n    map:\n      - {op: delete, path: a}\n      - {op: rename, path: a}", 15, "transform.response.body.map[1]: rename needs path and key"},
		{"set without value", "response:\n  body:\n    map:\n      - {op: set, path: a}", 14, "transform.response.body.map[0]: set needs value (a constant) or var (a request value such as consumer)"},
		{"set without path", "response:\n  body:\n    map:\n      - {op: set, value: 1}", 14, `transform.response.body.map[0]: set needs path ("." for the whole document)`},
		{"set null", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: null", 16, `value null means "not set" in YAML; write value: !json null for a JSON null, or use op: delete`},
		{"set both", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: 1\n        var: consumer", 17, "set takes value (a constant) or var (a request value), not both"},
		{"set var", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        var: user", 16, `transform.response.body.map[0]: var "user": unknown variable`},
		{"move prefix", "response:\n  body:\n    map:\n      - op: move\n        from: \"items[].a\"\n        to: b", 15, `transform.response.body.map[0]: from "items[].a" and to "b" must have the same prefix up to their last "[]"`},
		{"rename same key", "response:\n  body:\n    map:\n      - op: rename\n        path: a.b\n        key: b", 15, `transform.response.body.map[0]: path "a.b" already has the key "b"`},
		{"extract array", "response:\n  body:\n    map:\n      - {op: extract, path: \"a[]\"}", 14, `path "a[]": extract takes one value; "[]" is not allowed`},
		{"path syntax", "response:\n  body:\n    map:\n      - op: delete\n        path: \"a.\"", 15, `transform.response.body.map[0]: path "a.": trailing '.' at offset 2`},
		{"value infinity", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: [1, .inf]", 16, "value: .inf is not a JSON number"},
		{"value tag", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: !yaml x", 16, "value: unknown tag !yaml (!json takes JSON text as it is)"},
		{"value json", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: !json '{a: 1}'", 16, "value: !json \"{a: 1}\" is not JSON"},
		{"value null key", "response:\n  body:\n    map:\n      - op: set\n        path: a\n        value: {~: 1}", 16, "value: a null key is not a JSON object key"},

		// jq.
		{"jq syntax", "response:\n  body:\n    jq: \".a |\"", 13, "transform.response.body.jq: at line 1, column 5 of the expression: syntax error: unexpected EOF"},
		{"jq second line", "response:\n  body:\n    jq: |\n      .a\n      | {b: .c)", 13, "transform.response.body.jq: at line 2, column 9 of the expression: syntax error: unexpected token \")\""},
		{"jq refused", "request:\n  body:\n    jq: \"env.HOME\"", 13, "at line 1, column 1 of the expression: env is not allowed in a transform"},
		{"jq variable", "request:\n  body:\n    jq: \"$user\"", 13, "at line 1, column 1 of the expression: variable not defined: $user"},
		{"jq blank", "request:\n  body:\n    jq: \" \"", 13, "transform.request.body.jq: empty expression"},

		// Status.
		{"status from", "response:\n  status:\n    - {from: 99, to: 200}", 13, "transform.response.status[0].from 99 must be 100..599 (or 0 for any status)"},
		{"status to missing", "response:\n  status:\n    - {from: 500}", 13, "transform.response.status[0].to is required: the status to answer, 200..599"},
		{"status to 1xx", "response:\n  status:\n    - {from: 200, to: 101}", 13, "transform.response.status[0].to 101 must be 200..599 (a 1xx is not a final answer)"},
		{"status itself", "response:\n  status:\n    - {from: 500, to: 500}", 13, "transform.response.status[0] maps 500 to itself; remove it"},
		{"status if_field path", "response:\n  status:\n    - {from: 200, if_field: \"a..b\", to: 422}", 13, `transform.response.status[0].if_field: path "a..b": empty key at offset 2`},
		{"status if_field root", "response:\n  status:\n    - {from: 200, if_field: ., to: 422}", 13, `if_field must name a member, such as "error"`},
		{"status if_field array", "response:\n  status:\n    - {from: 200, if_field: \"errors[]\", to: 422}", 13, `"errors[]": if_field names one member; "[]" is not allowed`},
		{"status shadowed", "response:\n  status:\n    - {from: 500, to: 502}\n    - {from: 404, to: 410}\n    - {from: 500, if_field: error, to: 503}", 15, "transform.response.status[2] never applies: transform.response.status[0] (line 13) comes first"},
		{"status any shadows", "response:\n  status:\n    - {to: 502}\n    - {from: 404, to: 410}", 14, "transform.response.status[1] never applies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := transformBase + indent(tc.fields, "      ") + "\n"
			checkOneError(t, y, tc.line, tc.want)
		})
	}
}

// Bodies that stream cannot be transformed: routes that select them are
// refused a body (and gRPC routes a status mapping).
func TestTransformStreamingRoutes(t *testing.T) {
	route := func(matcher, transform string) string {
		return `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
routes:
  - name: r
    upstream: u
    match:
      headers: [` + matcher + `]
    transform:
      ` + transform + "\n"
	}
	cases := []struct {
		name, matcher, transform string
		line                     int
		want                     string
	}{
		{"grpc body", "{name: Content-Type, exact: application/grpc}", "request: {body: {deny: [a]}}", 9,
			`route "r": transform.request.body: the route's match.headers[0] (line 7) selects gRPC requests (Content-Type application/grpc), whose bodies stream and are never held; remove body, or narrow the route's match`},
		{"grpc regex body", `{name: content-type, regex: "application/grpc(\\+proto)?"}`, "response: {body: {to: xml}}", 9, "selects gRPC requests"},
		{"grpc status", "{name: content-type, exact: application/grpc+proto}", "response: {status: [{from: 200, to: 201}]}", 9,
			"transform.response.status: the route's match.headers[0] (line 7) selects gRPC requests (Content-Type application/grpc), whose bodies stream and are never held, and a gRPC call's outcome is in its trailers (grpc-status), not its HTTP status; remove status"},
		{"websocket body", "{name: Upgrade, exact: websocket}", "request: {body: {deny: [a]}}", 9, "selects upgrade requests (WebSocket)"},
		{"sse if_field", "{name: Accept, regex: \"text/event-stream.*\"}", "response: {status: [{from: 200, if_field: error, to: 500}]}", 9,
			"transform.response.status[0].if_field reads the body: the route's match.headers[0] (line 7) selects server-sent events (Accept: text/event-stream)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkOneError(t, route(tc.matcher, tc.transform), tc.line, tc.want)
		})
	}
	// Not confined to streaming requests: accepted.
	for _, m := range []string{"{name: content-type, exact: application/grpc, invert: true}", "{name: content-type, exact: application/json}", "{name: accept, present: true}"} {
		if _, err := Parse("f.yaml", []byte(route(m, "request: {body: {deny: [a]}}"))); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

// Template variables that need something of the route.
func TestTransformVariablesNeedTheRoute(t *testing.T) {
	const head = `listeners: [{name: l, address: "127.0.0.1:1"}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:2"}]}]
routes:
  - name: r
    upstream: u
`
	checkOneError(t, head+"    transform: {request: {headers: {set: {X-A: \"{path.id}\"}}}}\n", 6,
		`route "r": transform.request.headers.set.X-A: {path.id}: the route's match.path has no template, so there are no path parameters`)
	checkOneError(t, head+"    transform:\n      request:\n        body:\n          map: [{op: set, path: a, var: claim.sub}]\n", 9,
		`transform.request.body.map[0]: var "claim.sub": the route has no auth, so requests carry no claims (add auth with a jwt or introspection method)`)
}

// checkOneError parses y and wants exactly one error, at line, containing
// want.
func checkOneError(t *testing.T, y string, line int, want string) {
	t.Helper()
	_, err := Parse("f.yaml", []byte(y))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want an error at line %d, got %v\n%s", line, err, y)
	}
	if len(es) != 1 || es[0].Line != line || !strings.Contains(es[0].Msg, want) {
		t.Fatalf("got\n  %v\nwant one error at line %d containing\n  %s\nin\n%s", err, line, want, y)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func TestParseTemplate(t *testing.T) {
	for in, want := range map[string]Template{
		"":                    nil,
		"plain":               {{Literal: "plain"}},
		"{consumer}":          {{Var: "consumer"}},
		"a {tier} b":          {{Literal: "a "}, {Var: "tier"}, {Literal: " b"}},
		"{{consumer}}":        {{Literal: "{consumer}"}},
		"{{{consumer}}}":      {{Literal: "{"}, {Var: "consumer"}, {Literal: "}"}},
		"{path.id}-{query.p}": {{Var: "path.id"}, {Literal: "-"}, {Var: "query.p"}},
		"}}{{":                {{Literal: "}{"}},
	} {
		got, err := ParseTemplate(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseTemplate(%q) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, in := range []string{"{", "}", "a{b", "{a{b}}", "{}", "x}y", "{a}}"} {
		if got, err := ParseTemplate(in); err == nil {
			t.Errorf("ParseTemplate(%q) = %#v, want an error", in, got)
		}
	}
	tpl, _ := ParseTemplate("{consumer}@{{x}}")
	if got := tpl.Expand(func(n string) string { return strings.ToUpper(n) }); got != "CONSUMER@{x}" {
		t.Errorf("Expand = %q", got)
	}
}

// JSONValue: YAML in, exact JSON out, and back through YAML.
func TestJSONValue(t *testing.T) {
	for in, want := range map[string]string{
		`{b: 1, a: [true, ~, "x"]}`:  `{"b":1,"a":[true,null,"x"]}`,
		`12345678901234567890123`:    `12345678901234567890123`,
		`1e400`:                      `1e400`,
		`0x1F`:                       `31`,
		`.5`:                         `0.5`,
		`"1e400"`:                    `"1e400"`,
		`'<&>'`:                      `"<&>"`,
		`2024-01-01`:                 `"2024-01-01"`,
		`{1: one}`:                   `{"1":"one"}`,
		`!json '{"z":1,  "a":null}'`: `{"z":1,"a":null}`,
		`!json null`:                 `null`,
		"{a: &x [1], b: *x}":         `{"a":[1],"b":[1]}`,
	} {
		var doc struct {
			V JSONValue `yaml:"v"`
		}
		if _, err := decodeStrict("v", []byte("v: "+in), &doc); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if string(doc.V) != want {
			t.Errorf("%s → %s, want %s", in, doc.V, want)
		}
		data, err := EncodeResource(doc)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			V JSONValue `yaml:"v"`
		}
		if _, err := decodeStrict("v", data, &back); err != nil || string(back.V) != want {
			t.Errorf("%s: round trip %s → %s, %v", in, data, back.V, err)
		}
	}
	// A billion laughs is bounded.
	bomb := "v:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		bomb += fmt.Sprintf("  %s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	var doc struct {
		V JSONValue `yaml:"v"`
	}
	if _, err := decodeStrict("v", []byte(bomb), &doc); err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Errorf("billion laughs: %v", err)
	}
}
