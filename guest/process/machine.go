package process

import "github.com/rspstub/rspstub/internal/arch"

// MemoryAccess is guest memory as the emulator serves it.
type MemoryAccess interface {
	ReadMemory(addr uint64, p []byte) (int, error)  // short count = readable prefix
	WriteMemory(addr uint64, p []byte) (int, error) // ignores guest protections
}

// Machine is the emulator as a process sees it: memory it maps and
// protects page by page, and the registers of the thread it runs.
// *unicorn.Machine satisfies it; each userland asks for more (the
// synthesized one trap ranges, Wine's whole register contexts).
type Machine interface {
	MemoryAccess
	Map(addr, size uint64, perm arch.Perm) error // page-aligned
	Unmap(addr, size uint64) error
	Protect(addr, size uint64, perm arch.Perm) error
	Reg(r arch.Reg) (uint64, error)
	SetReg(r arch.Reg, v uint64) error
}
