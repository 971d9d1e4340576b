package rsp

// Register is one register of a target description.
type Register struct {
	Name    string // GDB name ("rax", "fs_base")
	Bits    int    // size in bits; a multiple of 8
	Type    string // GDB type name: a predefined type or one the description declares
	Group   string // "general", "float", "vector", "system" or ""
	Feature string // the GDB feature that holds it ("org.gnu.gdb.i386.core")
	Generic string // LLDB generic role: "pc", "sp", "fp", "flags", "arg1".. or ""
	// AltName is a second name LLDB accepts ("rflags" for eflags: LLDB's
	// own x86-64 name). GDB ignores it.
	AltName string
	DWARF   int // DWARF register number, or -1
	// Offset is the byte offset of the register in a `g` packet; filled in
	// by NewDescription.
	Offset int
}

// Size is the register's size in bytes.
func (r *Register) Size() int { return r.Bits / 8 }

// Description is a target's register layout: the source of target.xml,
// of the `g` packet layout and of `p`/`P` numbering (a register's regnum
// is its index in Registers).
type Description struct {
	Arch      string // "i386:x86-64"
	OSABI     string // emitted as <osabi> only when non-empty
	Registers []Register
	PC, SP    int // regnums of the program counter and stack pointer
	FP        int // regnum of the frame pointer, or -1
	size      int
}

// NewDescription computes register offsets and the pc/sp/fp numbers
// (from the Generic roles) of regs.
func NewDescription(arch string, regs []Register) *Description {
	d := &Description{Arch: arch, Registers: regs, PC: -1, SP: -1, FP: -1}
	off := 0
	for i := range d.Registers {
		r := &d.Registers[i]
		r.Offset = off
		off += r.Size()
		switch r.Generic {
		case "pc":
			d.PC = i
		case "sp":
			d.SP = i
		case "fp":
			d.FP = i
		}
	}
	d.size = off
	return d
}

// Size is the byte size of a `g` packet's register block.
func (d *Description) Size() int { return d.size }

// Lookup returns the regnum of the register called name, or -1.
func (d *Description) Lookup(name string) int {
	for i := range d.Registers {
		if d.Registers[i].Name == name {
			return i
		}
	}
	return -1
}

// Register numbers of the x86-64 description built by AMD64. Optional
// registers (AVX, system) come after these; find them with Lookup.
const (
	AMD64RAX = iota
	AMD64RBX
	AMD64RCX
	AMD64RDX
	AMD64RSI
	AMD64RDI
	AMD64RBP
	AMD64RSP
	AMD64R8
	AMD64R9
	AMD64R10
	AMD64R11
	AMD64R12
	AMD64R13
	AMD64R14
	AMD64R15
	AMD64RIP
	AMD64EFLAGS
	AMD64CS
	AMD64SS
	AMD64DS
	AMD64ES
	AMD64FS
	AMD64GS
	AMD64ST0              // st0..st7 are AMD64ST0+i, 80 bits each
	AMD64FCTRL = iota + 7 // skips st1..st7: AMD64ST0+8
	AMD64FSTAT
	AMD64FTAG
	AMD64FISEG
	AMD64FIOFF
	AMD64FOSEG
	AMD64FOOFF
	AMD64FOP
	AMD64XMM0   // xmm0..xmm15 are AMD64XMM0+i
	AMD64MXCSR  = AMD64XMM0 + 16
	AMD64FSBase = AMD64MXCSR + 1
	AMD64GSBase = AMD64MXCSR + 2
	// AMD64NumBase is the number of registers every AMD64 description has.
	AMD64NumBase = AMD64GSBase + 1
)

// AMD64Options selects the optional parts of the x86-64 description.
type AMD64Options struct {
	AVX    bool // org.gnu.gdb.i386.avx: ymm0h..ymm15h
	System bool // cr0, cr2, cr3, cr4, cr8, efer, k_gs_base
	// Linux adds org.gnu.gdb.i386.linux (orig_rax): without it GDB's
	// GNU/Linux ABI gives up early and a Linux program gets no
	// shared-library support (no svr4 solib, no auxv, no PIE relocation).
	Linux bool
	OSABI string // "" (the default: no <osabi> element), or e.g. "Windows"
	// Win64 gives LLDB's generic argument roles (arg1..arg4) to rcx, rdx,
	// r8 and r9, the Windows x64 calling convention, instead of the SysV
	// rdi, rsi, rdx, rcx, r8, r9. LLDB's Windows ABI places a called
	// function's arguments (expression evaluation) in the registers these
	// roles name.
	Win64 bool
}

// Feature names of the x86-64 description.
const (
	FeatureI386Core     = "org.gnu.gdb.i386.core"
	FeatureI386SSE      = "org.gnu.gdb.i386.sse"
	FeatureI386Segments = "org.gnu.gdb.i386.segments"
	FeatureI386AVX      = "org.gnu.gdb.i386.avx"
	FeatureSystem       = "org.rspstub.x86.sys"
	FeatureI386Linux    = "org.gnu.gdb.i386.linux"
)

// AMD64 returns the x86-64 register description shared by every backend.
// Numbering and types follow GDB's own 64bit-core/sse/segments/avx
// features so that GDB 13 accepts it as amd64.
func AMD64(opt AMD64Options) *Description {
	var regs []Register
	add := func(name string, bits int, typ, group, feature, generic string, dwarf int) {
		regs = append(regs, Register{Name: name, Bits: bits, Type: typ, Group: group,
			Feature: feature, Generic: generic, DWARF: dwarf})
	}
	core := FeatureI386Core
	gprs := []struct {
		name, generic string
		dwarf         int
	}{
		{"rax", "", 0}, {"rbx", "", 3}, {"rcx", "arg4", 2}, {"rdx", "arg3", 1},
		{"rsi", "arg2", 4}, {"rdi", "arg1", 5}, {"rbp", "fp", 6}, {"rsp", "sp", 7},
		{"r8", "arg5", 8}, {"r9", "arg6", 9}, {"r10", "", 10}, {"r11", "", 11},
		{"r12", "", 12}, {"r13", "", 13}, {"r14", "", 14}, {"r15", "", 15},
	}
	if opt.Win64 {
		for i := range gprs {
			gprs[i].generic = map[string]string{"rcx": "arg1", "rdx": "arg2", "r8": "arg3", "r9": "arg4",
				"rbp": "fp", "rsp": "sp"}[gprs[i].name]
		}
	}
	for _, g := range gprs {
		typ := "int64"
		switch g.name {
		case "rbp", "rsp":
			typ = "data_ptr"
		}
		add(g.name, 64, typ, "general", core, g.generic, g.dwarf)
	}
	add("rip", 64, "code_ptr", "general", core, "pc", 16)
	add("eflags", 32, "i386_eflags", "general", core, "flags", 49)
	regs[len(regs)-1].AltName = "rflags"
	for i, s := range []string{"cs", "ss", "ds", "es", "fs", "gs"} {
		add(s, 32, "int32", "general", core, "", []int{51, 52, 53, 50, 54, 55}[i])
	}
	for i := 0; i < 8; i++ {
		add("st"+itoa(i), 80, "i387_ext", "float", core, "", 33+i)
	}
	for i, s := range []string{"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"} {
		dw := -1
		if i < 2 {
			dw = 65 + i
		}
		add(s, 32, "int", "float", core, "", dw)
	}
	for i := 0; i < 16; i++ {
		add("xmm"+itoa(i), 128, "vec128", "vector", FeatureI386SSE, "", 17+i)
	}
	add("mxcsr", 32, "i386_mxcsr", "vector", FeatureI386SSE, "", 64)
	add("fs_base", 64, "int", "system", FeatureI386Segments, "", 58)
	add("gs_base", 64, "int", "system", FeatureI386Segments, "", 59)
	if opt.AVX {
		for i := 0; i < 16; i++ {
			add("ymm"+itoa(i)+"h", 128, "uint128", "vector", FeatureI386AVX, "", -1)
		}
	}
	if opt.Linux {
		add("orig_rax", 64, "int", "system", FeatureI386Linux, "", -1)
	}
	if opt.System {
		for _, s := range []string{"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "k_gs_base"} {
			add(s, 64, "uint64", "system", FeatureSystem, "", -1)
		}
	}
	d := NewDescription("i386:x86-64", regs)
	d.OSABI = opt.OSABI
	return d
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}
