package node

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// rotationSeconds is how long TestRotationUnderLoad drives traffic (the
// issue asks for 30 s; MESHGATE_ROTATION_SECONDS shortens it locally).
func rotationSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("MESHGATE_ROTATION_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 30 * time.Second
}

// Every process gets its identity from the embedded Workload API with a
// 5 s TTL, so SVIDs rotate every ~2.5 s while requests flow through
// client → edge → payments sidecar → payments app → payments sidecar →
// catalog sidecar → catalog app. Not one request may fail, and the
// certificates served must really have changed.
func TestRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s soak; skipped with -short")
	}
	ca, err := pki.NewCA(td, pki.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wl, err := workload.New(ca, workload.Options{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Close()
	dir, err := os.MkdirTemp("", "rot") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	identity := func(name string) string {
		p := filepath.Join(dir, name+".sock")
		if err := wl.Add(p, spiffeid.RequireFromPath(td, "/"+name)); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("identity: {workload_api: \"unix://%s\"}\n", p)
	}

	catalogApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "catalog")
	}))
	defer catalogApp.Close()
	catalog := startSidecar(t, identity("catalog")+fmt.Sprintf(`
log: {access: "off"}
service: {name: catalog, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/payments"]}
`, addr(catalogApp)))

	var outbound atomic.Value
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	paymentsApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest("GET", "http://"+outbound.Load().(string)+"/items", nil)
		req.Host = "catalog"
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "payments -> %s", b)
	}))
	defer paymentsApp.Close()
	payments := startSidecar(t, identity("payments")+fmt.Sprintf(`
log: {access: "off"}
service: {name: payments, app: %q}
inbound: {address: "127.0.0.1:0", allow: ["spiffe://example.org/edge"]}
outbound: {address: "127.0.0.1:0"}
services:
  - {name: catalog, spiffe_ids: ["spiffe://example.org/catalog"], endpoints: [{address: %q}]}
`, addr(paymentsApp), catalog.Addr(config.SidecarInbound)))
	outbound.Store(payments.Addr(config.SidecarOutbound))

	e := startEdge(t, identity("edge")+fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: pay, match: {path: {prefix: /}}, upstream: payments}]
upstreams:
  - {name: payments, max_idle_per_endpoint: 4, endpoints: [{address: %q}], tls: {spiffe_ids: ["spiffe://example.org/payments"]}}
`, payments.Addr(config.SidecarInbound)))

	// Watch the certificate the payments sidecar serves on new handshakes.
	probeSVID, err := ca.IssueX509SVID(spiffeid.RequireFromPath(td, "/edge"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	probeTLS := pki.ClientTLS(probeSVID, ca.Bundle(), pki.AllowIDs(spiffeid.RequireFromPath(td, "/payments")))
	serials := map[string]bool{}
	probe := func() {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", payments.Addr(config.SidecarInbound), probeTLS)
		if err != nil {
			t.Errorf("probe handshake: %v", err)
			return
		}
		serials[c.ConnectionState().PeerCertificates[0].SerialNumber.String()] = true
		c.Close()
	}

	deadline := time.Now().Add(rotationSeconds())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// New connections now and then, so fresh handshakes happen
			// all through the run, not only on the first request.
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 700 * time.Millisecond}}
			for time.Now().Before(deadline) {
				resp, err := c.Get(e.url("public") + "/pay")
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != "payments -> catalog" {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for time.Now().Before(deadline) {
		probe()
		time.Sleep(500 * time.Millisecond)
		// Drop pooled upstream connections now and then: rotation must also
		// hold for connections made with the newest SVIDs.
		if len(serials)%3 == 0 {
			e.node.mu.Lock()
			e.node.clusters["payments"].cluster.CloseIdle()
			e.node.mu.Unlock()
		}
	}
	wg.Wait()
	t.Logf("%d requests, %d failed, %d distinct certificates served by the payments sidecar", ok.Load(), failed.Load(), len(serials))
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if want := int(rotationSeconds() / (5 * time.Second)); len(serials) < want {
		t.Fatalf("only %d distinct certificates in %v with a 5 s TTL: SVIDs did not rotate", len(serials), rotationSeconds())
	}
}
