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
	pc      uint64
	inst    x86asm.Inst
	regs    regSet // registers its matching access depends on
	matched bool   // evaluated to the fault address (else: not evaluable)
	written regSet // registers written from this instruction on (so far)
}

// findFaultPC returns the faulting instruction of a data fault at addr
// (access is arch.PermRead or arch.PermWrite; value and size describe a
// faulting write), starting at RIP start. found is false when no
// candidate is left; ambiguous is true when more than one is left (pc is
// then the first).
func (m *Machine) findFaultPC(start, addr uint64, access arch.Perm, value uint64, size int) (pc uint64, found, ambiguous bool) {
	var buf [faultScanLen]byte
	var ctx Context
	if m.ReadContext(&ctx) != nil {
		return start, false, false
	}
	n, _ := m.ReadMemory(start, buf[:])
	var cands []faultCand
	off := 0
	blind := false // the rest of the block could not be decoded
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
		c := faultCand{pc: at, inst: inst}
		keep := !modeled
		for _, a := range acc {
			if a.matches(&ctx, next, addr, access) {
				keep, c.matched, c.regs = true, true, a.regs()
				break
			}
		}
		if keep && c.matched && !storesValue(inst, &ctx, access, value, size) {
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
		if keep {
			c.written = w
			cands = append(cands, c)
		} else if c.matched {
			// Refuted, but still an instruction that used the address:
			// it refutes later ones the same way.
			c.written = w
			c.pc = 0
			cands = append(cands, c)
		}
		if endsBlock(inst.Op) {
			break
		}
		off += inst.Len
	}
	left := 0
	for _, c := range cands {
		if c.pc == 0 {
			continue
		}
		if left == 0 {
			pc = c.pc
		}
		left++
	}
	if left == 0 {
		return start, false, false
	}
	return pc, true, (left > 1 || blind) && !m.exact
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
