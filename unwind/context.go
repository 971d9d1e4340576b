package unwind

import "github.com/rspstub/rspstub/internal/arch"

// Uint128 is an XMM register value.
type Uint128 = arch.Uint128

// Context is the register state of one frame: the sixteen integer registers
// (indexed by arch.RAX..arch.R15, the UNWIND_CODE register numbering), RIP
// and XMM0-XMM15. Each register has a known bit and, once it has been
// restored from the stack, the address it was restored from (the
// KNONVOLATILE_CONTEXT_POINTERS of the Windows unwinder). An address of 0
// means the value was not read from memory: it is live in the register, or
// computed (RSP).
type Context struct {
	GPR [16]uint64
	RIP uint64
	XMM [16]Uint128

	GPRKnown uint16 // bit i: GPR[i] is known
	XMMKnown uint16 // bit i: XMM[i] is known
	RIPKnown bool

	GPRAddr [16]uint64 // where GPR[i] was restored from, 0 if not from memory
	XMMAddr [16]uint64
	RIPAddr uint64 // where RIP was read (the return address slot)
}

// Nonvolatile register masks of the Windows x64 calling convention.
const (
	NonvolatileGPRs uint16 = 1<<arch.RBX | 1<<arch.RSP | 1<<arch.RBP | 1<<arch.RSI | 1<<arch.RDI |
		1<<arch.R12 | 1<<arch.R13 | 1<<arch.R14 | 1<<arch.R15
	NonvolatileXMMs uint16 = 0xffc0 // xmm6-xmm15
)

// Get returns a register (RAX..R15 or RIP) and whether it is known.
func (c *Context) Get(r arch.Reg) (uint64, bool) {
	switch {
	case r <= arch.R15:
		return c.GPR[r], c.GPRKnown&(1<<r) != 0
	case r == arch.RIP:
		return c.RIP, c.RIPKnown
	}
	return 0, false
}

// Set sets a register (RAX..R15 or RIP) as known and live (no save address).
func (c *Context) Set(r arch.Reg, v uint64) {
	switch {
	case r <= arch.R15:
		c.GPR[r] = v
		c.GPRKnown |= 1 << r
		c.GPRAddr[r] = 0
	case r == arch.RIP:
		c.RIP, c.RIPKnown, c.RIPAddr = v, true, 0
	}
}

// SavedAt returns the stack address a register (RAX..R15 or RIP) was
// restored from, if it was.
func (c *Context) SavedAt(r arch.Reg) (uint64, bool) {
	switch {
	case r <= arch.R15:
		return c.GPRAddr[r], c.GPRKnown&(1<<r) != 0 && c.GPRAddr[r] != 0
	case r == arch.RIP:
		return c.RIPAddr, c.RIPKnown && c.RIPAddr != 0
	}
	return 0, false
}

// SetXMM sets XMMi as known and live.
func (c *Context) SetXMM(i int, v Uint128) {
	if i >= 0 && i < 16 {
		c.XMM[i] = v
		c.XMMKnown |= 1 << i
		c.XMMAddr[i] = 0
	}
}

// GetXMM returns XMMi and whether it is known.
func (c *Context) GetXMM(i int) (Uint128, bool) {
	if i < 0 || i >= 16 {
		return Uint128{}, false
	}
	return c.XMM[i], c.XMMKnown&(1<<i) != 0
}

// RSP returns the stack pointer.
func (c *Context) RSP() uint64 { return c.GPR[arch.RSP] }

func (c *Context) setRSP(v uint64) {
	c.GPR[arch.RSP] = v
	c.GPRKnown |= 1 << arch.RSP
	c.GPRAddr[arch.RSP] = 0
}

func (c *Context) restore(r uint8, v, addr uint64) {
	r &= 15
	c.GPR[r] = v
	c.GPRKnown |= 1 << r
	c.GPRAddr[r] = addr
}

func (c *Context) restoreRIP(v, addr uint64) {
	c.RIP, c.RIPKnown, c.RIPAddr = v, true, addr
}

// forgetVolatile clears what a call does not preserve: rax, rcx, rdx,
// r8-r11 and xmm0-xmm5.
func (c *Context) forgetVolatile() {
	c.GPRKnown &= NonvolatileGPRs
	c.XMMKnown &= NonvolatileXMMs
	for _, r := range [...]arch.Reg{arch.RAX, arch.RCX, arch.RDX, arch.R8, arch.R9, arch.R10, arch.R11} {
		c.GPR[r], c.GPRAddr[r] = 0, 0
	}
	for i := range 6 {
		c.XMM[i], c.XMMAddr[i] = Uint128{}, 0
	}
}
