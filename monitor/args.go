package monitor

import (
	"fmt"
	"io"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// Arg is one recovered argument.
type Arg struct {
	Index      int    // 1-based
	Name       string // from DWARF, "" when unknown
	Size       int64  // bytes of its type (DWARF), 0 when unknown; Value is truncated to it
	Reg        string // "rcx", "rdx", "r8", "r9", or "" for stack arguments
	Value      uint64
	Known      bool
	Where      string // "register", or the stack address
	Confidence string // exact, register, home, stack, unknown
}

var (
	argRegs     = []arch.Reg{arch.RCX, arch.RDX, arch.R8, arch.R9}
	sysvArgRegs = []arch.Reg{arch.RDI, arch.RSI, arch.RDX, arch.RCX, arch.R8, arch.R9}
)

// Args recovers the first count integer arguments of frame n (when 0:
// as many as the debug information declares, else 4). The Windows x64 convention passes them in rcx, rdx, r8, r9
// and reserves their home slots at the caller's stack pointer (the
// frame's CFA); the fifth and later are on the stack after the home area.
// Frames of ELF modules follow the System V convention: rdi, rsi, rdx,
// rcx, r8, r9, no home area (a register argument is known only in frame
// 0), the seventh and later at the CFA.
func (m *Monitor) Args(n, count int) (*Frame, []Arg, error) {
	bt, n, err := m.frameAt("args", []string{fmt.Sprint(n)})
	if err != nil {
		return nil, nil, err
	}
	f := &bt.Frames[n]
	var names []param
	start := uint64(0)
	switch {
	case f.HasEntry && f.Module != nil:
		start = f.Module.Base + uint64(f.Function.BeginAddress)
	case f.Loc.Symbol != "":
		start = f.PC - f.Loc.SymOffset
	}
	if start != 0 {
		if p, ok := m.syms.params(start); ok {
			names = p
			if len(p) > 0 && p[len(p)-1].name == "..." {
				names = p[:len(p)-1]
			}
			if count <= 0 {
				count = len(names)
			}
		}
	}
	if count <= 0 && names == nil {
		count = 4
	}
	count = min(count, 16)
	atEntry := false
	if n == 0 {
		if f.HasEntry && f.Module != nil {
			atEntry = f.PC == f.Module.Base+uint64(f.Function.BeginAddress)
		} else if f.Loc.Symbol != "" {
			atEntry = f.Loc.SymOffset == 0
		}
	}
	haveCFA := f.CFA != 0
	sysv := f.Module != nil && f.Module.Format == unwind.FormatELF
	regs := argRegs
	if sysv {
		regs = sysvArgRegs
	}
	var args []Arg
	for i := range count {
		a := Arg{Index: i + 1, Confidence: "unknown"}
		if i < len(names) {
			a.Name, a.Size = names[i].name, names[i].size
		}
		if i < len(regs) {
			a.Reg = regs[i].String()
		}
		switch {
		case i < len(regs) && n == 0 && atEntry:
			a.Value, a.Known, a.Where, a.Confidence = f.Regs.GPR[regs[i]], true, "register", "exact"
		case sysv && i < len(regs) && n == 0:
			a.Value, a.Known, a.Where, a.Confidence = f.Regs.GPR[regs[i]], true, "register", "register"
		case sysv && i < len(regs):
			a.Where = "(a register argument: not saved above frame 0)"
		case !haveCFA:
			a.Where = "(the frame's caller is unknown)"
		case i < 4:
			addr := f.CFA + 8*uint64(i)
			if v, err := read64(m.t, addr); err == nil {
				a.Value, a.Known, a.Where, a.Confidence = v, true, fmt.Sprintf("home slot %#x", addr), "home"
			}
			if n == 0 {
				// Show the live register too: it is right until overwritten.
				args = append(args, a)
				a = Arg{Index: i + 1, Name: a.Name, Size: a.Size, Reg: argRegs[i].String(), Value: f.Regs.GPR[argRegs[i]], Known: true,
					Where: "register", Confidence: "register"}
			}
		default:
			addr := f.CFA + 8*uint64(i)
			if sysv {
				addr = f.CFA + 8*uint64(i-len(regs))
			}
			if v, err := read64(m.t, addr); err == nil {
				a.Value, a.Known, a.Where, a.Confidence = v, true, fmt.Sprintf("stack %#x", addr), "stack"
			}
		}
		args = append(args, a)
	}
	// An argument narrower than its slot: the rest of the register or
	// slot is whatever was there before.
	for i := range args {
		if sz := args[i].Size; sz > 0 && sz < 8 {
			args[i].Value &= 1<<(8*uint(sz)) - 1
		}
	}
	return f, args, nil
}

func (m *Monitor) cmdArgs(args []string, out io.Writer) error {
	count := 0
	pos, err := parseFlags("args", args, flagSpec{ints: map[string]*int{"count": &count}})
	if err != nil {
		return err
	}
	n := 0
	if len(pos) > 1 {
		return &UsageError{Cmd: "args", Msg: "takes one frame number"}
	}
	if len(pos) == 1 {
		if _, err := fmt.Sscanf(pos[0], "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != pos[0] {
			return &UsageError{Cmd: "args", Msg: fmt.Sprintf("%q is not a frame number", pos[0])}
		}
	}
	f, list, err := m.Args(n, count)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "frame %d: %s\n", f.Index, f.Loc)
	named := false
	for _, a := range list {
		named = named || a.Name != ""
	}
	if !named && count == 0 {
		fmt.Fprintln(out, "  (the number of arguments is unknown: the first four slots are shown; -count N shows more)")
	}
	if len(list) == 0 {
		fmt.Fprintln(out, "  no arguments (from the debug information)")
	}
	for _, a := range list {
		reg := a.Reg
		if reg == "" {
			reg = "-"
		}
		label := fmt.Sprintf("arg%d", a.Index)
		if a.Name != "" {
			label += " " + a.Name
		}
		if !a.Known {
			fmt.Fprintf(out, "  %-12s %-4s <unknown> %s\n", label, reg, a.Where)
			continue
		}
		fmt.Fprintf(out, "  %-12s %-4s %#-18x %-9s %s\n", label, reg, a.Value, a.Confidence, a.Where)
	}
	return nil
}
