package monitor

import (
	"errors"
	"fmt"
	"io"

	"github.com/rspstub/rspstub/internal/arch"
)

// VerifyResult compares an unwinder walk with a shadow call stack.
type VerifyResult struct {
	Checked  int    // calls compared
	Mismatch string // the first disagreement, "" when they agree
	Notes    []string
}

// ErrNoShadowStack: the backend keeps no shadow call stack, or it is off.
var ErrNoShadowStack = errors.New("no shadow call stack")

// VerifyUnwind compares the unwinder's frames with the backend's shadow
// call stack: each live shadow frame (innermost first) must be a frame of
// the walk with the same return address, return address slot and caller
// stack pointer. The walk is made without the shadow stack (which bt
// uses for frames without unwind data): what is checked is the
// unwinder's own answer, heuristics included.
func (m *Monitor) VerifyUnwind() (res *VerifyResult, err error) {
	defer recoverTo(&err, "verify-unwind")
	ss, ok := m.t.(ShadowStacker)
	if !ok {
		return nil, fmt.Errorf("%w: this backend does not keep one", ErrNoShadowStack)
	}
	shadow, on := ss.ShadowStack()
	if !on {
		return nil, fmt.Errorf("%w: it is off; start the stub with --shadow-stack (it records calls from the program's start)", ErrNoShadowStack)
	}
	regs, err := m.t.Registers()
	if err != nil {
		return nil, fmt.Errorf("read registers: %w", err)
	}
	rsp := regs.GPR[arch.RSP]
	// Innermost first, without frames whose slot is below RSP (dead: the
	// emulator drops them at its next block start).
	var live []ShadowFrame
	for i := len(shadow) - 1; i >= 0; i-- {
		if shadow[i].SP >= rsp {
			live = append(live, shadow[i])
		}
	}
	// The walk must not read the shadow stack it is compared with.
	bt, err := m.Backtrace(BacktraceOptions{MaxFrames: len(live) + 64, NoShadow: true})
	if err != nil {
		return nil, err
	}
	res = &VerifyResult{}
	j := 1 // the unwinder frame that should be the caller of live[i]
	for i := 0; i < len(live); i++ {
		sf := live[i]
		if j >= len(bt.Frames) {
			res.Mismatch = fmt.Sprintf("call %d (from %s to %s, return address %#x at %#x): the unwinder has no frame %d (%s)",
				i, m.describe(sf.CallSite), m.describe(sf.Target), sf.ReturnAddress, sf.SP, j, bt.ended())
			return res, nil
		}
		callee, caller := &bt.Frames[j-1], &bt.Frames[j]
		if caller.PC != sf.ReturnAddress && m.synthetic(caller.PC) {
			// Emulated API code called the callee (a callback): no call
			// instruction ran, so the shadow stack has no frame for it.
			res.Notes = append(res.Notes, fmt.Sprintf("frame %d %s returns into %s: a callback from emulated API code, not on the shadow stack",
				callee.Index, callee.Loc, caller.Loc))
			j++
			i--
			continue
		}
		var what string
		switch {
		case caller.PC != sf.ReturnAddress:
			what = fmt.Sprintf("return address: unwinder %#x (%s), shadow stack %#x (%s)",
				caller.PC, caller.Loc, sf.ReturnAddress, m.describe(sf.ReturnAddress-1))
		case callee.ReturnAddressAt != sf.SP:
			what = fmt.Sprintf("return address slot: unwinder %#x, shadow stack %#x", callee.ReturnAddressAt, sf.SP)
		case caller.SP != sf.SP+8:
			what = fmt.Sprintf("caller's rsp: unwinder %#x, shadow stack %#x", caller.SP, sf.SP+8)
		}
		if what != "" {
			res.Mismatch = fmt.Sprintf("frame %d (%s, called from %s): %s", callee.Index, callee.Loc, m.describe(sf.CallSite), what)
			return res, nil
		}
		res.Checked++
		j++
	}
	for _, f := range bt.Frames[min(j, len(bt.Frames)):] {
		res.Notes = append(res.Notes, fmt.Sprintf("frame %d %s has no call on the shadow stack (the thread's first frame, or a call made before recording began)", f.Index, f.Loc))
	}
	return res, nil
}

// synthetic reports whether addr lies in a module the backend generated.
func (m *Monitor) synthetic(addr uint64) bool {
	md, ok := m.syms.module(addr)
	return ok && md.Synthetic
}

func (m *Monitor) describe(addr uint64) string {
	if s := m.syms.locate(addr, addr).String(); s != "" {
		return s
	}
	return fmt.Sprintf("%#x", addr)
}

func (m *Monitor) cmdVerifyUnwind(args []string, out io.Writer) error {
	if err := noArgs("verify-unwind", args); err != nil {
		return err
	}
	res, err := m.VerifyUnwind()
	if err != nil {
		return fmt.Errorf("verify-unwind: %w", err)
	}
	if res.Mismatch != "" {
		fmt.Fprintf(out, "MISMATCH after %d agreeing calls: %s\n", res.Checked, res.Mismatch)
	} else {
		fmt.Fprintf(out, "OK: the unwinder agrees with the shadow call stack on all %d calls (return address, its slot, caller's rsp)\n", res.Checked)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(out, "  note: %s\n", n)
	}
	return nil
}

// SymbolName names a code address as backtraces do ("KERNELBASE!CreateFileW+0x2a",
// with file and line when known); "" when no module holds it.
func (m *Monitor) SymbolName(addr uint64) string {
	return m.syms.locate(addr, addr).String()
}
