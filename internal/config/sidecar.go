package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/meshgate/meshgate/pki"
	"go.yaml.in/yaml/v3"
)

// Sidecar is the configuration file of a sidecar: the service it stands
// beside, who may call it, and the mesh services it calls. LoadSidecar
// turns it into the engine's Config — an mTLS inbound listener in front of
// the local app, and outbound listeners routing to mesh services over mTLS —
// so the sidecar runs the same engine as the edge.
type Sidecar struct {
	Admin    Admin     `yaml:"admin"`
	Log      Log       `yaml:"log"`
	Server   Server    `yaml:"server"`
	Identity *Identity `yaml:"identity"`
	Service  Service   `yaml:"service"`
	Inbound  Inbound   `yaml:"inbound"`
	Outbound Outbound  `yaml:"outbound"`
	// Services are the mesh services the local app calls.
	Services []MeshService `yaml:"services"`
	// Cluster joins the gossip cluster: the sidecar offers its service to
	// discovery, and finds the services it calls there.
	Cluster *Cluster `yaml:"cluster"`
	// Tracing exports the sidecar's spans over OTLP, as on the edge.
	Tracing *Tracing `yaml:"tracing"`
}

// Service is the service this sidecar stands beside.
type Service struct {
	Name string `yaml:"name"`
	// Subset is the version label (v1, v2, canary, …).
	Subset string `yaml:"subset"`
	// App is the local application's address, on loopback.
	App string `yaml:"app"`
}

// Inbound is the sidecar's mTLS listener, in front of the app.
type Inbound struct {
	Address string `yaml:"address"`
	// Allow lists the SPIFFE IDs (patterns) that may call the service;
	// empty: any SVID of the trust domain.
	Allow   []string `yaml:"allow"`
	Timeout Duration `yaml:"timeout"`
	// Consumers: which edge-verified consumers the service believes (from
	// trusted callers) and admits; carried to the inbound listener.
	Consumers *ListenerConsumers `yaml:"consumers"`
	// ForwardedFrom: whose forwarding headers the service gets as sent
	// (absent: every admitted caller); carried to the inbound listener.
	ForwardedFrom []string `yaml:"forwarded_from"`
}

// Outbound is where the local app calls the mesh, in plain HTTP on loopback.
type Outbound struct {
	// Address of the listener that routes by Host: http://payments/… goes
	// to the mesh service "payments".
	Address string `yaml:"address"`
	// Ports dedicate a local port to one service each.
	Ports []OutboundPort `yaml:"ports"`
}

// OutboundPort is a local port that always leads to one mesh service.
type OutboundPort struct {
	Service string `yaml:"service"`
	Address string `yaml:"address"`
}

// MeshService is a service the app calls, reached over mTLS at its
// sidecars' inbound listeners.
type MeshService struct {
	Name string `yaml:"name"`
	// Subset restricts discovery to one subset of the service.
	Subset string `yaml:"subset"`
	// SpiffeIDs the service's sidecars may present (patterns).
	SpiffeIDs []string `yaml:"spiffe_ids"`
	// Endpoints are static; without them the cluster discovers the
	// service's sidecars.
	Endpoints   []Endpoint   `yaml:"endpoints"`
	Protocol    string       `yaml:"protocol"`
	Balancer    Balancer     `yaml:"balancer"`
	Timeout     Duration     `yaml:"timeout"`
	Retry       *Retry       `yaml:"retry"`
	HealthCheck *HealthCheck `yaml:"health_check"`
	Outlier     *Outlier     `yaml:"outlier"`
	Breaker     *Breaker     `yaml:"breaker"`
}

// Names of what LoadSidecar generates, as they appear in metrics and logs.
const (
	SidecarInbound  = "inbound"
	SidecarOutbound = "outbound"
	SidecarLocalApp = "local-app"
)

// LoadSidecar reads a sidecar file and returns the engine configuration it
// stands for. Problems in the file are reported at file:line:col.
func LoadSidecar(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return ParseSidecar(path, data)
}

// ParseSidecar is LoadSidecar on bytes already read.
func ParseSidecar(name string, data []byte) (*Config, error) {
	var sc Sidecar
	s, err := decodeStrict(name, data, &sc)
	if err != nil {
		return nil, err
	}
	applyTracingEnv(sc.Tracing)
	applyClusterEnv(sc.Cluster)
	v := &validator{shape: s}
	v.sidecar(&sc)
	if len(s.errs) > 0 {
		return nil, s.sorted()
	}
	cfg := sc.engineConfig()
	applyDefaults(cfg)
	// The generated config is checked as any other; its errors have no
	// position of their own, so they point at the file as a whole.
	gv := &validator{shape: &shape{file: name, pos: map[string]*yaml.Node{}}}
	gv.validate(cfg)
	if len(gv.errs) > 0 {
		return nil, gv.sorted()
	}
	return cfg, nil
}

func (v *validator) sidecar(sc *Sidecar) {
	if sc.Identity == nil {
		v.at("identity", "a sidecar needs identity (workload_api or files)")
	}
	if sc.Service.Name == "" || !tokenRE.MatchString(sc.Service.Name) {
		v.at("service.name", "service.name %q must be a name of letters, digits and -._~", sc.Service.Name)
	}
	if sc.Service.App == "" {
		v.at("service", "service.app (the local application's host:port) is required")
	} else {
		v.hostPort("service.app", sc.Service.App)
	}
	if sc.Inbound.Address == "" {
		v.at("inbound", "inbound.address is required")
	}
	for i, a := range sc.Inbound.Allow {
		if _, err := pki.ParsePattern(a); err != nil {
			v.at(fmt.Sprintf("inbound.allow[%d]", i), "%v", err)
		}
	}
	for i, a := range sc.Inbound.ForwardedFrom {
		if _, err := pki.ParsePattern(a); err != nil {
			v.at(fmt.Sprintf("inbound.forwarded_from[%d]", i), "%v", err)
		}
	}
	if lc := sc.Inbound.Consumers; lc != nil {
		v.listenerConsumers("inbound.consumers", lc)
	}
	names := map[string]int{}
	for i, m := range sc.Services {
		p := fmt.Sprintf("services[%d]", i)
		v.name(p, m.Name, "service", names, i)
		if m.Name == SidecarLocalApp {
			v.at(p+".name", "service name %q is reserved", m.Name)
		}
		if len(m.SpiffeIDs) == 0 && (sc.Cluster == nil || len(m.Endpoints) > 0) {
			v.at(p, "service %q: spiffe_ids must name the SPIFFE IDs its sidecars present (optional only for services discovered through cluster)", m.Name)
		}
		if len(m.Endpoints) == 0 && sc.Cluster == nil {
			v.at(p, "service %q: endpoints are required without cluster (discovery)", m.Name)
		}
		for j, id := range m.SpiffeIDs {
			if _, err := pki.ParsePattern(id); err != nil {
				v.at(fmt.Sprintf("%s.spiffe_ids[%d]", p, j), "%v", err)
			}
		}
	}
	if sc.Tracing != nil {
		v.tracing(sc.Tracing)
		if sc.Tracing.Sampling.FollowClients != nil {
			v.at("tracing.sampling.follow_clients", "tracing.sampling.follow_clients is an edge's: a sidecar's plaintext listeners serve its own app, whose sampling it always follows")
		}
	}
	for i, port := range sc.Outbound.Ports {
		p := fmt.Sprintf("outbound.ports[%d]", i)
		if _, ok := names[port.Service]; !ok {
			v.at(p+".service", "unknown service %q (known: %s)", port.Service, strings.Join(serviceNames(sc), ", "))
		}
		v.hostPort(p+".address", port.Address)
	}
}

func serviceNames(sc *Sidecar) []string {
	var out []string
	for _, m := range sc.Services {
		out = append(out, m.Name)
	}
	return out
}

// engineConfig is the Config a sidecar file stands for.
func (sc *Sidecar) engineConfig() *Config {
	cfg := &Config{Admin: sc.Admin, Log: sc.Log, Server: sc.Server, Identity: sc.Identity, Cluster: sc.Cluster}
	if sc.Cluster != nil {
		cl := *sc.Cluster
		cl.Offer = &ClusterOffer{Service: sc.Service.Name, Subset: sc.Service.Subset,
			Inbound: offerAddress(sc.Inbound.Address, cl), App: sc.Service.App}
		cfg.Cluster = &cl
	}
	if sc.Tracing != nil {
		t := *sc.Tracing
		t.MeshService = sc.Service.Name
		cfg.Tracing = &t
	}
	cfg.Listeners = append(cfg.Listeners, Listener{Name: SidecarInbound, Address: sc.Inbound.Address,
		MTLS: &ListenerMTLS{Allow: sc.Inbound.Allow, ForwardedFrom: sc.Inbound.ForwardedFrom}, Consumers: sc.Inbound.Consumers})
	cfg.Upstreams = append(cfg.Upstreams, Upstream{Name: SidecarLocalApp, Endpoints: []Endpoint{{Address: sc.Service.App}}})
	cfg.Routes = append(cfg.Routes, Route{Name: SidecarInbound, Listeners: []string{SidecarInbound},
		Match: Match{Path: &Path{Prefix: "/"}}, Upstream: SidecarLocalApp, Timeout: sc.Inbound.Timeout,
		Retry: &Retry{Attempts: 2, On: []string{"connect-failure"}}})
	if sc.Outbound.Address != "" {
		cfg.Listeners = append(cfg.Listeners, Listener{Name: SidecarOutbound, Address: sc.Outbound.Address})
	}
	for _, m := range sc.Services {
		up := Upstream{Name: m.Name, Endpoints: m.Endpoints, Protocol: m.Protocol,
			Balancer: m.Balancer, HealthCheck: m.HealthCheck, Outlier: m.Outlier, Breaker: m.Breaker,
			TLS: &UpstreamTLS{SpiffeIDs: m.SpiffeIDs}}
		if len(m.Endpoints) == 0 {
			up.Service = &ServiceRef{Name: m.Name, Subset: m.Subset}
		}
		cfg.Upstreams = append(cfg.Upstreams, up)
		if sc.Outbound.Address != "" {
			cfg.Routes = append(cfg.Routes, Route{Name: SidecarOutbound + "-" + m.Name, Listeners: []string{SidecarOutbound},
				Match: Match{Hosts: []string{m.Name}, Path: &Path{Prefix: "/"}}, Upstream: m.Name,
				Timeout: m.Timeout, Retry: m.Retry})
		}
	}
	for _, port := range sc.Outbound.Ports {
		name := "port-" + port.Service
		cfg.Listeners = append(cfg.Listeners, Listener{Name: name, Address: port.Address})
		for _, m := range sc.Services {
			if m.Name == port.Service {
				cfg.Routes = append(cfg.Routes, Route{Name: name, Listeners: []string{name},
					Match: Match{Path: &Path{Prefix: "/"}}, Upstream: m.Name, Timeout: m.Timeout, Retry: m.Retry})
			}
		}
	}
	return cfg
}

// offerAddress is the inbound address other nodes dial: the listener's own
// when it is a concrete IP, else the cluster's advertised host with the
// listener's port.
func offerAddress(inbound string, cl Cluster) string {
	host, port, err := net.SplitHostPort(inbound)
	if err != nil {
		return inbound
	}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return inbound
	}
	adv := cl.Advertise
	if adv == "" {
		adv = cl.Bind
	}
	if h, _, err := net.SplitHostPort(adv); err == nil {
		return net.JoinHostPort(h, port)
	}
	return inbound
}
