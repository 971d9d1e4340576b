package unicorn

import (
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// The instruction model shared by the block analysis (analysis.go) and
// the fault-time decoder (faultpc.go): which memory each instruction
// accesses, which registers it writes, whether it sets the arithmetic
// flags. Both sides must use the same model, so that what the analysis
// proves about a block holds when a fault in it is decoded.

// memAccess is one memory access of an instruction, as an address
// expression over the registers the instruction starts with.
type memAccess struct {
	base, index x86asm.Reg // 64-bit (or 32-bit with addr32) GPRs, 0 if absent
	scale       int64
	disp        int64
	seg         x86asm.Reg // FS or GS adds its base; others add nothing
	ripRel      bool       // disp is relative to the next instruction
	addr32      bool       // the sum is truncated to 32 bits
	size        int
	read, write bool
}

// sameExpr reports whether a and b compute their addresses from the same
// registers the same way (so the addresses differ by disp only).
func (a memAccess) sameExpr(b memAccess) bool {
	return a.base == b.base && a.index == b.index && a.scale == b.scale && a.seg == b.seg &&
		a.ripRel == b.ripRel && a.addr32 == b.addr32
}

// regs is the set of registers the address depends on.
func (a memAccess) regs() regSet {
	var s regSet
	s = s.add(a.base).add(a.index)
	switch a.seg {
	case x86asm.FS:
		s |= regFSBase
	case x86asm.GS:
		s |= regGSBase
	}
	return s
}

// regSet is a set of general registers (bit i: arch.Reg i), plus the FS
// and GS bases.
type regSet uint32

const (
	regFSBase regSet = 1 << 16
	regGSBase regSet = 1 << 17
	regAll    regSet = 1<<18 - 1
)

// gprIndex maps any GPR name (8 to 64 bits) to its 0-15 number.
func gprIndex(r x86asm.Reg) (int, bool) {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX), true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX), true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return int(r - x86asm.AX), true
	case r >= x86asm.AL && r <= x86asm.BL:
		return int(r - x86asm.AL), true
	case r >= x86asm.AH && r <= x86asm.BH:
		return int(r - x86asm.AH), true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return int(r-x86asm.SPB) + 4, true
	}
	return 0, false
}

func (s regSet) add(r x86asm.Reg) regSet {
	if i, ok := gprIndex(r); ok {
		s |= 1 << uint(i)
	}
	return s
}

const (
	gRAX = 1 << 0
	gRCX = 1 << 1
	gRDX = 1 << 2
	gRBX = 1 << 3
	gRSP = 1 << 4
	gRBP = 1 << 5
	gRSI = 1 << 6
	gRDI = 1 << 7
	gR11 = 1 << 11
)

// noAccessOps take a memory operand without accessing memory.
var noAccessOps = map[x86asm.Op]bool{
	x86asm.LEA: true, x86asm.NOP: true, x86asm.PREFETCHNTA: true, x86asm.PREFETCHT0: true,
	x86asm.PREFETCHT1: true, x86asm.PREFETCHT2: true, x86asm.PREFETCHW: true, x86asm.CLFLUSH: true,
}

// unmodeledOps access memory in ways the model does not describe (more
// than one operand-sized access, an address beyond the operand, implicit
// operands, far transfers).
var unmodeledOps = map[x86asm.Op]bool{
	x86asm.ENTER: true, x86asm.XLATB: true, x86asm.MASKMOVDQU: true, x86asm.MASKMOVQ: true,
	x86asm.LCALL: true, x86asm.LJMP: true, x86asm.LRET: true, x86asm.IRET: true, x86asm.IRETD: true, x86asm.IRETQ: true,
	x86asm.INSB: true, x86asm.INSW: true, x86asm.INSD: true, x86asm.OUTSB: true, x86asm.OUTSW: true, x86asm.OUTSD: true,
}

// memDisp is the displacement of an x86asm memory operand as the CPU adds
// it: x86asm gives 8-bit displacements sign-extended but 32-bit ones
// zero-extended ([rip+0xfffffff8] is rip-8); only the moffs forms of mov
// (a0-a3) carry a full 64-bit address.
func memDisp(inst x86asm.Inst, mem x86asm.Mem) int64 {
	if op := byte(inst.Opcode >> 24); op >= 0xa0 && op <= 0xa3 {
		return mem.Disp
	}
	return int64(int32(uint32(mem.Disp)))
}

// stringSize is the element size of a string instruction, 0 for others.
func stringSize(op x86asm.Op) int {
	s := op.String()
	for _, p := range []string{"MOVS", "STOS", "LODS", "CMPS", "SCAS"} {
		if strings.HasPrefix(s, p) && len(s) == 5 {
			switch s[4] {
			case 'B':
				return 1
			case 'W':
				return 2
			case 'D':
				return 4
			case 'Q':
				return 8
			}
		}
	}
	return 0
}

// readsOnlyDest: the instruction reads, and does not write, a memory
// first operand.
func readsOnlyDest(op x86asm.Op) bool {
	switch op {
	case x86asm.CMP, x86asm.TEST, x86asm.BT, x86asm.UCOMISS, x86asm.UCOMISD, x86asm.COMISS, x86asm.COMISD,
		x86asm.PTEST, x86asm.PUSH, x86asm.CALL, x86asm.JMP, x86asm.FLDCW, x86asm.LDMXCSR:
		return true
	}
	s := op.String()
	if s[0] == 'F' {
		// x87: only the stores write memory.
		return !strings.HasPrefix(s, "FST") && !strings.HasPrefix(s, "FIST") && !strings.HasPrefix(s, "FNST") &&
			!strings.HasPrefix(s, "FBSTP") && !strings.HasPrefix(s, "FISTTP")
	}
	return false
}

// writesOnlyDest: the instruction writes, and does not read, a memory
// first operand.
func writesOnlyDest(op x86asm.Op) bool {
	s := op.String()
	switch {
	case op == x86asm.POP, strings.HasPrefix(s, "SET"), strings.HasPrefix(s, "STOS"):
		return true
	case strings.HasPrefix(s, "MOV") && op != x86asm.MOVSB && op != x86asm.MOVSW && op != x86asm.MOVSD && op != x86asm.MOVSQ:
		// Plain and SSE moves (MOVSD with operands is the SSE one).
		return true
	case strings.HasPrefix(s, "FST"), strings.HasPrefix(s, "FIST"), strings.HasPrefix(s, "FNST"), s == "FBSTP", s == "STMXCSR":
		return true
	}
	return false
}

// accessesOf returns the memory accesses of inst. modeled is false when
// inst accesses memory in a way the model does not describe; then acc is
// nil. A modeled instruction with no accesses touches no memory.
func accessesOf(inst x86asm.Inst) (acc []memAccess, modeled bool) {
	if inst.Op == 0 {
		return nil, false
	}
	if noAccessOps[inst.Op] {
		return nil, true
	}
	if unmodeledOps[inst.Op] {
		return nil, false
	}
	addr32 := inst.AddrSize == 32
	stack := func(disp int64, size int, read, write bool) memAccess {
		return memAccess{base: x86asm.RSP, disp: disp, size: size, read: read, write: write}
	}
	opSize := 8
	if inst.DataSize == 16 {
		opSize = 2
	}
	switch inst.Op {
	case x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.CALL:
		acc = append(acc, stack(-int64(opSize), opSize, false, true))
	case x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.RET:
		if _, mem := inst.Args[0].(x86asm.Mem); mem {
			return nil, false // the store's address uses the popped RSP
		}
		acc = append(acc, stack(0, opSize, true, false))
	case x86asm.LEAVE:
		acc = append(acc, memAccess{base: x86asm.RBP, size: 8, read: true})
	}
	strSize := stringSize(inst.Op)
	for i, a := range inst.Args {
		mem, ok := a.(x86asm.Mem)
		if !ok {
			continue
		}
		size := inst.MemBytes
		if strSize > 0 {
			size = strSize
		}
		if size <= 0 {
			return nil, false // fxsave, fld tword, sgdt...: sizes the decoder does not give
		}
		if (inst.Op == x86asm.BT || inst.Op == x86asm.BTS || inst.Op == x86asm.BTR || inst.Op == x86asm.BTC) && i == 0 {
			if _, imm := inst.Args[1].(x86asm.Imm); !imm {
				return nil, false // a register bit offset reaches beyond the operand
			}
		}
		ma := memAccess{base: mem.Base, index: mem.Index, scale: int64(mem.Scale), disp: memDisp(inst, mem),
			seg: mem.Segment, addr32: addr32, size: size}
		if mem.Base == x86asm.RIP {
			ma.base, ma.ripRel = 0, true
		} else if mem.Base != 0 {
			if _, ok := gprIndex(mem.Base); !ok {
				return nil, false
			}
		}
		if mem.Index != 0 {
			if _, ok := gprIndex(mem.Index); !ok {
				return nil, false
			}
		}
		switch {
		case strSize > 0:
			// MOVS writes its first operand, STOS writes, the rest read.
			ma.write = i == 0 && (strings.HasPrefix(inst.Op.String(), "MOVS") || strings.HasPrefix(inst.Op.String(), "STOS"))
			ma.read = !ma.write
		case inst.Op == x86asm.XCHG || inst.Op == x86asm.XADD || inst.Op == x86asm.CMPXCHG:
			ma.read, ma.write = true, true
		case i == 0:
			ma.read = !writesOnlyDest(inst.Op)
			ma.write = !readsOnlyDest(inst.Op)
		default:
			ma.read = true
		}
		acc = append(acc, ma)
	}
	return acc, true
}

// noDestWrite: instructions whose first register operand is only read.
var noDestWrite = map[x86asm.Op]bool{
	x86asm.CMP: true, x86asm.TEST: true, x86asm.BT: true, x86asm.PUSH: true, x86asm.UCOMISS: true,
	x86asm.UCOMISD: true, x86asm.COMISS: true, x86asm.COMISD: true, x86asm.PTEST: true, x86asm.CALL: true,
	x86asm.JMP: true, x86asm.OUT: true, x86asm.WRFSBASE: true, x86asm.WRGSBASE: true,
}

// regsWritten is the set of registers inst may write (all of them when
// it is not decoded).
func regsWritten(inst x86asm.Inst) regSet {
	if inst.Op == 0 {
		return regAll
	}
	var s regSet
	if r, ok := inst.Args[0].(x86asm.Reg); ok && !noDestWrite[inst.Op] {
		s = s.add(r)
		if r >= x86asm.ES && r <= x86asm.GS {
			s |= regFSBase | regGSBase // a selector load may reset a base
		}
	}
	switch inst.Op {
	case x86asm.XCHG, x86asm.XADD, x86asm.CMPXCHG:
		if r, ok := inst.Args[1].(x86asm.Reg); ok {
			s = s.add(r)
		}
		if inst.Op == x86asm.CMPXCHG {
			s |= gRAX
		}
	case x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.CALL, x86asm.RET:
		s |= gRSP
	case x86asm.LEAVE, x86asm.ENTER:
		s |= gRSP | gRBP
	case x86asm.MUL, x86asm.DIV, x86asm.IDIV, x86asm.CMPXCHG8B, x86asm.CMPXCHG16B, x86asm.RDTSC, x86asm.RDMSR,
		x86asm.RDPMC, x86asm.XGETBV, x86asm.CWD, x86asm.CDQ, x86asm.CQO:
		s |= gRAX | gRDX
	case x86asm.IMUL:
		if inst.Args[1] == nil {
			s |= gRAX | gRDX
		}
	case x86asm.CBW, x86asm.CWDE, x86asm.CDQE, x86asm.LAHF, x86asm.XLATB, x86asm.IN:
		s |= gRAX
	case x86asm.CPUID:
		s |= gRAX | gRBX | gRCX | gRDX
	case x86asm.RDTSCP:
		s |= gRAX | gRCX | gRDX
	case x86asm.SYSCALL, x86asm.SYSRET:
		s |= gRCX | gR11
	case x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		s |= gRCX
	case x86asm.WRFSBASE:
		s |= regFSBase
	case x86asm.WRGSBASE, x86asm.SWAPGS:
		s |= regGSBase
	}
	if n := stringSize(inst.Op); n > 0 || unmodeledOps[inst.Op] {
		s |= gRSI | gRDI | gRCX | gRAX | gRSP | gRBP
	}
	return s
}

// flagOps set the arithmetic flags.
var flagOps = map[x86asm.Op]bool{
	x86asm.ADD: true, x86asm.ADC: true, x86asm.SUB: true, x86asm.SBB: true, x86asm.CMP: true, x86asm.AND: true,
	x86asm.OR: true, x86asm.XOR: true, x86asm.TEST: true, x86asm.INC: true, x86asm.DEC: true, x86asm.NEG: true,
	x86asm.SHL: true, x86asm.SHR: true, x86asm.SAR: true, x86asm.ROL: true, x86asm.ROR: true, x86asm.RCL: true,
	x86asm.RCR: true, x86asm.SHLD: true, x86asm.SHRD: true, x86asm.MUL: true, x86asm.IMUL: true, x86asm.DIV: true,
	x86asm.IDIV: true, x86asm.BT: true, x86asm.BTS: true, x86asm.BTR: true, x86asm.BTC: true, x86asm.BSF: true,
	x86asm.BSR: true, x86asm.LZCNT: true, x86asm.TZCNT: true, x86asm.POPCNT: true, x86asm.CMPXCHG: true,
	x86asm.CMPXCHG8B: true, x86asm.CMPXCHG16B: true, x86asm.XADD: true, x86asm.COMISS: true, x86asm.COMISD: true,
	x86asm.UCOMISS: true, x86asm.UCOMISD: true, x86asm.PTEST: true, x86asm.SAHF: true, x86asm.POPF: true,
	x86asm.POPFQ: true, x86asm.STC: true, x86asm.CLC: true, x86asm.CMC: true, x86asm.FCOMI: true, x86asm.FCOMIP: true,
	x86asm.FUCOMI: true, x86asm.FUCOMIP: true, x86asm.RDRAND: true, x86asm.LAR: true,
	x86asm.LSL: true, x86asm.VERR: true, x86asm.VERW: true, x86asm.CMPSB: true, x86asm.CMPSW: true,
	x86asm.CMPSD: true, x86asm.CMPSQ: true, x86asm.SCASB: true, x86asm.SCASW: true, x86asm.SCASD: true,
	x86asm.SCASQ: true, x86asm.ANDN: true, x86asm.BLSI: true, x86asm.BLSMSK: true, x86asm.BLSR: true,
	x86asm.BEXTR: true, x86asm.BZHI: true, x86asm.PCMPESTRI: true,
	x86asm.PCMPESTRM: true, x86asm.PCMPISTRI: true, x86asm.PCMPISTRM: true,
}

// setsFlags reports whether inst may change the arithmetic flags.
func setsFlags(inst x86asm.Inst) bool {
	return inst.Op == 0 || flagOps[inst.Op]
}
