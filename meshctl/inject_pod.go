package main

import (
	"path"

	"go.yaml.in/yaml/v3"
)

// Where the sidecar finds its config and its Workload API socket.
const (
	configMount = "/etc/meshgate"
	configFile  = "sidecar.yaml"
	csiMount    = "/spiffe-workload-api" // the SPIFFE CSI driver's examples use this path
	spireMount  = "/run/spire/agent-sockets"
	// The volumes inject adds to a pod.
	configVolume   = "meshgate-sidecar-config"
	identityVolume = "meshgate-spiffe"
)

// The Kubernetes objects inject writes, as the fields it sets (the
// official types would write every empty field, and pull k8s.io/api into
// meshctl: the tests check these against k8s.io/api strictly instead).
type (
	kContainer struct {
		Name            string           `yaml:"name"`
		Image           string           `yaml:"image"`
		Args            []string         `yaml:"args"`
		Ports           []kPort          `yaml:"ports"`
		Env             []kEnv           `yaml:"env"`
		VolumeMounts    []kVolumeMount   `yaml:"volumeMounts"`
		ReadinessProbe  kProbe           `yaml:"readinessProbe"`
		Resources       kResources       `yaml:"resources"`
		SecurityContext kSecurityContext `yaml:"securityContext"`
	}
	kPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	kEnv struct {
		Name      string    `yaml:"name"`
		Value     string    `yaml:"value,omitempty"`
		ValueFrom *kEnvFrom `yaml:"valueFrom,omitempty"`
	}
	kEnvFrom struct {
		FieldRef struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	}
	kVolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	kProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds int `yaml:"periodSeconds"`
	}
	kResources struct {
		Requests map[string]string `yaml:"requests"`
	}
	kSecurityContext struct {
		RunAsNonRoot             bool `yaml:"runAsNonRoot"`
		RunAsUser                int  `yaml:"runAsUser"`
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	}
	kVolume struct {
		Name      string       `yaml:"name"`
		ConfigMap *kConfigMapV `yaml:"configMap,omitempty"`
		CSI       *kCSI        `yaml:"csi,omitempty"`
		HostPath  *kHostPath   `yaml:"hostPath,omitempty"`
	}
	kConfigMapV struct {
		Name string `yaml:"name"`
	}
	kCSI struct {
		Driver   string `yaml:"driver"`
		ReadOnly bool   `yaml:"readOnly"`
	}
	kHostPath struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	}
	kConfigMap struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string            `yaml:"name"`
			Namespace string            `yaml:"namespace,omitempty"`
			Labels    map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
)

// addToPod adds the sidecar container, its volumes, and the outbound
// variables of the app's containers to a pod spec.
func (w *workloadDoc) addToPod(spec *yaml.Node, where, cmName string) error {
	o := w.opts
	containers := get(spec, "containers")
	// The app's containers learn where the sidecar's outbound listeners
	// are; a variable they set themselves wins.
	for i, c := range containers.Content {
		if c.Kind != yaml.MappingNode {
			return w.errorf("%s.containers[%d] is not a mapping", where, i)
		}
		env := o.outboundEnv()
		if len(env) == 0 {
			continue
		}
		list, err := child(c, "env", yaml.SequenceNode, where+".containers[]")
		if err != nil {
			return w.errorf("%v", err)
		}
		have := map[string]bool{}
		for _, e := range list.Content {
			have[str(e, "name")] = true
		}
		for _, kv := range env {
			if !have[kv[0]] {
				list.Content = append(list.Content, nodeOf(kEnv{Name: kv[0], Value: kv[1]}))
			}
		}
	}

	volumes, err := child(spec, "volumes", yaml.SequenceNode, where)
	if err != nil {
		return w.errorf("%v", err)
	}
	for _, v := range volumes.Content {
		if n := str(v, "name"); n == configVolume || n == identityVolume {
			return w.errorf("%s.volumes has a volume named %s already: inject adds its own by that name", where, n)
		}
	}
	idMount := csiMount
	idVolume := kVolume{Name: identityVolume, CSI: &kCSI{Driver: "csi.spiffe.io", ReadOnly: true}}
	if o.identity == identitySpire {
		// The socket's directory, not the socket: an agent that restarts
		// makes a new socket, which a mount of the old file would miss.
		idMount = spireMount
		idVolume = kVolume{Name: identityVolume, HostPath: &kHostPath{Path: path.Dir(o.identityPath), Type: "Directory"}}
	}
	volumes.Content = append(volumes.Content,
		nodeOf(kVolume{Name: configVolume, ConfigMap: &kConfigMapV{Name: cmName}}), nodeOf(idVolume))

	sc := kContainer{
		Name:  sidecarName,
		Image: o.image + ":" + o.version,
		Args:  []string{"--config", configMount + "/" + configFile},
		Ports: []kPort{{"mesh-mtls", inboundPort}, {"mesh-gossip", gossipPort}, {"mesh-admin", adminPort}},
		// The pod's IP, known when it starts, is the address the sidecar
		// advertises to the cluster (config: MESHGATE_CLUSTER_ADVERTISE).
		Env: []kEnv{{Name: "MESHGATE_CLUSTER_ADVERTISE", ValueFrom: &kEnvFrom{}}},
		VolumeMounts: []kVolumeMount{
			{Name: configVolume, MountPath: configMount, ReadOnly: true},
			{Name: identityVolume, MountPath: idMount, ReadOnly: true},
		},
		Resources: kResources{Requests: map[string]string{"cpu": "50m", "memory": "64Mi"}},
		SecurityContext: kSecurityContext{RunAsNonRoot: true, RunAsUser: 65532,
			AllowPrivilegeEscalation: false, ReadOnlyRootFilesystem: true},
	}
	sc.Env[0].ValueFrom.FieldRef.FieldPath = "status.podIP"
	sc.ReadinessProbe.HTTPGet.Path, sc.ReadinessProbe.HTTPGet.Port, sc.ReadinessProbe.PeriodSeconds = "/readyz", "mesh-admin", 5
	sc.SecurityContext.Capabilities.Drop = []string{"ALL"}
	containers.Content = append(containers.Content, nodeOf(sc))
	return nil
}

// configMapYAML is the ConfigMap document that holds a sidecar's config.
func configMapYAML(name, namespace, service string, sidecarYAML []byte) ([]byte, error) {
	var cm kConfigMap
	cm.APIVersion, cm.Kind = "v1", "ConfigMap"
	cm.Metadata.Name, cm.Metadata.Namespace = name, namespace
	cm.Metadata.Labels = map[string]string{"app.kubernetes.io/name": service, "app.kubernetes.io/component": sidecarName,
		"app.kubernetes.io/managed-by": "meshctl-inject"}
	cm.Data = map[string]string{configFile: string(sidecarYAML)}
	return encodeDocument(nodeOf(&cm))
}
