// Package testenv decides what a test does when a real peer it needs —
// SPIRE, Jaeger, Hydra, the release binaries, network namespaces — is not
// there: on a developer's machine it skips, saying how to get the peer; in
// CI (CI=true, as .ci/run sets) it fails, because `make test` builds every
// peer first and a silent skip there would hide a whole integration going
// untested.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in CI: CI is set to a true value.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Unavailable ends t because what it needs is missing: a skip, or in CI a
// failure, with the message.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI: "+format, args...)
		return
	}
	t.Skipf(format, args...)
}
