//go:build linux

package hosts_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/meshgate/meshgate/demo/hosts"
	"github.com/meshgate/meshgate/internal/testenv"
	"github.com/meshgate/meshgate/pki"
)

// The topology of the Vagrantfile on three network namespaces (edge, svc1,
// svc2 at 10.77.0.10-12 on one bridge), with the same rendered configs
// (Profile Fast), identities issued by package pki, and bin/edge,
// bin/sidecar and bin/demosvc started as the hosts' systemd units would.
//
// It proves traffic crosses hosts (north-south from the edge to both service
// hosts, east-west between their sidecars, allow lists enforced), that a
// host taken off the network is dropped from discovery — its services then
// fail fast with 503 while the other host's keep serving — and that it is
// found again when it comes back.
func TestHostsInNetns(t *testing.T) {
	bin := binaries(t, "edge", "sidecar", "demosvc")
	ips := map[string]string{"edge": "10.77.0.10", "svc1": "10.77.0.11", "svc2": "10.77.0.12"}
	cidrs := map[string]string{}
	for h, ip := range ips {
		cidrs[h] = ip + "/24"
	}
	l := newLab(t, cidrs)
	start := time.Now()

	// Identities from a fresh CA, then each host's files, rendered by the
	// same code and templates as the Vagrant VMs'.
	ca, err := pki.NewCA(spiffeid.RequireTrustDomainFromString(hosts.TrustDomain), pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	profiles := map[string]hosts.Profile{}
	// MESHGATE_LAB_PROBE_INTERVAL=400ms measures failure detection at the
	// cluster's default timings (gossip 100 ms, push/pull 15 s, probes
	// every 400 ms), instead of the Fast profile's (probes every 200 ms).
	probe, err := labProbeInterval()
	if err != nil {
		t.Fatal(err)
	}
	detectBound := 6 * time.Second
	if probe > 0 {
		detectBound = 25 * time.Second
	}
	for _, h := range hosts.Topology() {
		p := hosts.Fast(ips, filepath.Join(root, h.Name, "etc", "meshgate"))
		if probe > 0 {
			p.GossipInterval, p.ProbeInterval, p.PushPullInterval = 100*time.Millisecond, probe, 15*time.Second
		}
		profiles[h.Name] = p
		files, err := hosts.Render(p, h.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := hosts.Write(p.ConfigDir, files); err != nil {
			t.Fatal(err)
		}
		for _, line := range readLines(t, filepath.Join(p.ConfigDir, "identities")) {
			inst, id, _ := strings.Cut(line, " ")
			svid, err := ca.IssueX509SVID(spiffeid.RequireFromString(id), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.WriteSVID(p.IdentityDir(inst), svid, ca.Bundle()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Start each host's units, the edge's first: it is the cluster's seed.
	for _, h := range hosts.Topology() {
		p := profiles[h.Name]
		for _, unit := range readLines(t, filepath.Join(p.ConfigDir, "units")) {
			l.start(h.Name, h.Name+"-"+strings.TrimSuffix(unit, ".service"), unitCommand(t, bin, p.ConfigDir, unit)...)
		}
	}

	// Addresses as the topology has them.
	var public, outbound string
	inbound := map[string]string{} // instance → its sidecar's inbound
	for _, h := range hosts.Topology() {
		if h.Edge != nil {
			public = "http://" + net.JoinHostPort(ips[h.Name], strconv.Itoa(h.Edge.Public))
		}
		for _, w := range h.Workloads {
			inbound[w.Instance()] = net.JoinHostPort(ips[h.Name], strconv.Itoa(w.Inbound))
			if w.Instance() == "orders-v1" {
				outbound = "http://" + w.Outbound + "/" // orders v2's is the same port on svc2
			}
		}
	}
	edge := l.client("edge", nil)
	get := func(path string, hdr ...string) reply { return do(edge, public+path, "", hdr...) }

	// North-south across hosts: the edge reaches catalog and orders v1 on
	// svc1, orders v2 and payments on svc2. Each app listens on its own
	// host's loopback: only its sidecar's mTLS inbound leads there.
	eventually(t, l, 20*time.Second, "the edge serves every service", func() error {
		for _, c := range []struct{ path, service string }{
			{"/products/42", "catalog"}, {"/payments/p-1", "payments"}, {"/orders", "orders"},
		} {
			if r := get(c.path); r.status != 200 || r.Service != c.service {
				return fmt.Errorf("GET %s: %s", c.path, r)
			}
		}
		return nil
	})
	t.Logf("cluster formed and serving %.1fs after the first process started", time.Since(start).Seconds())
	eventually(t, l, 10*time.Second, "/orders reaches orders v1 (svc1) and v2 (svc2)", func() error {
		versions := map[string]int{}
		for range 4 {
			r := get("/orders")
			if r.status != 200 {
				return fmt.Errorf("GET /orders: %s", r)
			}
			versions[r.Version]++
		}
		if versions["v1"] == 0 || versions["v2"] == 0 {
			return fmt.Errorf("GET /orders ×4 reached %v", versions)
		}
		return nil
	})
	if r := get("/orders", "X-Api-Version", "2"); r.status != 200 || r.Version != "v2" {
		t.Fatalf("GET /orders with X-Api-Version: 2 (subset v2, on svc2): %s", r)
	}
	if r := get("/products/42"); r.Version != "v1" || !strings.Contains(r.body, `"product"`) {
		t.Fatalf("GET /products/42: %s", r)
	}
	// The edge's access log names the sidecar that served each request: its
	// inbound on the other hosts' addresses.
	edgeLog := filepath.Join(l.logDir, "edge-meshgate-edge.log")
	eventually(t, l, 3*time.Second, "the edge's access log names both service hosts' sidecars", func() error {
		b, _ := os.ReadFile(edgeLog)
		for _, ep := range inbound {
			if !bytes.Contains(b, []byte(`"upstream":"`+ep+`"`)) {
				return fmt.Errorf("no request served by %s in %s", ep, edgeLog)
			}
		}
		return nil
	})

	// East-west across hosts: orders' apps call through their sidecars'
	// outbound listener (Host names the service), over mTLS to the other
	// host's sidecar.
	svc1, svc2 := l.client("svc1", nil), l.client("svc2", nil)
	if r := do(svc1, outbound+"charge", "payments"); r.status != 200 || r.Service != "payments" {
		t.Fatalf("svc1 orders v1 → payments on svc2: %s", r)
	}
	if r := do(svc2, outbound+"products/7", "catalog"); r.status != 200 || r.Service != "catalog" {
		t.Fatalf("svc2 orders v2 → catalog on svc1: %s", r)
	}
	// The inbound allow lists: a valid SVID of the trust domain that is not
	// on payments' list (edge, orders) is refused by its sidecar.
	intruder, err := ca.IssueX509SVID(spiffeid.RequireFromString(hosts.SpiffeID("intruder")), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := pki.ClientTLS(fixedSVID{intruder}, ca.Bundle(), pki.AllowIDs(spiffeid.RequireFromString(hosts.SpiffeID("payments"))))
	if r := do(l.client("svc1", tlsConf), "https://"+inbound["payments-v1"]+"/charge", ""); r.status != http.StatusForbidden {
		t.Fatalf("%s → payments' inbound: %s; want 403", hosts.SpiffeID("intruder"), r)
	}

	// svc2 off the network. Catalog on svc1 must answer every request of a
	// steady stream meanwhile. Requests already sent to svc2 hang until the
	// cluster declares its sidecars dead (hence the short client timeout);
	// from then on svc2's services are out of discovery and the edge answers
	// them 503 at once instead of waiting on a dead host.
	catalog := keepAsking(t, func(i int) error {
		if r := get("/products/" + strconv.Itoa(i)); r.status != 200 || r.Service != "catalog" {
			return fmt.Errorf("GET /products/%d: %s", i, r)
		}
		return nil
	})
	// A client waits no longer than "fast" (500 ms): a request that hangs
	// on the silent host must not make the poll, and so the time it
	// measures, a second late.
	quickEdge, quickSvc1 := withTimeout(edge, 500*time.Millisecond), withTimeout(svc1, 500*time.Millisecond)
	failsFast := func(c *http.Client, url, host string, hdr ...string) func() error {
		return func() error {
			r := do(c, url, host, hdr...)
			if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "no healthy upstream endpoint") || r.took > 500*time.Millisecond {
				return fmt.Errorf("GET %s %v: %s; want 503 no healthy upstream endpoint within 500ms", url, hdr, r)
			}
			return nil
		}
	}
	down := time.Now()
	l.unplug("svc2")
	// Probes every 200 ms (the Fast profile): 3 s measured, 8–9 s when the
	// probes' ack wait (500 ms) outlasted their interval.
	eventually(t, l, detectBound, "payments on svc2 fails fast", failsFast(quickEdge, public+"/payments/p-2", ""))
	t.Logf("svc2 unplugged: the edge answers payments 503 after %.1fs", time.Since(down).Seconds())
	eventually(t, l, 10*time.Second, "orders v2 on svc2 fails fast", failsFast(quickEdge, public+"/orders", "", "X-Api-Version", "2"))
	eventually(t, l, 10*time.Second, "orders is served by v1 on svc1 alone", func() error {
		for range 6 {
			if r := do(quickEdge, public+"/orders", ""); r.status != 200 || r.Version != "v1" {
				return fmt.Errorf("GET /orders: %s", r)
			}
		}
		return nil
	})
	eventually(t, l, 10*time.Second, "svc1's orders sidecar fails payments fast too", failsFast(quickSvc1, outbound+"charge", "payments"))
	for range 5 {
		if err := failsFast(quickEdge, public+"/payments/p-3", "")(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("svc2 unplugged: every service of svc2 fails fast %.1fs after", time.Since(down).Seconds())

	// svc2 back: its sidecars rejoin and its services are served again.
	up := time.Now()
	l.plug("svc2")
	eventually(t, l, 30*time.Second, "svc2's services are served again", func() error {
		if r := do(quickEdge, public+"/payments/p-4", ""); r.status != 200 || r.Service != "payments" {
			return fmt.Errorf("GET /payments/p-4: %s", r)
		}
		if r := do(quickEdge, public+"/orders", "", "X-Api-Version", "2"); r.status != 200 || r.Version != "v2" {
			return fmt.Errorf("GET /orders (v2): %s", r)
		}
		if r := do(quickSvc1, outbound+"charge", "payments"); r.status != 200 || r.Service != "payments" {
			return fmt.Errorf("svc1 → payments: %s", r)
		}
		return nil
	})
	t.Logf("svc2 plugged back: its services are served again after %.1fs", time.Since(up).Seconds())
	ok, failed := catalog()
	if len(failed) > 0 || ok == 0 {
		t.Fatalf("catalog on svc1 while svc2 was down and back: %d answered, %d failed, first: %v", ok, len(failed), failed[:min(3, len(failed))])
	}
	t.Logf("catalog on svc1 answered all %d requests while svc2 was down and back", ok)
}

// keepAsking calls check(0), check(1), … every 50 ms in the background
// until the returned stop is called (at the latest at cleanup), which
// reports how many calls succeeded and the errors of those that did not.
func keepAsking(t *testing.T, check func(i int) error) (stop func() (ok int, failures []error)) {
	quit, done := make(chan struct{}), make(chan struct{})
	var ok int
	var failures []error
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := check(i); err != nil {
				failures = append(failures, err)
			} else {
				ok++
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() (int, []error) {
		once.Do(func() { close(quit); <-done })
		return ok, failures
	}
	t.Cleanup(func() { stop() })
	return stop
}

// withTimeout is c with another overall timeout per request.
func withTimeout(c *http.Client, d time.Duration) *http.Client {
	cc := *c
	cc.Timeout = d
	return &cc
}

// binaries returns the paths of the repository's bin/NAME, skipping the
// test when one is missing.
// labProbeInterval is MESHGATE_LAB_PROBE_INTERVAL, 0 when unset.
func labProbeInterval() (time.Duration, error) {
	v := os.Getenv("MESHGATE_LAB_PROBE_INTERVAL")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("MESHGATE_LAB_PROBE_INTERVAL=%q: want a positive duration", v)
	}
	return d, nil
}

func binaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			testenv.Unavailable(t, "bin/%s is missing: run `make build` first (the test runs the release binaries)", n)
		}
		paths[n] = p
	}
	return paths
}

// unitCommand is the command line of a systemd unit of demo/hosts/systemd
// on a host whose files are in configDir: what ExecStart runs there.
func unitCommand(t *testing.T, bin map[string]string, configDir, unit string) []string {
	t.Helper()
	name, inst, _ := strings.Cut(strings.TrimSuffix(unit, ".service"), "@")
	switch name {
	case "meshgate-edge":
		return []string{bin["edge"], "--config", filepath.Join(configDir, "edge.yaml")}
	case "meshgate-sidecar":
		return []string{bin["sidecar"], "--config", filepath.Join(configDir, "sidecar-"+inst+".yaml")}
	case "demosvc":
		// EnvironmentFile=demosvc-INST.env; ExecStart=demosvc $DEMOSVC_ARGS
		env := readLines(t, filepath.Join(configDir, "demosvc-"+inst+".env"))
		args, ok := strings.CutPrefix(env[0], "DEMOSVC_ARGS=")
		if !ok {
			t.Fatalf("demosvc-%s.env: %q", inst, env[0])
		}
		unq, err := strconv.Unquote(args)
		if err != nil {
			t.Fatalf("demosvc-%s.env: %v", inst, err)
		}
		return append([]string{bin["demosvc"]}, strings.Fields(unq)...)
	}
	t.Fatalf("unknown unit %q", unit)
	return nil
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// reply is an HTTP answer with the demo service's envelope, if any.
type reply struct {
	status  int
	body    string
	took    time.Duration
	err     error
	Service string `json:"service"`
	Version string `json:"version"`
}

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %v: %v", r.took.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d after %v: %s", r.status, r.took.Round(time.Millisecond), strings.TrimSpace(r.body))
}

// do sends a GET with the given Host (empty: the URL's) and header pairs.
func do(c *http.Client, url, host string, hdr ...string) reply {
	var r reply
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		r.err = err
		return r
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		r.took, r.err = time.Since(t0), err
		return r
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.took, r.status, r.body, r.err = time.Since(t0), resp.StatusCode, string(b), err
	_ = json.Unmarshal(b, &r)
	return r
}

// eventually retries check every 100 ms until it returns nil, and fails
// the test with its last error after d, or at once when a process of the
// lab has exited.
func eventually(t *testing.T, l *lab, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		l.mu.Lock()
		procs := l.procs
		l.mu.Unlock()
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("waiting until %s: %s exited (%s)", what, p.name, p.cmd.ProcessState)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s: %v", d, what, err)
		}
		<-tick.C
	}
}

// fixedSVID is an x509svid.Source of one SVID.
type fixedSVID struct{ svid *x509svid.SVID }

func (f fixedSVID) GetX509SVID() (*x509svid.SVID, error) { return f.svid, nil }
