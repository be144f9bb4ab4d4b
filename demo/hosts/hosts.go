// Package hosts is the meshgate demo spread over three hosts: the edge on
// one, four demo services with their sidecars on two others, every node in
// one gossip cluster joined through the edge, SPIFFE mTLS on every hop and an
// inbound allow list per service.
//
// Topology and the templates beside this file (edge.yaml.tmpl,
// sidecar.yaml.tmpl) are the one source of truth for two ways of running it:
//
//   - Vagrant (the Vagrantfile at the repository root): three Debian VMs.
//     prepare.sh, on the Vagrant host, renders every host's files with
//     `go run ./demo/hosts/render` and issues identities with `meshctl pki`;
//     provision.sh, in each VM, installs them with the systemd units of
//     systemd/. Profile Vagrant: 192.168.56.10-12, default cluster timings.
//   - TestHostsInNetns: the same three hosts as Linux network namespaces on
//     a bridge, the same rendered files (Profile Fast: short timings), the
//     same binaries, and a host taken off the network and back.
//
// A host's rendered files (Render):
//
//	edge.yaml                 the edge's config (edge host)
//	sidecar-INSTANCE.yaml     one sidecar per workload (INSTANCE: orders-v1)
//	demosvc-INSTANCE.env      DEMOSVC_ARGS for demosvc@INSTANCE.service
//	units                     the systemd units to enable, one a line, in start order
//	identities                "INSTANCE SPIFFE-ID" per identity the host needs
//
// Identities live in ConfigDir/identity/INSTANCE/{svid.pem,svid_key.pem,bundle.pem}
// (the edge's INSTANCE is "edge"), as `meshctl pki issue --out` writes them.
package hosts

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// TrustDomain is the demo's SPIFFE trust domain.
const TrustDomain = "demo.meshgate"

// Host is one machine of the topology: the edge, or a service host.
type Host struct {
	Name string
	// Edge is set on the edge host only.
	Edge *Edge
	// Workloads are the services (each a demosvc and its sidecar) it runs.
	Workloads []Workload
}

// Edge is the edge's part of a host.
type Edge struct {
	Public int    // port of the public listener, on every address
	Admin  string // admin listener (loopback)
	Gossip int    // cluster port on the host's address: every node joins here
}

// Workload is one service instance: a demosvc on loopback and its sidecar.
type Workload struct {
	Service, Subset string
	App             string // the demosvc's listen address (loopback)
	Inbound         int    // the sidecar's mTLS port on the host's address
	Admin           string // the sidecar's admin listener (loopback)
	Gossip          int    // the sidecar's cluster port on the host's address
	// Allow lists who may call the service: "edge" or service names.
	Allow []string
	// Calls are the mesh services the app calls through Outbound.
	Calls    []string
	Outbound string // Host-routed outbound listener (loopback), with Calls
}

// Instance names the workload in units, files and the cluster: orders-v1.
func (w Workload) Instance() string { return w.Service + "-" + w.Subset }

// DemosvcArgs are the demosvc flags of the workload.
func (w Workload) DemosvcArgs() []string {
	return []string{"--name", w.Service, "--version", w.Subset, "--listen", w.App}
}

// SpiffeID is the SPIFFE ID of a role: "edge" or a service name. The
// sidecars of one service share it, whatever their subset.
func SpiffeID(role string) string { return "spiffe://" + TrustDomain + "/" + role }

// EdgeInstance is the edge's name among the instances (identity directory).
const EdgeInstance = "edge"

// Topology returns the demo's hosts: edge; svc1 with catalog v1 and orders
// v1; svc2 with orders v2 and payments v1. orders calls catalog and
// payments; catalog and payments admit the edge and orders, orders admits
// the edge only.
func Topology() []Host {
	fromEdge := []string{"edge"}
	fromEdgeAndOrders := []string{"edge", "orders"}
	calls := []string{"catalog", "payments"}
	return []Host{
		{Name: "edge", Edge: &Edge{Public: 8080, Admin: "127.0.0.1:9901", Gossip: 7946}},
		{Name: "svc1", Workloads: []Workload{
			{Service: "catalog", Subset: "v1", App: "127.0.0.1:9101", Inbound: 15101, Admin: "127.0.0.1:9911", Gossip: 7947,
				Allow: fromEdgeAndOrders},
			{Service: "orders", Subset: "v1", App: "127.0.0.1:9201", Inbound: 15201, Admin: "127.0.0.1:9912", Gossip: 7948,
				Allow: fromEdge, Calls: calls, Outbound: "127.0.0.1:15001"},
		}},
		{Name: "svc2", Workloads: []Workload{
			{Service: "orders", Subset: "v2", App: "127.0.0.1:9202", Inbound: 15202, Admin: "127.0.0.1:9913", Gossip: 7947,
				Allow: fromEdge, Calls: calls, Outbound: "127.0.0.1:15001"},
			{Service: "payments", Subset: "v1", App: "127.0.0.1:9301", Inbound: 15301, Admin: "127.0.0.1:9914", Gossip: 7948,
				Allow: fromEdgeAndOrders},
		}},
	}
}

// Profile is what differs between two runs of the same topology: where the
// hosts are, where their files live, and how fast the cluster reacts.
type Profile struct {
	// Addrs maps each host name to its IPv4 address.
	Addrs map[string]string
	// ConfigDir is where a host's rendered files are installed; its
	// identities are in ConfigDir/identity.
	ConfigDir string
	// Cluster timings and the edge's connect timeout to sidecars.
	GossipInterval, ProbeInterval, PushPullInterval time.Duration
	ConnectTimeout                                  time.Duration
	// DrainTimeout bounds a graceful stop of every proxy.
	DrainTimeout time.Duration
	// AccessLog is every proxy's log.access (stdout: the journal).
	AccessLog string
}

// Vagrant is the profile of the Vagrantfile's VMs: a host-only network and
// the cluster defaults of docs/config.md (a crashed host's services leave
// discovery within a few seconds).
func Vagrant() Profile {
	return Profile{
		Addrs:          map[string]string{"edge": "192.168.56.10", "svc1": "192.168.56.11", "svc2": "192.168.56.12"},
		ConfigDir:      "/etc/meshgate",
		GossipInterval: 100 * time.Millisecond, ProbeInterval: 400 * time.Millisecond, PushPullInterval: 15 * time.Second,
		ConnectTimeout: 2 * time.Second,
		DrainTimeout:   10 * time.Second,
		AccessLog:      "stdout",
	}
}

// Fast is a profile for tests: the given addresses and directory, failure
// detection within about a second.
func Fast(addrs map[string]string, configDir string) Profile {
	return Profile{
		Addrs:          addrs,
		ConfigDir:      configDir,
		GossipInterval: 50 * time.Millisecond, ProbeInterval: 200 * time.Millisecond, PushPullInterval: 2 * time.Second,
		ConnectTimeout: time.Second,
		DrainTimeout:   time.Second,
		AccessLog:      "stdout",
	}
}

// IdentityDir is where the SVID files of instance are on a host (a path
// of the host's, hence slashes even when rendered on Windows).
func (p Profile) IdentityDir(instance string) string {
	return path.Join(p.ConfigDir, "identity", instance)
}

//go:embed edge.yaml.tmpl
var edgeTemplate string

//go:embed sidecar.yaml.tmpl
var sidecarTemplate string

// templates holds edge.yaml and sidecar.yaml; it is never changed after
// package initialisation.
var templates = func() *template.Template {
	t := template.New("").Funcs(template.FuncMap{"spiffe": SpiffeID})
	template.Must(t.New("edge.yaml").Parse(edgeTemplate))
	template.Must(t.New("sidecar.yaml").Parse(sidecarTemplate))
	return t
}()

// File is one rendered file, its name relative to the host's ConfigDir.
type File struct {
	Name string
	Data []byte
}

// templateData is what both templates see.
type templateData struct {
	Profile
	Host     string
	Addr     string // this host's address
	EdgeAddr string
	Edge     *Edge // the edge of the topology
	W        Workload
	Identity string // this instance's identity directory
}

// Render returns the files of host under profile p.
func Render(p Profile, host string) ([]File, error) {
	topo := Topology()
	var h *Host
	var edge *Edge
	edgeHost := ""
	for i := range topo {
		if topo[i].Name == host {
			h = &topo[i]
		}
		if topo[i].Edge != nil {
			edge, edgeHost = topo[i].Edge, topo[i].Name
		}
	}
	if h == nil {
		return nil, fmt.Errorf("hosts: no host %q in the topology", host)
	}
	for _, name := range []string{host, edgeHost} {
		if p.Addrs[name] == "" {
			return nil, fmt.Errorf("hosts: the profile has no address for host %q", name)
		}
	}
	base := templateData{Profile: p, Host: host, Addr: p.Addrs[host], EdgeAddr: p.Addrs[edgeHost], Edge: edge}
	var files []File
	var units, ids []string
	render := func(tmpl, name string, d templateData) error {
		var b bytes.Buffer
		if err := templates.ExecuteTemplate(&b, tmpl, d); err != nil {
			return fmt.Errorf("hosts: render %s for %s: %w", name, host, err)
		}
		files = append(files, File{Name: name, Data: b.Bytes()})
		return nil
	}
	for _, w := range h.Workloads {
		inst := w.Instance()
		d := base
		d.W, d.Identity = w, p.IdentityDir(inst)
		if err := render("sidecar.yaml", "sidecar-"+inst+".yaml", d); err != nil {
			return nil, err
		}
		files = append(files, File{Name: "demosvc-" + inst + ".env",
			Data: fmt.Appendf(nil, "DEMOSVC_ARGS=%q\n", strings.Join(w.DemosvcArgs(), " "))})
		units = append(units, "demosvc@"+inst+".service", "meshgate-sidecar@"+inst+".service")
		ids = append(ids, inst+" "+SpiffeID(w.Service))
	}
	if h.Edge != nil {
		d := base
		d.Identity = p.IdentityDir(EdgeInstance)
		if err := render("edge.yaml", "edge.yaml", d); err != nil {
			return nil, err
		}
		units = append(units, "meshgate-edge.service")
		ids = append(ids, EdgeInstance+" "+SpiffeID("edge"))
	}
	files = append(files,
		File{Name: "units", Data: []byte(strings.Join(units, "\n") + "\n")},
		File{Name: "identities", Data: []byte(strings.Join(ids, "\n") + "\n")})
	return files, nil
}

// Write writes files into dir (created if needed), replacing files of the
// same names.
func Write(dir string, files []File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
