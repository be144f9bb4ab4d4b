package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/node"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// mesh is an edge and two sidecars of "orders" (v1, v2) in one cluster,
// the edge serving the admin API.
type mesh struct {
	edge     *node.Node
	edgeID   string // the edge's identity section
	public   string
	ca       *pkitest.CA
	dir      string
	operator []string // meshctl flags of the operator identity
	viewer   []string
	stranger []string
}

func writeIdentity(t *testing.T, ca *pkitest.CA, dir, path string) (string, []string) {
	t.Helper()
	d := filepath.Join(dir, strings.Trim(strings.ReplaceAll(path, "/", "-"), "-"))
	if err := pki.WriteSVID(d, ca.SVID(t, ca.ID(t, path)), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	c, k, b := filepath.Join(d, pki.SVIDCertFile), filepath.Join(d, pki.SVIDKeyFile), filepath.Join(d, pki.SVIDBundleFile)
	return fmt.Sprintf("identity: {files: {cert_file: %q, key_file: %q, bundle_file: %q}}\n", c, k, b),
		[]string{"--cert", c, "--key", k, "--bundle", b}
}

func startNode(t *testing.T, dir, name, yaml string, load func(string) (*config.Config, error), role string) *node.Node {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{ConfigPath: path, Load: load, Role: role,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

const fastCluster = "gossip_interval: 50ms, probe_interval: 200ms, push_pull_interval: 2s"

// edgeRoutes are an edge's listener, route and upstream.
const edgeRoutes = `
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: orders, match: {path: {prefix: /}}, upstream: orders, rate_limit: {requests: 100000, window: 1m}}
upstreams:
  - {name: orders, service: {name: orders}, breaker: {consecutive_failures: 5}}
`

func startMesh(t *testing.T) *mesh { return startMeshWith(t, nil) }

// startMeshWith starts the mesh; failing subsets answer 500.
func startMeshWith(t *testing.T, failing map[string]bool) *mesh {
	t.Helper()
	m := &mesh{ca: pkitest.NewCA(t, td), dir: t.TempDir()}
	m.edgeID, _ = writeIdentity(t, m.ca, m.dir, "/edge")
	_, m.operator = writeIdentity(t, m.ca, m.dir, "/ops")
	_, m.viewer = writeIdentity(t, m.ca, m.dir, "/viewer")
	_, m.stranger = writeIdentity(t, m.ca, m.dir, "/stranger")
	m.edge = startNode(t, m.dir, "edge", m.edgeID+`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"], viewers: ["spiffe://example.org/viewer"]}}
cluster: {bind: "127.0.0.1:0", `+fastCluster+`}
`+edgeRoutes, config.Load, "edge")
	m.public = "http://" + m.edge.Addr("public")
	for _, v := range []string{"v1", "v2"} {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing[v] {
				http.Error(w, v+" is broken", 500)
				return
			}
			fmt.Fprint(w, v)
		}))
		t.Cleanup(app.Close)
		id, _ := writeIdentity(t, m.ca, m.dir, "/orders-"+v)
		startNode(t, m.dir, "orders-"+v, id+fmt.Sprintf(`
log: {access: "off"}
cluster: {bind: "127.0.0.1:0", join: [%q], %s}
service: {name: orders, subset: %s, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
`, m.edge.Cluster().Addr(), fastCluster, v, strings.TrimPrefix(app.URL, "http://")), config.LoadSidecar, "sidecar")
	}
	waitFor(t, "the edge discovers both sidecars", func() bool {
		return len(m.edge.Cluster().Service("orders", "").Endpoints()) == 2
	})
	return m
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// meshctl runs the CLI in-process as the identity given by flags.
func (m *mesh) meshctl(t *testing.T, id []string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	full := append(append([]string{"meshctl", "--admin", m.edge.AdminAPIAddr()}, id...), args...)
	err := run(full)
	return out.String(), err
}

func (m *mesh) share(t *testing.T, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for i := 0; i < n; i++ {
		resp, err := client.Get(m.public + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(b)]++
	}
	return seen
}

func TestMeshctlAgainstALiveMesh(t *testing.T) {
	m := startMesh(t)

	out, err := m.meshctl(t, m.viewer, "members")
	if err != nil || strings.Count(out, "alive") != 3 || !strings.Contains(out, "orders") {
		t.Fatalf("members: %v\n%s", err, out)
	}
	// App health is a sidecar's; the edge fronts no app.
	for _, want := range []string{`(?m)^\S+\s+alive\s+edge\s+-\s+-\s+-\s+-\s+spiffe://example.org/edge$`,
		`(?m)^\S+\s+alive\s+sidecar\s+orders\s+v1\s+\S+\s+true\s+spiffe://example.org/orders-v1$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("members: no line matching %s in\n%s", want, out)
		}
	}
	out, err = m.meshctl(t, m.viewer, "members", "-o", "json")
	if err != nil || !strings.Contains(out, `"spiffe_id": "spiffe://example.org/orders-v2"`) {
		t.Fatalf("members -o json: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.viewer, "routes", "list"); err != nil || !strings.Contains(out, "orders") || !strings.Contains(out, "file") {
		t.Fatalf("routes list: %v\n%s", err, out)
	}
	if _, err = m.meshctl(t, m.viewer, "routes", "get", "ordrs"); err == nil || !strings.Contains(err.Error(), `did you mean orders`) {
		t.Fatalf("unknown route: %v", err)
	}

	// Permission: a viewer may not change anything; a stranger may not read.
	_, err = m.meshctl(t, m.viewer, "traffic", "shift", "orders", "--to", "v2", "--weight", "10")
	if err == nil || !strings.Contains(err.Error(), "permission denied for spiffe://example.org/viewer") {
		t.Fatalf("viewer shifting traffic: %v", err)
	}
	if _, err = m.meshctl(t, m.stranger, "members"); err == nil || !strings.Contains(err.Error(), "spiffe://example.org/stranger") {
		t.Fatalf("stranger reading: %v", err)
	}

	// What get -o yaml prints, apply takes back unchanged.
	out, err = m.meshctl(t, m.viewer, "routes", "get", "orders", "-o", "yaml")
	if err != nil || strings.Contains(out, "(file") || strings.Contains(out, ": null") || strings.Contains(out, "origin:") ||
		!strings.HasPrefix(out, "name: orders\n") {
		t.Fatalf("routes get -o yaml: %v\n%s", err, out)
	}
	if regexp.MustCompile(`(?m): (""|\[\]|\{\}|0)$`).MatchString(out) {
		t.Errorf("routes get -o yaml prints empty fields:\n%s", out)
	}
	saved := filepath.Join(m.dir, "orders.yaml")
	os.WriteFile(saved, []byte(out), 0o644)
	if applied, err := m.meshctl(t, m.operator, "routes", "apply", "-f", saved); err != nil {
		t.Fatalf("routes apply -f of get -o yaml: %v\n%s\n%s", err, applied, out)
	}
	if again, err := m.meshctl(t, m.viewer, "routes", "get", "orders", "-o", "yaml"); err != nil || again != out {
		t.Fatalf("after the round trip: %v\n%s\nwant\n%s", err, again, out)
	}
	if out, err = m.meshctl(t, m.viewer, "routes", "get", "orders"); err != nil || !strings.HasPrefix(out, "# route orders: cluster, version ") {
		t.Fatalf("routes get: %v\n%s", err, out)
	}

	// A bad file is reported at its line before anything is sent.
	bad := filepath.Join(m.dir, "bad-route.yaml")
	os.WriteFile(bad, []byte("name: x\nlisteners: [public]\nupstream: orders\nmatchh: {}\n"), 0o644)
	if _, err = m.meshctl(t, m.operator, "routes", "apply", "-f", bad); err == nil || !strings.Contains(err.Error(), bad+":4:1") {
		t.Fatalf("bad file: %v", err)
	}

	// A subset no live sidecar serves is refused, naming those that exist:
	// a shift to it would only turn requests into 503s.
	_, err = m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v3", "--weight", "10")
	if err == nil || !strings.Contains(err.Error(), `service orders has no live endpoint in subset "v3" (subsets: v1, v2)`) ||
		!strings.Contains(err.Error(), "--allow-empty") {
		t.Fatalf("shift to an empty subset: %v", err)
	}
	if out, _ := m.meshctl(t, m.viewer, "traffic", "show", "orders"); strings.Contains(out, "v3") {
		t.Fatalf("the refused shift changed the route:\n%s", out)
	}

	// Shift 10% to v2: over 10,000 requests the share is within 2 points.
	if out, err = m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v2", "--weight", "10"); err != nil {
		t.Fatalf("shift: %v\n%s", err, out)
	}
	waitFor(t, "the split reaches the edge's routes", func() bool {
		out, _ := m.meshctl(t, m.viewer, "traffic", "show", "orders")
		return strings.Contains(out, "10%") && strings.Contains(out, "90%")
	})
	seen := m.share(t, 10000)
	if share := float64(seen["v2"]) / 100; share < 8 || share > 12 {
		t.Fatalf("after a 10%% shift v2 got %.2f%% of 10,000 requests (%v)", share, seen)
	}
	t.Logf("shift 10: v2 got %.2f%% of 10,000 requests", float64(seen["v2"])/100)
	if _, err = m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v2", "--weight", "100"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "100% to v2", func() bool {
		out, _ := m.meshctl(t, m.viewer, "traffic", "show", "orders")
		return strings.Contains(out, "100%")
	})
	if seen := m.share(t, 1000); seen["v2"] != 1000 {
		t.Fatalf("after a 100%% shift: %v", seen)
	}

	// Tap shows live requests.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			time.Sleep(20 * time.Millisecond)
			if resp, err := http.Get(m.public + "/tapped"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	out, err = m.meshctl(t, m.viewer, "tap", "--count", "3")
	<-done
	if err != nil || strings.Count(out, "/tapped") != 3 {
		t.Fatalf("tap: %v\n%s", err, out)
	}

	// Breakers and limits are listed; an unreachable node is explained.
	if out, err = m.meshctl(t, m.viewer, "breakers", "list"); err != nil || !strings.Contains(out, "closed") {
		t.Fatalf("breakers list: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.viewer, "limits", "list"); err != nil || !strings.Contains(out, "100000") {
		t.Fatalf("limits list: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.operator, "limits", "set", "orders", "--requests", "5000"); err != nil {
		t.Fatalf("limits set: %v\n%s", err, out)
	}
	// The key is chosen; a limit is removed, once.
	if out, err = m.meshctl(t, m.operator, "limits", "set", "orders", "--requests", "5000", "--by", "header:X-Tenant"); err != nil {
		t.Fatalf("limits set --by: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.viewer, "routes", "get", "orders", "-o", "yaml"); err != nil || !strings.Contains(out, "key: header:X-Tenant") {
		t.Fatalf("the limit's key: %v\n%s", err, out)
	}
	if _, err = m.meshctl(t, m.operator, "limits", "set", "orders", "--requests", "5000", "--by", "cookie:x"); err == nil ||
		!strings.Contains(err.Error(), "cookie:x") {
		t.Fatalf("a bad key: %v", err)
	}
	if out, err = m.meshctl(t, m.operator, "limits", "delete", "orders"); err != nil || !strings.Contains(out, "route orders no longer limited") {
		t.Fatalf("limits delete: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.viewer, "routes", "get", "orders", "-o", "yaml"); err != nil || strings.Contains(out, "rate_limit") {
		t.Fatalf("the limit was not removed: %v\n%s", err, out)
	}
	if _, err = m.meshctl(t, m.operator, "limits", "delete", "orders"); err == nil || !strings.Contains(err.Error(), `route "orders" has no rate limit`) {
		t.Fatalf("limits delete again: %v", err)
	}
	if _, err = m.meshctl(t, m.viewer, "limits", "delete", "orders"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a viewer deleting a limit: %v", err)
	}
	// --allow-empty shifts to a subset before its first sidecar joins.
	if out, err = m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v3", "--weight", "10", "--allow-empty"); err != nil ||
		!regexp.MustCompile(`orders\s+orders\s+v3\s+orders-v3\s+10%`).MatchString(out) {
		t.Fatalf("shift --allow-empty: %v\n%s", err, out)
	}
	err = newApp().Run([]string{"meshctl", "--admin", "127.0.0.1:1", "--timeout", "2s", "--cert", m.viewer[1], "--key", m.viewer[3], "--bundle", m.viewer[5], "members"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at 127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
	// Completion offers the names the node knows, for one NAME argument,
	// and nothing (quickly) when the node cannot be asked.
	complete := func(admin string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		app := newApp()
		app.Writer = &out
		full := append(append(append([]string{"meshctl", "--admin", admin}, m.viewer...), args...), "--generate-bash-completion")
		saved := os.Args
		os.Args = full
		defer func() { os.Args = saved }()
		if err := app.Run(interspersed(app, full)); err != nil {
			t.Fatalf("completing %v: %v", args, err)
		}
		return out.String()
	}
	for _, args := range [][]string{{"routes", "get"}, {"routes", "delete"}, {"traffic", "shift"}, {"limits", "delete"}, {"transform", "test"}} {
		if out := complete(m.edge.AdminAPIAddr(), args...); !strings.Contains(out, "orders\n") {
			t.Errorf("completion of %v: %q, want the route orders", args, out)
		}
	}
	if out := complete(m.edge.AdminAPIAddr(), "upstreams", "get"); !strings.Contains(out, "orders\n") {
		t.Errorf("completion of upstreams get: %q", out)
	}
	if out := complete(m.edge.AdminAPIAddr(), "routes", "get", "orders"); strings.Contains(out, "orders") {
		t.Errorf("completion after the NAME: %q", out)
	}
	start := time.Now()
	if out := complete("127.0.0.1:1", "routes", "get"); out != "" || time.Since(start) > 3*time.Second {
		t.Errorf("completion without a node: %q after %s", out, time.Since(start))
	}

	// A port that answers plain HTTP (an admin.address, say) is named
	// for what it is, not blamed on the trust bundle.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	err = newApp().Run([]string{"meshctl", "--admin", strings.TrimPrefix(plain.URL, "http://"), "--timeout", "2s",
		"--cert", m.viewer[1], "--key", m.viewer[3], "--bundle", m.viewer[5], "members"})
	if err == nil || !strings.Contains(err.Error(), "does not speak TLS") || strings.Contains(err.Error(), "trust bundle") {
		t.Fatalf("plain HTTP port: %v", err)
	}
}

// A progressive shift watches the new subset and rolls back when its error
// rate passes the threshold.
func TestProgressiveShiftRollsBack(t *testing.T) {
	m := startMeshWith(t, map[string]bool{"v2": true})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // steady traffic through the edge
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if resp, err := http.Get(m.public + "/x"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	out, err := m.meshctl(t, m.operator, "traffic", "shift", "orders", "--to", "v2", "--steps", "20,50,100",
		"--interval", "4s", "--min-requests", "10", "--max-error-rate", "0.05")
	close(stop)
	<-done
	if err == nil || !strings.Contains(err.Error(), "rolled back orders to 0% for v2: error rate") {
		t.Fatalf("shift to a failing subset: %v\n%s", err, out)
	}
	if !strings.Contains(out, "step 1/3: 20%") || strings.Contains(out, "step 2/3") {
		t.Fatalf("steps taken:\n%s", out)
	}
	out, err = m.meshctl(t, m.viewer, "traffic", "show", "orders")
	if err != nil || strings.Contains(out, "v2") && !strings.Contains(out, "0%") {
		t.Fatalf("after the rollback: %v\n%s", err, out)
	}
	waitFor(t, "v2 gets nothing", func() bool {
		seen := m.share(t, 200)
		return seen["v1"] == 200
	})
}
