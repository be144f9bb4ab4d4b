package admin

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/breaker"
	"github.com/meshgate/meshgate/internal/cache"
	"github.com/meshgate/meshgate/internal/clusterstats"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gossip"
	"github.com/meshgate/meshgate/internal/ratelimit"
	"github.com/meshgate/meshgate/internal/replica"
	"github.com/meshgate/meshgate/internal/telemetry"
	"github.com/meshgate/meshgate/pki"
	"github.com/meshgate/meshgate/pki/pkitest"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// storeBackend is a node reduced to its file and the cluster's store,
// applying resources as a node does (config.Overlay over the file).
type storeBackend struct {
	base  *config.Config
	store *replica.Store
}

func (b *storeBackend) effective() (*config.Config, error) {
	var res []config.Resource
	for _, kind := range config.Kinds {
		for _, it := range b.store.List(kind) {
			res = append(res, config.Resource{Kind: it.Kind, Name: it.Name, Value: it.Value, Deleted: it.Deleted})
		}
	}
	return config.Overlay(b.base, res)
}

func (b *storeBackend) Info() Info                { return Info{Name: "test", Role: "edge"} }
func (b *storeBackend) Cluster() *gossip.Cluster  { return nil }
func (b *storeBackend) Effective() *config.Config { cfg, _ := b.effective(); return cfg }
func (b *storeBackend) ClusterResources(kind string) []replica.Item {
	return b.store.List(kind)
}
func (b *storeBackend) ApplyResource(kind string, value []byte) error {
	name, err := config.ResourceName(kind, value)
	if err != nil {
		return err
	}
	if _, err := config.Overlay(b.Effective(), []config.Resource{{Kind: kind, Name: name, Value: value}}); err != nil {
		return err
	}
	_, err = b.store.Put(kind, name, value)
	return err
}
func (b *storeBackend) DeleteResource(kind, name string) (bool, error) {
	_, ok, err := b.store.Delete(kind, name)
	return ok, err
}
func (b *storeBackend) Breakers() *breaker.Registry        { return nil }
func (b *storeBackend) Limits() *ratelimit.Limiter         { return nil }
func (b *storeBackend) Tap() *telemetry.Tap                { return nil }
func (b *storeBackend) ClusterStats() *clusterstats.Sharer { return nil }
func (b *storeBackend) PurgeCache(p cache.Purge) (string, int, error) {
	return "p-" + p.Route, 0, nil
}
func (b *storeBackend) CacheStores() *cache.Stores                    { return cache.NewStores(nil, nil) }
func (b *storeBackend) CacheCounts() map[string]telemetry.CacheCounts { return nil }

// syncBuffer is a log sink read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAPI serves the admin API of a storeBackend over mTLS and returns
// clients as the operator and the viewer, and the audit log.
func startAPI(t *testing.T, file string) (ops, viewer adminv1.AdminClient, log *syncBuffer) {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca := pkitest.NewCA(t, td)
	base, err := config.Parse("edge.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	opsOK, _ := pki.AllowPatterns("spiffe://example.org/ops")
	viewOK, _ := pki.AllowPatterns("spiffe://example.org/viewer")
	node := pkitest.NewSource(ca.SVID(t, ca.ID(t, "/edge")), ca.Bundle())
	log = &syncBuffer{}
	s := New(Options{Backend: &storeBackend{base: base, store: replica.New(replica.Options{Node: "test"})},
		TLS: pki.ServerTLS(node, node, pki.AllowTrustDomain(td)), Operators: opsOK, Viewers: viewOK,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	client := func(path string) adminv1.AdminClient {
		src := pkitest.NewSource(ca.SVID(t, ca.ID(t, path)), ca.Bundle())
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(src, src, pki.AllowTrustDomain(td)))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return adminv1.NewAdminClient(conn)
	}
	return client("/ops"), client("/viewer"), log
}

const authFile = `
listeners: [{name: public, address: "127.0.0.1:0"}]
auth: {api_keys: [{name: keys, header: X-Api-Key}]}
consumers:
  - {name: acme, tier: free, api_keys: ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}
tiers:
  - {name: default, limits: [{requests: 1, window: 1m}]}
  - {name: free, limits: [{requests: 10, window: 1m}]}
`

func codeOf(err error) codes.Code { return status.Code(err) }

func TestConsumerTierAndKeyResources(t *testing.T) {
	ops, viewer, audit := startAPI(t, authFile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Tiers and consumers: apply, list, get, delete.
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindTier,
		Yaml: "name: gold\nlimits: [{requests: 1000, window: 1m}]\n"}); err != nil {
		t.Fatal(err)
	}
	r, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindConsumer, Yaml: "name: acme\ntier: gold\nmetadata: {team: a}\n"})
	if err != nil || r.Name != "acme" || r.Origin != "cluster" || r.Version == "" {
		t.Fatalf("apply consumer: %v %v", r, err)
	}
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindConsumer, Yaml: "name: beta\ntier: platinum\n"}); codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "platinum") {
		t.Fatalf("consumer of an unknown tier: %v", err)
	}
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindConsumer,
		Yaml: "name: beta\napi_keys: [\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"]\n"}); codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "meshctl keys issue") {
		t.Fatalf("consumer with api_keys: %v", err)
	}
	tiers, err := viewer.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindTier})
	if err != nil || len(tiers.Resources) != 3 {
		t.Fatalf("tiers: %v %v", tiers, err)
	}
	got, err := viewer.GetResource(ctx, &adminv1.GetResourceRequest{Kind: config.KindConsumer, Name: "acme"})
	if err != nil || !strings.Contains(got.Yaml, "tier: gold") || got.Origin != "cluster" {
		t.Fatalf("get acme: %v %v", got, err)
	}
	if got, err = viewer.GetResource(ctx, &adminv1.GetResourceRequest{Kind: config.KindTier, Name: "free"}); err != nil || got.Origin != "file" || !strings.Contains(got.Yaml, "requests: 10") {
		t.Fatalf("get free: %v %v", got, err)
	}
	if _, err = viewer.GetResource(ctx, &adminv1.GetResourceRequest{Kind: config.KindConsumer, Name: "acm"}); codeOf(err) != codes.NotFound || !strings.Contains(err.Error(), "did you mean acme") {
		t.Fatalf("get acm: %v", err)
	}

	// Keys: only hashes; list and get show id and consumer.
	key, hash, _ := apikey.Generate()
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acme\nhash: " + key + "\n"}); codeOf(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "in clear") || strings.Contains(err.Error(), key) {
		t.Fatalf("a key in clear: %v", err)
	}
	if strings.Contains(audit.String(), key[4:]) {
		t.Fatalf("the clear key reached the audit log:\n%s", audit)
	}
	// Nor through another kind: a consumer with its keys inline, a key in
	// clear among them, is refused, and the audit line has neither.
	_, _ = ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindConsumer,
		Yaml: "name: leaky\ntier: gold\napi_keys: [" + key + "]\n"})
	if strings.Contains(audit.String(), key[4:]) {
		t.Fatalf("a clear key in a consumer reached the audit log:\n%s", audit)
	}
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acmee\nhash: " + hash + "\n"}); codeOf(err) != codes.NotFound || !strings.Contains(err.Error(), "did you mean acme") {
		t.Fatalf("a key of an unknown consumer: %v", err)
	}
	id := config.KeyID(hash)
	r, err = ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acme\nhash: " + hash + "\n"})
	if err != nil || r.Name != id || r.Yaml != "id: "+id+"\nconsumer: acme\n" {
		t.Fatalf("issue: %v %v", r, err)
	}
	keys, err := viewer.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindAPIKey})
	if err != nil || len(keys.Resources) != 2 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	for _, k := range keys.Resources {
		if strings.Contains(k.Yaml, "sha256") || !strings.Contains(k.Yaml, "consumer: acme") {
			t.Errorf("key shown as %q", k.Yaml)
		}
	}
	got, err = viewer.GetResource(ctx, &adminv1.GetResourceRequest{Kind: config.KindConsumer, Name: "acme"})
	if err != nil || strings.Contains(got.Yaml, "api_keys") {
		t.Fatalf("a consumer shows its keys: %v %v", got, err)
	}
	// Another key with the same id is refused, and so is a revoked id.
	other := "sha256:" + hash[7:15] + strings.Repeat("0", 56)
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acme\nhash: " + other + "\n"}); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("id collision: %v", err)
	}

	// Revoke a cluster key and the file's key.
	if d, err := ops.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindAPIKey, Name: id}); err != nil || !d.Deleted {
		t.Fatalf("revoke: %v %v", d, err)
	}
	if d, err := ops.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindAPIKey, Name: "11111111"}); err != nil || !d.Deleted {
		t.Fatalf("revoke the file's key: %v %v", d, err)
	}
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acme\nhash: " + hash + "\n"}); codeOf(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked key again: %v", err)
	}
	keys, _ = viewer.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindAPIKey})
	for _, k := range keys.Resources {
		if k.Origin != "cluster-deleted" {
			t.Errorf("after the revocations: %v", k)
		}
	}

	// A tier in use; deleting a consumer revokes its keys first.
	_, hash2, _ := apikey.Generate()
	if _, err := ops.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: "consumer: acme\nhash: " + hash2 + "\n"}); err != nil {
		t.Fatal(err)
	}
	if d, err := ops.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindConsumer, Name: "acme"}); err != nil || !d.Deleted {
		t.Fatalf("delete acme: %v %v", d, err)
	}
	keys, _ = viewer.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindAPIKey})
	for _, k := range keys.Resources {
		if k.Origin != "cluster-deleted" {
			t.Errorf("a key of the deleted consumer: %v", k)
		}
	}
	if d, err := ops.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindTier, Name: "gold"}); err != nil || !d.Deleted {
		t.Fatalf("delete gold: %v %v", d, err)
	}

	// Viewers read, never write; the audit log names keys by id.
	if _, err := viewer.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindTier, Yaml: "name: x\nlimits: [{requests: 1, window: 1m}]\n"}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("viewer applying: %v", err)
	}
	if _, err := viewer.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindAPIKey, Name: "11111111"}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("viewer revoking: %v", err)
	}
	if log := audit.String(); !strings.Contains(log, `id:\"`+config.KeyID(hash2)+`\"`) || strings.Contains(log, hash2) {
		t.Fatalf("audit log:\n%s", log)
	}
}
