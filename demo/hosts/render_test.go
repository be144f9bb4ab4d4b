package hosts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/demo/hosts"
	"github.com/meshgate/meshgate/internal/config"
)

// Every file rendered for the Vagrant VMs and for the test validates as the
// edge and the sidecar will read it. Validation stats the identity files, so
// the profile's ConfigDir is moved to a directory that has them.
func TestRenderedConfigsValidate(t *testing.T) {
	for name, p := range map[string]hosts.Profile{
		"vagrant": hosts.Vagrant(),
		"fast":    hosts.Fast(map[string]string{"edge": "10.77.0.10", "svc1": "10.77.0.11", "svc2": "10.77.0.12"}, ""),
	} {
		t.Run(name, func(t *testing.T) {
			for _, h := range hosts.Topology() {
				p := p
				p.ConfigDir = filepath.Join(t.TempDir(), "etc", "meshgate")
				files, err := hosts.Render(p, h.Name)
				if err != nil {
					t.Fatal(err)
				}
				if err := hosts.Write(p.ConfigDir, files); err != nil {
					t.Fatal(err)
				}
				byName := map[string][]byte{}
				for _, f := range files {
					byName[f.Name] = f.Data
				}
				for _, line := range lines(byName["identities"]) {
					inst, _, _ := strings.Cut(line, " ")
					dir := p.IdentityDir(inst)
					if err := os.MkdirAll(dir, 0o700); err != nil {
						t.Fatal(err)
					}
					for _, f := range []string{"svid.pem", "svid_key.pem", "bundle.pem"} {
						if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
							t.Fatal(err)
						}
					}
				}
				var yamls int
				for _, f := range files {
					path := filepath.Join(p.ConfigDir, f.Name)
					switch {
					case f.Name == "edge.yaml":
						_, err = config.Parse(path, f.Data)
					case strings.HasPrefix(f.Name, "sidecar-"):
						_, err = config.ParseSidecar(path, f.Data)
					default:
						continue
					}
					yamls++
					if err != nil {
						t.Errorf("%s of host %s does not validate:\n%v\n--- file:\n%s", f.Name, h.Name, err, f.Data)
					}
				}
				if want := len(h.Workloads) + btoi(h.Edge != nil); yamls != want {
					t.Errorf("host %s: %d configs rendered, want %d", h.Name, yamls, want)
				}
			}
		})
	}
}

// The topology holds together: what a service allows and calls exists,
// instances are unique, and no two listeners of a host share a port.
func TestTopologyConsistent(t *testing.T) {
	services := map[string]bool{"edge": true}
	for _, h := range hosts.Topology() {
		for _, w := range h.Workloads {
			services[w.Service] = true
		}
	}
	instances := map[string]string{}
	edges := 0
	for _, h := range hosts.Topology() {
		ports := map[string]string{}
		claim := func(addr, what string) {
			_, port, _ := strings.Cut(addr, ":")
			if port == "" {
				port = addr
			}
			if prev, ok := ports[port]; ok {
				t.Errorf("host %s: port %s of %s is already %s's", h.Name, port, what, prev)
			}
			ports[port] = what
		}
		if e := h.Edge; e != nil {
			edges++
			claim(strconv.Itoa(e.Public), "edge public")
			claim(e.Admin, "edge admin")
			claim(strconv.Itoa(e.Gossip), "edge gossip")
		}
		for _, w := range h.Workloads {
			inst := w.Instance()
			if prev, ok := instances[inst]; ok {
				t.Errorf("instance %s on %s and %s", inst, prev, h.Name)
			}
			instances[inst] = h.Name
			claim(w.App, inst+" app")
			claim(strconv.Itoa(w.Inbound), inst+" inbound")
			claim(w.Admin, inst+" admin")
			claim(strconv.Itoa(w.Gossip), inst+" gossip")
			if len(w.Calls) > 0 {
				claim(w.Outbound, inst+" outbound")
			}
			for _, s := range append(append([]string{}, w.Allow...), w.Calls...) {
				if !services[s] {
					t.Errorf("%s names %q, which is neither the edge nor a service", inst, s)
				}
			}
		}
	}
	if edges != 1 {
		t.Errorf("%d edge hosts, want 1", edges)
	}
}

// The Vagrantfile's VMs are the topology's hosts at Profile Vagrant's
// addresses, and every unit a host enables has a template in systemd/ that
// reads the file Render wrote for it.
func TestVagrantfileAndUnitsMatch(t *testing.T) {
	vf, err := os.ReadFile("../../Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`"(\w+)"\s*=>\s*"(\d+\.\d+\.\d+\.\d+)"`).FindAllStringSubmatch(string(vf), -1) {
		got[m[1]] = m[2]
	}
	want := hosts.Vagrant().Addrs
	if len(got) != len(want) {
		t.Errorf("Vagrantfile HOSTS %v, demo/hosts Profile Vagrant %v", got, want)
	}
	for _, h := range hosts.Topology() {
		if got[h.Name] == "" || got[h.Name] != want[h.Name] {
			t.Errorf("host %s: Vagrantfile %q, Profile Vagrant %q", h.Name, got[h.Name], want[h.Name])
		}
		files, err := hosts.Render(hosts.Vagrant(), h.Name)
		if err != nil {
			t.Fatal(err)
		}
		rendered := map[string]bool{}
		var units []string
		for _, f := range files {
			rendered[f.Name] = true
			if f.Name == "units" {
				units = lines(f.Data)
			}
		}
		for _, u := range units {
			tmpl, inst := u, ""
			if at := strings.Index(u, "@"); at >= 0 {
				tmpl, inst = u[:at+1]+".service", strings.TrimSuffix(u[at+1:], ".service")
			}
			unit, err := os.ReadFile(filepath.Join("systemd", tmpl))
			if err != nil {
				t.Errorf("host %s enables %s: %v", h.Name, u, err)
				continue
			}
			// Directives only: comments name example instances.
			directives := regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(string(unit), "")
			for _, m := range regexp.MustCompile(`/etc/meshgate/([\w.%-]+)`).FindAllStringSubmatch(directives, -1) {
				if name := strings.ReplaceAll(m[1], "%i", inst); !rendered[name] {
					t.Errorf("host %s: %s reads /etc/meshgate/%s, which is not rendered", h.Name, u, name)
				}
			}
		}
	}
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
