//go:build unix && !linux

package demo

import "syscall"

// sysProcAttr puts a child in its own process group, so that it is signalled
// as a whole.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
