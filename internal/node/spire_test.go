package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/testenv"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// spireBin finds a SPIRE binary built by `make spire` (bin/ at the module
// root). .ci/run builds them; a developer without them gets a skip that says
// how to get them.
func spireBin(t *testing.T, name string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && filepath.Base(filepath.Dir(d)) != "internal" {
			p := filepath.Join(d, "bin", name)
			if _, err := os.Stat(p); err != nil {
				testenv.Unavailable(t, "SPIRE is not built (%s missing): run `make spire` (builds spire-server and spire-agent v1.13.3 from internal/tools)", p)
			}
			return p
		}
	}
	testenv.Unavailable(t, "module root not found")
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// spire runs a SPIRE server and agent on loopback for a test.
type spire struct {
	t            *testing.T
	server       string // binary
	dir          string
	serverSocket string
	agentSocket  string
}

func (s *spire) start(name string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(s.t, "SPIRE cannot start on this machine: %v", err)
	}
	s.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s.t.Failed() {
			s.t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

func (s *spire) serverCmd(args ...string) (string, error) {
	args = append(args, "-socketPath", s.serverSocket)
	out, err := exec.Command(s.server, args...).CombinedOutput()
	return string(out), err
}

func startSPIRE(t *testing.T) *spire {
	t.Helper()
	serverBin, agentBin := spireBin(t, "spire-server"), spireBin(t, "spire-agent")
	dir, err := os.MkdirTemp("", "spire") // socket paths must stay under ~107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &spire{t: t, server: serverBin, dir: dir, serverSocket: filepath.Join(dir, "server.sock"), agentSocket: filepath.Join(dir, "agent.sock")}
	port := freePort(t)
	serverConf := fmt.Sprintf(`
server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = "example.org"
  data_dir = %q
  log_level = "WARN"
  ca_ttl = "1h"
  default_x509_svid_ttl = "10m"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
`, port, s.serverSocket, filepath.Join(dir, "server"), filepath.Join(dir, "datastore.sqlite3"))
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(serverConf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(serverBin, "run", "-config", filepath.Join(dir, "server.conf"))
	eventually(t, 60*time.Second, "spire-server to answer", func() bool {
		_, err := s.serverCmd("healthcheck")
		return err == nil
	})
	out, err := s.serverCmd("token", "generate", "-spiffeID", "spiffe://example.org/agent", "-ttl", "600")
	if err != nil {
		t.Fatalf("token generate: %v: %s", err, out)
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Token:"))

	agentConf := fmt.Sprintf(`
agent {
  data_dir = %q
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_domain = "example.org"
  insecure_bootstrap = true
}
plugins {
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, filepath.Join(dir, "agent"), port, s.agentSocket)
	if err := os.WriteFile(filepath.Join(dir, "agent.conf"), []byte(agentConf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(agentBin, "run", "-config", filepath.Join(dir, "agent.conf"), "-joinToken", token)
	return s
}

// register creates an entry for id, for any process of this test's uid.
func (s *spire) register(id string) {
	s.t.Helper()
	out, err := s.serverCmd("entry", "create", "-parentID", "spiffe://example.org/agent", "-spiffeID", id,
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()), "-x509SVIDTTL", "300")
	if err != nil {
		s.t.Fatalf("entry create %s: %v: %s", id, err, out)
	}
}

// waitFor waits until the agent serves every id to this process: the agent
// reports healthy before it has synced its entries.
func (s *spire) waitFor(ids ...string) {
	s.t.Helper()
	eventually(s.t, 90*time.Second, "spire-agent to serve the registered SVIDs", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		svids, err := workloadapi.FetchX509SVIDs(ctx, workloadapi.WithAddr("unix://"+s.agentSocket))
		if err != nil {
			return false
		}
		have := map[string]bool{}
		for _, sv := range svids {
			have[sv.ID.String()] = true
		}
		for _, id := range ids {
			if !have[id] {
				return false
			}
		}
		return true
	})
}

// A real SPIRE: server and agent on loopback (join token, unix workload
// attestor, one entry per workload), and an mTLS request edge → sidecar →
// service with every identity from spire-agent. Edge and sidecar run in this
// one process, so they match both entries; identity.spiffe_id picks theirs.
func TestSPIRE(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SPIRE; skipped with -short")
	}
	s := startSPIRE(t)
	edgeID, svcID := "spiffe://example.org/edge", "spiffe://example.org/payments"
	s.register(edgeID)
	s.register(svcID)
	s.waitFor(edgeID, svcID)

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "payments, called by %s", r.Header.Get("X-Meshgate-Caller"))
	}))
	defer app.Close()
	identity := func(id string) string {
		return fmt.Sprintf("identity: {workload_api: \"unix://%s\", spiffe_id: %q}\n", s.agentSocket, id)
	}
	sc := startSidecar(t, identity(svcID)+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound: {address: "127.0.0.1:0", allow: [%q]}
`, addr(app), edgeID))
	e := startEdge(t, identity(edgeID)+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: pay, match: {path: {prefix: /}}, upstream: payments}]
upstreams:
  - {name: payments, endpoints: [{address: %q}], tls: {spiffe_ids: [%q]}}
`, sc.Addr(config.SidecarInbound), svcID))
	resp, err := http.Get(e.url("public") + "/pay")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payments, called by "+edgeID {
		t.Fatalf("edge → sidecar → service with SPIRE identities: %d %q", resp.StatusCode, body)
	}
}
