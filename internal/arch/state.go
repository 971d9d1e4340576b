package arch

// The plain values a backend reports about a stopped process, shared by
// the backends (which fill them) and the layers above them (package
// debuggee, package monitor), so that neither imports the other.

// Uint128 is an XMM register value.
type Uint128 struct{ Lo, Hi uint64 }

// Registers is the register state of a stopped thread.
type Registers struct {
	GPR    [16]uint64 // indexed by RAX..R15
	RIP    uint64
	RFLAGS uint64
	XMM    [16]Uint128
	HasXMM bool // XMM holds real values
}

// Get returns a register by number (RAX..R15, RIP, RFLAGS).
func (r *Registers) Get(reg Reg) uint64 {
	switch {
	case reg <= R15:
		return r.GPR[reg]
	case reg == RIP:
		return r.RIP
	case reg == RFLAGS:
		return r.RFLAGS
	}
	return 0
}

// Region is one mapped range of guest memory.
type Region struct {
	Start, Size uint64
	Perm        Perm
	Name        string // "demo.exe .text", "stack", "heap", "" when unknown
}

// ShadowFrame is one call on an emulator's shadow call stack.
type ShadowFrame struct {
	CallSite      uint64 // address of the call instruction
	Target        uint64 // first instruction of the callee
	ReturnAddress uint64
	SP            uint64 // RSP after the call pushed ReturnAddress: the slot's address
}
