package demo

import "syscall"

// sysProcAttr puts a child in its own process group, so that it is signalled
// as a whole, and has the kernel send it SIGTERM should the runner die
// without stopping it (SIGKILL, a crash).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
