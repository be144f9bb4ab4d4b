package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/pki/pkitest"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// The stats table, exactly: one line per route, evictions as a total and
// the reasons that have any, sorted.
func TestCacheStatsTable(t *testing.T) {
	r := &adminv1.CacheStatsResponse{Node: "edge-1", Routes: []*adminv1.CacheRouteStats{
		{Route: "docs", Entries: 0, Bytes: 0, EvictionsByReason: map[string]uint64{"purged": 0, "size": 0}},
		{Route: "pages", Entries: 12, Bytes: 40960, Hits: 300, Misses: 12, Stale: 3, Revalidations: 2, Evictions: 5,
			EvictionsByReason: map[string]uint64{"size": 1, "purged": 4, "expired": 0}},
	}}
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	if err := render("table", r, cacheStatsHeader, func(w io.Writer) { cacheStatsRows(w, r) }); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ROUTE  ENTRIES  BYTES  HITS  MISSES  STALE  REVALIDATED  EVICTIONS\n" +
		"docs   0        0      0     0       0      0            0\n" +
		"pages  12       40960  300   12      3      2            5 (purged 4, size 1)\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

// cacheEdge is a lone edge caching route pages, serving the admin API to
// an operator and a viewer.
func cacheEdge(t *testing.T) *mesh {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("page " + r.URL.Path))
	}))
	t.Cleanup(origin.Close)
	m := &mesh{ca: pkitest.NewCA(t, td), dir: t.TempDir()}
	edgeID, _ := writeIdentity(t, m.ca, m.dir, "/edge")
	_, m.operator = writeIdentity(t, m.ca, m.dir, "/ops")
	_, m.viewer = writeIdentity(t, m.ca, m.dir, "/viewer")
	m.edge = startNode(t, m.dir, "edge", edgeID+`
log: {access: "off"}
admin: {api: {address: "127.0.0.1:0", operators: ["spiffe://example.org/ops"], viewers: ["spiffe://example.org/viewer"]}}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - {name: pages, match: {path: {prefix: /pages}}, upstream: o, cache: {}}
  - {name: api, match: {path: {prefix: /api}}, upstream: o}
upstreams: [{name: o, endpoints: [{address: "`+strings.TrimPrefix(origin.URL, "http://")+`"}]}]
`, config.Load, "edge")
	m.public = "http://" + m.edge.Addr("public")
	return m
}

func TestCachePurgeAndStatsCommands(t *testing.T) {
	m := cacheEdge(t)
	for _, p := range []string{"/pages/a", "/pages/a", "/pages/b"} {
		resp, err := http.Get(m.public + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	out, err := m.meshctl(t, m.viewer, "cache", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^# node \S+$`, `(?m)^ROUTE\s+ENTRIES\s+BYTES\s+HITS\s+MISSES\s+STALE\s+REVALIDATED\s+EVICTIONS$`,
		`(?m)^pages\s+2\s+\d+\s+1\s+2\s+0\s+0\s+0$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("cache stats: no line matching %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "api") {
		t.Errorf("cache stats lists a route without a cache:\n%s", out)
	}

	if _, err := m.meshctl(t, m.viewer, "cache", "purge", "pages", "--all"); err == nil ||
		!strings.Contains(err.Error(), "permission denied for spiffe://example.org/viewer") {
		t.Fatalf("a viewer purging: %v", err)
	}
	for _, args := range [][]string{{"pages"}, {"pages", "--all", "--path", "/pages/a"}, {"--all"}} {
		if _, err := m.meshctl(t, m.operator, append([]string{"cache", "purge"}, args...)...); err == nil ||
			!strings.Contains(err.Error(), "usage: meshctl cache purge ROUTE") {
			t.Errorf("cache purge %v: %v", args, err)
		}
	}
	if _, err := m.meshctl(t, m.operator, "cache", "purge", "pagse", "--all"); err == nil || !strings.Contains(err.Error(), "did you mean pages") {
		t.Errorf("a typo: %v", err)
	}

	out, err = m.meshctl(t, m.operator, "cache", "purge", "pages", "--path", "/pages/a")
	if err != nil || !regexp.MustCompile(`^purge [0-9a-f]{24} of route pages \(path /pages/a\) sent to every node; 1 entry removed on \S+, the others within a second\n$`).MatchString(out) {
		t.Fatalf("cache purge --path: %v\n%s", err, out)
	}
	out, err = m.meshctl(t, m.operator, "cache", "purge", "pages", "--prefix", "/pages/", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || r["purged_here"] != float64(1) || r["mode"] != "prefix" || r["value"] != "/pages/" {
		t.Fatalf("cache purge -o json: %v\n%s", err, out)
	}

	out, err = m.meshctl(t, m.viewer, "cache", "stats", "pages", "-o", "yaml")
	if err != nil || !strings.Contains(out, "entries: 0\n") || !strings.Contains(out, "purged: 2\n") || !strings.Contains(out, "evictions: 2\n") {
		t.Fatalf("cache stats -o yaml: %v\n%s", err, out)
	}
}
