package admin

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

const transformFile = `
listeners: [{name: public, address: "127.0.0.1:0"}]
auth: {api_keys: [{name: keys, header: X-Api-Key}]}
consumers:
  - {name: acme, tier: free}
tiers:
  - {name: free, limits: [{requests: 10, window: 1m}]}
routes:
  - name: orders
    match: {path: {template: "/v1/orders/{id}"}}
    upstream: b
    auth: {methods: [keys]}
    transform:
      request:
        headers:
          set: {X-Order: "order-{path.id}", X-Who: "{consumer}/{tier}"}
        query:
          rename: {cust: customer}
        body:
          map:
            - {op: rename, path: customer_id, key: customerId}
            - {op: set, path: id, var: path.id}
      response:
        body: {from: xml}
  - name: plain
    match: {path: {prefix: /plain}}
    upstream: b
upstreams: [{name: b, endpoints: [{address: "127.0.0.1:1"}]}]
`

func headerValue(h []*adminv1.HeaderField, name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

func TestTransformTest(t *testing.T) {
	ops, viewer, audit := startAPI(t, transformFile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jsonType := []*adminv1.HeaderField{{Name: "Content-Type", Value: "application/json"}}

	// The request side, as a viewer: the request as it would be forwarded.
	r, err := viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/42?cust=7&page=1",
		RequestHeaders: jsonType, Body: []byte(`{"customer_id": 7, "qty": 2}`), Consumer: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != "request" || r.Method != "POST" || r.Path != "/v1/orders/42?customer=7&page=1" ||
		string(r.Body) != `{"customerId":7,"qty":2,"id":"42"}` || r.BodySize != int64(len(r.Body)) {
		t.Fatalf("request side: %v", r)
	}
	if headerValue(r.Headers, "X-Order") != "order-42" || headerValue(r.Headers, "X-Who") != "acme/free" ||
		headerValue(r.Headers, "Content-Type") != "application/json" || headerValue(r.Headers, "Content-Length") != "34" {
		t.Fatalf("request side headers: %v", r.Headers)
	}
	if len(r.Results) != 1 || r.Results[0].Side != "request" || r.Results[0].Result != "applied" {
		t.Fatalf("request side results: %v", r.Results)
	}

	// The response side: XML from the upstream, JSON for the client.
	r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Response: true, Path: "/v1/orders/7",
		ResponseHeaders: []*adminv1.HeaderField{{Name: "Content-Type", Value: "application/xml"}, {Name: "ETag", Value: `"v7"`}},
		Body:            []byte(`<order id="7"><customer>acme</customer></order>`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != "response" || r.Status != 200 || string(r.Body) != `{"order":{"-id":"7","customer":"acme"}}` ||
		headerValue(r.Headers, "Content-Type") != "application/json" || headerValue(r.Headers, "Etag") != `W/"v7"` {
		t.Fatalf("response side: %v", r)
	}
	if len(r.Results) != 1 || r.Results[0].Result != "applied" {
		t.Fatalf("response side results: %v", r.Results)
	}
	// Another status goes through the same conversion.
	r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Response: true, Path: "/v1/orders/7", Status: 404,
		Body: []byte(`<error>no such order</error>`)})
	if err != nil || r.Status != 404 || string(r.Body) != `{"error":"no such order"}` {
		t.Fatalf("a 404: %v %v", r, err)
	}

	// An invalid sample: the error the client would get, with its reason.
	r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/42",
		RequestHeaders: jsonType, Body: []byte(`{"customer_id": 7,}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != "error" || r.Status != 400 || r.Error != "invalid_body" || !strings.HasPrefix(r.Reason, "invalid request body: invalid JSON at offset") ||
		!strings.Contains(string(r.Body), `"error":"invalid request body: invalid JSON`) || headerValue(r.Headers, "Content-Type") != "application/json" {
		t.Fatalf("invalid request sample: %v", r)
	}
	if len(r.Results) != 1 || r.Results[0].Result != "failed" {
		t.Fatalf("invalid request sample results: %v", r.Results)
	}
	r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Response: true, Path: "/v1/orders/7",
		Body: []byte(`<order><id>7</order>`)})
	if err != nil || r.Outcome != "error" || r.Status != 502 || r.Error != "bad_upstream_body" || !strings.Contains(string(r.Body), "invalid upstream body") {
		t.Fatalf("invalid response sample: %v %v", r, err)
	}

	// A route given as YAML is tried before it is applied; it is checked
	// as applying it would be.
	route := `name: orders
listeners: [public]
match: {path: {prefix: /v2/orders}}
upstream: b
transform:
  request:
    body: {deny: [secret]}
`
	r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{RouteYaml: route, Body: []byte(`{"a":1,"secret":2}`)})
	if err != nil || r.Outcome != "request" || r.Path != "/v2/orders" || string(r.Body) != `{"a":1}` {
		t.Fatalf("route YAML: %v %v", r, err)
	}
	if _, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{RouteYaml: strings.Replace(route, "upstream: b", "upstream: nope", 1)}); codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("route YAML to an unknown upstream: %v", err)
	}
	if _, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "plain", RouteYaml: route}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("route YAML of another name: %v", err)
	}
	// The effective route is unchanged.
	if r, err = viewer.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/1", Body: []byte(`{"secret":2}`)}); err != nil || string(r.Body) != `{"secret":2,"id":"1"}` {
		t.Fatalf("after a route YAML: %v %v", r, err)
	}

	// Mistakes are the caller's: unknown route, no transform, bad sample.
	for _, tc := range []struct {
		req  *adminv1.TransformTestRequest
		code codes.Code
		want string
	}{
		{&adminv1.TransformTestRequest{Route: "ordrs"}, codes.NotFound, "did you mean orders"},
		{&adminv1.TransformTestRequest{Route: "plain"}, codes.FailedPrecondition, "has no transform"},
		{&adminv1.TransformTestRequest{Route: "orders"}, codes.InvalidArgument, "give the sample's path"},
		{&adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/1", Response: true, Status: 99}, codes.InvalidArgument, "200..599"},
		{&adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/1", RequestHeaders: []*adminv1.HeaderField{{Name: "Bad Name", Value: "x"}}}, codes.InvalidArgument, "not a header name"},
		{&adminv1.TransformTestRequest{Route: "orders", Path: "/v1/orders/1", Body: make([]byte, MaxTransformSample+1)}, codes.InvalidArgument, "at most"},
	} {
		if _, err := viewer.TransformTest(ctx, tc.req); codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %v %q", tc.req.Route, err, tc.code, tc.want)
		}
	}
	// A path the route does not match is run, with a note.
	if r, err = ops.TransformTest(ctx, &adminv1.TransformTestRequest{Route: "orders", Path: "/elsewhere", Body: []byte(`{}`)}); err != nil ||
		len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "does not match") {
		t.Fatalf("a path the route does not match: %v %v", r, err)
	}
	// A dry run is no change: nothing audited.
	if strings.Contains(audit.String(), "TransformTest") {
		t.Fatalf("audit log:\n%s", audit)
	}
}
