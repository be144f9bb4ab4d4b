package idptest

import "syscall"

// sysProcAttr has the kernel kill Hydra if the test binary dies without
// running its cleanups (a panic, a -timeout), so no orphan keeps its ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
