package node

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFileKB reads RssFile from /proc/self/status.
func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no RssFile")
	return 0
}

func TestTrimStartupPagesReleasesAndKeepsRunning(t *testing.T) {
	before := rssFileKB(t)
	n, err := trimStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no read-only mapping of the executable found")
	}
	after := rssFileKB(t)
	if after >= before {
		t.Fatalf("RssFile %d kB → %d kB: nothing released", before, after)
	}
	// The code and data dropped come back on use: run something sizeable.
	startEdge(t, `
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams: [{name: u, endpoints: [{address: "127.0.0.1:1"}]}]
`)
	t.Logf("RssFile %d kB → %d kB (released %d MB of mappings)", before, after, n>>20)
}
