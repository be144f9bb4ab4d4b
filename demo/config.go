package demo

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"

	"github.com/meshgate/meshgate/internal/config"
)

// EdgeYAML is demo/edge.yaml: the one source of truth for the topology.
//
//go:embed edge.yaml
var EdgeYAML []byte

// DefaultPortBase is the base the ports of edge.yaml are written with.
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

// Service is one demo service instance the runner starts.
type Service struct {
	Name, Version string
	// Upstream is the edge upstream it is an endpoint of.
	Upstream string
	Addr     string
}

// Label names the instance in logs and log files: catalog-v1-18101.
func (s Service) Label() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return s.Name + "-" + s.Version + "-" + port
}

// Layout is what the runner reads from a validated edge config.
type Layout struct {
	Public   string // the first listener's address
	Admin    string
	Services []Service
}

var versionedRE = regexp.MustCompile(`^(.+)-(v[0-9]+)$`)

// LayoutOf derives the topology from cfg: one service per upstream endpoint;
// an upstream NAME-vN is service NAME at version vN, any other NAME at v1.
func LayoutOf(cfg *config.Config) (Layout, error) {
	var l Layout
	if len(cfg.Listeners) == 0 {
		return l, fmt.Errorf("the config has no listener")
	}
	if cfg.Admin.Address == "" {
		return l, fmt.Errorf("the config has no admin address; the demo waits for its /readyz")
	}
	l.Public, l.Admin = cfg.Listeners[0].Address, cfg.Admin.Address
	for _, u := range cfg.Upstreams {
		name, version := u.Name, "v1"
		if m := versionedRE.FindStringSubmatch(u.Name); m != nil {
			name, version = m[1], m[2]
		}
		for _, e := range u.Endpoints {
			if host, _, err := net.SplitHostPort(e.Address); err != nil || (host != "127.0.0.1" && host != "localhost") {
				return l, fmt.Errorf("upstream %q endpoint %q: the demo runs its services on 127.0.0.1 only", u.Name, e.Address)
			}
			l.Services = append(l.Services, Service{Name: name, Version: version, Upstream: u.Name, Addr: e.Address})
		}
	}
	return l, nil
}

// Addrs is every address the layout listens on.
func (l Layout) Addrs() []string {
	addrs := []string{l.Public, l.Admin}
	for _, s := range l.Services {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// PickPortBase finds a base at which every address of src (rendered) can be
// bound right now. Another process may still take one of them before the
// demo does; the demo then fails with a clear "address in use" in a log.
func PickPortBase(src []byte) (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(400)*100
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
