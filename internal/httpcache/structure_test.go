package httpcache

import (
	"testing"

	"github.com/meshgate/meshgate/internal/pkgcheck"
)

// TestStructure holds the package to its design: documented, and pure
// decision logic on the standard library alone, so that the cache stage
// can use it without pulling anything in.
func TestStructure(t *testing.T) {
	pkgcheck.Structure(t, "httpcache", pkgcheck.StandardLibrary, "only the standard library is allowed")
}
