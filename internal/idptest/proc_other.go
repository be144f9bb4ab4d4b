//go:build !linux

package idptest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
