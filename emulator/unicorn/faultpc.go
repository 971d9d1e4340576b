package unicorn

import (
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
)

// After a data fault, libunicorn 2.0.1 leaves RIP where the translated
// code last stored it: the start of the translation block, or the last
// instruction before the fault that has a code hook (a breakpoint, the
// tracer, or, with SetExactFaults, a sync point placed by the block
// analysis, analysis.go). The registers hold the state just before the
// faulting instruction: the instructions before it have run.
//
// findFaultPC decodes forward from RIP to the end of the block. A
// candidate is an instruction whose memory access, evaluated with the
// current registers, covers the fault address with the fault's kind of
// access, or one the model cannot evaluate. A candidate j is refuted when
// an earlier candidate i evaluated to the fault address with registers
// that did not change between i and j: i then used that very address, of
// the same kind, successfully, so j could not fault there. A plain store
// is refuted when it would store another value than the faulting write.
// The first candidate left is the answer; without SetExactFaults it is
// certain only when it is the only one left and the whole block decoded
// (see doc.go).

const (
	maxFaultScan = maxBlockInsns
	faultScanLen = 4096 + 16 // a block ends within a page, plus its last instruction
)

type faultCand struct {
	pc      uint64 // 0: refuted (kept to refute later ones)
	regs    regSet // registers its matching access depends on
	matched bool   // evaluated to the fault address (else: not evaluable)
	written regSet // registers written from this instruction on (so far)
}

// maxFaultBlocks bounds the blocks findFaultPC explores from RIP.
const maxFaultBlocks = 64

// findFaultPC returns the faulting instruction of a data fault at addr
// (access is arch.PermRead or arch.PermWrite; value and size describe a
// faulting write), starting at RIP start. found is false when no
// candidate is left; ambiguous is true when more than one is left (pc is
// then the first).
//
// RIP may also be stale: when libunicorn chains a block to the next one
// (a direct jump, call or conditional branch to the same page, after the
// first time it is taken) it does not store RIP, so a fault in a chained
// block leaves RIP in an earlier block. The blocks reachable from RIP that
// way are searched too, breadth first; candidates in the first block come
// first.
func (m *Machine) findFaultPC(start, addr uint64, access arch.Perm, value uint64, size int) (pc uint64, found, ambiguous bool) {
	var ctx Context
	if m.ReadContext(&ctx) != nil {
		return start, false, false
	}
	var (
		all    []uint64
		blind  bool
		blocks int // blocks with candidates
		queue  = []uint64{start}
		hops   = map[uint64]int{start: 0}
		used   bool   // RIP's block accessed the address and ran to its end
		skip   uint64 // the successor of RIP's block its branch did not take
	)
	for i := 0; i < len(queue) && i < maxFaultBlocks; i++ {
		at := queue[i]
		cands, b, stable, succ := m.scanBlock(&ctx, at, addr, access, value, size)
		if i == 0 {
			used = stable
			skip = m.notTaken
			if !m.ranToEnd {
				succ = nil // the fault is in this block
			}
		} else if hops[at] == 1 && at == skip && len(cands) > 0 && cands[0] == at {
			// Its first instruction ran right after the branch, with the
			// flags and RCX the branch saw, which send it elsewhere.
			cands = cands[1:]
		}
		if i > 0 && m.exact && m.memLater {
			// A chained block is passed without storing RIP only if it has
			// no sync point, so no memory instruction after its first.
			succ = nil
		}
		if i > 0 && m.exact {
			// With exact faults RIP is stale only when the faulting
			// instruction starts its block (see analysis.go); and a block
			// right after RIP's cannot have faulted at an address RIP's
			// block used with the same registers on its way there.
			if len(cands) > 0 && (cands[0] != at || used && hops[at] == 1) {
				cands = nil
			}
			if len(cands) > 1 {
				cands = cands[:1]
			}
		}
		all = append(all, cands...)
		if len(cands) > 0 {
			blocks++
		}
		blind = blind || b
		for _, s := range succ {
			if _, ok := hops[s]; !ok {
				hops[s] = hops[at] + 1
				queue = append(queue, s)
			}
		}
	}
	if len(queue) > maxFaultBlocks {
		blind = true
	}
	if len(all) == 0 {
		return start, false, false
	}
	if m.exact {
		// The analysis makes the first candidate of a block the faulting
		// one; which block is certain only when one has candidates.
		return all[0], true, blocks > 1
	}
	return all[0], true, len(all) > 1 || blind
}

// scanBlock decodes the block at start and returns its candidates that are
// left after refutation, whether part of it could not be decoded, and the
// blocks libunicorn may have chained it to.
//
// stable is true when an instruction of the block accessed the fault
// address, evaluated with registers that no later instruction of the block
// changes: if the block ran to its end, that access succeeded.
func (m *Machine) scanBlock(ctx *Context, start, addr uint64, access arch.Perm, value uint64, size int) (left []uint64, blind, stable bool, succ []uint64) {
	buf := m.faultBuf[:]
	n, _ := m.ReadMemory(start, buf)
	m.memLater = false
	var cands []faultCand
	var consts [16]struct {
		set bool
		v   uint64
	}
	off := 0
	for i := 0; i < maxFaultScan && off < n; i++ {
		at := start + uint64(off)
		inst, err := x86asm.Decode(buf[off:n], 64)
		if err != nil || inst.Len <= 0 {
			// libunicorn may decode it (with some length), so it and
			// anything after it may be the faulting instruction.
			cands = append(cands, faultCand{pc: at})
			blind = true
			break
		}
		next := at + uint64(inst.Len)
		acc, modeled := accessesOf(inst)
		if i > 0 && (!modeled || len(acc) > 0) {
			m.memLater = true
		}
		c := faultCand{pc: at}
		keep := !modeled
		for _, a := range acc {
			if a.matches(ctx, next, addr, access) {
				keep, c.matched, c.regs = true, true, a.regs()
				break
			}
		}
		if keep && c.matched && !storesValue(inst, ctx, access, value, size) {
			keep = false
		}
		if keep {
			// Refuted by an earlier matching candidate whose address did
			// not move since.
			for _, e := range cands {
				if e.matched && e.regs&e.written == 0 {
					keep = false
					break
				}
			}
		}
		// Its own writes come after its access: they count for the
		// instructions after it.
		w := regsWritten(inst)
		for k := range cands {
			cands[k].written |= w
		}
		for r := range consts {
			if w&(1<<uint(r)) != 0 {
				consts[r].set = false
			}
		}
		if r, v, ok := constWrite(inst, next); ok {
			consts[r].set, consts[r].v = true, v
		}
		if keep || c.matched {
			if !keep {
				c.pc = 0 // refuted, but it refutes later ones the same way
			}
			c.written = w
			cands = append(cands, c)
		}
		if endsBlock(inst.Op) {
			succ = chainTargets(inst, start, at, next)
			m.notTaken = 0
			if taken, ok := branchTaken(inst, ctx); ok && len(succ) == 2 && succ[0] != succ[1] {
				m.notTaken = next
				if !taken {
					m.notTaken = at + uint64(inst.Len) + uint64(int64(inst.Args[0].(x86asm.Rel)))
				}
			}
			break
		}
		off += inst.Len
	}
	for _, c := range cands {
		if c.pc != 0 {
			left = append(left, c.pc)
		}
		if c.matched && c.regs&c.written == 0 {
			stable = true
		}
	}
	// Had the block run to its end, the registers it last set to a
	// constant would hold it.
	m.ranToEnd = true
	for r, c := range consts {
		if c.set && ctx.GPR[r] != c.v {
			m.ranToEnd = false
		}
	}
	return left, blind, stable, succ
}

// constWrite recognises an instruction that sets a whole general register
// to a value known from its bytes: mov r, imm; mov r32, imm (zero
// extended); xor or sub of a register with itself; lea r, [rip+d].
func constWrite(inst x86asm.Inst, next uint64) (reg int, v uint64, ok bool) {
	dst, isReg := inst.Args[0].(x86asm.Reg)
	if !isReg {
		return 0, 0, false
	}
	r, isGPR := gprIndex(dst)
	wide := dst >= x86asm.RAX && dst <= x86asm.R15
	narrow := dst >= x86asm.EAX && dst <= x86asm.R15L
	if !isGPR || !wide && !narrow {
		return 0, 0, false // 8 and 16-bit writes keep the other bits
	}
	switch inst.Op {
	case x86asm.MOV:
		imm, isImm := inst.Args[1].(x86asm.Imm)
		if !isImm {
			return 0, 0, false
		}
		v = uint64(int64(imm))
	case x86asm.XOR, x86asm.SUB:
		if src, _ := inst.Args[1].(x86asm.Reg); src != dst {
			return 0, 0, false
		}
	case x86asm.LEA:
		mem, isMem := inst.Args[1].(x86asm.Mem)
		if !isMem || mem.Base != x86asm.RIP || mem.Index != 0 {
			return 0, 0, false
		}
		v = next + uint64(memDisp(inst, mem))
	default:
		return 0, 0, false
	}
	if narrow {
		v &= 0xffffffff
	}
	return r, v, true
}

// branchTaken evaluates a conditional branch with the current flags and
// RCX; ok is false for anything else.
func branchTaken(inst x86asm.Inst, ctx *Context) (taken, ok bool) {
	f := ctx.RFLAGS
	cf, pf, zf, sf, of := f&1 != 0, f&4 != 0, f&0x40 != 0, f&0x80 != 0, f&0x800 != 0
	rcx := ctx.GPR[1]
	switch inst.AddrSize {
	case 32:
		rcx &= 0xffffffff
	case 16:
		rcx &= 0xffff
	}
	switch inst.Op {
	case x86asm.JO:
		return of, true
	case x86asm.JNO:
		return !of, true
	case x86asm.JB:
		return cf, true
	case x86asm.JAE:
		return !cf, true
	case x86asm.JE:
		return zf, true
	case x86asm.JNE:
		return !zf, true
	case x86asm.JBE:
		return cf || zf, true
	case x86asm.JA:
		return !cf && !zf, true
	case x86asm.JS:
		return sf, true
	case x86asm.JNS:
		return !sf, true
	case x86asm.JP:
		return pf, true
	case x86asm.JNP:
		return !pf, true
	case x86asm.JL:
		return sf != of, true
	case x86asm.JGE:
		return sf == of, true
	case x86asm.JLE:
		return zf || sf != of, true
	case x86asm.JG:
		return !zf && sf == of, true
	case x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ:
		return rcx == 0, true
	case x86asm.LOOP:
		return rcx != 0, true // RCX is already decremented
	case x86asm.LOOPE:
		return rcx != 0 && zf, true
	case x86asm.LOOPNE:
		return rcx != 0 && !zf, true
	}
	return false, false
}

// chainTargets returns where the block ending with inst (at at, next
// after it) can continue without libunicorn storing RIP: the targets of
// direct jumps, calls and conditional branches (and the fall-through of
// the latter) on the page of the block or of the branch (QEMU's
// use_goto_tb).
func chainTargets(inst x86asm.Inst, start, at, next uint64) []uint64 {
	var out []uint64
	add := func(t uint64) {
		if t&^(PageSize-1) == start&^(PageSize-1) || t&^(PageSize-1) == at&^(PageSize-1) {
			out = append(out, t)
		}
	}
	rel, ok := inst.Args[0].(x86asm.Rel)
	if !ok {
		return nil // indirect: libunicorn stores the target in RIP
	}
	add(next + uint64(int64(rel)))
	switch inst.Op {
	case x86asm.JMP, x86asm.CALL:
	default:
		add(next) // a conditional branch or loop falls through
	}
	return out
}

// storesValue reports whether inst can be the faulting write of value
// (size bytes). Only plain stores of a register or an immediate are
// checked; anything else can.
func storesValue(inst x86asm.Inst, ctx *Context, access arch.Perm, value uint64, size int) bool {
	if access != arch.PermWrite || size <= 0 || size > 8 {
		return true
	}
	var src x86asm.Arg
	switch {
	case inst.Op == x86asm.PUSH:
		src = inst.Args[0]
	case inst.Op == x86asm.MOV || stringSize(inst.Op) > 0 && strings.HasPrefix(inst.Op.String(), "STOS"):
		if _, ok := inst.Args[0].(x86asm.Mem); !ok {
			return true
		}
		src = inst.Args[1]
	default:
		return true
	}
	mask := ^uint64(0)
	if size < 8 {
		mask = 1<<(8*uint(size)) - 1
	}
	var v uint64
	switch a := src.(type) {
	case x86asm.Imm:
		v = uint64(int64(a))
	case x86asm.Reg:
		i, ok := gprIndex(a)
		if !ok || (a >= x86asm.AH && a <= x86asm.BH) {
			return true
		}
		v = ctx.GPR[i]
	default:
		return true
	}
	return v&mask == value&mask
}

// matches reports whether access a, evaluated with the registers in ctx,
// covers addr with the given kind of access.
func (a memAccess) matches(ctx *Context, next, addr uint64, access arch.Perm) bool {
	switch access {
	case arch.PermRead:
		if !a.read {
			return false
		}
	case arch.PermWrite:
		if !a.write {
			return false
		}
	default:
		return false
	}
	ea := uint64(a.disp)
	if a.ripRel {
		ea += next
	}
	if i, ok := gprIndex(a.base); ok && a.base != 0 {
		ea += ctx.GPR[i]
	}
	if i, ok := gprIndex(a.index); ok && a.index != 0 {
		ea += ctx.GPR[i] * uint64(a.scale)
	}
	if a.addr32 {
		ea &= 0xffffffff
	}
	switch a.seg {
	case x86asm.FS:
		ea += ctx.FSBase
	case x86asm.GS:
		ea += ctx.GSBase
	}
	return addr-ea < uint64(a.size)
}

// endsBlock reports whether a translation block ends after op.
func endsBlock(op x86asm.Op) bool {
	switch op {
	case x86asm.JMP, x86asm.CALL, x86asm.RET, x86asm.LJMP, x86asm.LCALL, x86asm.LRET,
		x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
		x86asm.JP, x86asm.JS, x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ,
		x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE, x86asm.INT, x86asm.SYSCALL,
		x86asm.HLT, x86asm.UD2, x86asm.IRETQ:
		return true
	}
	return false
}
