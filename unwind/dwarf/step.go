package dwarf

import "fmt"

// Frame is the result of one unwind step: the caller's registers and
// where they came from.
type Frame struct {
	// CFA is the canonical frame address of the frame that was unwound:
	// on x86-64, the caller's RSP.
	CFA uint64
	// Caller holds the caller's registers. Caller.Val[RA] (RIP) is the
	// return address; Caller.Addr and Caller.Saved say which registers
	// were read from memory and where.
	Caller Registers
	// End is set when the return address rule is undefined: the frame
	// unwound was the outermost one and Caller is meaningless.
	End bool
	// Signal is set when the FDE describes a signal frame ('S'): the
	// caller's RIP is the exact interrupted instruction, so look it up
	// without subtracting one.
	Signal bool
	// Lost holds registers whose rule could not be applied (unreadable
	// memory, a source register not known): unknown in Caller.
	Lost RegSet
	// LostErr is the first such failure.
	LostErr error

	FDE *FDE
	Row *Row
}

// Step applies row (of fde) to the registers of a frame and returns its
// caller's. Registers whose rule is unspecified keep their value when they
// are in preserved (SysVPreserved, WindowsPreserved) and become unknown
// otherwise; RSP, when unspecified, is the CFA (the x86-64 convention).
//
// An unreadable or uncomputable return address is an error, so is a CFA
// that cannot be computed; other registers that fail are only marked
// unknown (Frame.Lost).
func Step(fde *FDE, row *Row, regs *Registers, mem Memory, preserved RegSet) (*Frame, error) {
	fr := &Frame{FDE: fde, Row: row, Signal: fde.CIE.Signal}
	ra := fde.CIE.RAReg
	if ra >= NumRegs {
		return nil, fmt.Errorf("return address column %d: %w", ra, ErrRegister)
	}
	switch row.CFA.Kind {
	case CFARegOffset:
		v, ok := regs.Get(row.CFA.Reg)
		if !ok {
			return nil, fmt.Errorf("CFA register %s: %w", RegName(row.CFA.Reg), ErrUnknownRegister)
		}
		fr.CFA = v + uint64(row.CFA.Offset)
	case CFAExpr:
		// The expression's value is the CFA; nothing more to read.
		v, err := Eval(row.CFA.Expr, regs, mem)
		if err != nil {
			return nil, fmt.Errorf("CFA expression: %w", err)
		}
		fr.CFA = v
	default:
		return nil, ErrNoCFA
	}
	if row.Regs[ra].Kind == RuleUndefined {
		fr.End = true
		return fr, nil
	}
	if row.Regs[ra].Kind == RuleUnspecified {
		return nil, ErrNoReturnAddress
	}
	caller := &fr.Caller
	for r := uint64(0); r < NumRegs; r++ {
		rule := row.Regs[r]
		if err := apply(caller, r, rule, regs, mem, fr.CFA, preserved); err != nil {
			if r == ra {
				return nil, fmt.Errorf("return address (%s rule): %w", rule.Kind, err)
			}
			fr.Lost.Add(r)
			if fr.LostErr == nil {
				fr.LostErr = fmt.Errorf("%s (%s rule): %w", RegName(r), rule.Kind, err)
			}
		}
	}
	if ra != RA {
		// The caller's PC is whatever the return address column holds.
		caller.Val[RA], caller.High[RA] = caller.Val[ra], 0
		caller.Known.Del(RA)
		if caller.Known.Has(ra) {
			caller.Known.Add(RA)
		}
		caller.Addr[RA] = caller.Addr[ra]
		if caller.Saved.Has(ra) {
			caller.Saved.Add(RA)
		}
	}
	if !caller.Known.Has(RA) {
		return nil, fmt.Errorf("return address: %w", ErrUnknownRegister)
	}
	return fr, nil
}

// apply computes the caller's register r from rule.
func apply(caller *Registers, r uint64, rule Rule, regs *Registers, mem Memory, cfa uint64, preserved RegSet) error {
	load := func(addr uint64) error {
		var b [16]byte
		n := RegSize(r)
		if err := readFull(mem, "saved "+RegName(r), addr, b[:n]); err != nil {
			return err
		}
		caller.Val[r] = le64(b[:8])
		if n == 16 {
			caller.High[r] = le64(b[8:])
		}
		caller.Known.Add(r)
		caller.Addr[r] = addr
		caller.Saved.Add(r)
		return nil
	}
	copyReg := func(src uint64) error {
		if src >= NumRegs || !regs.Known.Has(src) {
			return ErrUnknownRegister
		}
		caller.Val[r], caller.High[r] = regs.Val[src], regs.High[src]
		caller.Known.Add(r)
		return nil
	}
	switch rule.Kind {
	case RuleUnspecified:
		switch {
		case r == RSP:
			caller.Val[r] = cfa
			caller.Known.Add(r)
		case preserved.Has(r) && regs.Known.Has(r):
			return copyReg(r)
		}
	case RuleUndefined:
	case RuleSameValue:
		if regs.Known.Has(r) {
			return copyReg(r)
		}
	case RuleOffset:
		return load(cfa + uint64(rule.Offset))
	case RuleValOffset:
		caller.Val[r] = cfa + uint64(rule.Offset)
		caller.Known.Add(r)
	case RuleRegister:
		return copyReg(rule.Reg)
	case RuleExpression:
		a, err := Eval(rule.Expr, regs, mem, cfa)
		if err != nil {
			return err
		}
		return load(a)
	case RuleValExpression:
		v, err := Eval(rule.Expr, regs, mem, cfa)
		if err != nil {
			return err
		}
		caller.Val[r] = v
		caller.Known.Add(r)
	}
	return nil
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// LookupPC is the address to look a frame's FDE up with: the PC itself
// for the innermost frame and for a frame a signal interrupted (the callee
// was a signal frame, Frame.Signal), otherwise PC-1, because a return
// address may be the first byte after the call, in the next function or
// past the end of a noreturn one.
func LookupPC(pc uint64, exact bool) uint64 {
	if exact || pc == 0 {
		return pc
	}
	return pc - 1
}

// Finder finds the FDE covering a PC: a *Table, or an .eh_frame Section
// with its .eh_frame_hdr (HdrFinder).
type Finder interface {
	Lookup(pc uint64) (*FDE, error)
}

// HdrFinder looks FDEs up through an .eh_frame_hdr search table.
type HdrFinder struct {
	Section *Section
	Hdr     *EHFrameHdr
}

// Lookup implements Finder.
func (h HdrFinder) Lookup(pc uint64) (*FDE, error) { return h.Section.Find(h.Hdr, pc) }

// Unwind performs one step for the frame whose registers are regs: it
// finds the FDE for LookupPC(RIP, exact), computes the row and applies it.
func Unwind(f Finder, regs *Registers, mem Memory, exact bool, preserved RegSet) (*Frame, error) {
	pc, ok := regs.PC()
	if !ok {
		return nil, fmt.Errorf("rip: %w", ErrUnknownRegister)
	}
	at := LookupPC(pc, exact)
	fde, err := f.Lookup(at)
	if err != nil {
		return nil, fmt.Errorf("pc %#x: %w", pc, err)
	}
	row, err := fde.RowAt(at)
	if err != nil {
		return nil, fmt.Errorf("pc %#x: %w", pc, err)
	}
	return Step(fde, row, regs, mem, preserved)
}
