package main

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshgate/meshgate/internal/config"
)

// The official Kubernetes types check what inject writes, in the tests
// only: in meshctl they would add k8s.io/api's many MB for a check of
// fields meshctl writes itself.

// checkKubernetes decodes every document of a stream strictly (no unknown
// field, every type right) with k8s.io/api's types, checks the pods'
// references (mounts name volumes, names unique), and checks each
// sidecar ConfigMap's config with the sidecar's validation. Kinds it does
// not know must be in passThrough.
func checkKubernetes(t *testing.T, stream []byte, passThrough ...string) {
	t.Helper()
	t.Setenv(config.ClusterAdvertiseEnv, "10.1.2.3") // what status.podIP gives
	for i, c := range splitDocuments(stream) {
		doc, err := parseChunk(c)
		if err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if doc == nil {
			continue
		}
		kind := str(doc.Content[0], "kind")
		var pod *corev1.PodSpec
		var obj any
		var claims []string // a StatefulSet's volumeClaimTemplates: volumes too
		switch kind {
		case "Deployment":
			var d appsv1.Deployment
			obj, pod = &d, &d.Spec.Template.Spec
		case "StatefulSet":
			var s appsv1.StatefulSet
			obj, pod = &s, &s.Spec.Template.Spec
		case "DaemonSet":
			var s appsv1.DaemonSet
			obj, pod = &s, &s.Spec.Template.Spec
		case "Pod":
			var p corev1.Pod
			obj, pod = &p, &p.Spec
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Service":
			obj = &corev1.Service{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Namespace":
			obj = &corev1.Namespace{}
		default:
			if !contains(passThrough, kind) {
				t.Fatalf("document %d: kind %q: not checked", i+1, kind)
			}
			continue
		}
		if err := yaml.UnmarshalStrict(c.body, obj); err != nil {
			t.Fatalf("document %d (%s): not a valid %s: %v\n%s", i+1, kind, kind, err, c.body)
		}
		if s, ok := obj.(*appsv1.StatefulSet); ok {
			for _, c := range s.Spec.VolumeClaimTemplates {
				claims = append(claims, c.Name)
			}
		}
		if pod != nil {
			if err := checkPodSpec(pod, claims); err != nil {
				t.Fatalf("document %d (%s): %v", i+1, kind, err)
			}
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && strings.HasSuffix(cm.Name, "-"+sidecarName) {
			if _, err := config.ParseSidecar(cm.Name+"/sidecar.yaml", []byte(cm.Data[configFile])); err != nil {
				t.Fatalf("document %d: the sidecar config of ConfigMap %s does not validate: %v\n%s", i+1, cm.Name, err, cm.Data[configFile])
			}
		}
	}
}

// checkPodSpec is the part of the API server's validation that inject
// could get wrong: unique names, mounts of declared volumes, named ports
// that exist.
func checkPodSpec(p *corev1.PodSpec, claims []string) error {
	volumes := map[string]bool{}
	for _, c := range claims {
		volumes[c] = true
	}
	for _, v := range p.Volumes {
		if volumes[v.Name] {
			return fmt.Errorf("volume %s twice", v.Name)
		}
		volumes[v.Name] = true
	}
	names, ports := map[string]bool{}, map[string]bool{}
	for _, c := range p.Containers {
		if names[c.Name] {
			return fmt.Errorf("container %s twice", c.Name)
		}
		names[c.Name] = true
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				return fmt.Errorf("container %s mounts %s, which is no volume", c.Name, m.Name)
			}
		}
		for _, port := range c.Ports {
			if port.Name == "" {
				continue
			}
			if len(port.Name) > 15 || ports[port.Name] {
				return fmt.Errorf("port name %q: too long or twice", port.Name)
			}
			ports[port.Name] = true
		}
		if pr := c.ReadinessProbe; pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
			return fmt.Errorf("container %s probes port %q, which it does not name", c.Name, pr.HTTPGet.Port.StrVal)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
