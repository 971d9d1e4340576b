package qemu

import "syscall"

// sysProcAttr makes the kernel kill QEMU if rspstub dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
