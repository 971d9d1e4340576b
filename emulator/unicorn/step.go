package unicorn

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
)

// successors decodes the instruction at pc and returns the addresses
// execution can reach after it (at most two). ok is false when the
// instruction is not understood well enough; Step then falls back to the
// per-instruction tracer. Faults, traps and exceptions of the instruction
// itself stop execution by other means, so they need no successor.
func (m *Machine) successors(pc uint64) (a, b uint64, ok bool) {
	buf := m.scratch[:15]
	n, _ := m.ReadMemory(pc, buf)
	if n == 0 {
		return 0, 0, false
	}
	inst, err := x86asm.Decode(buf[:n], 64)
	if err != nil || inst.Len == 0 {
		return 0, 0, false
	}
	next := pc + uint64(inst.Len)
	switch inst.Op {
	case x86asm.JMP, x86asm.CALL:
		t, ok := m.branchTarget(inst, pc, next)
		return t, t, ok
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
		x86asm.JP, x86asm.JS, x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ,
		x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		rel, isRel := inst.Args[0].(x86asm.Rel)
		if !isRel {
			return 0, 0, false
		}
		return next, next + uint64(int64(rel)), true
	case x86asm.RET:
		sp, err := m.Reg(arch.RSP)
		if err != nil {
			return 0, 0, false
		}
		w := m.scratch[:8]
		if n, _ := m.ReadMemory(sp, w); n != 8 {
			return next, next, true // the pop faults
		}
		t := binary.LittleEndian.Uint64(w)
		return t, t, true
	case x86asm.LJMP, x86asm.LCALL, x86asm.LRET, x86asm.IRET, x86asm.IRETD, x86asm.IRETQ,
		x86asm.SYSRET, x86asm.SYSEXIT, x86asm.XBEGIN, x86asm.XABORT, x86asm.XEND:
		return 0, 0, false
	}
	return next, next, true
}

// insnBytes returns the bytes of the instruction at pc: its length as
// x86asm decodes it, also for encodings it rejects (it still reports how
// many bytes it read), and a lone prefix is followed to the opcode after
// it. Unreadable memory gives the readable prefix of it.
func (m *Machine) insnBytes(pc uint64) []byte {
	var buf [15]byte
	n, _ := m.ReadMemory(pc, buf[:])
	code := buf[:n]
	size := 0
	for size < len(code) {
		inst, err := x86asm.Decode(code[size:], 64)
		if inst.Len <= 0 {
			size = len(code)
			break
		}
		size += inst.Len
		if err != nil || inst.Op != 0 {
			break
		}
		// A prefix decoded on its own: the instruction goes on.
	}
	if size > len(code) {
		size = len(code)
	}
	return append([]byte(nil), code[:size]...)
}

// branchTarget evaluates the operand of a near jmp or call.
func (m *Machine) branchTarget(inst x86asm.Inst, pc, next uint64) (uint64, bool) {
	switch arg := inst.Args[0].(type) {
	case x86asm.Rel:
		return next + uint64(int64(arg)), true
	case x86asm.Reg:
		r, ok := gpr64(arg)
		if !ok {
			return 0, false
		}
		v, err := m.Reg(r)
		return v, err == nil
	case x86asm.Mem:
		if inst.AddrSize != 64 {
			return 0, false
		}
		ea, ok := m.effectiveAddress(inst, arg, next)
		if !ok {
			return 0, false
		}
		w := m.scratch[:8]
		if n, _ := m.ReadMemory(ea, w); n != 8 {
			return next, true // the load faults; any target will do
		}
		return binary.LittleEndian.Uint64(w), true
	}
	return 0, false
}

func (m *Machine) effectiveAddress(inst x86asm.Inst, mem x86asm.Mem, next uint64) (uint64, bool) {
	ea := uint64(memDisp(inst, mem))
	if mem.Base == x86asm.RIP {
		ea += next
	} else if mem.Base != 0 {
		r, ok := gpr64(mem.Base)
		if !ok {
			return 0, false
		}
		v, err := m.Reg(r)
		if err != nil {
			return 0, false
		}
		ea += v
	}
	if mem.Index != 0 {
		r, ok := gpr64(mem.Index)
		if !ok {
			return 0, false
		}
		v, err := m.Reg(r)
		if err != nil {
			return 0, false
		}
		ea += v * uint64(mem.Scale)
	}
	switch mem.Segment {
	case x86asm.FS, x86asm.GS:
		r := arch.FSBase
		if mem.Segment == x86asm.GS {
			r = arch.GSBase
		}
		v, err := m.Reg(r)
		if err != nil {
			return 0, false
		}
		ea += v
	}
	return ea, true
}

// gpr64 maps a 64-bit x86asm register to arch.Reg.
func gpr64(r x86asm.Reg) (arch.Reg, bool) {
	if r >= x86asm.RAX && r <= x86asm.R15 {
		return arch.Reg(r - x86asm.RAX), true
	}
	return 0, false
}
