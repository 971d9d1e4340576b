package dwarf

// RegSet is a set of DWARF register numbers below NumRegs.
type RegSet [2]uint64

// MakeRegSet returns the set of the given registers (numbers >= NumRegs
// are ignored).
func MakeRegSet(regs ...uint64) RegSet {
	var s RegSet
	for _, r := range regs {
		s.Add(r)
	}
	return s
}

// Has reports whether r is in the set.
func (s RegSet) Has(r uint64) bool { return r < NumRegs && s[r/64]&(1<<(r%64)) != 0 }

// Add puts r in the set.
func (s *RegSet) Add(r uint64) {
	if r < NumRegs {
		s[r/64] |= 1 << (r % 64)
	}
}

// Del removes r from the set.
func (s *RegSet) Del(r uint64) {
	if r < NumRegs {
		s[r/64] &^= 1 << (r % 64)
	}
}

// Registers whose unspecified rule means "same value" in each ABI: the
// callee-saved registers. RSP is absent because its caller value is the
// CFA by definition on x86-64.
var (
	// SysVPreserved: rbx, rbp, r12-r15 (System V psABI 3.2.1).
	SysVPreserved = MakeRegSet(RBX, RBP, R12, R13, R14, R15)
	// WindowsPreserved: also rsi, rdi and xmm6-xmm15 (Microsoft x64
	// calling convention).
	WindowsPreserved = MakeRegSet(RBX, RBP, RSI, RDI, R12, R13, R14, R15,
		XMM0+6, XMM0+7, XMM0+8, XMM0+9, XMM0+10, XMM0+11, XMM0+12, XMM0+13, XMM0+14, XMM0+15)
)

// RegSize is the number of bytes a saved register occupies: 16 for the
// XMM registers, 8 for the others.
func RegSize(r uint64) int {
	if r >= XMM0 && r <= XMM15 {
		return 16
	}
	return 8
}

// Registers is a register file in DWARF numbering with a known bit per
// register. Val holds the register (the low 64 bits of an XMM register),
// High the upper 64 bits of XMM registers. Step fills Addr and Saved in
// the caller's registers: where each register restored from memory was
// read.
type Registers struct {
	Val   [NumRegs]uint64
	High  [NumRegs]uint64
	Known RegSet

	Addr  [NumRegs]uint64
	Saved RegSet
}

// Get returns register r and whether it is known.
func (r *Registers) Get(n uint64) (uint64, bool) {
	if n >= NumRegs || !r.Known.Has(n) {
		return 0, false
	}
	return r.Val[n], true
}

// Set gives register n the value v and marks it known.
func (r *Registers) Set(n uint64, v uint64) {
	if n < NumRegs {
		r.Val[n] = v
		r.Known.Add(n)
	}
}

// PC returns the return address column (RIP) and whether it is known.
func (r *Registers) PC() (uint64, bool) { return r.Get(RA) }
