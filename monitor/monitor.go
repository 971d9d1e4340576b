package monitor

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/cfi"
)

// Monitor runs monitor commands against one target. It caches symbol
// tables and parsed unwind data between commands. Not safe for
// concurrent use.
type Monitor struct {
	t     Target
	syms  *symbolizer
	u     *unwind.Unwinder
	cfi   *cfi.Unwinder // DWARF CFI of module files (and of ELF modules' memory)
	mods  []unwind.Module
	flush bool // drop cached unwind data before the next use
	// prefer: .pdata or CFI for PE code that has both (settings.go).
	prefer unwind.CFIPreference
	stack  unwind.Stack // the last walk's frames, reused
	frames []Frame      // the last `bt`'s frames, reused
	text   []byte       // the last `bt`'s text, reused
}

// New returns a Monitor over t.
func New(t Target) *Monitor {
	m := &Monitor{t: t, syms: newSymbolizer(t)}
	m.syms.funcStart = func(addr uint64) (uint64, bool) {
		if m.syms.inBatch && m.u != nil {
			return m.u.FunctionStart(addr) // the modules were just read
		}
		return m.unwinder().FunctionStart(addr)
	}
	return m
}

// ErrUsage marks an error in what the user typed.
var ErrUsage = errors.New("usage")

// UsageError is a command line the monitor could not accept.
type UsageError struct {
	Cmd string // the command, or "" when the command itself is unknown
	Msg string
}

func (e *UsageError) Error() string {
	if e.Cmd == "" {
		return e.Msg
	}
	return e.Cmd + ": " + e.Msg
}

func (e *UsageError) Is(target error) bool { return target == ErrUsage }

type command struct {
	name    string
	args    string // argument synopsis
	summary string
	run     func(m *Monitor, args []string, out io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"help", "[COMMAND]", "list the monitor commands, or describe one", (*Monitor).cmdHelp},
		{"bt", "[-full] [-json] [-n N] [-heuristics] [-strict]", "backtrace of the current thread from .pdata (WinDbg-like table)", (*Monitor).cmdBT},
		{"frame", "N", "frame N's registers as that frame sees them, with the stack address each was saved at", (*Monitor).cmdFrame},
		{"args", "[N]", "recovered arguments of frame N (default 0), with their confidence", (*Monitor).cmdArgs},
		{"modules", "[-json]", "loaded modules: base, end, size, name, path", (*Monitor).cmdModules},
		{"teb", "", "the current thread's TEB (NT_TIB fields, PEB pointer, last error)", (*Monitor).cmdTEB},
		{"peb", "", "the PEB: image base, loader data, process parameters, OS version", (*Monitor).cmdPEB},
		{"memmap", "", "mapped memory regions with permissions and names", (*Monitor).cmdMemmap},
		{"unwind-info", "ADDR|SYMBOL", "decoded UNWIND_INFO of the function there: codes, frame register, epilogs, chain, handler", (*Monitor).cmdUnwindInfo},
		{"catch", "[api|syscall NAME | delete [N]]", "stop when the program calls the function NAME (FUNC or DLL!FUNC) or a system call NAME returns (Wine), arguments decoded; alone: list", (*Monitor).cmdCatch},
		{"minidump", "[-full] FILE", "write a Windows minidump of the stopped process (threads, modules, stacks, exception) to FILE; -full adds all readable memory", (*Monitor).cmdMinidump},
		{"verify-unwind", "", "compare the unwinder's frames with the emulator's shadow call stack", (*Monitor).cmdVerifyUnwind},
		{"set", "[unwinder auto|pdata|cfi]", "change a setting; without arguments, show them all", (*Monitor).cmdSet},
		{"show", "[unwinder]", "show the settings", (*Monitor).cmdShow},
	}
}

// Run executes one command line, writing its output to out. Errors are
// meant to be shown to the user as they are. Run never panics: a panic in
// a command becomes an error.
func (m *Monitor) Run(line string, out io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in monitor command %q: %v\n%s", line, r, debug.Stack())
		}
	}()
	name, args, err := Parse(line)
	if err != nil {
		return err
	}
	m.flush = true
	if name == "" {
		return m.cmdHelp(nil, out)
	}
	for i := range commands {
		if commands[i].name == name {
			return commands[i].run(m, args, out)
		}
	}
	return &UsageError{Msg: fmt.Sprintf("unknown monitor command %q; \"monitor help\" lists them", name)}
}

// Parse splits a command line into the command and its arguments. Words
// are separated by blanks; double or single quotes group a word.
func Parse(line string) (name string, args []string, err error) {
	if len(line) > 4096 {
		return "", nil, &UsageError{Msg: "command line too long"}
	}
	var (
		words []string
		cur   strings.Builder
		inTok bool
		quote rune
	)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inTok = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inTok {
				words = append(words, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if quote != 0 {
		return "", nil, &UsageError{Msg: "unterminated quote"}
	}
	if inTok {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return "", nil, nil
	}
	return words[0], words[1:], nil
}

// flagSpec describes one command's options: boolean flags and flags with
// an integer value.
type flagSpec struct {
	bools map[string]*bool
	ints  map[string]*int
}

// parseFlags fills spec from args and returns the positional arguments.
// "-n 5", "-n=5" and "--full" are accepted.
func parseFlags(cmd string, args []string, spec flagSpec) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, val, hasVal := strings.Cut(name, "=")
		if p, ok := spec.bools[name]; ok && !hasVal {
			*p = true
			continue
		}
		if p, ok := spec.ints[name]; ok {
			if !hasVal {
				if i+1 >= len(args) {
					return nil, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("-%s needs a number", name)}
				}
				i++
				val = args[i]
			}
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 {
				return nil, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("-%s: %q is not a non-negative number", name, val)}
			}
			*p = v
			continue
		}
		return nil, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("unknown option %q; \"monitor help %s\" shows the options", a, cmd)}
	}
	return pos, nil
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return &UsageError{Cmd: cmd, Msg: fmt.Sprintf("takes no arguments (got %q)", strings.Join(args, " "))}
	}
	return nil
}

func (m *Monitor) cmdHelp(args []string, out io.Writer) error {
	if len(args) > 0 {
		for _, c := range commands {
			if c.name == args[0] {
				fmt.Fprintf(out, "monitor %s %s\n  %s\n", c.name, c.args, c.summary)
				if h, ok := longHelp[c.name]; ok {
					fmt.Fprint(out, h)
				}
				return nil
			}
		}
		return &UsageError{Cmd: "help", Msg: fmt.Sprintf("no command %q", args[0])}
	}
	fmt.Fprintln(out, "Monitor commands (\"monitor help COMMAND\" for details):")
	for _, c := range commands {
		syn := c.name
		if c.args != "" {
			syn += " " + c.args
		}
		fmt.Fprintf(out, "  %-46s %s\n", syn, c.summary)
	}
	return nil
}

var longHelp = map[string]string{
	"bt": `  -full        add each frame's nonvolatile registers and the stack address each was saved at
  -json        one JSON object {"frames":[...]} (schema in README.md, "Monitor commands")
  -n N         at most N frames
  By default, code without a .pdata entry or that .pdata cannot unwind is unwound
  with the module's DWARF CFI, then built-in CFI for runtime helpers that have none
  (libgcc's ___chkstk_ms, recognized by its bytes), then a bounded stack scan.
  "monitor set unwinder cfi" uses CFI first wherever a module has it; "pdata" uses
  CFI only where there is no .pdata entry.
  -heuristics  also try the RBP chain (before the scan)
  -strict      .pdata and the leaf rule only, exactly as RtlVirtualUnwind
  Trust (how the frame was found): context (frame 0), pdata, leaf, machframe, cfi,
  cfi (builtin), frame-pointer, scan.
`,
	"set": `  unwinder auto   .pdata where a function has an entry; DWARF CFI where it has
                  none or .pdata fails (the default)
  unwinder pdata  DWARF CFI only where there is no .pdata entry
  unwinder cfi    DWARF CFI first; .pdata where the CFI does not cover the PC
  The trust column of "monitor bt" says which one found each frame.
`,
	"frame": `  N is a frame number of "monitor bt". Shows the function entry, the caller's
  stack pointer (CFA), the establisher frame, where the return address was read,
  and every register as frame N sees it: volatile ones are unknown above frame 0,
  nonvolatile ones are live or were saved by a callee at the address shown
  ("holds it": the slot still contains the value).
`,
	"verify-unwind": `  Needs the emulator's shadow call stack (rspstub serve --shadow-stack), which
  records every call executed since the program started. Each live call must
  be a frame of the .pdata walk with the same return address, return address
  slot and caller rsp. Frames with no call (the thread's first frame, calls
  made by emulated API code) are listed as notes.
`,
	"unwind-info": `  ADDR is 0x-prefixed hex or decimal; SYMBOL is name, module!name, module!name+0xoff.
`,
	"args": `  Windows x64 passes the first four integer arguments in rcx, rdx, r8, r9 and
  reserves a 32-byte home area for them above the return address. Confidence:
  exact (frame 0 stopped at the function entry), register (frame 0, may be
  overwritten since entry), home (the home slot; valid when the function spilled
  its arguments, as unoptimized code does), stack (arguments 5 and up).
`,
}

// recoverTo turns a panic into an error in *err; the monitor's Go API
// (used by rspstub run) must never crash its caller.
func recoverTo(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("internal error in %s: %v", what, r)
	}
}

// parseNumber parses 0x-prefixed hex or decimal.
func parseNumber(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// Resolve turns an address expression into an address: 0x-prefixed hex,
// decimal, a register ($pc, $rip, $sp, $rsp), or a symbol (name,
// module!name, with an optional +offset).
func (m *Monitor) Resolve(expr string) (addr uint64, err error) {
	defer recoverTo(&err, "resolve")
	if expr == "" {
		return 0, errors.New("empty address")
	}
	switch strings.ToLower(expr) {
	case "$pc", "$rip", "rip":
		regs, err := m.t.Registers()
		return regs.RIP, err
	case "$sp", "$rsp", "rsp":
		regs, err := m.t.Registers()
		return regs.GPR[4], err
	}
	if c := expr[0]; c >= '0' && c <= '9' {
		v, err := parseNumber(expr)
		if err != nil {
			return 0, fmt.Errorf("bad address %q: not a number (use 0x for hex)", expr)
		}
		return v, nil
	}
	return m.syms.resolve(expr)
}

// unwinder returns the Unwinder, with the module list brought up to date.
func (m *Monitor) unwinder() *unwind.Unwinder {
	mods := m.t.Modules()
	um := make([]unwind.Module, len(mods))
	for i, md := range mods {
		um[i] = unwind.Module{Name: md.Name, Base: md.Base, Size: md.Size, Format: m.syms.format(md), Synthetic: md.Synthetic}
	}
	if m.u == nil {
		m.u = unwind.New(m.t, um)
		if mf, ok := m.t.(ModuleFiler); ok {
			m.cfi = cfi.New(func(mod *unwind.Module) ([]byte, error) { return m.moduleFile(mf, mod) })
		} else {
			// ELF modules' CFI is also in guest memory (PT_GNU_EH_FRAME).
			m.cfi = cfi.New(func(mod *unwind.Module) ([]byte, error) { return nil, errors.New("no module files") })
		}
	} else if !sameModules(um, m.mods) {
		m.u.SetModules(um)
		if m.cfi != nil {
			m.cfi.Flush()
		}
	}
	if m.flush {
		// Once per command: the guest (or the debugger) may have written
		// to module memory since the last stop.
		m.u.Flush()
		m.flush = false
	}
	m.mods = um
	return m.u
}

// moduleFile gives the CFI reader the file of a module (none for
// synthesized ones: they have no CFI).
func (m *Monitor) moduleFile(mf ModuleFiler, mod *unwind.Module) ([]byte, error) {
	for _, md := range m.t.Modules() {
		if md.Name == mod.Name && md.Base == mod.Base {
			if md.Synthetic {
				return nil, errors.New("synthesized module")
			}
			return mf.ModuleFile(md)
		}
	}
	return nil, fmt.Errorf("%s: not loaded", mod.Name)
}

func sameModules(a, b []unwind.Module) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
