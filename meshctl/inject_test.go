package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files of meshctl inject")

// runInject is `meshctl inject ARGS` with in on stdin.
func runInject(t *testing.T, in string, args ...string) (out, errOut string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr, stdin = &o, &e, strings.NewReader(in)
	defer func() { stdout, stderr, stdin = os.Stdout, os.Stderr, os.Stdin }()
	err = run(append([]string{"meshctl", "inject"}, args...))
	return o.String(), e.String(), err
}

// golden compares got with testdata/inject/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "inject", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./meshctl -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (-update rewrites it):\n%s", name, unifiedDiff(path, "got", []piece{{want, []byte(got)}}))
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "inject", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Each workload kind, and a stream of several documents: the output is the
// golden one, valid for the Kubernetes API and the sidecar's validation,
// and injecting it again changes nothing.
func TestInjectGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"deployment", []string{"--image-version", "1.4.0", "--outbound", "payments", "--outbound", "catalog=16000",
			"--allow", "spiffe://example.org/ns/shop/sa/meshgate-edge", "--edge-id", "spiffe://example.org/ns/shop/sa/meshgate-edge"}},
		{"statefulset", []string{"--image-version", "1.4.0", "--identity", "spire-agent-socket=/run/spire/agent-sockets/agent.sock",
			"--trust-domain", "prod.example.com", "--edge", "edge-gossip.mesh.svc:7946"}},
		{"daemonset", []string{"--image-version", "1.4.0", "--image", "registry.local/mesh/sidecar", "--identity", "csi=agent.sock"}},
		{"pod", []string{"--image-version", "1.4.0", "--subset", "canary", "--outbound", "ledger"}},
		{"multi", []string{"--image-version", "1.4.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := readTestdata(t, tc.name+".yaml")
			out, notes, err := runInject(t, "", append([]string{"-f", filepath.Join("testdata", "inject", tc.name+".yaml")}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, notes)
			}
			golden(t, tc.name+".golden.yaml", out)
			checkKubernetes(t, []byte(out), "Widget")
			if !strings.Contains(notes, "injected: service") {
				t.Errorf("no note of the injection on stderr:\n%s", notes)
			}

			// Idempotent: the output, injected again (from stdin), is itself.
			again, notes, err := runInject(t, out, tc.args...)
			if err != nil || again != out {
				t.Fatalf("injecting twice: %v\n%s", err, unifiedDiff("once", "twice", []piece{{[]byte(out), []byte(again)}}))
			}
			if !strings.Contains(notes, "has a meshgate-sidecar container already") {
				t.Errorf("the second injection does not say it left the workload:\n%s", notes)
			}
			// The input's documents that are no workload are in the output
			// byte for byte.
			for _, c := range splitDocuments([]byte(in)) {
				if doc, _ := parseChunk(c); doc != nil {
					if _, ok := workloadKinds[str(doc.Content[0], "kind")]; !ok || optedOut(get(doc.Content[0], "metadata")) {
						if !strings.Contains(out, c.sep+string(c.body)) {
							t.Errorf("document at line %d is not passed through as it was:\n%s", c.line, c.body)
						}
					}
				}
			}
		})
	}
}

// Fields meshctl does not know and comments of a workload survive.
func TestInjectKeepsUnknownFieldsAndComments(t *testing.T) {
	in := `apiVersion: v1
kind: Pod
metadata:
  name: p # the pod
  labels: {app: orders}
spec:
  # the app
  containers:
    - name: app
      image: x
      ports: [{containerPort: 8080}]
      fromTheFuture: {enabled: true}
`
	out, _, err := runInject(t, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: p # the pod\n", "  # the app\n", "fromTheFuture: {enabled: true}\n", "- name: meshgate-sidecar\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// --dry-run prints a unified diff (golden), which patch(1) would apply
// to give the injected manifests; nothing to change prints nothing.
func TestInjectDryRun(t *testing.T) {
	path := filepath.Join("testdata", "inject", "multi.yaml")
	out, _, err := runInject(t, "", "-f", path, "--image-version", "1.4.0", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "multi.diff", out)
	injected := readTestdata(t, "multi.golden.yaml")
	if got := applyDiff(t, readTestdata(t, "multi.yaml"), out); got != injected {
		t.Fatalf("the diff applied is not the injected stream:\n%s", got)
	}
	out, notes, err := runInject(t, injected, "--dry-run")
	if err != nil || out != "" || !strings.Contains(notes, "nothing to change") {
		t.Fatalf("dry run of injected manifests: %v %q %q", err, out, notes)
	}
}

// applyDiff applies a unified diff to old, as patch(1) would, checking
// every context and removed line.
func applyDiff(t *testing.T, old, diff string) string {
	t.Helper()
	oldLines := splitLines(old)
	var out []string
	next := 0 // the next line of old to copy
	lines := strings.SplitAfter(diff, "\n")
	for i := 2; i < len(lines) && lines[i] != ""; i++ {
		l := lines[i]
		if strings.HasPrefix(l, "@@ ") {
			var a int
			if _, err := fmt.Sscanf(l, "@@ -%d", &a); err != nil {
				t.Fatalf("hunk header %q: %v", l, err)
			}
			if strings.HasPrefix(l, fmt.Sprintf("@@ -%d,0 ", a)) {
				a++ // an empty range names the line before it
			}
			for ; next < a-1; next++ {
				out = append(out, oldLines[next])
			}
			continue
		}
		switch l[0] {
		case ' ', '-':
			if next >= len(oldLines) || oldLines[next] != l[1:] {
				t.Fatalf("the diff's line %q is not the input's line %d", l, next+1)
			}
			if l[0] == ' ' {
				out = append(out, l[1:])
			}
			next++
		case '+':
			out = append(out, l[1:])
		}
	}
	out = append(out, oldLines[next:]...)
	return strings.Join(out, "")
}

// Bad input: an error naming the document and its line, nothing printed.
func TestInjectErrors(t *testing.T) {
	deployment := func(containers string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n" + containers
	}
	for _, tc := range []struct {
		name, in string
		args     []string
		want     string
	}{
		{"not YAML", "apiVersion: v1\nkind: Service\n---\nkind: [oops\n", nil, "stdin: document 2 (line 4): not YAML: yaml: line 4"},
		{"no containers", deployment("      containers: []\n"), nil, "stdin: document 1 (line 1, Deployment web): spec.template.spec.containers is empty"},
		{"no template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n", nil,
			"document 1 (line 1, Deployment web): spec.template is missing or not a mapping"},
		{"no port", deployment("      containers: [{name: app, image: x}]\n"), nil, "declares no containerPort: give the app's port with --app-port"},
		{"sidecar's port", deployment("      containers: [{name: app, image: x}]\n"), []string{"--app-port", "15443"},
			"the app's port 15443 is the sidecar's inbound (mTLS) port"},
		{"not an object", "---\n- a\n- b\n", nil, "stdin: document 1 (line 2): not a Kubernetes object"},
		{"no kind", "metadata: {name: x}\n", nil, "not a Kubernetes object: no kind"},
		{"old apiVersion", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n", nil, `apiVersion "extensions/v1beta1": meshctl inject knows apps/v1 Deployment`},
		{"volume taken", deployment("      containers: [{name: app, image: x, ports: [{containerPort: 80}]}]\n      volumes: [{name: meshgate-spiffe, emptyDir: {}}]\n"), nil,
			"has a volume named meshgate-spiffe already"},
		{"bad service name", deployment("      containers: [{name: app, image: x, ports: [{containerPort: 80}]}]\n"), []string{"--service", "a b"},
			"would not pass the sidecar's validation"},
		{"service for two", deployment("      containers: [{name: app, image: x, ports: [{containerPort: 80}]}]\n") + "---\n" +
			deployment("      containers: [{name: app, image: x, ports: [{containerPort: 80}]}]\n"), []string{"--service", "web"}, "--service names one service, and there are 2 workloads"},
		{"empty", "# nothing\n", nil, "stdin: no YAML document"},
		{"identity", deployment(""), []string{"--identity", "vault"}, "--identity \"vault\": want csi"},
		{"files in k8s", deployment(""), []string{"--identity", "files=/x"}, "files=DIR is for VMs"},
		{"outbound twice", deployment(""), []string{"--outbound", "a", "--outbound", "a=3"}, "each service once"},
		{"image with tag", deployment(""), []string{"--image", "repo/sidecar:1.0"}, "the repository alone"},
	} {
		out, _, err := runInject(t, tc.in, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q", tc.name, out)
		}
	}
}

// --systemd: the unit and the config of one service on a VM (golden); the
// config passes the sidecar's validation; the flags it needs are named.
func TestInjectSystemd(t *testing.T) {
	args := []string{"--systemd", "--service", "orders", "--subset", "v1", "--app-port", "9000", "--address", "192.168.56.11",
		"--edge", "192.168.56.10:7946", "--trust-domain", "demo.meshgate", "--outbound", "payments", "--port-offset", "100"}
	out, _, err := runInject(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "systemd.txt", out)
	_, cfg, ok := strings.Cut(out, "### /etc/meshgate/sidecar-orders.yaml\n")
	if !ok {
		t.Fatalf("no config in\n%s", out)
	}
	t.Setenv(config.ClusterAdvertiseEnv, "")
	// With the SVID files where the config says (moved to a directory of
	// the test's), as `sidecar validate` would find them on the VM.
	ids := t.TempDir()
	for _, f := range []string{"svid.pem", "svid_key.pem", "bundle.pem"} {
		if err := os.WriteFile(filepath.Join(ids, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg = strings.ReplaceAll(cfg, "/etc/meshgate/identity/orders/", ids+"/")
	if _, err := config.ParseSidecar("sidecar-orders.yaml", []byte(cfg)); err != nil {
		t.Fatalf("the VM's config does not validate: %v", err)
	}

	dir := t.TempDir()
	if _, _, err := runInject(t, "", append(args, "--identity", "spire-agent-socket=/run/spire/agent.sock", "--out", dir)...); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "sidecar-orders.yaml"))
	if err != nil || !strings.Contains(string(written), "workload_api: unix:///run/spire/agent.sock\n") {
		t.Fatalf("--out: %v\n%s", err, written)
	}
	if _, err := os.Stat(filepath.Join(dir, "meshgate-sidecar-orders.service")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--systemd", "--service", "orders"}, "--app-port, --address required"},
		{[]string{"--systemd", "--service", "orders", "--app-port", "9000", "--address", "0.0.0.0"}, "the VM's IP"},
		{[]string{"--systemd", "--identity", "csi"}, "on a VM use files=DIR"},
		{[]string{"--port-offset", "100"}, "--port-offset goes with --systemd"},
		{[]string{"--address", "10.0.0.1"}, "--address goes with --systemd"},
	} {
		if _, _, err := runInject(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
