package unicorn

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// rsGoSyscall is called by the C syscall hook (machine.c) while the guest
// runs: the machine's handler serves the call in place and the run goes
// on, or declines and the run stops with StopSyscall as without one.
//
//export rsGoSyscall
func rsGoSyscall(h C.uintptr_t) C.int {
	m, ok := cgo.Handle(h).Value().(*Machine)
	if !ok || m.syscallFn == nil {
		return 0
	}
	m.inSyscall, m.sysRegsValid = true, true
	defer func() { m.inSyscall, m.sysRegsValid = false, false }()
	if m.syscallFn() {
		return 1
	}
	return 0
}
