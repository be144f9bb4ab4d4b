package main

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/buildinfo"
	"github.com/meshgate/meshgate/internal/config"
)

// The ports of an injected sidecar, the same in every pod of the mesh (an
// app that uses one of them is refused, by name). On a VM, where several
// sidecars share the host, --port-offset moves them all.
const (
	inboundPort  = 15443 // mTLS, what other meshgate nodes dial
	adminPort    = 15020 // /healthz, /readyz, /metrics
	outboundPort = 15001 // the Host-routed outbound listener
	gossipPort   = 7946  // the cluster (memberlist's usual port)
	// firstOutboundPort is where --outbound SERVICE (without =PORT) ports
	// start, one per service in the order given.
	firstOutboundPort = 15002
)

// Identity sources (--identity).
const (
	identityCSI   = "csi"                // the SPIFFE CSI driver (Kubernetes)
	identitySpire = "spire-agent-socket" // a SPIRE agent's socket on the node
	identityFiles = "files"              // PEM files (VMs: meshctl pki issue)
)

// injectOptions are the flags of `meshctl inject`.
type injectOptions struct {
	image, version  string
	service, subset string
	appPort         int
	edge            string // the cluster's seed: host:port
	trustDomain     spiffeid.TrustDomain
	identity        string // identityCSI, identitySpire or identityFiles
	identityPath    string // the socket's name (csi), path (spire) or dir (files)
	allow           []string
	edgeIDs         []string // whose X-Meshgate-Consumer the service believes
	outbound        []outboundService
	// VMs (--systemd): the host's address, the unit the app runs as, and
	// what is added to every port of the sidecar.
	address, appUnit string
	portOffset       int
}

// port is one of the sidecar's ports, moved by --port-offset.
func (o *injectOptions) port(base int) int { return base + o.portOffset }

type outboundService struct {
	name string
	port int
}

// defaultImageVersion is the sidecar image's tag when --image-version is
// not given: meshctl's own version, so that a released meshctl injects the
// sidecar it was released with; "latest" for a development build.
func defaultImageVersion() string {
	if v := buildinfo.Version; v != "" && v != "dev" {
		return v
	}
	return "latest"
}

// parseIdentity reads --identity: csi[=SOCKET], spire-agent-socket=PATH or
// files=DIR.
func parseIdentity(v string, systemd bool) (kind, arg string, err error) {
	kind, arg, _ = strings.Cut(v, "=")
	switch kind {
	case identityCSI:
		if systemd {
			return "", "", fmt.Errorf("--identity csi is the Kubernetes CSI driver's: on a VM use files=DIR or spire-agent-socket=PATH")
		}
		if arg == "" {
			arg = "spire-agent.sock" // the SPIRE agent's, in the directory the driver mounts
		}
		if strings.Contains(arg, "/") {
			return "", "", fmt.Errorf("--identity csi=%s: the socket's file name in the driver's directory, not a path", arg)
		}
	case identitySpire:
		if !path.IsAbs(arg) || path.Clean(arg) != arg || arg == "/" {
			return "", "", fmt.Errorf("--identity spire-agent-socket=PATH: PATH is the agent's socket on the node, an absolute path (got %q)", arg)
		}
	case identityFiles:
		if !systemd {
			return "", "", fmt.Errorf("--identity files=DIR is for VMs (--systemd); in Kubernetes use csi or spire-agent-socket=PATH")
		}
		if arg != "" && !path.IsAbs(arg) {
			return "", "", fmt.Errorf("--identity files=DIR: DIR must be absolute (got %q)", arg)
		}
	default:
		return "", "", fmt.Errorf("--identity %q: want csi, spire-agent-socket=PATH or files=DIR", v)
	}
	return kind, arg, nil
}

// parseOutbound reads --outbound SERVICE[=PORT] flags; a service without a
// port gets the next free one from firstOutboundPort.
func parseOutbound(values []string, first int) ([]outboundService, error) {
	var out []outboundService
	used := map[int]string{}
	seen := map[string]bool{}
	for _, v := range values {
		name, p, hasPort := strings.Cut(v, "=")
		if name == "" || seen[name] {
			return nil, fmt.Errorf("--outbound %q: want SERVICE or SERVICE=PORT, each service once", v)
		}
		seen[name] = true
		s := outboundService{name: name}
		if hasPort {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--outbound %q: the port must be 1..65535", v)
			}
			s.port = n
		}
		out = append(out, s)
		if s.port != 0 {
			if other, ok := used[s.port]; ok {
				return nil, fmt.Errorf("--outbound: port %d is given to both %s and %s", s.port, other, name)
			}
			used[s.port] = name
		}
	}
	next := first
	for i := range out {
		if out[i].port != 0 {
			continue
		}
		for used[next] != "" {
			next++
		}
		out[i].port, used[next] = next, out[i].name
	}
	return out, nil
}

// sidecarFile is the part of the sidecar's YAML (config.Sidecar) that
// inject writes. config.Sidecar itself has no omitempty: written out, it
// would spell every default.
type sidecarFile struct {
	Admin struct {
		Address string `yaml:"address"`
	} `yaml:"admin"`
	Identity struct {
		WorkloadAPI string       `yaml:"workload_api,omitempty"`
		Files       *filesConfig `yaml:"files,omitempty"`
	} `yaml:"identity"`
	Service struct {
		Name   string `yaml:"name"`
		Subset string `yaml:"subset,omitempty"`
		App    string `yaml:"app"`
	} `yaml:"service"`
	Inbound struct {
		Address   string   `yaml:"address"`
		Allow     []string `yaml:"allow,omitempty"`
		Consumers *struct {
			Trusted []string `yaml:"trusted"`
		} `yaml:"consumers,omitempty"`
	} `yaml:"inbound"`
	Outbound *struct {
		Address string       `yaml:"address"`
		Ports   []portConfig `yaml:"ports,omitempty"`
	} `yaml:"outbound,omitempty"`
	Services []struct {
		Name string `yaml:"name"`
	} `yaml:"services,omitempty"`
	Cluster struct {
		Bind      string   `yaml:"bind"`
		Advertise string   `yaml:"advertise,omitempty"`
		Join      []string `yaml:"join"`
		Allow     []string `yaml:"allow"`
	} `yaml:"cluster"`
}

type filesConfig struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	BundleFile string `yaml:"bundle_file"`
}

type portConfig struct {
	Service string `yaml:"service"`
	Address string `yaml:"address"`
}

// sidecarSpec is what differs between the sidecars inject writes.
type sidecarSpec struct {
	name, subset string
	appPort      int
	// host is the address the sidecar binds: a pod's every interface (its
	// IP comes from the environment), a VM's --address. adminHost is the
	// admin listener's: a pod's kubelet probes it from outside the pod.
	host, adminHost string
	workloadAPI     string // the identity: a Workload API socket,
	files           *filesConfig
	header          string // comment lines on top
}

// sidecarConfig writes the sidecar's YAML and checks it with the sidecar's
// own validation.
func sidecarConfig(o *injectOptions, sp sidecarSpec) ([]byte, error) {
	host := sp.host
	var f sidecarFile
	f.Admin.Address = net.JoinHostPort(sp.adminHost, strconv.Itoa(o.port(adminPort)))
	f.Identity.WorkloadAPI, f.Identity.Files = sp.workloadAPI, sp.files
	f.Service.Name, f.Service.Subset = sp.name, sp.subset
	f.Service.App = net.JoinHostPort("127.0.0.1", strconv.Itoa(sp.appPort))
	f.Inbound.Address = net.JoinHostPort(host, strconv.Itoa(o.port(inboundPort)))
	f.Inbound.Allow = o.allow
	if len(o.edgeIDs) > 0 {
		f.Inbound.Consumers = &struct {
			Trusted []string `yaml:"trusted"`
		}{o.edgeIDs}
	}
	if len(o.outbound) > 0 {
		f.Outbound = &struct {
			Address string       `yaml:"address"`
			Ports   []portConfig `yaml:"ports,omitempty"`
		}{Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port(outboundPort)))}
		for _, s := range o.outbound {
			f.Services = append(f.Services, struct {
				Name string `yaml:"name"`
			}{s.name})
			f.Outbound.Ports = append(f.Outbound.Ports, portConfig{s.name, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))})
		}
	}
	f.Cluster.Bind = net.JoinHostPort(host, strconv.Itoa(o.port(gossipPort)))
	f.Cluster.Join = []string{o.edge}
	f.Cluster.Allow = []string{o.trustDomain.IDString() + "/*"}

	if err := o.checkPorts(sp.appPort); err != nil {
		return nil, err
	}
	body, err := encodeDocument(nodeOf(&f))
	if err != nil {
		return nil, err
	}
	// Checked as the sidecar will check it. A pod's advertised address
	// comes from MESHGATE_CLUSTER_ADVERTISE when it starts: checked here
	// with a stand-in (TEST-NET-1).
	check := f
	if check.Identity.Files != nil {
		// The SVID files are on the VM, not here: `sidecar validate`
		// (the unit's ExecStartPre) checks them there.
		check.Identity.Files, check.Identity.WorkloadAPI = nil, "unix:///run/meshctl-inject-check.sock"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		check.Cluster.Advertise = "192.0.2.1:" + strconv.Itoa(o.port(gossipPort))
	}
	checked, err := encodeDocument(nodeOf(&check))
	if err != nil {
		return nil, err
	}
	if _, err := config.ParseSidecar("sidecar.yaml", checked); err != nil {
		return nil, fmt.Errorf("the sidecar config would not pass the sidecar's validation:\n%v", err)
	}
	return append([]byte(sp.header), body...), nil
}

// checkPorts refuses an app port or outbound port that the sidecar's own
// listeners take (they share the pod's, or the host's, loopback).
func (o *injectOptions) checkPorts(appPort int) error {
	taken := map[int]string{o.port(inboundPort): "inbound (mTLS)", o.port(adminPort): "admin",
		o.port(outboundPort): "outbound", o.port(gossipPort): "gossip"}
	if what, ok := taken[appPort]; ok {
		return fmt.Errorf("the app's port %d is the sidecar's %s port: give the app another", appPort, what)
	}
	taken[appPort] = "the app's"
	for _, s := range o.outbound {
		if what, ok := taken[s.port]; ok {
			return fmt.Errorf("--outbound %s=%d: port %d is the sidecar's %s port", s.name, s.port, s.port, what)
		}
	}
	return nil
}

// outboundEnv are the variables that tell an app where its sidecar's
// outbound listeners are (there is no traffic capture: the app calls them).
func (o *injectOptions) outboundEnv() [][2]string {
	if len(o.outbound) == 0 {
		return nil
	}
	env := [][2]string{{"MESHGATE_OUTBOUND", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port(outboundPort)))}}
	for _, s := range o.outbound {
		env = append(env, [2]string{"MESHGATE_OUTBOUND_" + envName(s.name), net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))})
	}
	return env
}

// envName is a service name as a variable name: upper case, "_" for
// anything but letters and digits.
func envName(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
