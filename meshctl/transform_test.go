package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

func TestSampleBoundMatchesTheAPI(t *testing.T) {
	if maxSample != admin.MaxTransformSample {
		t.Fatalf("meshctl bounds samples to %d, the admin API to %d", maxSample, admin.MaxTransformSample)
	}
}

// transformEdge is a lone edge serving the admin API, with a route that
// maps request bodies and converts XML responses to JSON. Its upstream is
// never called.
func transformEdge(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{ca: pkitest.NewCA(t, td), dir: t.TempDir()}
	edgeID, _ := writeIdentity(t, m.ca, m.dir, "/edge")
	_, m.operator = writeIdentity(t, m.ca, m.dir, "/ops")
	_, m.viewer = writeIdentity(t, m.ca, m.dir, "/viewer")
	_, m.stranger = writeIdentity(t, m.ca, m.dir, "/stranger")
	m.edge = startNode(t, m.dir, "edge", edgeID+`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"], viewers: ["spiffe://example.org/viewer"]}}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: orders
    match: {path: {template: "/v1/orders/{id}"}}
    upstream: orders
    transform:
      request:
        headers: {set: {X-Order: "order-{path.id}"}}
        body:
          map:
            - {op: rename, path: customer_id, key: customerId}
            - {op: set, path: id, var: path.id}
      response:
        body: {from: xml}
upstreams:
  - {name: orders, endpoints: [{address: "127.0.0.1:1"}]}
`, config.Load, "edge")
	return m
}

func writeSample(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMeshctlTransformTest(t *testing.T) {
	m := transformEdge(t)
	order := writeSample(t, m.dir, "order.json", `{"customer_id": 7, "qty": 2}`)

	// The request side, as a viewer: the request as it would be forwarded.
	out, err := m.meshctl(t, m.viewer, "transform", "test", "orders", "-f", order, "--path", "/v1/orders/42?page=1", "-H", "Accept: application/json, text/plain")
	if err != nil {
		t.Fatalf("request side: %v\n%s", err, out)
	}
	for _, want := range []string{"# route orders: request side applied\n", "POST /v1/orders/42?page=1\n", "Accept: application/json, text/plain\n",
		"Content-Type: application/json\n", "X-Order: order-42\n", "\n\n" + `{"customerId":7,"qty":2,"id":"42"}` + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("request side: no %q in\n%s", want, out)
		}
	}

	if n := strings.Count(out, "Accept:"); n != 1 {
		t.Errorf("request side: Accept %d times (-H is given once)\n%s", n, out)
	}
	// The response side, -o json: XML from the upstream, JSON to the client.
	xml := writeSample(t, m.dir, "order.xml", `<order id="7"><customer>acme</customer></order>`)
	out, err = m.meshctl(t, m.viewer, "transform", "test", "orders", "-f", xml, "--response", "--status", "201", "--path", "/v1/orders/7", "-o", "json")
	if err != nil {
		t.Fatalf("response side: %v\n%s", err, out)
	}
	var r struct {
		Outcome string `json:"outcome"`
		Status  int    `json:"status"`
		Body    []byte `json:"body"` // base64, as protojson writes bytes
		Headers []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("response side -o json: %v\n%s", err, out)
	}
	if r.Outcome != "response" || r.Status != 201 || string(r.Body) != `{"order":{"-id":"7","customer":"acme"}}` {
		t.Fatalf("response side -o json: %+v\n%s", r, out)
	}
	// In text.
	out, err = m.meshctl(t, m.viewer, "transform", "test", "orders", "-f", xml, "--response", "--path", "/v1/orders/7")
	if err != nil || !strings.Contains(out, "HTTP/1.1 200 OK\n") || !strings.Contains(out, "Content-Type: application/json\n") ||
		!strings.Contains(out, `{"order":{"-id":"7","customer":"acme"}}`) {
		t.Fatalf("response side: %v\n%s", err, out)
	}

	// An invalid sample: printed as the gateway would answer; exit 1.
	bad := writeSample(t, m.dir, "bad.json", `{"customer_id": 7,}`)
	out, err = m.meshctl(t, m.viewer, "transform", "test", "orders", "-f", bad, "--path", "/v1/orders/42")
	var ec cli.ExitCoder
	if err == nil || !strings.Contains(err.Error(), "would answer 400 invalid_body: invalid request body: invalid JSON") || !asExit(err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("invalid sample: %v\n%s", err, out)
	}
	if !strings.Contains(out, "HTTP/1.1 400 Bad Request\n") || !strings.Contains(out, `"error":"invalid request body: invalid JSON`) {
		t.Fatalf("invalid sample printed:\n%s", out)
	}
	badXML := writeSample(t, m.dir, "bad.xml", `<order><id>7</order>`)
	if out, err = m.meshctl(t, m.viewer, "transform", "test", "orders", "-f", badXML, "--response", "--path", "/v1/orders/7"); err == nil ||
		!strings.Contains(out, "HTTP/1.1 502 Bad Gateway\n") || !strings.Contains(err.Error(), "bad_upstream_body") {
		t.Fatalf("invalid response sample: %v\n%s", err, out)
	}

	// A route tried before it is applied (from stdin: the sample).
	route := writeSample(t, m.dir, "route.yaml", "name: orders\nlisteners: [public]\nmatch: {path: {prefix: /v2/orders}}\nupstream: orders\n"+
		"transform:\n  request:\n    body: {deny: [secret]}\n")
	stdin = strings.NewReader(`{"a": 1, "secret": 2}`)
	defer func() { stdin = os.Stdin }()
	out, err = m.meshctl(t, m.viewer, "transform", "test", "--route-file", route, "-f", "-")
	if err != nil || !strings.Contains(out, "POST /v2/orders\n") || !strings.Contains(out, `{"a":1}`) {
		t.Fatalf("--route-file: %v\n%s", err, out)
	}

	// Mistakes: caught before sending, or named by the node.
	big := filepath.Join(m.dir, "big.json")
	if err := os.WriteFile(big, make([]byte, maxSample+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orders", "-f", big, "--path", "/v1/orders/1"}, "more than meshctl sends"},
		{[]string{"orders", "--status", "500", "--path", "/v1/orders/1"}, "go with --response"},
		{[]string{"orders", "-H", "nocolon", "--path", "/v1/orders/1"}, "want 'Name: value'"},
		{[]string{"ordrs", "--path", "/x"}, "did you mean orders"},
		{[]string{}, "usage: meshctl transform test"},
	} {
		if _, err := m.meshctl(t, m.viewer, append([]string{"transform", "test"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// Only viewers and operators may.
	if _, err = m.meshctl(t, m.stranger, "transform", "test", "orders", "-f", order, "--path", "/v1/orders/1"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("stranger: %v", err)
	}
}

func asExit(err error, ec *cli.ExitCoder) bool {
	e, ok := err.(cli.ExitCoder)
	*ec = e
	return ok
}
