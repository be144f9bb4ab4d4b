package telemetry

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every metric the code defines is a row of docs/config.md's metrics
// table, and every row is a metric the code defines: the names are the
// "meshgate_…" string literals of the non-test sources under internal/.
func TestMetricsTableListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(meshgate_[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	literal := regexp.MustCompile(`"(meshgate_[a-z0-9_]*[a-z0-9])"`)
	defined := map[string]bool{}
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "bench" { // the harness reads metrics, it defines none
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 20 {
		t.Fatalf("found %d metric names in the sources", len(defined))
	}
	var missing, stale []string
	for name := range defined {
		if !documented[name] {
			missing = append(missing, name)
		}
	}
	for name := range documented {
		if !defined[name] {
			stale = append(stale, name)
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	if len(missing) > 0 {
		t.Errorf("docs/config.md's metrics table lacks %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("docs/config.md's metrics table lists metrics the code does not define: %v", stale)
	}
}
