// Package buildinfo holds the version stamped at build time.
package buildinfo

import "runtime/debug"

// Version is set by the Makefile with -ldflags -X; "dev" otherwise.
var Version = "dev"

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}
