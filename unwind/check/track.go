package check

import (
	"golang.org/x/arch/x86/x86asm"
)

// inst is one decoded instruction of a function.
type inst struct {
	off uint32 // from the function start
	x86asm.Inst
}

// decodeFunction decodes code from its first byte until the end or the
// first byte that does not decode. It reports whether it stopped early.
func decodeFunction(code []byte) (insts []inst, stopped bool) {
	for off := 0; off < len(code); {
		in, err := x86asm.Decode(code[off:], 64)
		if err != nil || in.Len <= 0 {
			return insts, true
		}
		insts = append(insts, inst{off: uint32(off), Inst: in})
		off += in.Len
	}
	return insts, false
}

// The code tracker is a third opinion, read from the instruction bytes:
// a forward data-flow pass over the function's instructions that knows,
// for each integer register, whether it holds "CFA + k" (a stack address
// at a known distance from the canonical frame address), a constant, or
// something unknown. At the entry RSP is CFA-8. It follows push, pop,
// add/sub/lea/mov on registers, leave, calls (which keep RSP) and
// branches inside the function; a join of two different values is
// unknown. It needs no unwind data, so it can say which side is right
// when .pdata and CFI disagree, and it relates the two when one describes
// the CFA from RSP and the other from the frame register.

type avKind uint8

const (
	avUnknown avKind = iota
	avStack          // CFA + v
	avConst          // v
)

type aval struct {
	kind avKind
	v    int64
}

type tstate struct {
	regs [16]aval
}

// disp is a memory operand's displacement, sign-extended: x86asm reports a
// 32-bit displacement as an unsigned number (0xffffff60 for -0xa0).
func disp(m x86asm.Mem) int64 {
	if m.Disp >= 1<<31 && m.Disp < 1<<32 {
		return int64(int32(uint32(m.Disp)))
	}
	return m.Disp
}

// gpr maps an x86asm register to its hardware number and width in bytes.
func gpr(r x86asm.Reg) (int, int, bool) {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX), 8, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX), 4, true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return int(r - x86asm.AX), 2, true
	case r >= x86asm.AL && r <= x86asm.BL:
		return int(r - x86asm.AL), 1, true
	case r >= x86asm.AH && r <= x86asm.BH:
		return int(r - x86asm.AH), 1, true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return 4 + int(r-x86asm.SPB), 1, true
	}
	return 0, 0, false
}

const (
	hwRAX = 0
	hwRSP = 4
	hwRBP = 5
)

// maxTrackSteps bounds the data-flow pass (each instruction's state can
// only lose information, so the pass converges long before this).
const maxTrackSteps = 1 << 20

// tracker holds the per-instruction states of one function.
type tracker struct {
	insts  []inst
	index  map[uint32]int
	states []*tstate
	// seeded marks instructions reached only by the switch-table
	// heuristic (an indirect jump's state given to unreached code).
	seeded []bool
}

// track runs the data-flow pass. entry is the state at insts[0].
func track(insts []inst, entry tstate) *tracker {
	t := &tracker{insts: insts, index: make(map[uint32]int, len(insts)), states: make([]*tstate, len(insts)), seeded: make([]bool, len(insts))}
	for i, in := range insts {
		t.index[in.off] = i
	}
	if len(insts) == 0 {
		return t
	}
	var indirect *tstate // state at an indirect jump (a switch table)
	work := []int{0}
	s0 := entry
	t.states[0] = &s0
	steps := 0
	run := func() {
		for len(work) > 0 && steps < maxTrackSteps {
			steps++
			i := work[len(work)-1]
			work = work[:len(work)-1]
			out, succ, ind := t.transfer(i, *t.states[i])
			// A jump through a table happens inside the body; one with
			// RSP at CFA-8 is a tail call and says nothing about other code.
			if ind && indirect == nil && t.states[i].regs[hwRSP] != (aval{avStack, -8}) {
				c := *t.states[i]
				indirect = &c
			}
			for _, j := range succ {
				if t.states[j] == nil {
					c := out
					t.states[j] = &c
					work = append(work, j)
				} else if merge(t.states[j], &out) {
					work = append(work, j)
				}
			}
		}
	}
	run()
	// Code no branch reaches directly is, in compiled code, the target of a
	// switch table: it runs in the frame state of the indirect jump. In a
	// part of a function that starts inside the frame (GCC's .cold
	// partition) it is another entry from the hot part, in the frame state
	// of the first entry.
	if indirect == nil && entry.regs[hwRSP] != (aval{avStack, -8}) {
		c := entry
		indirect = &c
	}
	for i := 0; i < len(insts) && indirect != nil; i++ {
		if t.states[i] == nil {
			c := *indirect
			t.states[i] = &c
			t.seeded[i] = true
			work = append(work, i)
			run()
		}
	}
	return t
}

// merge joins in into dst and reports whether dst changed.
func merge(dst, in *tstate) bool {
	changed := false
	for r := range dst.regs {
		if dst.regs[r].kind != avUnknown && dst.regs[r] != in.regs[r] {
			dst.regs[r] = aval{}
			changed = true
		}
	}
	return changed
}

// at returns the state before the instruction at offset off.
func (t *tracker) at(off uint32) (*tstate, bool) {
	i, ok := t.index[off]
	if !ok || t.states[i] == nil {
		return nil, false
	}
	return t.states[i], !t.seeded[i]
}

// transfer computes the state after instruction i and its successors
// inside the function; ind reports an indirect jump.
func (t *tracker) transfer(i int, s tstate) (out tstate, succ []int, ind bool) {
	in := t.insts[i].Inst
	next := t.insts[i].off + uint32(in.Len)
	fall := func() {
		if j, ok := t.index[next]; ok {
			succ = append(succ, j)
		}
	}
	branch := func() {
		if rel, ok := in.Args[0].(x86asm.Rel); ok {
			if j, ok := t.index[uint32(int64(next)+int64(rel))]; ok {
				succ = append(succ, j)
			}
		}
	}
	set := func(a x86asm.Arg, v aval) {
		if r, ok := a.(x86asm.Reg); ok {
			if n, w, ok := gpr(r); ok {
				if w < 4 && v.kind != avUnknown {
					v = aval{} // a partial write
				}
				if w == 4 && v.kind == avStack {
					v = aval{} // truncated address
				}
				if w == 4 && v.kind == avConst {
					v.v = int64(uint32(v.v))
				}
				s.regs[n] = v
			}
		}
	}
	get := func(a x86asm.Arg) aval {
		switch a := a.(type) {
		case x86asm.Reg:
			if n, w, ok := gpr(a); ok && w >= 4 {
				v := s.regs[n]
				if w == 4 && v.kind == avStack {
					return aval{}
				}
				return v
			}
		case x86asm.Imm:
			return aval{avConst, int64(a)}
		}
		return aval{}
	}
	rsp := &s.regs[hwRSP]
	adjust := func(d int64) {
		if rsp.kind != avUnknown {
			rsp.v += d
		}
	}
	opSize := func() int64 {
		if in.DataSize == 16 {
			return 2
		}
		return 8
	}
	switch in.Op {
	case x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFQ:
		adjust(-opSize())
		fall()
	case x86asm.POP:
		adjust(opSize())
		set(in.Args[0], aval{})
		fall()
	case x86asm.POPF, x86asm.POPFQ:
		adjust(8)
		fall()
	case x86asm.ADD, x86asm.SUB:
		d, src := get(in.Args[0]), get(in.Args[1])
		if d.kind != avUnknown && src.kind == avConst && in.DataSize == 64 {
			if in.Op == x86asm.ADD {
				d.v += src.v
			} else {
				d.v -= src.v
			}
			set(in.Args[0], d)
		} else if d.kind == avConst && src.kind == avConst {
			if in.Op == x86asm.ADD {
				d.v += src.v
			} else {
				d.v -= src.v
			}
			set(in.Args[0], d)
		} else {
			set(in.Args[0], aval{})
		}
		fall()
	case x86asm.LEA:
		v := aval{}
		if m, ok := in.Args[1].(x86asm.Mem); ok && m.Segment == 0 && in.DataSize == 64 {
			base := aval{avConst, 0}
			if m.Base != 0 {
				base = get(m.Base)
			}
			if m.Base == x86asm.RIP {
				base = aval{}
			}
			if m.Index != 0 {
				ix := get(m.Index)
				if ix.kind != avConst || base.kind == avUnknown {
					base = aval{}
				} else {
					base.v += ix.v * int64(m.Scale)
				}
			}
			if base.kind != avUnknown {
				v = aval{base.kind, base.v + disp(m)}
			}
		}
		set(in.Args[0], v)
		fall()
	case x86asm.MOV:
		set(in.Args[0], get(in.Args[1]))
		fall()
	case x86asm.XOR:
		if a, ok := in.Args[0].(x86asm.Reg); ok && in.Args[1] == x86asm.Arg(a) {
			set(a, aval{avConst, 0})
		} else {
			set(in.Args[0], aval{})
		}
		fall()
	case x86asm.LEAVE:
		s.regs[hwRSP] = s.regs[hwRBP]
		adjust(8)
		s.regs[hwRBP] = aval{}
		fall()
	case x86asm.CALL:
		// The callee returns with RSP unchanged. RAX survives on purpose:
		// "mov eax, size; call ___chkstk_ms; sub rsp, rax" is the large
		// frame prolog, and ___chkstk_ms preserves it.
		for _, r := range [...]int{1, 2, 8, 9, 10, 11} {
			s.regs[r] = aval{}
		}
		fall()
	case x86asm.RET, x86asm.LRET, x86asm.UD2, x86asm.HLT, x86asm.INT:
		if in.Op == x86asm.INT {
			fall() // int 0x29 (__fastfail) does not return, others do
		}
	case x86asm.JMP:
		if _, ok := in.Args[0].(x86asm.Rel); ok {
			branch()
		} else {
			ind = true
		}
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE, x86asm.JL,
		x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JS,
		x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ, x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		branch()
		fall()
	case x86asm.XCHG, x86asm.XADD, x86asm.CMPXCHG:
		set(in.Args[0], aval{})
		set(in.Args[1], aval{})
		s.regs[hwRAX] = aval{}
		fall()
	case x86asm.CMP, x86asm.TEST, x86asm.NOP:
		fall()
	default:
		// Anything else that writes a register makes it unknown; the
		// implicit writers (mul, div, cpuid, rdtsc, string operations,
		// syscall) lose rax, rcx, rdx, rbx, rsi and rdi.
		set(in.Args[0], aval{})
		switch in.Op {
		case x86asm.MUL, x86asm.IMUL, x86asm.DIV, x86asm.IDIV, x86asm.CPUID, x86asm.RDTSC, x86asm.RDTSCP,
			x86asm.CQO, x86asm.CDQ, x86asm.CWD, x86asm.CDQE, x86asm.CWDE, x86asm.SYSCALL, x86asm.XGETBV, x86asm.RDMSR,
			x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ, x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
			x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ, x86asm.SCASB, x86asm.SCASW, x86asm.SCASD, x86asm.SCASQ,
			x86asm.CMPSB, x86asm.CMPSW, x86asm.CMPSD, x86asm.CMPSQ, x86asm.ENTER, x86asm.RDRAND:
			for _, r := range [...]int{0, 1, 2, 3, 6, 7} {
				s.regs[r] = aval{}
			}
			if in.Op == x86asm.ENTER {
				s.regs[hwRSP], s.regs[hwRBP] = aval{}, aval{}
			}
		}
		fall()
	}
	return s, succ, ind
}
