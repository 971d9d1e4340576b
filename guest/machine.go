package guest

import "github.com/rspstub/rspstub/internal/arch"

// Machine is the emulator as the guest model sees it. *unicorn.Machine
// satisfies it; tests use an in-memory fake.
type Machine interface {
	Map(addr, size uint64, perm arch.Perm) error // page-aligned
	Unmap(addr, size uint64) error
	Protect(addr, size uint64, perm arch.Perm) error
	ReadMemory(addr uint64, p []byte) (int, error)  // short count = readable prefix
	WriteMemory(addr uint64, p []byte) (int, error) // ignores guest protections
	Reg(r arch.Reg) (uint64, error)
	SetReg(r arch.Reg, v uint64) error
	// AddTrapRange makes executing any address in [start,end) stop the
	// emulator before that instruction; the integrator then calls
	// Process.HandleTrap(pc).
	AddTrapRange(start, end uint64) error
}
