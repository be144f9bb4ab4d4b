package breaker

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// owner is gossip.Owner, restated: the Registry satisfies it structurally
// and this package does not import gossip (gossip carries bytes for its
// owners and must not know their types; importing it here would invert
// that).
type owner interface {
	Kind() byte
	Merge(msg []byte) (relay bool, err error)
	LocalState() []byte
	MergeState(state []byte) error
}

var _ owner = (*Registry)(nil)

func TestPackageStructure(t *testing.T) {
	if k := (&Registry{}).Kind(); k != 'b' {
		t.Errorf("Kind %q", k)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	docs := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments|parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if af.Doc != nil {
			docs++
			if f != "doc.go" {
				t.Errorf("%s: package doc belongs in doc.go", f)
			}
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasSuffix(p, "/internal/gossip") || strings.Contains(p, "/internal/gossip/") ||
				strings.Contains(p, "memberlist") || p == "net/http" {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
	if docs != 1 {
		t.Errorf("%d package doc comments, want 1 (doc.go)", docs)
	}
}
