package unwind

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/internal/arch"
	"golang.org/x/arch/x86/x86asm"
)

// CodeRegions describes executable memory outside every module (a
// VirtualAlloc'd buffer holding shellcode, a JIT's code heap). The walk
// uses it to accept return addresses there and to check that a call
// could have entered a frame there.
type CodeRegions interface {
	// CodeRegion returns the executable mapping [start, end) that holds
	// addr, or false when addr is not in executable memory.
	CodeRegion(addr uint64) (start, end uint64, ok bool)
}

// ShadowCall is one call in progress, as an emulator that watches every
// call and ret records it (its shadow call stack).
type ShadowCall struct {
	CallSite      uint64 // the call instruction
	Target        uint64 // the first instruction of the callee
	ReturnAddress uint64
	Slot          uint64 // where the call pushed ReturnAddress
}

// Bounds of the checks on a candidate return address.
const (
	// maxThunkHops is how many jmp thunks (jmp rel, jmp [rip+disp]) a
	// direct call's target is followed through.
	maxThunkHops = 4
	// noRegionReach bounds the distance from a direct call's target to
	// the callee's PC outside every module when no CodeRegions says
	// where the code's mapping ends.
	noRegionReach = 1 << 20
	// maxFrameSpan bounds a frame pointer's distance above the stack
	// pointer.
	maxFrameSpan = 1 << 24
	// maxTailDepth is how many functions deep tail jumps are followed
	// from a direct call's target; maxTailScan bounds the bytes decoded
	// per function and maxTailJumps the jumps kept per function.
	maxTailDepth = 2
	maxTailScan  = 4096
	maxTailJumps = 32
)

// anyTarget stands for the destination of an indirect tail call: it may
// reach any code.
const anyTarget = ^uint64(0)

// callKind says what a call instruction tells about its target.
type callKind uint8

const (
	callIndirect callKind = iota // through a register or computed memory: target unknown
	callDirect                   // call rel32, or call [rip+disp32] with a readable pointer
)

// call is one way to read the bytes before a return address as a call.
type call struct {
	kind   callKind
	target uint64
}

// callsBefore decodes the call instructions that could end at ra (a
// sequence of bytes may read as a call at more than one length). It
// returns how many it wrote into out.
func (u *Unwinder) callsBefore(ra uint64, out *[6]call) int {
	if ra < 2 {
		return 0
	}
	var b [7]byte
	start := ra - uint64(len(b))
	if ra < uint64(len(b)) {
		start = 0
	}
	want := int(ra - start)
	// Code may begin inside the window: read the readable suffix.
	n, _ := safeRead(u.mem, start, b[:want])
	off := 0
	for n < want && off < want-2 {
		off++
		n, _ = safeRead(u.mem, start+uint64(off), b[off:want])
		n += off
	}
	if n != want {
		return 0
	}
	code := b[off:want]
	k := 0
	for l := 2; l <= len(code) && k < len(out); l++ {
		inst, err := x86asm.Decode(code[len(code)-l:], 64)
		if err != nil || inst.Len != l || inst.Op != x86asm.CALL {
			continue
		}
		c := call{kind: callIndirect}
		switch a := inst.Args[0].(type) {
		case x86asm.Rel:
			c = call{kind: callDirect, target: ra + uint64(int64(a))}
		case x86asm.Mem:
			if a.Base == x86asm.RIP && a.Index == 0 && a.Segment == 0 {
				// An import address table slot: the pointer is the target.
				if p, err := read64(u.mem, u.scratch[:], "call pointer", ra+uint64(a.Disp)); err == nil {
					c = call{kind: callDirect, target: p}
				}
			}
		}
		out[k] = c
		k++
	}
	return k
}

// inCode reports whether addr lies in executable code: an executable
// section of a module, or an executable mapping outside every module.
// Without CodeRegions, memory outside every module counts when loose is
// set and the byte is readable (the leaf and frame-pointer candidates
// sit where a return address must be; a scanned word does not).
func (u *Unwinder) inCode(addr uint64, code CodeRegions, loose bool) bool {
	if m, ok := u.Module(addr); ok && m.Format == FormatELF {
		// No section table here: the module's span, and the call check.
		return true
	}
	if img, err := u.Image(addr); err == nil {
		return img.Executable(uint32(addr - img.Base))
	}
	if _, ok := u.Module(addr); ok {
		return false
	}
	if code == nil {
		var b [1]byte
		n, _ := safeRead(u.mem, addr, b[:])
		return loose && n == 1
	}
	_, _, ok := code.CodeRegion(addr)
	return ok
}

// validReturn reports whether ra can be the return address of the frame
// whose code is at calleePC (its exact PC, or its return address minus
// one): ra lies in executable code right after a call, and a direct
// call's target (followed through jmp thunks and tail jumps) is
// consistent with calleePC. A call through a register or computed memory
// is accepted.
func (u *Unwinder) validReturn(ra, calleePC uint64, code CodeRegions) bool {
	return u.validCall(ra, calleePC, code, true)
}

// validScanned is validReturn for a word found by a scan: outside every
// module it must be in memory CodeRegions knows to be executable.
func (u *Unwinder) validScanned(ra, calleePC uint64, code CodeRegions) bool {
	return u.validCall(ra, calleePC, code, false)
}

// afterCall reports whether ra lies in code right after a call
// instruction, whatever its target: the check for a return address that
// unwind data (CFI) gave.
func (u *Unwinder) afterCall(ra uint64, code CodeRegions) bool {
	var calls [6]call
	return u.inCode(ra, code, true) && u.callsBefore(ra, &calls) > 0
}

func (u *Unwinder) validCall(ra, calleePC uint64, code CodeRegions, loose bool) bool {
	if !u.inCode(ra, code, loose) {
		return false
	}
	if m, ok := u.Module(ra); ok && m.Synthetic {
		return true // a continuation of emulated code that called back
	}
	var calls [6]call
	n := u.callsBefore(ra, &calls)
	for _, c := range calls[:n] {
		if c.kind == callIndirect || u.reaches(c.target, calleePC, code) {
			return true
		}
	}
	return false
}

// reaches reports whether a call to target can have led to calleePC:
// target, or a jmp thunk it leads to, lies in the function (or the code
// region) that holds calleePC, or the function there has a tail jump
// (jmp rel, jmp [rip+disp]) that does, up to maxTailDepth functions
// deep. A jump through a register or computed memory counts only in the
// form the x64 ABI gives an indirect tail call, REX.W jmp (a plain one
// is a switch inside the function), and then may reach anything.
func (u *Unwinder) reaches(target, calleePC uint64, code CodeRegions) bool {
	return u.reachesDepth(target, calleePC, code, maxTailDepth)
}

func (u *Unwinder) reachesDepth(target, calleePC uint64, code CodeRegions, depth int) bool {
	for range maxThunkHops + 1 {
		if u.holds(target, calleePC, code) {
			return true
		}
		if depth > 0 {
			for _, d := range u.tailJumps(target, code) {
				if d == anyTarget || u.reachesDepth(d, calleePC, code, depth-1) {
					return true
				}
			}
		}
		next, ok := u.thunk(target)
		if !ok || next == target {
			return false
		}
		target = next
	}
	return false
}

// tailJumps returns the destinations of the jumps out of the function
// that starts at fn (its .pdata entry, or up to maxTailScan bytes of a
// function without one), decoded linearly and cached per function.
func (u *Unwinder) tailJumps(fn uint64, code CodeRegions) []uint64 {
	if d, ok := u.tails[fn]; ok {
		return d
	}
	start, end := fn, fn+maxTailScan
	if img, err := u.Image(fn); err == nil {
		rva := uint32(fn - img.Base)
		if f, found, err := img.LookupFunction(u.mem, rva); err == nil && found {
			if f.BeginAddress != rva {
				return nil // not a function start: a call never targets it
			}
			end = img.Base + uint64(f.EndAddress)
		} else if _, hi := img.gap(rva); err == nil {
			end = min(end, img.Base+uint64(hi))
		}
		end = min(end, img.Base+img.Size)
	} else if code != nil {
		_, e, ok := code.CodeRegion(fn)
		if !ok {
			return nil
		}
		end = min(end, e)
	} else if _, in := u.Module(fn); in {
		return nil
	}
	var dests []uint64
	if end > start && end-start <= maxTailScan {
		buf := make([]byte, end-start)
		n, _ := safeRead(u.mem, start, buf)
		buf = buf[:n]
		for off := 0; off < len(buf); {
			inst, err := x86asm.Decode(buf[off:], 64)
			if err != nil || inst.Len == 0 {
				off++
				continue
			}
			at := buf[off:]
			next := start + uint64(off+inst.Len)
			off += inst.Len
			if inst.Op != x86asm.JMP {
				continue
			}
			var d uint64
			switch a := inst.Args[0].(type) {
			case x86asm.Reg:
				// The x64 ABI writes an indirect tail call as REX.W jmp
				// (what the epilog rule recognizes); a plain jmp reg is
				// a jump inside the function (a switch).
				if len(at) < 2 || at[0]&0xf8 != 0x48 || at[1] != 0xff {
					continue
				}
				d = anyTarget
			case x86asm.Rel:
				d = next + uint64(int64(a))
				if d >= start && d < end {
					continue // a jump inside the function
				}
			case x86asm.Mem:
				if a.Base != x86asm.RIP || a.Index != 0 {
					if len(at) >= 2 && at[0]&0xf8 == 0x48 && at[1] == 0xff {
						d = anyTarget // REX.W jmp [reg+...]: an indirect tail call
						break
					}
					continue
				}
				p, err := read64(u.mem, u.scratch[:], "jmp pointer", next+uint64(a.Disp))
				if err != nil {
					continue
				}
				d = p
			default:
				continue
			}
			if len(dests) < maxTailJumps {
				dests = append(dests, d)
			}
		}
	}
	if u.tails == nil {
		u.tails = make(map[uint64][]uint64)
	}
	u.tails[fn] = dests
	return dests
}

// thunk returns where a jmp at addr goes: jmp rel8/rel32, or an indirect
// jmp through a RIP-relative pointer (an import thunk, with or without a
// REX.W prefix).
func (u *Unwinder) thunk(addr uint64) (uint64, bool) {
	var b [7]byte
	n, _ := safeRead(u.mem, addr, b[:])
	c := b[:n]
	if len(c) >= 1 && c[0] == 0x48 && len(c) >= 7 && c[1] == 0xff && c[2] == 0x25 {
		c = c[1:]
		addr++
	}
	switch {
	case len(c) >= 2 && c[0] == jmpImm8Op:
		return addr + 2 + uint64(int64(int8(c[1]))), true
	case len(c) >= 5 && c[0] == jmpImm32Op:
		return addr + 5 + uint64(int64(int32(binary.LittleEndian.Uint32(c[1:])))), true
	case len(c) >= 6 && c[0] == 0xff && c[1] == 0x25:
		slot := addr + 6 + uint64(int64(int32(binary.LittleEndian.Uint32(c[2:]))))
		p, err := read64(u.mem, u.scratch[:], "jmp pointer", slot)
		return p, err == nil
	}
	return 0, false
}

// holds reports whether target lies in the function that holds pc:
// the same function entry (chains followed) when pc has one; the same
// gap between entries, at or before pc, when it has none; the same
// executable mapping outside every module.
func (u *Unwinder) holds(target, pc uint64, code CodeRegions) bool {
	pm, inPC := u.Module(pc)
	tm, inT := u.Module(target)
	if inPC != inT || (inPC && pm.Base != tm.Base) {
		return false
	}
	if !inPC {
		if code != nil {
			s, e, ok := code.CodeRegion(pc)
			return ok && target >= s && target < e
		}
		return target <= pc && pc-target < noRegionReach
	}
	if pm.Format == FormatELF {
		// No function table: at or before the pc, within reach.
		return target <= pc && pc-target < noRegionReach
	}
	img, err := u.Image(pc)
	if err != nil || !img.Contains(target) {
		return false
	}
	fe, found, err := u.LookupFunctionEntry(pc)
	if err != nil {
		return false
	}
	if found {
		_, same := u.sameFunction(img, fe.RuntimeFunction, uint32(target-img.Base))
		return same
	}
	if target > pc {
		return false
	}
	lo, hi := img.gap(uint32(pc - img.Base))
	rva := uint32(target - img.Base)
	return rva >= lo && rva < hi
}

// gap returns the bounds [lo, hi) of the space between function entries
// that holds rva (which no entry covers): the end of the entry before it
// and the start of the entry after it.
func (img *Image) gap(rva uint32) (lo, hi uint32) {
	fs := img.Functions
	n := len(fs)
	at := func(i int) RuntimeFunction { return fs[i] }
	if img.Missing > 0 {
		v := img.valid
		n = len(v)
		at = func(i int) RuntimeFunction { return fs[v[i]] }
	}
	i := sort.Search(n, func(i int) bool { return at(i).BeginAddress > rva })
	hi = ^uint32(0)
	if i < n {
		hi = at(i).BeginAddress
	}
	for j := i - 1; j >= 0 && j >= i-16; j-- {
		// Entries may overlap (a chained parent spanning its children):
		// the gap starts after the furthest end below rva.
		if e := at(j).EndAddress; e <= rva && e > lo {
			lo = e
		}
	}
	return lo, hi
}

// noUnwindData reports whether the frame's code has no unwind data the
// walk can use: it lies outside every module, or in a PE module whose
// function table has no entry for it (and the CFI fallback, tried
// before, had none either).
func (u *Unwinder) noUnwindData(cur *Frame, lookupPC uint64) bool {
	if cur.Module != nil && cur.Module.Format == FormatELF {
		return false
	}
	_, found, err := u.LookupFunctionEntry(lookupPC)
	if err != nil {
		_, inModule := u.Module(lookupPC)
		return !inModule
	}
	return !found
}

// calleePC is the address that names the frame's code: its PC, or for a
// frame entered by a return, the return address minus one.
func calleePC(f *Frame) uint64 {
	if exactPC(f) || f.PC == 0 {
		return f.PC
	}
	return f.PC - 1
}

// unwindNoData finds the caller of a frame that has no unwind data. Each
// way of finding a return address is tried in turn, and a candidate is
// taken only when validReturn accepts it: the shadow call stack (exact),
// the leaf rule inside a module (RIP = [RSP]), the frame-pointer chain
// (push rbp; mov rbp, rsp), then a bounded scan upward from RSP.
//
// The caller's nonvolatile registers are the frame's own (the x64 ABI
// forbids a function without unwind data to change them; Windows' leaf
// rule assumes the same), except RBP when the frame-pointer chain
// restores it, and RBP is dropped when it points into the frame being
// unwound: it is then this frame's own frame pointer, not its caller's.
//
// It fails with a *ReadError when the stack at RSP cannot be read, and
// with ErrUnproven when no candidate validates.
func (u *Unwinder) unwindNoData(cur *Frame, opt WalkOptions) (Context, Trust, error) {
	pc := calleePC(cur)
	if opt.Shadow != nil {
		if slot, ra, ok := shadowReturn(opt.Shadow, cur.SP, pc, u, opt.Code); ok {
			return u.noDataCaller(cur, ra, slot), TrustShadow, nil
		}
	}
	ra, err := read64(u.mem, u.scratch[:], "stack", cur.SP)
	if err != nil {
		return Context{}, 0, err
	}
	if cur.Module != nil && u.validReturn(ra, pc, opt.Code) {
		return u.noDataCaller(cur, ra, cur.SP), TrustLeaf, nil
	}
	if rbp, ok := cur.Regs.Get(arch.RBP); ok && rbp >= cur.SP && rbp&7 == 0 && rbp-cur.SP <= maxFrameSpan {
		if ra, err := read64(u.mem, u.scratch[:], "stack", rbp+8); err == nil && u.validReturn(ra, pc, opt.Code) {
			if next := u.noDataCaller(cur, ra, rbp+8); next.GPRKnown&(1<<arch.RBP) != 0 {
				return next, TrustFramePointer, nil
			}
		}
	}
	if slot, ra, ok := u.scanFor(cur.SP, opt.ScanWords, func(w uint64) bool { return u.validScanned(w, pc, opt.Code) }); ok {
		return u.noDataCaller(cur, ra, slot), TrustScan, nil
	}
	return Context{}, 0, fmt.Errorf("%#x (rsp %#x): %w", cur.PC, cur.SP, ErrUnproven)
}

// noDataCaller is the caller's context when the return address ra was
// read at slot: nonvolatile registers carry over, except RBP when it
// points into the frame being unwound. Then RBP is the frame's own frame
// pointer: when it sits right below the slot (push rbp; mov rbp, rsp)
// the caller's RBP is the word it points at, otherwise it is unknown.
func (u *Unwinder) noDataCaller(cur *Frame, ra, slot uint64) Context {
	next := cur.Regs
	next.restoreRIP(ra, slot)
	next.setRSP(slot + 8)
	if rbp, ok := next.Get(arch.RBP); ok && rbp >= cur.SP && rbp <= slot {
		next.GPRKnown &^= 1 << arch.RBP
		next.GPR[arch.RBP], next.GPRAddr[arch.RBP] = 0, 0
		if rbp+8 == slot {
			if saved, err := read64(u.mem, u.scratch[:], "stack", rbp); err == nil {
				next.restore(uint8(arch.RBP), saved, rbp)
			}
		}
	}
	return next
}

// shadowReturn finds, in the shadow call stack, the call that entered the
// frame whose stack pointer is sp and whose code is at pc: the innermost
// call whose return-address slot lies at or above sp. The call's target
// must be consistent with pc (a callback that emulated code made without
// a call instruction is not on the shadow stack: the walk must not skip
// over it).
func shadowReturn(calls []ShadowCall, sp, pc uint64, u *Unwinder, code CodeRegions) (slot, ra uint64, ok bool) {
	best := -1
	for i, c := range calls {
		if c.Slot >= sp && (best < 0 || c.Slot < calls[best].Slot) {
			best = i
		}
	}
	if best < 0 {
		return 0, 0, false
	}
	c := calls[best]
	if !u.reaches(c.Target, pc, code) {
		return 0, 0, false
	}
	// The slot must still hold the return address the call pushed.
	if w, err := read64(u.mem, u.scratch[:], "stack", c.Slot); err != nil || w != c.ReturnAddress {
		return 0, 0, false
	}
	return c.Slot, c.ReturnAddress, true
}

// scanFor looks upward from sp, at most words stack words, for the first
// word accept takes; it returns the word's address and value.
func (u *Unwinder) scanFor(sp uint64, words int, accept func(uint64) bool) (slot, w uint64, ok bool) {
	if words <= 0 {
		words = 512
	}
	if words > 1<<16 {
		words = 1 << 16
	}
	var buf [512]byte
	sp &^= 7
	for done := 0; done < words; {
		n := min(len(buf)/8, words-done)
		got, _ := safeRead(u.mem, sp, buf[:8*n])
		for k := 0; k+8 <= got; k += 8 {
			if w := binary.LittleEndian.Uint64(buf[k:]); accept(w) {
				return sp + uint64(k), w, true
			}
		}
		if got < 8*n {
			return 0, 0, false
		}
		sp += uint64(8 * n)
		done += n
	}
	return 0, 0, false
}

// FunctionStart returns where the function that holds pc begins, as the
// module's function table says: the BeginAddress of its primary entry
// (chains followed), or for a pc that no entry covers, the end of the
// entry before it (a function without an entry lies between entries).
// ok is false outside every PE module and where the table is damaged.
// Symbolizers use it to tell a PC inside the nearest symbol's function
// from one in an unnamed function after it.
func (u *Unwinder) FunctionStart(pc uint64) (start uint64, ok bool) {
	if m, in := u.Module(pc); !in || m.Format != FormatPE {
		return 0, false
	}
	fe, found, err := u.LookupFunctionEntry(pc)
	if err != nil {
		return 0, false
	}
	img := fe.Image
	if !found {
		if img, err = u.Image(pc); err != nil {
			return 0, false
		}
		lo, _ := img.gap(uint32(pc - img.Base))
		return img.Base + uint64(lo), true
	}
	primary, err := u.primaryEntry(img, fe.RuntimeFunction)
	if err != nil {
		return 0, false
	}
	return img.Base + uint64(primary.BeginAddress), true
}
