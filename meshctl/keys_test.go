package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
)

// startAuthEdge is an edge (in a cluster of its own, serving the admin
// API) whose route takes API keys, in front of an app that answers with
// the consumer and tier the edge sends it. acme's key is in the file.
func startAuthEdge(t *testing.T) (m *mesh, fileKey string) {
	t.Helper()
	m = &mesh{ca: pkitest.NewCA(t, td), dir: t.TempDir()}
	edgeID, _ := writeIdentity(t, m.ca, m.dir, "/edge")
	_, m.operator = writeIdentity(t, m.ca, m.dir, "/ops")
	_, m.viewer = writeIdentity(t, m.ca, m.dir, "/viewer")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get(config.HeaderConsumer), r.Header.Get(config.HeaderTier))
	}))
	t.Cleanup(app.Close)
	fileKey, fileHash, _ := apikey.Generate()
	m.edge = startNode(t, m.dir, "edge", edgeID+fmt.Sprintf(`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"], viewers: ["spiffe://example.org/viewer"]}}
cluster: {bind: "127.0.0.1:0", %s}
listeners: [{name: public, address: "127.0.0.1:0"}]
auth: {api_keys: [{name: keys, header: X-Api-Key}]}
consumers:
  - {name: acme, tier: free, api_keys: [%q]}
tiers:
  - {name: default, limits: [{requests: 1000, window: 1m}]}
  - {name: free, limits: [{requests: 1000, window: 1m}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: app, auth: {methods: [keys]}}
upstreams: [{name: app, endpoints: [{address: %q}]}]
`, fastCluster, fileHash, strings.TrimPrefix(app.URL, "http://")), config.Load, "edge")
	m.public = "http://" + m.edge.Addr("public")
	return m, fileKey
}

// call sends a request with key and returns the status and the body.
func (m *mesh) call(t *testing.T, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", m.public+"/x", nil)
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func (m *mesh) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(m.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var issuedRE = regexp.MustCompile(`API key ([0-9a-f]{8}) of consumer (\S+):\n\n    (mgk_[a-z2-7]+)\n`)

func TestMeshctlConsumersTiersAndKeys(t *testing.T) {
	m, fileKey := startAuthEdge(t)

	// Tiers and consumers, from the file and then through the cluster.
	out, err := m.meshctl(t, m.viewer, "tiers", "list")
	if err != nil || !strings.Contains(out, "free") || !strings.Contains(out, "1000/1m") || !strings.Contains(out, "file") {
		t.Fatalf("tiers list: %v\n%s", err, out)
	}
	gold := m.file(t, "gold.yaml", "name: gold\nlimits: [{requests: 5000, window: 1m}, {requests: 100000, window: 1h}]\n")
	if out, err = m.meshctl(t, m.operator, "tiers", "apply", "-f", gold); err != nil || !strings.Contains(out, "tier gold applied") {
		t.Fatalf("tiers apply: %v\n%s", err, out)
	}
	acme := m.file(t, "acme.yaml", "name: acme\ntier: gold\nmetadata: {team: payments}\n")
	if out, err = m.meshctl(t, m.operator, "consumers", "apply", "-f", acme); err != nil || !strings.Contains(out, "consumer acme applied") {
		t.Fatalf("consumers apply: %v\n%s", err, out)
	}
	waitFor(t, "acme is gold at the upstream", func() bool {
		code, body := m.call(t, fileKey)
		return code == 200 && body == "acme gold"
	})
	out, err = m.meshctl(t, m.viewer, "consumers", "list")
	if err != nil || !regexp.MustCompile(`acme\s+gold\s+1\s+cluster`).MatchString(out) {
		t.Fatalf("consumers list: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.viewer, "consumers", "get", "acme", "-o", "yaml"); err != nil || !strings.Contains(out, "team: payments") || strings.Contains(out, "sha256") {
		t.Fatalf("consumers get: %v\n%s", err, out)
	}
	// A file with a key in clear is refused before anything is sent, and
	// the key is not repeated.
	clear, _, _ := apikey.Generate()
	bad := m.file(t, "bad.yaml", "name: beta\napi_keys: ["+clear+"]\n")
	if _, err = m.meshctl(t, m.operator, "consumers", "apply", "-f", bad); err == nil || !strings.Contains(err.Error(), "in clear") || strings.Contains(err.Error(), clear) {
		t.Fatalf("a consumer with a key in clear: %v", err)
	}
	if _, err = m.meshctl(t, m.viewer, "tiers", "apply", "-f", gold); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("viewer applying a tier: %v", err)
	}

	// A key issued by meshctl: printed once, works, listed by id only.
	out, err = m.meshctl(t, m.operator, "keys", "issue", "acme")
	sub := issuedRE.FindStringSubmatch(out)
	if err != nil || sub == nil || sub[2] != "acme" || !strings.Contains(out, "cannot be shown again") {
		t.Fatalf("keys issue: %v\n%s", err, out)
	}
	id, key := sub[1], sub[3]
	if config.KeyID(apikey.HashOf(key)) != id {
		t.Fatalf("id %s is not the key's", id)
	}
	waitFor(t, "the issued key works", func() bool { code, _ := m.call(t, key); return code == 200 })
	out, err = m.meshctl(t, m.viewer, "keys", "list", "--consumer", "acme")
	if err != nil || !regexp.MustCompile(id+`\s+acme\s+active\s+cluster`).MatchString(out) || strings.Count(out, "acme") != 2 ||
		strings.Contains(out, "sha256") || strings.Contains(out, key) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if _, err = m.meshctl(t, m.viewer, "keys", "issue", "acme"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("viewer issuing a key: %v", err)
	}
	if _, err = m.meshctl(t, m.operator, "keys", "issue", "acm"); err == nil || !strings.Contains(err.Error(), "did you mean acme") {
		t.Fatalf("key for an unknown consumer: %v", err)
	}
	// As JSON, for scripts; the warning goes to stderr.
	var errOut bytes.Buffer
	stderr = &errOut
	out, err = m.meshctl(t, m.operator, "keys", "issue", "acme", "-o", "json")
	stderr = os.Stderr
	var issued struct{ Key, ID, Consumer string }
	if err != nil || json.Unmarshal([]byte(out), &issued) != nil || !strings.HasPrefix(issued.Key, "mgk_") || issued.Consumer != "acme" ||
		!strings.Contains(errOut.String(), "cannot be shown again") {
		t.Fatalf("keys issue -o json: %v\n%s\n%s", err, out, errOut.String())
	}

	// Revoke the issued key and the file's key.
	if out, err = m.meshctl(t, m.operator, "keys", "revoke", id); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("keys revoke: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.operator, "keys", "revoke", config.KeyID(apikey.HashOf(fileKey))); err != nil {
		t.Fatalf("keys revoke (file key): %v\n%s", err, out)
	}
	waitFor(t, "both revoked keys are refused", func() bool {
		c1, _ := m.call(t, key)
		c2, _ := m.call(t, fileKey)
		return c1 == 401 && c2 == 401
	})
	if code, _ := m.call(t, issued.Key); code != 200 {
		t.Fatalf("the other key: %d", code)
	}
	if out, err = m.meshctl(t, m.viewer, "keys", "list"); err != nil || !regexp.MustCompile(id+`\s+-\s+revoked`).MatchString(out) {
		t.Fatalf("keys list after revoke: %v\n%s", err, out)
	}

	// Deleting the consumer revokes its keys; then its tier can go.
	if out, err = m.meshctl(t, m.operator, "tiers", "delete", "gold"); err == nil || !strings.Contains(err.Error(), "still in use") {
		t.Fatalf("deleting a tier in use: %v\n%s", err, out)
	}
	if out, err = m.meshctl(t, m.operator, "consumers", "delete", "acme"); err != nil || !strings.Contains(out, "its API keys revoked") {
		t.Fatalf("consumers delete: %v\n%s", err, out)
	}
	waitFor(t, "the deleted consumer's key is refused", func() bool { code, _ := m.call(t, issued.Key); return code == 401 })
	if out, err = m.meshctl(t, m.operator, "tiers", "delete", "gold"); err != nil {
		t.Fatalf("tiers delete: %v\n%s", err, out)
	}
}

func TestMeshctlKeysHash(t *testing.T) {
	key, hash, _ := apikey.Generate()
	var out, errOut bytes.Buffer
	stdout, stderr, stdin = &out, &errOut, strings.NewReader(key+"\n")
	defer func() { stdout, stderr, stdin = os.Stdout, os.Stderr, os.Stdin }()
	if err := run([]string{"meshctl", "keys", "hash"}); err != nil || out.String() != hash+"\n" || !strings.Contains(errOut.String(), config.KeyID(hash)) {
		t.Fatalf("keys hash: %v %q %q", err, out.String(), errOut.String())
	}
	stdin = strings.NewReader("")
	if err := run([]string{"meshctl", "keys", "hash"}); err == nil || !strings.Contains(err.Error(), "no key on stdin") {
		t.Fatalf("keys hash without a key: %v", err)
	}
}

// Completion lists the new commands and their flags.
func TestCompletionOfConsumersTiersAndKeys(t *testing.T) {
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"meshctl"}, []string{"consumers", "tiers", "keys"}},
		{[]string{"meshctl", "keys"}, []string{"issue", "list", "revoke", "hash"}},
		{[]string{"meshctl", "consumers"}, []string{"list", "get", "apply", "delete"}},
		{[]string{"meshctl", "keys", "list", "--c"}, []string{"--consumer"}},
	} {
		out.Reset()
		app := newApp()
		app.Writer = &out
		// urfave/cli reads the word being completed from os.Args, as the
		// shell passes it.
		args := append(tc.args, "--generate-bash-completion")
		saved := os.Args
		os.Args = args
		err := app.Run(interspersed(app, args))
		os.Args = saved
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w+"\n") {
				t.Errorf("%v: completion lacks %s:\n%s", tc.args, w, out.String())
			}
		}
	}
}
