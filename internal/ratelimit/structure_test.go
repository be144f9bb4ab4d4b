package ratelimit

import (
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/pkgcheck"
)

// TestStructure holds the package to its design: documented, and free of
// the gossip package (it satisfies gossip.Owner structurally) and of other
// policy packages. It may use internal/clock and the internal/wire codec.
func TestStructure(t *testing.T) {
	pkgcheck.Structure(t, "ratelimit", func(path string) bool {
		return !strings.HasPrefix(path, "github.com/meshgate/meshgate/") ||
			path == "github.com/meshgate/meshgate/internal/clock" || path == "github.com/meshgate/meshgate/internal/wire"
	}, "only internal/clock and internal/wire are allowed")
}

// owner is gossip.Owner, restated: the Limiter must keep satisfying it.
type owner interface {
	Kind() byte
	Merge(msg []byte) (relay bool, err error)
	LocalState() []byte
	MergeState(state []byte) error
}

var _ owner = (*Limiter)(nil)
