package ratelimit

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStructure holds the package to its design: documented, and free of
// the gossip package (it satisfies gossip.Owner structurally) and of other
// policy packages. It may use internal/clock and the internal/wire codec.
func TestStructure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments|parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package ratelimit ") {
			documented = true
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/meshgate/meshgate/") &&
				path != "github.com/meshgate/meshgate/internal/clock" && path != "github.com/meshgate/meshgate/internal/wire" {
				t.Errorf("%s imports %s: only internal/clock and internal/wire are allowed", name, path)
			}
		}
	}
	if !documented {
		t.Error("no package documentation")
	}
}

// owner is gossip.Owner, restated: the Limiter must keep satisfying it.
type owner interface {
	Kind() byte
	Merge(msg []byte) (relay bool, err error)
	LocalState() []byte
	MergeState(state []byte) error
}

var _ owner = (*Limiter)(nil)
