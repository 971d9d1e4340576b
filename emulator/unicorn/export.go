package unicorn

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

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

// rsInsnIndex is called by the position counter (machine.c) when a run
// leaves a block early or a block is not in libunicorn's cache: how many
// instructions start in [start, pc), decoded as libunicorn translates
// them (straight line: a block has no branch before its last
// instruction).
//
//export rsInsnIndex
func rsInsnIndex(h C.uintptr_t, start, pc C.uint64_t) C.int {
	m, ok := cgo.Handle(h).Value().(*Machine)
	if !ok {
		return -1
	}
	return C.int(m.insnIndex(uint64(start), uint64(pc)))
}

// rsScanTSC is called by the position counter (machine.c) for a block
// seen for the first time while the time stamp counter is virtual: the
// addresses after its rdtsc and rdtscp instructions (at most max).
//
//export rsScanTSC
func rsScanTSC(h C.uintptr_t, start, size C.uint64_t, after *C.uint64_t, max C.int) C.int {
	m, ok := cgo.Handle(h).Value().(*Machine)
	if !ok || max <= 0 {
		return 0
	}
	out := unsafe.Slice(after, int(max))
	return C.int(m.scanTSC(uint64(start), uint64(start+size), out))
}
