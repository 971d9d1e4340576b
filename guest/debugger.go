package guest

import (
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// Allocate maps size bytes with perm for a debugger, where VirtualAlloc
// would put them; the guest sees memory it did not ask for, like a remote
// VirtualAllocEx.
func (p *Process) Allocate(size uint64, perm arch.Perm) (uint64, error) {
	if size == 0 || size > process.MaxDebuggerAlloc {
		return 0, fmt.Errorf("allocate %#x bytes: bad size", size)
	}
	addr, err := p.as.findFree(size, virtualHint, 0x10000, process.UserLimit)
	if err != nil {
		return 0, err
	}
	a, err := p.as.mapRange(addr, size, perm, process.DebuggerAllocName)
	if err != nil {
		return 0, err
	}
	return a.base, nil
}

// Free releases an allocation Allocate made; addr is its base.
func (p *Process) Free(addr uint64) error {
	a := p.as.find(addr)
	if a == nil || a.base != addr || a.name != process.DebuggerAllocName {
		return fmt.Errorf("free %#x: not a debugger allocation", addr)
	}
	return p.as.unmapAlloc(a)
}
