package admin

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// Every RPC of the admin service is decided: a read or a write, never both,
// never neither. A new RPC fails this test until it is classified.
func TestEveryRPCIsAReadOrAWrite(t *testing.T) {
	methods := adminv1.File_meshgate_admin_v1_admin_proto.Services().ByName("Admin").Methods()
	if methods.Len() < 10 {
		t.Fatalf("%d methods in the descriptor", methods.Len())
	}
	seen := map[string]bool{}
	for i := range methods.Len() {
		name := string(methods.Get(i).Name())
		seen[name] = true
		if reads[name] == mutations[name] {
			t.Errorf("RPC %s: read %v, write %v; classify it in authz.go", name, reads[name], mutations[name])
		}
	}
	for _, set := range []map[string]bool{reads, mutations} {
		for name := range set {
			if !seen[name] {
				t.Errorf("%s is classified but is no RPC of the service", name)
			}
		}
	}
}

// An RPC in neither set is refused to everyone, operators included.
func TestUnclassifiedRPCIsRefused(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	everyone := func(spiffeid.ID, [][]*x509.Certificate) error { return nil }
	a := &authorizer{operators: everyone, viewers: everyone, log: slog.New(slog.DiscardHandler)}
	_, err := a.checkID(context.Background(), "/meshgate.admin.v1.Admin/NewShinyRPC", spiffeid.RequireFromPath(td, "/ops"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "NewShinyRPC") {
		t.Fatalf("unclassified RPC: %v", err)
	}
	if _, err := a.checkID(context.Background(), "/meshgate.admin.v1.Admin/ListMembers", spiffeid.RequireFromPath(td, "/ops")); err != nil {
		t.Fatalf("a read: %v", err)
	}
}
