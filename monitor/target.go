package monitor

import (
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/unwind"
)

// Target is what every command needs from a backend: the registers of the
// current thread, guest memory and the loaded modules. The optional
// interfaces below add the TEB, the memory map, module files and the
// shadow call stack; a command that needs one the backend lacks says so.
type Target interface {
	// Registers returns the current thread's registers.
	Registers() (Registers, error)
	// ReadMemory works like io.ReaderAt with a 64-bit address: a short
	// count means "readable up to here". Code bytes must be the original
	// ones (no breakpoint patches).
	ReadMemory(addr uint64, p []byte) (int, error)
	// Modules lists the loaded images, the program first.
	Modules() []Module
}

// Registers is the register state of a stopped thread.
type Registers struct {
	GPR    [16]uint64 // indexed by arch.RAX..arch.R15
	RIP    uint64
	RFLAGS uint64
	XMM    [16]unwind.Uint128
	HasXMM bool // XMM holds real values
}

// Get returns a register by arch number (RAX..R15, RIP, RFLAGS).
func (r *Registers) Get(reg arch.Reg) uint64 {
	switch {
	case reg <= arch.R15:
		return r.GPR[reg]
	case reg == arch.RIP:
		return r.RIP
	case reg == arch.RFLAGS:
		return r.RFLAGS
	}
	return 0
}

// Module is a loaded image. Its Format is FormatELF for an ELF module the
// backend knows as one (a kernel given to rspstub qemu --module, whose ELF
// header is not in guest memory); otherwise it is found from the module's
// memory.
type Module = loaded.Module

// TEBer is implemented by targets that know the current thread's TEB.
type TEBer interface {
	TEB() (uint64, error)
}

// Region is one mapped range of guest memory.
type Region struct {
	Start, Size uint64
	Perm        arch.Perm
	Name        string // "demo.exe .text", "stack", "heap", "" when unknown
}

// RegionLister is implemented by targets that can list their memory map.
type RegionLister interface {
	Regions() []Region
}

// ShadowFrame is one call on an emulator's shadow call stack.
type ShadowFrame struct {
	CallSite      uint64 // address of the call instruction
	Target        uint64 // first instruction of the callee
	ReturnAddress uint64
	SP            uint64 // RSP after the call pushed ReturnAddress: the slot's address
}

// ShadowStacker is implemented by backends that can keep a shadow call
// stack. on is false when the feature is off; frames are outermost first.
type ShadowStacker interface {
	ShadowStack() (frames []ShadowFrame, on bool)
}

// ModuleFiler is implemented by targets that can give the bytes of a
// module's file (as on disk), for COFF symbols and DWARF line tables.
type ModuleFiler interface {
	ModuleFile(m Module) ([]byte, error)
}

// DebugFiler is implemented by targets that can find an ELF module's
// separate debug file (as GDB does: /usr/lib/debug/.build-id/xx/yyyy.debug
// from the GNU build ID), for the full symbol table of a stripped
// library.
type DebugFiler interface {
	DebugFile(m Module, buildID []byte) ([]byte, error)
}
