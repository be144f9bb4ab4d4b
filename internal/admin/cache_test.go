package admin

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

const cacheFile = `
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: b, endpoints: [{address: "127.0.0.1:1"}]}]
routes:
  - {name: pages, match: {path: {prefix: /pages}}, upstream: b, cache: {}}
  - {name: api, match: {path: {prefix: /api}}, upstream: b}
`

// A purge is an operator's: a viewer is refused and nothing is audited as
// a change; an operator's is checked (route, mode, path), normalized, and
// audited by route, mode and path. Stats are a viewer's read.
func TestPurgeCacheAuthzAndChecks(t *testing.T) {
	ops, viewer, audit := startAPI(t, cacheFile)
	ctx := context.Background()

	_, err := viewer.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "pages", Mode: "all"})
	if codeOf(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "spiffe://example.org/viewer") {
		t.Fatalf("viewer purging: %v", err)
	}
	if strings.Contains(audit.String(), "audit: change") {
		t.Fatalf("a refused purge was audited as a change:\n%s", audit)
	}

	r, err := ops.PurgeCache(ctx, &adminv1.PurgeCacheRequest{Route: "pages", Mode: "path", Value: "/pages/%7Ea"})
	if err != nil || r.Value != "/pages/~a" || r.Mode != "path" || r.Route != "pages" || r.Id == "" || r.Node != "test" || r.AtUnixMs == 0 {
		t.Fatalf("operator purging: %v %v", r, err)
	}
	if !strings.Contains(audit.String(), `audit: change" component=admin-api method=PurgeCache caller=spiffe://example.org/ops request="route:\"pages\" mode:\"path\" value:\"/pages/%7Ea\"" result=ok`) {
		t.Errorf("audit line:\n%s", audit)
	}

	for _, c := range []struct {
		req  *adminv1.PurgeCacheRequest
		code codes.Code
		msg  string
	}{
		{&adminv1.PurgeCacheRequest{Route: "pagse", Mode: "all"}, codes.NotFound, "did you mean pages"},
		{&adminv1.PurgeCacheRequest{Route: "pages", Mode: "everything"}, codes.InvalidArgument, "want path, prefix or all"},
		{&adminv1.PurgeCacheRequest{Route: "pages", Mode: "path", Value: "/a?b=1"}, codes.InvalidArgument, "without query"},
		{&adminv1.PurgeCacheRequest{Route: "pages", Mode: "prefix", Value: "pages"}, codes.InvalidArgument, "starting with /"},
	} {
		if _, err := ops.PurgeCache(ctx, c.req); codeOf(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v, want %v with %q", c.req, err, c.code, c.msg)
		}
	}

	st, err := viewer.CacheStats(ctx, &adminv1.CacheStatsRequest{})
	if err != nil || st.Node != "test" || len(st.Routes) != 1 || st.Routes[0].Route != "pages" {
		t.Fatalf("stats: %v %v", st, err)
	}
	if _, err := viewer.CacheStats(ctx, &adminv1.CacheStatsRequest{Route: "api"}); codeOf(err) != codes.FailedPrecondition {
		t.Errorf("stats of a route without a cache: %v", err)
	}
	if _, err := viewer.CacheStats(ctx, &adminv1.CacheStatsRequest{Route: "nope"}); codeOf(err) != codes.NotFound {
		t.Errorf("stats of an unknown route: %v", err)
	}
}
