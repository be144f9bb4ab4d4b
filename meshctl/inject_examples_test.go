package main

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshgate/meshgate/internal/config"
)

// exampleArgs are the flags demo/k8s/orders.yaml names for making
// orders-injected.yaml.
var exampleArgs = []string{"--image-version", "1.0.0",
	"--allow", "spiffe://example.org/ns/demo/sa/meshgate-edge", "--edge-id", "spiffe://example.org/ns/demo/sa/meshgate-edge"}

// The Kubernetes examples decode strictly, the edge's config validates, and
// injecting the plain service gives the injected one (run with -update to
// rewrite it after a change of inject).
func TestKubernetesExamples(t *testing.T) {
	dir := filepath.Join("..", "demo", "k8s")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edge := read("edge.yaml")
	checkKubernetes(t, edge)
	checkKubernetes(t, read("orders.yaml"))
	checkKubernetes(t, read("orders-injected.yaml"))

	t.Setenv(config.ClusterAdvertiseEnv, "10.1.2.3")
	for _, c := range splitDocuments(edge) {
		var cm corev1.ConfigMap
		if doc, _ := parseChunk(c); doc == nil || str(doc.Content[0], "kind") != "ConfigMap" {
			continue
		}
		if err := yaml.Unmarshal(c.body, &cm); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse("edge.yaml", []byte(cm.Data["edge.yaml"])); err != nil {
			t.Fatalf("the edge's config does not validate: %v", err)
		}
	}

	out, _, err := runInject(t, "", append([]string{"-f", filepath.Join(dir, "orders.yaml")}, exampleArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	injected := filepath.Join(dir, "orders-injected.yaml")
	if *update {
		if err := os.WriteFile(injected, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := read("orders-injected.yaml"); out != string(want) {
		t.Fatalf("injecting orders.yaml does not give orders-injected.yaml (-update rewrites it):\n%s",
			unifiedDiff(injected, "got", []piece{{want, []byte(out)}}))
	}
}
