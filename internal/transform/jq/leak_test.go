package jq

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a test leaves a goroutine
// behind (issue 16). jq's evaluation workers are a process-wide pool:
// an idle one retires after 10 s, by design.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/meshgate/meshgate/internal/transform/jq.(*worker).loop"))
}
