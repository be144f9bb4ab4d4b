package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// bffEdge is a lone edge serving the admin API with two Backend-for-Frontend
// groups (mobile by header, web by path prefix) and a route of neither. Its
// upstream is never called.
func bffEdge(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{ca: pkitest.NewCA(t, td), dir: t.TempDir()}
	edgeID, _ := writeIdentity(t, m.ca, m.dir, "/edge")
	_, m.viewer = writeIdentity(t, m.ca, m.dir, "/viewer")
	m.edge = startNode(t, m.dir, "edge", edgeID+`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", viewers: ["spiffe://example.org/viewer"]}}
listeners: [{name: public, address: "127.0.0.1:0"}]
bff:
  - {name: mobile, headers: [{name: X-Client, exact: mobile}]}
  - {name: web, path_prefix: /web}
routes:
  - {name: mobile-products, bff: mobile, match: {path: {template: "/products/{id}"}}, upstream: catalog}
  - {name: web-products, bff: web, match: {path: {template: "/products/{id}"}}, upstream: catalog}
  - {name: orders, match: {path: {prefix: /orders}}, split: [{upstream: catalog, weight: 90}, {upstream: catalog-v2, weight: 10}]}
upstreams:
  - {name: catalog, endpoints: [{address: "127.0.0.1:1"}]}
  - {name: catalog-v2, endpoints: [{address: "127.0.0.1:1"}]}
`, config.Load, "edge")
	m.public = "http://" + m.edge.Addr("public")
	return m
}

// routes list shows each route's group and what serves it; --bff keeps one
// group's routes, in the table and in JSON.
func TestRoutesListByBFFGroup(t *testing.T) {
	m := bffEdge(t)
	out, err := m.meshctl(t, m.viewer, "routes", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^NAME\s+SERVED BY\s+BFF\s+ORIGIN\s+VERSION$`,
		`(?m)^mobile-products\s+catalog\s+mobile\s+file\b`,
		`(?m)^web-products\s+catalog\s+web\s+file\b`,
		`(?m)^orders\s+split catalog 90, catalog-v2 10\s+-\s+file\b`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("routes list: no line matching %s in\n%s", want, out)
		}
	}
	out, err = m.meshctl(t, m.viewer, "routes", "list", "--bff", "mobile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "mobile-products") || strings.Contains(out, "web-products") || strings.Contains(out, "orders") {
		t.Errorf("routes list --bff mobile:\n%s", out)
	}
	out, err = m.meshctl(t, m.viewer, "-o", "json", "routes", "list", "--bff", "web")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources []struct{ Name string } `json:"resources"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Resources) != 1 || doc.Resources[0].Name != "web-products" {
		t.Errorf("-o json routes list --bff web: %s", out)
	}
	if _, err := m.meshctl(t, m.viewer, "routes", "list", "--bff", "partner"); err == nil || !strings.Contains(err.Error(), `no route of bff group "partner"`) {
		t.Errorf("--bff of a group without routes: %v", err)
	}

	// The groups select: the mobile route by its header, the web route
	// under its prefix (both answer 502 here: the upstream is closed; a
	// route that did not match would be 404).
	for _, tc := range []struct {
		path, client string
		want         int
	}{
		{"/products/7", "mobile", 502},
		{"/products/7", "", 404},
		{"/web/products/7", "", 502},
		{"/web/products/7", "mobile", 502},
	} {
		req, _ := http.NewRequest("GET", m.public+tc.path, nil)
		if tc.client != "" {
			req.Header.Set("X-Client", tc.client)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (X-Client %q): %d, want %d", tc.path, tc.client, resp.StatusCode, tc.want)
		}
	}
}
