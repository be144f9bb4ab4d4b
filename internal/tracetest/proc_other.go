//go:build !linux

package tracetest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
