package unicorn

import (
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
)

// After a data fault without the PC-sync hook, libunicorn 2.0.1 leaves RIP
// at the start of the translation block, while the registers already hold
// the state just before the faulting instruction (the block's earlier
// instructions have run). findFaultPC decodes the block from its start
// and returns the first instruction whose memory operand, evaluated with
// the current registers, covers the fault address with the right kind of
// access. See doc.go for the limits.

const (
	maxFaultScan = 256 // instructions; TCG blocks hold at most 512 and are rarely long
	faultScanLen = 4096
)

// For a faulting write, value and size (the stored value and the access
// size, from the fault hook) rule out stores of another value.
//
// found is false when no instruction matches; ambiguous is true when a
// later instruction of the block matches too (the first is returned).
func (m *Machine) findFaultPC(start, addr uint64, access arch.Perm, value uint64, size int) (pc uint64, found, ambiguous bool) {
	var buf [faultScanLen]byte
	n, _ := m.ReadMemory(start, buf[:])
	off := 0
	for i := 0; i < maxFaultScan && off < n; i++ {
		inst, err := x86asm.Decode(buf[off:n], 64)
		if err != nil || inst.Len == 0 {
			break
		}
		at := start + uint64(off)
		next := at + uint64(inst.Len)
		if m.touches(inst, next, addr, access) && m.storesValue(inst, access, value, size) {
			if found {
				return pc, true, true
			}
			pc, found = at, true
		}
		if endsBlock(inst.Op) {
			break
		}
		off += inst.Len
	}
	return pc, found, false
}

// touches reports whether inst, run with the current registers, would
// access addr the way access says.
func (m *Machine) touches(inst x86asm.Inst, next, addr uint64, access arch.Perm) bool {
	within := func(ea uint64, size int) bool {
		return addr-ea < uint64(size)
	}
	rsp, _ := m.Reg(arch.RSP)
	switch inst.Op {
	case x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.CALL:
		if access == arch.PermWrite && within(rsp-8, 8) {
			return true
		}
	case x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.RET:
		if access == arch.PermRead && within(rsp, 8) {
			return true
		}
	case x86asm.LEAVE:
		rbp, _ := m.Reg(arch.RBP)
		if access == arch.PermRead && within(rbp, 8) {
			return true
		}
	case x86asm.LEA, x86asm.NOP, x86asm.PREFETCHNTA, x86asm.PREFETCHT0, x86asm.PREFETCHT1,
		x86asm.PREFETCHT2, x86asm.PREFETCHW, x86asm.CLFLUSH:
		return false
	}
	name := inst.Op.String()
	for i, a := range inst.Args {
		mem, ok := a.(x86asm.Mem)
		if !ok {
			continue
		}
		ea, ok := m.effectiveAddress(mem, next)
		if !ok {
			continue
		}
		if inst.AddrSize == 32 {
			ea &= 0xffffffff
		}
		size := inst.MemBytes
		if size <= 0 {
			size = 8
		}
		if !within(ea, size) {
			continue
		}
		dest := i == 0
		switch access {
		case arch.PermWrite:
			if dest && !readOnlyOp(name) {
				return true
			}
		case arch.PermRead:
			// A plain store to its first operand does not read it.
			if !dest || !storeOnlyOp(name) {
				return true
			}
		}
	}
	return false
}

// storesValue reports whether inst can be the store of value (size
// bytes). Only plain stores of a register or an immediate are checked;
// anything else is assumed possible.
func (m *Machine) storesValue(inst x86asm.Inst, access arch.Perm, value uint64, size int) bool {
	if access != arch.PermWrite || size <= 0 || size > 8 {
		return true
	}
	var src x86asm.Arg
	name := inst.Op.String()
	switch {
	case inst.Op == x86asm.PUSH:
		src = inst.Args[0]
	case name == "MOV" || strings.HasPrefix(name, "STOS"):
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
		var r arch.Reg
		switch {
		case a >= x86asm.RAX && a <= x86asm.R15:
			r = arch.Reg(a - x86asm.RAX)
		case a >= x86asm.EAX && a <= x86asm.R15L:
			r = arch.Reg(a - x86asm.EAX)
		case a >= x86asm.AX && a <= x86asm.R15W:
			r = arch.Reg(a - x86asm.AX)
		default:
			return true
		}
		rv, err := m.Reg(r)
		if err != nil {
			return true
		}
		v = rv
	default:
		return true
	}
	return v&mask == value&mask
}

func readOnlyOp(name string) bool {
	switch {
	case strings.HasPrefix(name, "CMP"), strings.HasPrefix(name, "TEST"),
		strings.HasPrefix(name, "UCOMI"), strings.HasPrefix(name, "COMI"),
		name == "BT", name == "PUSH", strings.HasPrefix(name, "SCAS"), strings.HasPrefix(name, "LODS"):
		return true
	}
	return false
}

func storeOnlyOp(name string) bool {
	return strings.HasPrefix(name, "MOV") || strings.HasPrefix(name, "STOS") ||
		strings.HasPrefix(name, "SET") || name == "POP"
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
