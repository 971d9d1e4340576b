// Package arch is the small shared vocabulary of rspstub: x86-64 register
// identifiers and memory permissions. It depends on nothing, so the emulator
// backends, the Windows guest model and the unwinder can all speak it
// without depending on each other.
package arch

// Reg names an x86-64 register. The first sixteen values follow the
// hardware encoding (the ModRM/REX register number), which is also the
// numbering of Windows UNWIND_CODE OpInfo fields.
type Reg uint8

const (
	RAX Reg = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
	RIP
	RFLAGS
	CS
	SS
	DS
	ES
	FS
	GS
	FSBase
	GSBase
	NumRegs // number of Reg values; not a register
)

var regNames = [NumRegs]string{
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	"rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base",
}

// String returns the register's GDB name ("rax", "fs_base").
func (r Reg) String() string {
	if r < NumRegs {
		return regNames[r]
	}
	return "reg?"
}

// Perm is a set of memory access permissions.
type Perm uint8

const (
	PermRead Perm = 1 << iota
	PermWrite
	PermExec

	PermNone Perm = 0
	PermRW        = PermRead | PermWrite
	PermRX        = PermRead | PermExec
	PermRWX       = PermRead | PermWrite | PermExec
)

// String renders the permissions as "rwx" with dashes for missing bits.
func (p Perm) String() string {
	b := [3]byte{'-', '-', '-'}
	if p&PermRead != 0 {
		b[0] = 'r'
	}
	if p&PermWrite != 0 {
		b[1] = 'w'
	}
	if p&PermExec != 0 {
		b[2] = 'x'
	}
	return string(b[:])
}

// Context is every register of one x86-64 thread that GDB's amd64
// description has: GPRs in hardware order (RAX, RCX, RDX, RBX, RSP, RBP,
// RSI, RDI, R8..R15), RIP, RFLAGS, segment selectors and bases, x87,
// SSE and the upper YMM halves. The emulator moves it in one crossing
// (its C twin in emulator/unicorn has the same layout); a guest model
// keeps one per thread that is not running.
type Context struct {
	GPR                                            [16]uint64
	RIP, RFLAGS                                    uint64
	CS, SS, DS, ES, FS, GS                         uint32
	FSBase, GSBase                                 uint64
	ST                                             [8][10]byte
	FCTRL, FSTAT, FTAG, FISEG, FIOFF, FOSEG, FOOFF uint32
	FOP                                            uint32
	XMM                                            [16][16]byte
	MXCSR                                          uint32
	YMMH                                           [16][16]byte // upper halves; zero unless the emulator has AVX
}
