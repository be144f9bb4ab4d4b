// Package idptest runs a real OAuth2/OIDC server, ORY Hydra, on loopback
// for the tests of token validation: the identity provider that issues the
// access tokens meshgate checks, with its JWKS, introspection and
// revocation endpoints, so a test asserts against what a real issuer does.
//
//	h := idptest.StartHydra(t)              // skips without bin/hydra (make hydra)
//	c := h.CreateClient(t, idptest.ClientOptions{
//		Scopes: []string{"orders.read"}, Audience: []string{"orders"},
//		AccessTokenStrategy: "jwt",
//	})
//	tok := h.Token(t, c, []string{"orders.read"}, []string{"orders"})
//	... configure the gateway with h.Issuer(), h.JWKSURL() (or
//	    h.IntrospectionURL() for "opaque" clients), send tok ...
//	h.RotateKeys(t)                         // new tokens carry a new kid
//	h.Revoke(t, c, tok)                     // introspection says inactive
//
// The binary is Hydra v2.3.0, pinned in the tools module internal/tools/hydra
// and built into bin/hydra by `make hydra` (CI does so before the tests).
// StartHydra gives each call its own `hydra serve all --dev` process with its
// own config file: an in-memory SQLite store (dsn: memory), JWT access
// tokens by default (a client may ask for opaque ones), the public and
// admin listeners each on a free 127.0.0.1 port and the issuer
// http://127.0.0.1:PUBLICPORT/ (--dev allows plain HTTP). The issuer keeps
// its trailing slash, and so does the `iss` claim of the tokens.
//
// A JWT access token of a client-credentials grant is signed RS256 with the
// newest key of the key set hydra.jwt.access-token (the header's kid names
// it; the public JWKS lists every key of the set) and carries iss, sub
// (the client ID), client_id, aud (a list), scp (the granted scopes as a
// list), iat, nbf, exp, jti and an empty ext. The signing keys are 2048-bit
// RSA keys the harness makes and gives Hydra, never Hydra's own (keys.go
// says why).
package idptest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/meshtest"
	"github.com/meshgate/meshgate/internal/testenv"
)

// rootModule is the module path whose go.mod marks the repository root,
// under which `make hydra` puts bin/hydra.
const rootModule = "github.com/meshgate/meshgate"

// startTimeout bounds how long StartHydra waits for Hydra to be ready (its
// in-memory database is migrated at startup, which takes a few seconds).
const startTimeout = 60 * time.Second

// requestTimeout bounds each request to Hydra.
const requestTimeout = 30 * time.Second

// systemSecret encrypts Hydra's stored keys and signs its opaque tokens;
// any string of 16 or more characters will do for a store that lives as
// long as the test.
const systemSecret = "idptest-system-secret-not-for-production"

// Hydra is a running Hydra process owned by one test. Its methods are safe
// for concurrent use.
type Hydra struct {
	public string // base URL of the public API, no trailing slash
	admin  string // base URL of the admin API, no trailing slash
	client *http.Client
}

// Issuer is the issuer URL, with its trailing slash, as it appears in the
// `iss` claim and the discovery document: "http://127.0.0.1:PUBLICPORT/".
func (h *Hydra) Issuer() string { return h.public + "/" }

// PublicURL is the base URL of the public API (token, revocation, JWKS,
// discovery), for example "http://127.0.0.1:41001", no trailing slash.
func (h *Hydra) PublicURL() string { return h.public }

// AdminURL is the base URL of the admin API (clients, keys,
// introspection), no trailing slash; its routes live under /admin.
func (h *Hydra) AdminURL() string { return h.admin }

// JWKSURL is the public JSON Web Key Set: the keys that sign access and ID
// tokens, old and new alike after RotateKeys.
func (h *Hydra) JWKSURL() string { return h.public + "/.well-known/jwks.json" }

// IntrospectionURL is the RFC 7662 introspection endpoint. Hydra serves it
// on the admin API only, without client authentication.
func (h *Hydra) IntrospectionURL() string { return h.admin + "/admin/oauth2/introspect" }

// TokenURL is the token endpoint of the public API.
func (h *Hydra) TokenURL() string { return h.public + "/oauth2/token" }

// RevocationURL is the RFC 7009 revocation endpoint of the public API.
func (h *Hydra) RevocationURL() string { return h.public + "/oauth2/revoke" }

// StartHydra starts bin/hydra on loopback for t, waits until both its APIs
// are ready, and stops it when t's cleanups run. It skips t, naming
// `make hydra`, only when the binary is missing; a Hydra that does not
// start fails t. Hydra's log is printed if t fails.
func StartHydra(t testing.TB) *Hydra {
	t.Helper()
	bin := hydraBin(t)
	// A free port is only free until someone else takes it: on a bind
	// failure, try again with new ports.
	var err error
	for range 3 {
		var h *Hydra
		if h, err = start(t, bin); err == nil {
			return h
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("idptest: bin/hydra does not start: %v", err)
	return nil
}

// hydraBin finds bin/hydra at the repository root: the first directory up
// from the working directory (a test's is its package's) whose go.mod is
// the root module's.
func hydraBin(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("idptest: no working directory to find bin/hydra from: %v", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isRootModule(filepath.Join(d, "go.mod")) {
			p := filepath.Join(d, "bin", "hydra")
			if _, err := os.Stat(p); err != nil {
				testenv.Unavailable(t, "idptest: Hydra is not built (%s missing): run `make hydra` (builds Hydra v2.3.0 from internal/tools/hydra)", p)
			}
			return p
		}
		if filepath.Dir(d) == d {
			t.Fatalf("idptest: no go.mod of %s above %s to find bin/hydra in", rootModule, dir)
		}
	}
}

func isRootModule(gomod string) bool {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == rootModule
		}
	}
	return false
}

var errAddrInUse = errors.New("address already in use")

// start runs one attempt: config with fresh ports, process, readiness.
func start(t testing.TB, bin string) (*Hydra, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	publicPort, adminPort := ports[0], ports[1]

	dir := t.TempDir()
	conf := filepath.Join(dir, "hydra.yaml")
	if err := os.WriteFile(conf, []byte(config(publicPort, adminPort)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "--config", conf)
	cmd.Dir = dir
	// Hydra reads its configuration from the environment too (DSN,
	// SERVE_PUBLIC_PORT, SECRETS_SYSTEM, ...): give it none of the test's.
	cmd.Env = []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=" + os.Getenv("PATH")}
	log := &meshtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}

	h := &Hydra{
		public: fmt.Sprintf("http://127.0.0.1:%d", publicPort),
		admin:  fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		client: &http.Client{
			Transport: &http.Transport{Proxy: nil, DisableCompression: true},
			Timeout:   requestTimeout,
		},
	}
	err = h.waitReady(exited)
	if err == nil {
		// Before anything makes Hydra generate keys itself (keys.go).
		err = h.seedKeys()
	}
	if err != nil {
		stop()
		out := log.String()
		if strings.Contains(out, "address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, fmt.Errorf("%w\nhydra log:\n%s", err, out)
	}
	t.Cleanup(func() {
		stop()
		h.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("idptest: hydra log:\n%s", log.String())
		}
	})
	return h, nil
}

// config is Hydra's configuration: an in-memory store, both listeners on
// 127.0.0.1, the issuer on the public one, JWT access tokens unless a
// client asks for opaque ones (scp as a list, Hydra's default).
func config(publicPort, adminPort int) string {
	return fmt.Sprintf(`dsn: memory
serve:
  public:
    host: 127.0.0.1
    port: %d
  admin:
    host: 127.0.0.1
    port: %d
urls:
  self:
    issuer: http://127.0.0.1:%d/
strategies:
  access_token: jwt
  jwt:
    scope_claim: list
secrets:
  system:
    - %s
log:
  level: info
  format: text
  leak_sensitive_values: true
`, publicPort, adminPort, publicPort, systemSecret)
}

// waitReady polls until both APIs report ready (the admin one once the
// store is migrated), or the process exits, or startTimeout passes.
func (h *Hydra) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = h.ready(); last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("hydra exited during startup (last check: %v)", last)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hydra not ready after %v: %v", startTimeout, last)
		}
	}
}

func (h *Hydra) ready() error {
	for _, base := range []string{h.admin, h.public} {
		resp, err := h.client.Get(base + "/health/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/health/ready: %s", base, resp.Status)
		}
	}
	return nil
}

// freePorts reserves n distinct loopback ports by listening on them, then
// releases them for Hydra to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
