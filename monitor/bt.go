package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// Frame is one frame of a backtrace with its symbol information.
type Frame struct {
	unwind.Frame
	Index int
	Loc   Location
}

// Backtrace is a walk of the current thread's stack.
type Backtrace struct {
	Frames []Frame
	Reason unwind.StopReason
	Err    error
}

// BacktraceOptions configure a walk.
type BacktraceOptions struct {
	MaxFrames int // 0: the unwinder's default
	// Heuristics adds the RBP-chain fallback (before the stack scan).
	Heuristics bool
	// Strict uses .pdata and the leaf rule only, as RtlVirtualUnwind
	// does. By default, code that has no function entry, or that .pdata
	// could not unwind, is unwound with the module's DWARF CFI, then a
	// bounded stack scan; those frames say so in their trust.
	Strict bool
	// NoShadow ignores the backend's shadow call stack: frames without
	// unwind data are then found by the unwinder's own checks alone
	// (verify-unwind compares those with the shadow stack).
	NoShadow bool
}

// Context returns the current thread's registers as frame 0's context.
func (m *Monitor) Context() (unwind.Context, error) {
	regs, err := m.t.Registers()
	if err != nil {
		return unwind.Context{}, fmt.Errorf("read registers: %w", err)
	}
	var ctx unwind.Context
	for r := arch.RAX; r <= arch.R15; r++ {
		ctx.Set(r, regs.GPR[r])
	}
	ctx.Set(arch.RIP, regs.RIP)
	if regs.HasXMM {
		for i := range 16 {
			ctx.SetXMM(i, regs.XMM[i])
		}
	}
	return ctx, nil
}

// Backtrace walks the current thread's stack.
func (m *Monitor) Backtrace(opt BacktraceOptions) (bt *Backtrace, err error) {
	return m.backtrace(opt, nil)
}

// backtrace is Backtrace with the frames in reuse's array when it is
// large enough (a command that prints the backtrace and drops it).
func (m *Monitor) backtrace(opt BacktraceOptions, reuse []Frame) (bt *Backtrace, err error) {
	defer recoverTo(&err, "backtrace")
	ctx, err := m.Context()
	if err != nil {
		return nil, err
	}
	u := m.unwinder()
	wo := unwind.WalkOptions{MaxFrames: opt.MaxFrames}
	if opt.Strict && m.cfi != nil {
		// ELF modules have only CFI: strict means .pdata for PE code.
		wo.CFI = elfOnly{m.cfi}
	}
	if !opt.Strict {
		// Where .pdata has no entry or fails: the module's DWARF CFI,
		// then a bounded scan for a return address (which also repairs a
		// leaf-rule result that is not code, as in ___chkstk_ms). Such
		// frames say so in their trust.
		if m.cfi != nil {
			wo.CFI = m.cfi
		}
		wo.Prefer = m.prefer
		wo.Scan = true
		wo.FramePointer = opt.Heuristics
		// Frames without unwind data (shellcode, JIT code, code without
		// .pdata): validated return addresses only, from the shadow call
		// stack when the backend keeps one.
		wo.Validate = true
		wo.Code = m.codeRegions()
		if !opt.NoShadow {
			wo.Shadow = m.liveShadow(ctx.RSP())
		}
	}
	u.WalkInto(&m.stack, ctx, wo)
	st := &m.stack
	frames := reuse[:0]
	if cap(frames) < len(st.Frames) {
		frames = make([]Frame, len(st.Frames))
	}
	bt = &Backtrace{Reason: st.Reason, Err: st.Err, Frames: frames[:len(st.Frames)]}
	// The modules cannot change during the lookups, and deep stacks
	// repeat their return addresses (recursion, loops of calls).
	m.syms.batch(true)
	defer m.syms.batch(false)
	for i := range st.Frames {
		f := &st.Frames[i]
		lookup := f.PC
		if f.Trust != unwind.TrustContext && f.Trust != unwind.TrustMachineFrame && lookup > 0 {
			lookup-- // a return address: the call is the byte before
		}
		bt.Frames[i] = Frame{Frame: *f, Index: i, Loc: m.syms.locate(f.PC, lookup)}
	}
	return bt, nil
}

// liveShadow returns the backend's shadow call stack for the unwinder,
// without the calls whose slot lies below rsp (returned: the emulator
// drops them at its next block start), or nil when there is none.
func (m *Monitor) liveShadow(rsp uint64) []unwind.ShadowCall {
	ss, ok := m.t.(ShadowStacker)
	if !ok {
		return nil
	}
	frames, on := ss.ShadowStack()
	if !on {
		return nil
	}
	calls := make([]unwind.ShadowCall, 0, len(frames))
	for _, f := range frames {
		if f.SP >= rsp {
			calls = append(calls, unwind.ShadowCall{CallSite: f.CallSite, Target: f.Target, ReturnAddress: f.ReturnAddress, Slot: f.SP})
		}
	}
	return calls
}

// codeRegions returns the backend's executable memory for the unwinder,
// or nil when the backend cannot list its memory.
func (m *Monitor) codeRegions() unwind.CodeRegions {
	rl, ok := m.t.(RegionLister)
	if !ok {
		return nil
	}
	var cr codeRegions
	for _, r := range rl.Regions() {
		if r.Perm&arch.PermExec == 0 || r.Size == 0 {
			continue
		}
		// Adjacent executable regions are one mapping (a protection
		// change splits a VirtualAlloc'd block into regions).
		if n := len(cr); n > 0 && cr[n-1].end == r.Start {
			cr[n-1].end = r.Start + r.Size
			continue
		}
		cr = append(cr, span{r.Start, r.Start + r.Size})
	}
	return cr
}

type span struct{ start, end uint64 }

// codeRegions is the executable part of a memory map, sorted by address.
type codeRegions []span

func (c codeRegions) CodeRegion(addr uint64) (uint64, uint64, bool) {
	i := sort.Search(len(c), func(i int) bool { return c[i].end > addr })
	if i < len(c) && addr >= c[i].start {
		return c[i].start, c[i].end, true
	}
	return 0, 0, false
}

// elfOnly passes only frames of ELF modules to a CFI unwinder.
type elfOnly struct{ c unwind.CFIUnwinder }

func (e elfOnly) UnwindFrame(mem unwind.Memory, mod *unwind.Module, ctx *unwind.Context, exact bool) (bool, error) {
	if mod == nil || mod.Format != unwind.FormatELF {
		return false, nil
	}
	return e.c.UnwindFrame(mem, mod, ctx, exact)
}

// ended explains why the walk stopped.
func (bt *Backtrace) ended() string {
	switch {
	case bt.Reason == unwind.StopZeroReturn:
		return "end of stack (zero return address)"
	case bt.Err != nil:
		return fmt.Sprintf("walk stopped: %v: %v", bt.Reason, bt.Err)
	}
	return "walk stopped: " + bt.Reason.String()
}

func (m *Monitor) cmdBT(args []string, out io.Writer) error {
	var full, js, heur, strict bool
	n := 0
	pos, err := parseFlags("bt", args, flagSpec{
		bools: map[string]*bool{"full": &full, "json": &js, "heuristics": &heur, "strict": &strict},
		ints:  map[string]*int{"n": &n},
	})
	if err != nil {
		return err
	}
	if err := noArgs("bt", pos); err != nil {
		return err
	}
	bt, err := m.backtrace(BacktraceOptions{MaxFrames: n, Heuristics: heur, Strict: strict}, m.frames)
	if err != nil {
		return err
	}
	m.frames = bt.Frames
	m.text, err = bt.writeBacktrace(out, m.text, js, full)
	return err
}

// hex16 is a 64-bit value as WinDbg shows it: 00000000`0014fe40.
func hex16(v uint64) string {
	return fmt.Sprintf("%08x`%08x", v>>32, uint32(v))
}

// WriteTable writes a WinDbg-like backtrace table; full adds each
// frame's nonvolatile registers with their save locations. The format is
// that of formatTable (the reference, in bt_test.go); AppendTable builds
// it.
func WriteTable(out io.Writer, bt *Backtrace, full bool) {
	out.Write(bt.AppendTable(nil, full))
}

// nonvolatileOrder is the order registers are listed in.
var nonvolatileOrder = []arch.Reg{arch.RBX, arch.RBP, arch.RSI, arch.RDI, arch.R12, arch.R13, arch.R14, arch.R15}

// BacktraceJSON is the stable JSON form of a backtrace (README.md,
// "Monitor commands").
type BacktraceJSON struct {
	Frames []FrameJSON `json:"frames"`
	// End says why the walk stopped after the last frame ("zero return
	// address": the thread's outermost frame; see unwind.StopReason).
	End string `json:"end,omitempty"`
}

// FrameJSON is one frame in JSON. 64-bit values are "0x..." strings;
// unknown fields are absent.
type FrameJSON struct {
	Index  int    `json:"index"`
	PC     string `json:"pc"`
	SP     string `json:"sp"`
	Module string `json:"module,omitempty"`
	RVA    string `json:"rva,omitempty"`
	Symbol string `json:"symbol,omitempty"`
	// Mangled is the symbol table's name when Symbol is its demangled form.
	Mangled string            `json:"mangled,omitempty"`
	Offset  string            `json:"offset,omitempty"`
	File    string            `json:"file,omitempty"`
	Line    int               `json:"line,omitempty"`
	Trust   string            `json:"trust"`
	Regs    map[string]string `json:"regs"`
	Saved   map[string]string `json:"saved,omitempty"`
}

func hexs(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func xmmHex(x unwind.Uint128) string {
	if x.Hi == 0 {
		return hexs(x.Lo)
	}
	return fmt.Sprintf("0x%x%016x", x.Hi, x.Lo)
}

// JSON converts the backtrace to its JSON form.
func (bt *Backtrace) JSON() []FrameJSON {
	out := make([]FrameJSON, 0, len(bt.Frames))
	for i := range bt.Frames {
		f := &bt.Frames[i]
		j := FrameJSON{Index: f.Index, PC: hexs(f.PC), SP: hexs(f.SP), Trust: f.Trust.String(),
			Regs: map[string]string{}}
		if f.Loc.Module != "" {
			j.Module, j.RVA = f.Loc.Module, hexs(f.Loc.RVA)
			if f.Loc.Symbol != "" {
				j.Symbol, j.Offset = f.Loc.Name(), hexs(f.Loc.SymOffset)
				if j.Symbol != f.Loc.Symbol {
					j.Mangled = f.Loc.Symbol
				}
			}
			if f.Loc.File != "" {
				j.File, j.Line = f.Loc.File, f.Loc.Line
			}
		}
		c := &f.Regs
		saved := map[string]string{}
		for r := arch.RAX; r <= arch.RIP; r++ {
			if v, ok := c.Get(r); ok {
				j.Regs[r.String()] = hexs(v)
			}
			if at, ok := c.SavedAt(r); ok {
				saved[r.String()] = hexs(at)
			}
		}
		for k := 6; k < 16; k++ {
			if v, ok := c.GetXMM(k); ok {
				name := "xmm" + strconv.Itoa(k)
				j.Regs[name] = xmmHex(v)
				if c.XMMAddr[k] != 0 {
					saved[name] = hexs(c.XMMAddr[k])
				}
			}
		}
		if len(saved) > 0 {
			j.Saved = saved
		}
		out = append(out, j)
	}
	return out
}

func writeJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	b = append(b, '\n')
	_, err = out.Write(b)
	return err
}

// frameAt walks to frame n.
func (m *Monitor) frameAt(cmd string, args []string) (*Backtrace, int, error) {
	n := 0
	if len(args) > 1 {
		return nil, 0, &UsageError{Cmd: cmd, Msg: "takes one frame number"}
	}
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 0 || v >= unwind.HardMaxFrames {
			return nil, 0, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("%q is not a frame number", args[0])}
		}
		n = v
	}
	bt, err := m.Backtrace(BacktraceOptions{MaxFrames: n + 2})
	if err != nil {
		return nil, 0, err
	}
	if n >= len(bt.Frames) {
		return nil, 0, fmt.Errorf("%s: no frame %d: the stack has %d frames (%s)", cmd, n, len(bt.Frames), bt.ended())
	}
	return bt, n, nil
}

func (m *Monitor) cmdFrame(args []string, out io.Writer) error {
	if len(args) == 0 {
		return &UsageError{Cmd: "frame", Msg: "which frame? (monitor frame N; monitor bt lists them)"}
	}
	bt, n, err := m.frameAt("frame", args)
	if err != nil {
		return err
	}
	f := &bt.Frames[n]
	site := f.Loc.String()
	if site == "" {
		site = "(outside every module)"
	}
	fmt.Fprintf(out, "frame %d: %s\n", n, site)
	fmt.Fprintf(out, "  pc   %016x  sp %016x  trust %s\n", f.PC, f.SP, f.Trust)
	if f.HasEntry {
		fmt.Fprintf(out, "  function  [%#x, %#x) rva, UNWIND_INFO at rva %#x\n",
			f.Function.BeginAddress, f.Function.EndAddress, f.Function.UnwindData)
	} else if f.Module != nil && f.Module.Format == unwind.FormatELF {
		fmt.Fprintln(out, "  function  ELF module: unwound with its DWARF CFI")
	} else if n+1 < len(bt.Frames) && f.Module != nil {
		fmt.Fprintln(out, "  function  no .pdata entry (leaf)")
	}
	if f.CFA != 0 {
		if f.Module != nil && f.Module.Format == unwind.FormatELF {
			fmt.Fprintf(out, "  caller's sp (CFA) %016x\n", f.CFA)
		} else {
			fmt.Fprintf(out, "  caller's sp (CFA) %016x, establisher frame %016x\n", f.CFA, f.EstablisherFrame)
		}
		if f.ReturnAddressAt != 0 {
			if ra, err := read64(m.t, f.ReturnAddressAt); err == nil {
				fmt.Fprintf(out, "  return address %016x read at %016x\n", ra, f.ReturnAddressAt)
			}
		}
		if f.InProlog {
			fmt.Fprintln(out, "  the pc is inside the prolog: only the executed prolog codes were undone")
		}
		if f.InEpilog {
			fmt.Fprintln(out, "  the pc is inside an epilog: the rest of it was emulated")
		}
	}
	fmt.Fprintln(out, "  registers as this frame sees them:")
	c := &f.Regs
	for r := arch.RAX; r <= arch.R15; r++ {
		v, ok := c.Get(r)
		switch {
		case !ok:
			fmt.Fprintf(out, "    %-4s <unknown> (volatile: not preserved across the call)\n", r)
		case r == arch.RSP:
			fmt.Fprintf(out, "    %-4s %016x\n", r, v)
		default:
			if at, saved := c.SavedAt(r); saved {
				check := ""
				if w, err := read64(m.t, at); err == nil && w == v {
					check = " (holds it)"
				}
				fmt.Fprintf(out, "    %-4s %016x  saved at %016x%s by a callee\n", r, v, at, check)
			} else if n == 0 {
				fmt.Fprintf(out, "    %-4s %016x\n", r, v)
			} else {
				fmt.Fprintf(out, "    %-4s %016x  live (no callee saved it)\n", r, v)
			}
		}
	}
	fmt.Fprintf(out, "    %-4s %016x\n", "rip", f.PC)
	for i := range 16 {
		if x, ok := c.GetXMM(i); ok && (n == 0 && i >= 6 || c.XMMAddr[i] != 0) {
			where := ""
			if c.XMMAddr[i] != 0 {
				where = fmt.Sprintf("  saved at %016x", c.XMMAddr[i])
			}
			fmt.Fprintf(out, "    xmm%-2d %016x%016x%s\n", i, x.Hi, x.Lo, where)
		}
	}
	return nil
}
