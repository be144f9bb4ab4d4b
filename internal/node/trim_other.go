//go:build !linux

package node

// trimStartupPages is Linux-only (see trim_linux.go).
func trimStartupPages() (int64, error) { return 0, nil }
