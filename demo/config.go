package demo

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
)

// EdgeYAML is demo/edge.yaml, the edge's config; SidecarsYAML is
// demo/sidecars.yaml, one sidecar config per service instance. Together
// they are the one source of truth for the topology.
var (
	//go:embed edge.yaml
	EdgeYAML []byte
	//go:embed sidecars.yaml
	SidecarsYAML []byte
)

// TrustDomain is the demo's SPIFFE trust domain: the edge is
// spiffe://demo.meshgate/edge, every sidecar of service S is
// spiffe://demo.meshgate/S, meshctl is spiffe://demo.meshgate/meshctl.
const TrustDomain = "demo.meshgate"

// SpiffeID is the SPIFFE ID of a role: "edge", "meshctl" or a service name.
func SpiffeID(role string) string { return "spiffe://" + TrustDomain + "/" + role }

// DefaultPortBase is the base the ports of the configs are written with.
const DefaultPortBase = 18000

// loopbackPortRE finds the demo's addresses: 127.0.0.1:18xxx.
var loopbackPortRE = regexp.MustCompile(`127\.0\.0\.1:18(\d{3})\b`)

// RenderConfig returns src with every 127.0.0.1:18xxx address moved to
// base+xxx. base 0 means DefaultPortBase (src unchanged).
func RenderConfig(src []byte, base int) ([]byte, error) {
	if base == 0 {
		base = DefaultPortBase
	}
	if base < 1024 || base+999 > 65535 {
		return nil, fmt.Errorf("port base %d out of range (1024..64536)", base)
	}
	return loopbackPortRE.ReplaceAllFunc(src, func(m []byte) []byte {
		off, _ := strconv.Atoi(string(m[len("127.0.0.1:18"):]))
		return []byte("127.0.0.1:" + strconv.Itoa(base+off))
	}), nil
}

// Paths are what the configs name through text/template fields: paths,
// and the hashes of the API keys the runner hands out.
type Paths struct {
	// Sockets is the directory of the Workload API sockets ({{.Sockets}}).
	Sockets string
	// APIKeys are API keys in clear, by consumer. {{.APIKeyHash "NAME"}}
	// in a config is the stored form (sha256:…) of NAME's key; Render makes
	// a new key (apikey.Generate) for a consumer without one here, and
	// returns them all in Layout.APIKeys.
	APIKeys map[string]string
}

// templateData is what the configs' templates see: {{.Sockets}} and
// {{.APIKeyHash "NAME"}}.
type templateData struct {
	Sockets string
	keys    map[string]string // by consumer; filled as the templates ask
}

// APIKeyHash is the stored form of consumer's API key, made on first use.
func (d templateData) APIKeyHash(consumer string) (string, error) {
	key, ok := d.keys[consumer]
	if !ok {
		var err error
		if key, _, err = apikey.Generate(); err != nil {
			return "", err
		}
		d.keys[consumer] = key
	}
	return apikey.HashOf(key), nil
}

// renderPaths executes src as a text/template over d.
func renderPaths(name string, src []byte, d templateData) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b.Bytes(), nil
}

// splitDocuments splits a multi-document YAML file at its "---" lines. A
// document of comments alone (the file's header) is dropped. Each document
// keeps its lines' numbers: the lines before it are blank, so that errors
// point into the original file.
func splitDocuments(src []byte) [][]byte {
	lines := strings.SplitAfter(string(src), "\n")
	var docs [][]byte
	start := 0
	flush := func(end int) {
		body := strings.Join(lines[start:end], "")
		if !hasContent(body) {
			return
		}
		docs = append(docs, []byte(strings.Repeat("\n", start)+body))
	}
	for i, l := range lines {
		if strings.TrimRight(l, "\r\n") == "---" {
			flush(i)
			start = i + 1
		}
	}
	flush(len(lines))
	return docs
}

func hasContent(doc string) bool {
	for l := range strings.Lines(doc) {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// Edge is the edge's part of the layout.
type Edge struct {
	Public   string // the first listener's address
	Admin    string // admin HTTP: /metrics, /healthz, /readyz
	AdminAPI string // the gRPC admin API (meshctl)
	Gossip   string // cluster.bind
	Socket   string // its Workload API socket
	// Tracing: the edge traces requests (its tracing section is set).
	Tracing bool
	// Traces is the runner's trace receiver (OTLP/HTTP, and the traces as
	// trees): the edge's tracing.endpoint when it is one of the demo's
	// 127.0.0.1 ports; "" for none.
	Traces string
	// Issuer is the runner's token issuer: the auth.jwt definitions whose
	// issuer is one of the demo's 127.0.0.1 ports (issuer.go); nil for none.
	Issuer *DemoIssuer
	// Upstreams are the edge's mesh-service upstreams.
	Upstreams []ServiceUpstream
	Config    []byte // rendered edge.yaml
}

// ServiceUpstream is an upstream of the edge that discovers a service.
type ServiceUpstream struct {
	Name, Service, Subset string
}

// Instance is one service instance: a demo service and its sidecar.
type Instance struct {
	Name            string // cluster.name: catalog-v1-1
	Service, Subset string
	App             string // the demo service's address
	Inbound         string // the sidecar's mTLS listener
	Admin           string // the sidecar's admin HTTP
	Outbound        string // the sidecar's Host-routed outbound listener, "" for none
	// Calls are the services the app reaches through Outbound.
	Calls  []string
	Socket string // the sidecar's Workload API socket
	// Traces is the sidecar's tracing.endpoint when it is one of the
	// demo's 127.0.0.1 ports (it must be the edge's Traces), else "".
	Traces string
	Config []byte // this instance's rendered sidecar config
}

// SidecarLabel names the instance's sidecar in logs and files.
func (in Instance) SidecarLabel() string { return in.Name + "-sidecar" }

// Layout is the topology read from the rendered configs.
type Layout struct {
	Edge      Edge
	Instances []Instance
	// APIKeys are the API keys in clear, by consumer, whose hashes the
	// configs hold ({{.APIKeyHash "NAME"}}).
	APIKeys map[string]string
}

// Render renders both configs (ports at base, paths p), validates them and
// returns the layout they describe.
func Render(edgeSrc, sidecarsSrc []byte, base int, p Paths) (Layout, error) {
	l := Layout{APIKeys: maps.Clone(p.APIKeys)}
	if l.APIKeys == nil {
		l.APIKeys = map[string]string{}
	}
	data := templateData{Sockets: p.Sockets, keys: l.APIKeys}
	edgeYAML, err := render("edge.yaml", edgeSrc, base, data)
	if err != nil {
		return l, err
	}
	cfg, err := config.Parse("edge.yaml", edgeYAML)
	if err != nil {
		return l, fmt.Errorf("invalid edge config:\n%w", err)
	}
	if l.Edge, err = edgeOf(cfg); err != nil {
		return l, err
	}
	if l.Edge.Traces, err = demoTraces(cfg.Tracing, base); err != nil {
		return l, fmt.Errorf("edge.yaml: %w", err)
	}
	if l.Edge.Issuer, err = demoIssuer(cfg.Auth, base); err != nil {
		return l, fmt.Errorf("edge.yaml: %w", err)
	}
	l.Edge.Config = edgeYAML
	docs := splitDocuments(sidecarsSrc)
	if len(docs) == 0 {
		return l, fmt.Errorf("sidecars.yaml holds no sidecar")
	}
	seen := map[string]bool{}
	for _, doc := range docs {
		y, err := render("sidecars.yaml", doc, base, data)
		if err != nil {
			return l, err
		}
		cfg, err := config.ParseSidecar("sidecars.yaml", y)
		if err != nil {
			return l, fmt.Errorf("invalid sidecar config:\n%w", err)
		}
		in, err := instanceOf(cfg)
		if err == nil {
			in.Traces, err = demoTraces(cfg.Tracing, base)
		}
		if err == nil && in.Traces != "" && in.Traces != l.Edge.Traces {
			err = fmt.Errorf("tracing.endpoint %s: the runner's trace receiver listens at the edge's tracing.endpoint, which is %s",
				in.Traces, cmp.Or(l.Edge.Traces, "not one of the demo's ports"))
		}
		if err != nil {
			return l, fmt.Errorf("sidecars.yaml:%d: %w", firstLine(y), err)
		}
		if seen[in.Name] || in.Name == "edge" {
			return l, fmt.Errorf("sidecars.yaml:%d: cluster.name %q is used twice", firstLine(y), in.Name)
		}
		seen[in.Name] = true
		in.Config = bytes.TrimLeft(y, "\n")
		l.Instances = append(l.Instances, in)
	}
	return l, nil
}

func render(name string, src []byte, base int, d templateData) ([]byte, error) {
	out, err := RenderConfig(src, base)
	if err != nil {
		return nil, err
	}
	return renderPaths(name, out, d)
}

func firstLine(doc []byte) int { return len(doc) - len(bytes.TrimLeft(doc, "\n")) + 1 }

// socketOf is the path of a unix:// Workload API address.
func socketOf(id *config.Identity) (string, error) {
	if id == nil || !strings.HasPrefix(id.WorkloadAPI, "unix://") {
		return "", fmt.Errorf("the demo serves identities itself: identity must be workload_api: unix://{{.Sockets}}/NAME.sock")
	}
	return strings.TrimPrefix(id.WorkloadAPI, "unix://"), nil
}

// demoTraces is a tracing section's endpoint when it is one of the demo's
// ports (127.0.0.1:18xxx, rendered at base): the runner's trace receiver,
// which speaks OTLP/HTTP without TLS. Any other endpoint is yours to run
// ("" returned).
func demoTraces(t *config.Tracing, base int) (string, error) {
	if t == nil {
		return "", nil
	}
	if base == 0 {
		base = DefaultPortBase
	}
	host, port, err := net.SplitHostPort(t.Endpoint)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || host != "127.0.0.1" || p < base || p > base+999 {
		return "", nil
	}
	if t.Protocol != "http" || !t.Insecure {
		return "", fmt.Errorf("tracing.endpoint %s is the runner's trace receiver, which speaks OTLP/HTTP without TLS: tracing needs protocol: http and insecure: true", t.Endpoint)
	}
	return t.Endpoint, nil
}

// demoIssuer is the runner's token issuer when an auth.jwt definition's
// issuer is one of the demo's ports (127.0.0.1:18xxx, rendered at base):
// the runner serves its discovery document, its JWKS and tokens. Every such
// definition must name the same issuer, take ES256 (the issuer's key) and
// find its keys there. Other issuers are yours to run (nil returned).
func demoIssuer(a config.Auth, base int) (*DemoIssuer, error) {
	if base == 0 {
		base = DefaultPortBase
	}
	var d *DemoIssuer
	for _, j := range a.JWT {
		addr, ok := demoURL(j.Issuer, base)
		if !ok {
			continue
		}
		what := fmt.Sprintf("auth.jwt %q: issuer %s is the runner's token issuer", j.Name, j.Issuer)
		switch {
		case d != nil && (d.Issuer != j.Issuer || d.Addr != addr):
			return nil, fmt.Errorf("%s, which is %s already: the runner serves one issuer", what, d.Issuer)
		case !slices.Contains(j.Algorithms, "ES256"):
			return nil, fmt.Errorf("%s, which signs ES256: algorithms must list it", what)
		case j.JWKSURI != "" && j.JWKSURI != "http://"+addr+"/jwks.json":
			return nil, fmt.Errorf("%s, whose keys are at http://%s/jwks.json (or leave jwks_uri out: OIDC discovery)", what, addr)
		}
		d = &DemoIssuer{Addr: addr, Issuer: j.Issuer}
		if len(j.Audiences) > 0 {
			d.Audience = j.Audiences[0]
		}
	}
	return d, nil
}

// demoURL is the address of an http URL on one of the demo's ports.
func demoURL(raw string, base int) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		return "", false
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil || p < base || p > base+999 {
		return "", false
	}
	return u.Host, true
}

func edgeOf(cfg *config.Config) (Edge, error) {
	var e Edge
	switch {
	case len(cfg.Listeners) == 0:
		return e, fmt.Errorf("the edge config has no listener")
	case cfg.Admin.Address == "":
		return e, fmt.Errorf("the edge config has no admin address; the demo waits for its /readyz")
	case cfg.Admin.API == nil:
		return e, fmt.Errorf("the edge config has no admin.api; meshctl talks to it")
	case cfg.Cluster == nil:
		return e, fmt.Errorf("the edge config has no cluster; the sidecars join it")
	}
	e.Public, e.Admin, e.AdminAPI, e.Gossip = cfg.Listeners[0].Address, cfg.Admin.Address, cfg.Admin.API.Address, cfg.Cluster.Bind
	e.Tracing = cfg.Tracing != nil
	var err error
	if e.Socket, err = socketOf(cfg.Identity); err != nil {
		return e, err
	}
	for _, u := range cfg.Upstreams {
		if u.Service == nil {
			return e, fmt.Errorf("upstream %q: the demo's upstreams are mesh services (service:), found through the cluster", u.Name)
		}
		e.Upstreams = append(e.Upstreams, ServiceUpstream{Name: u.Name, Service: u.Service.Name, Subset: u.Service.Subset})
	}
	return e, nil
}

func instanceOf(cfg *config.Config) (Instance, error) {
	var in Instance
	if cfg.Cluster == nil || cfg.Cluster.Offer == nil || cfg.Cluster.Name == "" {
		return in, fmt.Errorf("a demo sidecar needs cluster with a name (the instance's name)")
	}
	if cfg.Admin.Address == "" {
		return in, fmt.Errorf("a demo sidecar needs admin.address; the demo waits for its /readyz")
	}
	o := cfg.Cluster.Offer
	if host, _, err := net.SplitHostPort(o.App); err != nil || host != "127.0.0.1" {
		return in, fmt.Errorf("service.app %q: the demo runs its services on 127.0.0.1", o.App)
	}
	in = Instance{Name: cfg.Cluster.Name, Service: o.Service, Subset: o.Subset, App: o.App, Inbound: o.Inbound, Admin: cfg.Admin.Address}
	if in.Subset == "" {
		return in, fmt.Errorf("service.subset is required in the demo (it is the demo service's --version)")
	}
	var err error
	if in.Socket, err = socketOf(cfg.Identity); err != nil {
		return in, err
	}
	for _, ls := range cfg.Listeners {
		if ls.Name == config.SidecarOutbound {
			in.Outbound = ls.Address
		}
	}
	for _, u := range cfg.Upstreams {
		if u.Name != config.SidecarLocalApp {
			in.Calls = append(in.Calls, u.Name)
		}
	}
	return in, nil
}

// Addrs is every TCP address the layout listens on.
func (l Layout) Addrs() []string {
	addrs := []string{l.Edge.Public, l.Edge.Admin, l.Edge.AdminAPI, l.Edge.Gossip}
	if l.Edge.Traces != "" {
		addrs = append(addrs, l.Edge.Traces)
	}
	if l.Edge.Issuer != nil {
		addrs = append(addrs, l.Edge.Issuer.Addr)
	}
	for _, in := range l.Instances {
		addrs = append(addrs, in.App, in.Inbound, in.Admin)
		if in.Outbound != "" {
			addrs = append(addrs, in.Outbound)
		}
	}
	return addrs
}

// Instance returns the first instance of service, or false.
func (l Layout) Instance(service string) (Instance, bool) {
	i := slices.IndexFunc(l.Instances, func(in Instance) bool { return in.Service == service })
	if i < 0 {
		return Instance{}, false
	}
	return l.Instances[i], true
}

// PickPortBase finds a base at which every 127.0.0.1:18xxx address of the
// sources (rendered) can be bound right now. The bases stay below the
// kernels' ephemeral ports (32768 and up on Linux, 49152 on the BSDs), which
// other programs get without asking. Another process may still take one of
// them before the demo does; the demo then fails with a clear "address in
// use" in a log.
func PickPortBase(srcs ...[]byte) (int, error) {
	src := bytes.Join(srcs, []byte("\n"))
	for range 50 {
		base := 20000 + rand.IntN(118)*100 // the last port, base+999, stays below 32700
		if freeAt(src, base) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no free port base found")
}

func freeAt(src []byte, base int) bool {
	seen := map[string]bool{}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, m := range loopbackPortRE.FindAll(src, -1) {
		addr, err := RenderConfig(m, base)
		if err != nil {
			return false
		}
		if seen[string(addr)] {
			continue
		}
		seen[string(addr)] = true
		ln, err := net.Listen("tcp", string(addr))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
