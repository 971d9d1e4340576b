package wine

import (
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// Allocate reserves and commits size bytes with perm for a debugger, as a
// private allocation of its own; the guest sees it as memory it did not
// ask for, like a remote VirtualAllocEx.
func (p *Process) Allocate(size uint64, perm arch.Perm) (uint64, error) {
	if size == 0 || size > process.MaxDebuggerAlloc {
		return 0, fmt.Errorf("allocate %#x bytes: bad size", size)
	}
	prot := uint32(process.PAGE_NOACCESS)
	switch perm & arch.PermRWX {
	case arch.PermRead:
		prot = process.PAGE_READONLY
	case arch.PermRW, arch.PermWrite:
		prot = process.PAGE_READWRITE
	case arch.PermExec, arch.PermRX:
		prot = process.PAGE_EXECUTE_READ
	case arch.PermRWX, arch.PermWrite | arch.PermExec:
		prot = process.PAGE_EXECUTE_READWRITE
	}
	a, err := p.allocate(process.LowestAddress, size, prot, process.MEM_PRIVATE, false, process.DebuggerAllocName)
	if err != nil {
		return 0, err
	}
	return a.base, nil
}

// Free releases an allocation Allocate made; addr is its base.
func (p *Process) Free(addr uint64) error {
	a := p.vm.find(addr)
	if a == nil || a.base != addr || a.name != process.DebuggerAllocName {
		return fmt.Errorf("free %#x: not a debugger allocation", addr)
	}
	return p.vm.release(a)
}
