package unicorn

/*
#include "machine.h"
*/
import "C"

import "golang.org/x/arch/x86/x86asm"

// SetCounting turns the position counter on or off. On, a C block hook
// counts the instructions of every block the guest enters (the count of
// a block comes from libunicorn's translation cache once per block), and
// every stop takes back the instructions of its block it did not run, so
// Position is exact at every stop. An instruction with a rep prefix
// counts once per iteration, as libunicorn runs one iteration per entry.
// Turning it on or off drops the translated code; the count is kept.
func (m *Machine) SetCounting(on bool) error {
	if err := m.check(); err != nil {
		return err
	}
	return ucErr("position counter", C.rs_count_enable(m.c, cbool(on)))
}

// Counting reports whether the position counter is on.
func (m *Machine) Counting() bool { return m.check() == nil && m.c.count_hook != 0 }

// Position is the number of instructions executed while the counter was
// on.
func (m *Machine) Position() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.icount)
}

// SetPosition sets the counter (a restored snapshot's position).
func (m *Machine) SetPosition(n uint64) {
	if m.check() == nil {
		m.c.icount = C.uint64_t(n)
		m.c.cnt_open = 0
	}
}

// SetPositionLimit makes runs stop with StopPosition before a block
// that would take Position past n; off removes the limit. The stop is at
// a block start at or before n: StepOne goes the rest of the way.
func (m *Machine) SetPositionLimit(n uint64, on bool) {
	if m.check() == nil {
		m.c.limit, m.c.limit_on = C.uint64_t(n), cbool(on)
	}
}

// ForgetLastPC makes the next run report a breakpoint at its first
// instruction (a run that resumes where the machine stopped skips it
// once): for a stop that came before the breakpoint's hook (the position
// limit) or a state put in place by the caller (a restored checkpoint).
func (m *Machine) ForgetLastPC() {
	if m.check() == nil {
		m.c.last_pc = ^C.uint64_t(0)
	}
}

// CountMisses is how many block entries missed the counter's cache.
func (m *Machine) CountMisses() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.cnt_misses)
}

// CountDecoded is how many of CountMisses libunicorn could not answer
// (the block was decoded instead).
func (m *Machine) CountDecoded() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.cnt_decoded)
}

// StepOne executes one instruction with the tracer (a rep instruction:
// one iteration), so that the position moves by exactly one.
func (m *Machine) StepOne() Stop { return m.run(1, 0, 0) }

// settle corrects the counter for a run that stopped at pc inside the
// block entered last (count_settle).
func (m *Machine) settle(pc uint64) {
	if m.c.count_hook != 0 {
		C.count_settle(m.c, C.uint64_t(pc))
	}
}

// insnIndex counts the instructions that start in [start, pc), decoded
// one after the other; pc past a block's end counts them all.
func (m *Machine) insnIndex(start, pc uint64) int {
	var buf [16]byte
	n := 0
	for a := start; a < pc && n < 1<<16; n++ {
		k, _ := m.ReadMemory(a, buf[:])
		if k == 0 {
			return n + 1
		}
		inst, err := x86asm.Decode(buf[:k], 64)
		l := inst.Len
		if err != nil || l <= 0 {
			l = len(m.insnBytes(a))
			if l <= 0 {
				l = 1
			}
		}
		a += uint64(l)
	}
	return n
}

// SetVirtualTSC makes the guest's rdtsc and rdtscp read the position
// times mul (with the counter on): a code hook after each such
// instruction, found when its block is first counted, replaces EDX:EAX.
// libunicorn 2.0.1 has no rdtsc hook of its own (uc_hook_add with
// UC_X86_INS_RDTSC answers UC_ERR_HOOK). Blocks counted before the call
// keep the host's counter until they are translated again.
func (m *Machine) SetVirtualTSC(on bool, mul uint64) {
	if m.check() == nil {
		C.rs_tsc_virtual(m.c, cbool(on), C.uint64_t(mul))
	}
}

// TSCReads is how many virtual rdtsc values the guest has read.
func (m *Machine) TSCReads() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.tsc_reads)
}

// scanTSC writes the addresses after the rdtsc and rdtscp instructions of
// [start, end) to out and returns how many.
func (m *Machine) scanTSC(start, end uint64, out []C.uint64_t) int {
	var buf [16]byte
	n := 0
	for a := start; a < end && n < len(out); {
		k, _ := m.ReadMemory(a, buf[:])
		if k == 0 {
			break
		}
		inst, err := x86asm.Decode(buf[:k], 64)
		if err != nil || inst.Len <= 0 {
			break
		}
		a += uint64(inst.Len)
		if inst.Op == x86asm.RDTSC || inst.Op == x86asm.RDTSCP {
			out[n] = C.uint64_t(a)
			n++
		}
	}
	return n
}
