package ucwin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest"
	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/rsp"
)

// ThreadID is the id of the guest's only thread.
const ThreadID = 1

// Config says what to run and how.
type Config struct {
	Program  string
	Args     []string
	Env      []string
	DLLPaths []string
	// StopAtEntry makes the first stop the image entry point instead of
	// the thread's first instruction.
	StopAtEntry bool
	// ShadowStack turns on the emulator's shadow call stack.
	ShadowStack bool
	// ExactFaults makes every data fault stop at its proven instruction
	// (unicorn.Machine.SetExactFaults), at a price on code that needs
	// sync points; without it an unprovable position is flagged.
	ExactFaults bool
	// DecodeFaults turns off the page tables that make every data fault
	// exact at no measured cost (unicorn.Machine.SetFaultPaging): the
	// fault decoder alone places faults, flagging a position it cannot
	// prove (measurements, and a fallback).
	DecodeFaults bool
	// UnimplementedReturnsZero makes calls to unimplemented APIs return 0
	// instead of stopping the guest.
	UnimplementedReturnsZero bool
	// Stdout and Stderr receive the guest's output (besides the debugger
	// console when a client asks for it).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger

	// Userland chooses the guest model: UserlandSynth (the default here),
	// UserlandWine, or UserlandAuto (wine when Wine 8's PE DLLs are
	// installed).
	Userland string
	// The rest applies to the wine userland (see guest/wine.Config).
	Stdin                     io.Reader
	StdioKinds                [3]string
	ConsoleSize               [2]int
	Root, Cwd                 string
	WineDebug                 string
	TraceSyscalls             bool
	UnimplementedReturnsError bool
	RealClock                 bool
	Registry                  []string // registry files or Wine prefix folders to load (wine.Process.LoadRegFile)
	// DeliverFaults hands guest faults to the guest's exception handlers
	// at once (no debugger to show them to first).
	DeliverFaults bool
	// DumpFaults keeps a minidump of the process as it was at the last
	// fault delivered to the guest (DeliverFaults), so that one the
	// program's handlers did not take, which ends it, can still be
	// written (rspstub run --minidump; see FaultDump). It also stops at
	// an exception the kernel reports unhandled (second chance).
	DumpFaults bool
	// TraceAPI receives the API trace (JSON lines, see APIRecord): the
	// calls the program's modules make through their import tables, with
	// decoded arguments and return values, and in the Wine userland every
	// system call. nil: no trace.
	TraceAPI io.Writer
	// Coverage receives a drcov file of the basic blocks executed when
	// the target is closed. nil: no coverage.
	Coverage io.Writer
	// Record turns on time travel (timetravel.go): the position counter,
	// a virtual clock driven by it, stdin kept for replays, snapshots and
	// reverse execution.
	Record bool

	// clock is the synth userland's virtual clock (set for Record).
	clock func() time.Duration
}

// Userland names.
const (
	UserlandSynth = "synth"
	UserlandWine  = "wine"
	UserlandAuto  = "auto"
)

// ResolveUserland turns "auto" (or "") into the userland that will run.
func ResolveUserland(name string) (string, error) {
	switch name {
	case UserlandSynth, UserlandWine:
		return name, nil
	case "", UserlandAuto:
		if wine.Installed() {
			return UserlandWine, nil
		}
		return UserlandSynth, nil
	}
	return "", fmt.Errorf("unknown userland %q (wine, synth or auto)", name)
}

// Target is a Windows program running in Unicorn, served over RSP.
type Target struct {
	cfg  Config // what New was given (Restart loads it again)
	m    *unicorn.Machine
	mw   *machine
	proc *guest.Process
	desc *rsp.Description

	ctx  unicorn.Context // scratch for register transfers
	last rsp.Stop

	interrupted atomic.Bool
	exited      bool
	libsSent    int // number of modules the last library: report covered

	// breaks holds the client's breakpoints and watchpoints, so that a
	// detach can remove them all.
	breaks map[breakKey]struct{}

	consoleMu sync.Mutex
	console   io.Writer

	// generation counts guests (Restart starts a new one); symbolizer
	// and resolver are the monitor's symbol lookups (SetSymbols, from
	// the layer above; nil without one).
	generation uint64
	symbolizer func(pc uint64) string
	resolver   func(name string) (uint64, error)

	// machMu orders Interrupt (any goroutine) against a replay putting a
	// new machine in place (timetravel.go).
	machMu sync.Mutex

	// The wine userland (nil for synth).
	wine    *wine.Process
	deliver bool
	// pending is the exception of the last fault stop: a resume with a
	// signal delivers it to the guest's handlers, one without retries
	// the instruction.
	pending *wine.Exception
	// fault is the guest fault of the last stop (both userlands), for
	// the minidump's exception stream; faultDump the dump taken when the
	// last fault was delivered (Config.DumpFaults).
	fault     *wine.Exception
	faultDump *minidump.Dump
	// delivered is the last fault handed to the guest's handlers
	// (DeliverFaults), for EndingException.
	delivered *wine.Exception
	// hk: API catch points and the API trace (apihooks.go); they outlive
	// a restart.
	hk *hooks
	// cov: the blocks executed, over all runs (coverage.go).
	cov *coverage
	// final is the stop to report on the next resume (the process ended
	// after an unhandled exception was shown).
	final *rsp.Stop
	// stopOnLoad makes a run stop after each image is mapped (pending
	// breakpoints on DLLs loaded later); libGen is the module generation
	// last reported.
	stopOnLoad bool
	loadGen    uint64
	// shadows keeps the shadow call stacks of the threads not running.
	shadows map[uint32][]unicorn.ShadowFrame

	// rec is the recording (Config.Record), nil without one.
	rec *recorder
	// owner is the target whose console and recording this one's guest
	// output goes through: itself, or for an incarnation built to replay
	// the recording, the target it will be swapped into.
	owner *Target
	// fineStep makes steps move exactly one instruction (replays).
	fineStep bool
	// posStop is set when the last run stopped on the position limit.
	posStop bool
	// replayTo is the position a replay runs to (replayOn).
	replayTo uint64
	replayOn bool
}

type breakKey struct {
	kind rsp.BreakKind
	addr uint64
	size int
}

// machine is the emulator as the guest model sees it; it remembers the
// API trap ranges so that a resume can tell it is sitting on one.
type machine struct {
	*unicorn.Machine
	traps [][2]uint64
}

func (m *machine) AddTrapRange(start, end uint64) error {
	if err := m.Machine.AddHaltTrapRange(start, end); err != nil {
		return err
	}
	m.traps = append(m.traps, [2]uint64{start, end})
	return nil
}

func (m *machine) isTrap(pc uint64) bool {
	for _, r := range m.traps {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

// New loads cfg.Program into a new Unicorn machine and runs it to the
// first stop (the thread's first instruction, or the entry point).
func New(cfg Config) (*Target, error) {
	t := &Target{breaks: make(map[breakKey]struct{})}
	t.owner = t
	if cfg.Record {
		t.rec = newRecorder(&cfg)
	}
	if err := t.load(cfg); err != nil {
		return nil, err
	}
	if t.rec != nil {
		t.rec.start = t.m.Position()
	}
	t.installHooks()
	if err := t.startCoverage(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// build makes an incarnation of a recording (timetravel.go): the program
// loaded and run to its first stop, its guest output going through
// owner's console.
func build(cfg Config, rec *recorder, owner *Target) (*Target, error) {
	f := &Target{breaks: make(map[breakKey]struct{}), rec: rec, owner: owner}
	if err := f.load(cfg); err != nil {
		return nil, err
	}
	return f, nil
}

// load starts cfg.Program in a new machine into t, whose guest state is
// zero (New, Restart, build). With a recording, the machine counts
// positions and the guest reads the recording's clocks and stdin tape.
func (t *Target) load(cfg Config) error {
	t.cfg = cfg
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := unicorn.New()
	if err != nil {
		return fmt.Errorf("start unicorn: %w", err)
	}
	if err := loadWindowsSelectors(m); err != nil {
		m.Close()
		return fmt.Errorf("segment selectors: %w", err)
	}
	if t.rec != nil {
		if err := t.rec.prepare(&cfg, m); err != nil {
			m.Close()
			return err
		}
	}
	t.machMu.Lock()
	t.m = m
	t.machMu.Unlock()
	t.mw = &machine{Machine: m}
	land := cfg.Userland
	if land == "" {
		land = UserlandSynth
	}
	if land, err = ResolveUserland(land); err != nil {
		m.Close()
		return err
	}
	if land == UserlandWine {
		if err := t.loadWine(cfg, log); err != nil {
			m.Close()
			return err
		}
		return nil
	}
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	proc, err := guest.Load(t.mw, guest.Config{
		Program:                  cfg.Program,
		Args:                     cfg.Args,
		Env:                      cfg.Env,
		DLLPaths:                 cfg.DLLPaths,
		Stdout:                   &teeConsole{t: t.owner, w: stdout},
		Stderr:                   &teeConsole{t: t.owner, w: stderr},
		UnimplementedReturnsZero: cfg.UnimplementedReturnsZero,
		Logger:                   log,
		Clock:                    cfg.clock,
	})
	if err != nil {
		m.Close()
		return err
	}
	t.proc = proc
	t.desc = rsp.AMD64(rsp.AMD64Options{AVX: m.HasAVX(), Win64: true})
	if cfg.ShadowStack {
		m.SetShadowStack(true)
	}
	m.SetExactFaults(cfg.ExactFaults)
	if cfg.DecodeFaults {
		if err := m.SetFaultPaging(false); err != nil {
			m.Close()
			return err
		}
	}
	t.last = rsp.Stop{Kind: rsp.StopSignal, Signal: rsp.SIGTRAP, Thread: ThreadID, Library: true}
	t.libsSent = len(proc.Modules())
	if cfg.StopAtEntry {
		return t.runToEntry(proc.EntryPoint(), func() { m.Close() })
	}
	return nil
}

// Close releases the emulator (and the wine userland's host resources).
func (t *Target) Close() error {
	if t.hk != nil && t.hk.trace != nil {
		t.hooksEnded()
	}
	err := t.writeCoverage()
	if t.hk != nil && t.hk.trace != nil && t.hk.trace.err != nil && err == nil {
		err = fmt.Errorf("API trace: %w", t.hk.trace.err)
	}
	if t.wine != nil {
		t.wine.Close()
	}
	if e := t.m.Close(); err == nil {
		err = e
	}
	return err
}

// Machine gives access to the emulator (for monitor commands and tests).
func (t *Target) Machine() *unicorn.Machine { return t.m }

// Process gives access to the synthesized guest model (nil in the wine
// userland).
func (t *Target) Process() *guest.Process { return t.proc }

// Wine gives access to the wine userland's process (nil in synth).
func (t *Target) Wine() *wine.Process { return t.wine }

// Userland names the guest model that runs.
func (t *Target) Userland() string {
	if t.wine != nil {
		return UserlandWine
	}
	return UserlandSynth
}

// module is a loaded image as the debugger sees it.
type module = loaded.Module

func (t *Target) modules() []module {
	if t.wine != nil {
		ms := t.wine.Modules()
		out := make([]module, len(ms))
		for i, m := range ms {
			out[i] = module{Name: m.Name, Path: m.Path, HostPath: m.HostPath, Base: m.Base, Size: m.Size, FirstSectionRVA: m.FirstSectionRVA}
		}
		// The program first, as debuggers expect.
		for i, m := range out {
			if m.Base == t.wine.Program().Base && i > 0 {
				copy(out[1:i+1], out[:i])
				out[0] = m
				break
			}
		}
		return out
	}
	ms := t.proc.Modules()
	out := make([]module, len(ms))
	for i, m := range ms {
		out[i] = module{Name: m.Name, Path: m.Path, HostPath: m.HostPath, Base: m.Base, Size: m.Size, FirstSectionRVA: m.FirstSectionRVA, Synthetic: m.Synthetic}
	}
	return out
}

func (t *Target) moduleImage(name string) ([]byte, error) {
	if t.wine != nil {
		return t.wine.ModuleImage(name)
	}
	return t.proc.ModuleImage(name)
}

func (t *Target) regionName(addr uint64) string {
	if t.wine != nil {
		return t.wine.RegionName(addr)
	}
	return t.proc.RegionName(addr)
}

// Description implements rsp.Target.
func (t *Target) Description() *rsp.Description { return t.desc }

// gdbGPR maps GDB's general register order to arch numbering.
var gdbGPR = [16]arch.Reg{
	arch.RAX, arch.RBX, arch.RCX, arch.RDX, arch.RSI, arch.RDI, arch.RBP, arch.RSP,
	arch.R8, arch.R9, arch.R10, arch.R11, arch.R12, arch.R13, arch.R14, arch.R15,
}

func (t *Target) checkThread(tid int) error {
	if t.wine != nil {
		if tid > 0 {
			if _, err := t.wine.TEB(uint32(tid)); err != nil {
				return err
			}
		}
		return nil
	}
	if tid != ThreadID && tid != 0 && tid != rsp.AllThreads {
		return fmt.Errorf("no thread %d", tid)
	}
	return nil
}

// ReadRegisters implements rsp.Target.
func (t *Target) ReadRegisters(tid int, dst []byte) error {
	if err := t.checkThread(tid); err != nil {
		return err
	}
	if len(dst) != t.desc.Size() {
		return fmt.Errorf("register buffer is %d bytes, want %d", len(dst), t.desc.Size())
	}
	if err := t.readCtx(tid); err != nil {
		return err
	}
	for i := range t.desc.Registers {
		r := &t.desc.Registers[i]
		t.encodeReg(i, dst[r.Offset:r.Offset+r.Size()])
	}
	return nil
}

// WriteRegisters implements rsp.Target.
func (t *Target) WriteRegisters(tid int, src []byte) error {
	if err := t.checkThread(tid); err != nil {
		return err
	}
	if len(src) != t.desc.Size() {
		return fmt.Errorf("register buffer is %d bytes, want %d", len(src), t.desc.Size())
	}
	if err := t.readCtx(tid); err != nil {
		return err
	}
	for i := range t.desc.Registers {
		r := &t.desc.Registers[i]
		t.decodeReg(i, src[r.Offset:r.Offset+r.Size()])
	}
	return t.writeCtx(tid)
}

// ReadRegister implements rsp.Target.
func (t *Target) ReadRegister(tid, regnum int, dst []byte) error {
	if err := t.checkThread(tid); err != nil {
		return err
	}
	if regnum < 0 || regnum >= len(t.desc.Registers) {
		return fmt.Errorf("no register %d", regnum)
	}
	if len(dst) != t.desc.Registers[regnum].Size() {
		return fmt.Errorf("register %d is %d bytes", regnum, t.desc.Registers[regnum].Size())
	}
	if err := t.readCtx(tid); err != nil {
		return err
	}
	t.encodeReg(regnum, dst)
	return nil
}

// WriteRegister implements rsp.Target.
func (t *Target) WriteRegister(tid, regnum int, src []byte) error {
	if err := t.checkThread(tid); err != nil {
		return err
	}
	if regnum < 0 || regnum >= len(t.desc.Registers) {
		return fmt.Errorf("no register %d", regnum)
	}
	if len(src) != t.desc.Registers[regnum].Size() {
		return fmt.Errorf("register %d is %d bytes", regnum, t.desc.Registers[regnum].Size())
	}
	if err := t.readCtx(tid); err != nil {
		return err
	}
	t.decodeReg(regnum, src)
	return t.writeCtx(tid)
}

// readCtx loads thread tid's registers into t.ctx.
func (t *Target) readCtx(tid int) error {
	if t.wine != nil {
		return t.wineContext(tid)
	}
	return t.m.ReadContext(&t.ctx)
}

// writeCtx stores t.ctx as thread tid's registers.
func (t *Target) writeCtx(tid int) error {
	if t.wine != nil {
		t.rec.mutated()
		return t.wine.SetThreadContext(t.wineThread(tid), &t.ctx)
	}
	return t.m.WriteContext(&t.ctx)
}

// vector returns the bytes of t.ctx that hold a register wider than 64
// bits, or nil.
func (t *Target) vector(regnum int) []byte {
	c := &t.ctx
	switch {
	case regnum >= rsp.AMD64ST0 && regnum < rsp.AMD64ST0+8:
		return c.ST[regnum-rsp.AMD64ST0][:]
	case regnum >= rsp.AMD64XMM0 && regnum < rsp.AMD64XMM0+16:
		return c.XMM[regnum-rsp.AMD64XMM0][:]
	case regnum >= rsp.AMD64NumBase && regnum < rsp.AMD64NumBase+16 &&
		strings.HasPrefix(t.desc.Registers[regnum].Name, "ymm"):
		return c.YMMH[regnum-rsp.AMD64NumBase][:]
	}
	return nil
}

// scalar returns a pointer to the integer field of t.ctx for regnum.
func (t *Target) scalar(regnum int) (p64 *uint64, p32 *uint32) {
	c := &t.ctx
	switch {
	case regnum < 16:
		return &c.GPR[gdbGPR[regnum]], nil
	case regnum == rsp.AMD64RIP:
		return &c.RIP, nil
	case regnum == rsp.AMD64EFLAGS:
		return &c.RFLAGS, nil
	case regnum == rsp.AMD64FSBase:
		return &c.FSBase, nil
	case regnum == rsp.AMD64GSBase:
		return &c.GSBase, nil
	case regnum == rsp.AMD64MXCSR:
		return nil, &c.MXCSR
	case regnum >= rsp.AMD64CS && regnum <= rsp.AMD64GS:
		return nil, [...]*uint32{&c.CS, &c.SS, &c.DS, &c.ES, &c.FS, &c.GS}[regnum-rsp.AMD64CS]
	case regnum >= rsp.AMD64FCTRL && regnum <= rsp.AMD64FOP:
		return nil, [...]*uint32{&c.FCTRL, &c.FSTAT, &c.FTAG, &c.FISEG,
			&c.FIOFF, &c.FOSEG, &c.FOOFF, &c.FOP}[regnum-rsp.AMD64FCTRL]
	}
	return nil, nil
}

// encodeReg writes register regnum from t.ctx into dst; registers the
// emulator does not have read as zero.
func (t *Target) encodeReg(regnum int, dst []byte) {
	p64, p32 := t.scalar(regnum)
	switch {
	case p64 != nil && len(dst) == 8:
		binary.LittleEndian.PutUint64(dst, *p64)
	case p64 != nil && len(dst) == 4: // eflags is 32 bits on the wire
		binary.LittleEndian.PutUint32(dst, uint32(*p64))
	case p32 != nil && len(dst) == 4:
		binary.LittleEndian.PutUint32(dst, *p32)
	default:
		clear(dst)
		copy(dst, t.vector(regnum))
	}
}

// decodeReg is the inverse of encodeReg; writes to registers the
// emulator does not have are ignored.
func (t *Target) decodeReg(regnum int, src []byte) {
	p64, p32 := t.scalar(regnum)
	switch {
	case p64 != nil && len(src) == 8:
		*p64 = binary.LittleEndian.Uint64(src)
	case p64 != nil && len(src) == 4:
		*p64 = uint64(binary.LittleEndian.Uint32(src))
	case p32 != nil && len(src) == 4:
		*p32 = binary.LittleEndian.Uint32(src)
	default:
		copy(t.vector(regnum), src)
	}
}

// ReadMemory implements rsp.Target.
func (t *Target) ReadMemory(addr uint64, p []byte) (int, error) { return t.m.ReadMemory(addr, p) }

// ViewMemory implements rsp.MemoryViewer: guest memory in place, for the
// `x` replies built while the guest is stopped.
func (t *Target) ViewMemory(addr uint64, n int) []byte { return t.m.View(addr, n) }

// WriteMemory implements rsp.Target. (The machine drops the translations
// of code it overwrites: LLDB rewrites its JIT buffer for every
// expression.)
func (t *Target) WriteMemory(addr uint64, p []byte) (int, error) { return t.m.WriteMemory(addr, p) }

// Interrupt implements rsp.Target.
func (t *Target) Interrupt() {
	t.interrupted.Store(true)
	t.machMu.Lock()
	m := t.m
	t.machMu.Unlock()
	if m != nil { // nil while a restart loads the program
		m.Interrupt()
	}
}

// LastStop implements rsp.Target.
func (t *Target) LastStop() rsp.Stop { return t.last }

// Resume implements rsp.Target.
func (t *Target) Resume(actions []rsp.ResumeAction) (rsp.Stop, error) {
	t.fault = nil
	var act rsp.ResumeAction
	found := false
	if t.wine != nil {
		// A step names its thread: it becomes the running one. A plain
		// continue runs whichever thread the scheduler has.
		for _, a := range actions {
			if a.Thread > 0 && (a.Step || a.RangeStart < a.RangeEnd) {
				act, found = a, true
				prev := t.wine.CurrentThread()
				t.rec.mutated()
				if err := t.wine.SwitchTo(uint32(a.Thread)); err != nil {
					return rsp.Stop{}, err
				}
				t.swapShadow(prev, wine.Event{Switched: prev != t.wine.CurrentThread()})
				break
			}
		}
		if !found {
			for _, a := range actions {
				if !found || a.Thread == int(t.wine.CurrentThread()) {
					act, found = a, true
				}
			}
		}
		if found {
			if err := t.resumeWine(act); err != nil {
				return rsp.Stop{}, err
			}
		}
	} else {
		for _, a := range actions {
			if a.Thread == ThreadID || (!found && (a.Thread == rsp.AllThreads || a.Thread == 0)) {
				act, found = a, true
			}
		}
	}
	if !found {
		return t.last, nil
	}
	var (
		st  rsp.Stop
		err error
	)
	switch {
	case act.RangeStart < act.RangeEnd:
		st, err = t.RangeStep(act.Thread, act.RangeStart, act.RangeEnd)
	default:
		st, err = t.run(act.Step)
		if err == nil && act.Step {
			t.stepLanded(&st)
		}
	}
	if err != nil {
		return rsp.Stop{}, err
	}
	t.last = st
	if t.traceOn() {
		if st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated {
			t.hooksEnded()
		} else {
			t.hk.trace.flush()
		}
	}
	return st, nil
}

// RangeStep implements rsp.RangeStepper.
func (t *Target) RangeStep(tid int, start, end uint64) (rsp.Stop, error) {
	if err := t.checkThread(tid); err != nil {
		return rsp.Stop{}, err
	}
	for i := 0; ; i++ {
		st, err := t.run(true)
		if err == nil {
			t.stepLanded(&st)
		}
		if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP {
			return st, err
		}
		pc, err := t.m.Reg(arch.RIP)
		if err != nil {
			return st, err
		}
		if kind, ok := t.breakAt(pc); ok {
			// A step ends on an instruction the emulator has not run; an
			// inserted breakpoint there is hit, inside the range or not
			// (gdbserver stops there too: `next` over a line with a
			// breakpoint in its middle reports that breakpoint).
			st.Kind = kind
			return st, nil
		}
		if pc < start || pc >= end {
			return st, nil
		}
		if t.interrupted.Swap(false) {
			return t.stop(rsp.StopSignal, rsp.SIGINT), nil
		}
	}
}

// run continues (or single-steps) the guest, serving API traps in Go,
// until a stop the debugger must see.
func (t *Target) run(step bool) (rsp.Stop, error) {
	t.hooksBeforeRun()
	if t.wine != nil {
		return t.runWine(step)
	}
	if t.exited {
		return t.last, nil
	}
	t.interrupted.Store(false)
	for {
		// A resume from an API entry point performs the call first, so
		// stepping over an API is one step.
		pc, err := t.m.Reg(arch.RIP)
		if err != nil {
			return rsp.Stop{}, err
		}
		if t.mw.isTrap(pc) {
			st, done, err := t.serveTrap(pc)
			if err != nil || done {
				return st, err
			}
			if t.hk != nil {
				t.rescanHooks(false)
			}
			if step {
				return t.stop(rsp.StopSignal, rsp.SIGTRAP), nil
			}
			if t.interrupted.Swap(false) {
				return t.stop(rsp.StopSignal, rsp.SIGINT), nil
			}
			// A call back into guest code starts at the callback's first
			// instruction; the emulator reports a breakpoint there, since
			// the run starts where RIP was moved, not where it stopped.
		}
		us := t.machineRun(step)
		if us.Reason == unicorn.StopTrap {
			if step {
				// The step ended on an API entry: show it there.
				return t.stop(rsp.StopSignal, rsp.SIGTRAP), nil
			}
			continue
		}
		if st, handled := t.hookStop(us); handled {
			if st != nil {
				return *st, nil
			}
			if step {
				return t.stop(rsp.StopSignal, rsp.SIGTRAP), nil
			}
			continue
		}
		return t.translate(us), nil
	}
}

// serveTrap performs the API call the guest is about to make at pc. done
// reports that the call ended in a stop the debugger must see.
func (t *Target) serveTrap(pc uint64) (rsp.Stop, bool, error) {
	t.rec.mutated()
	res, err := t.proc.HandleTrap(pc)
	if err != nil {
		st := t.stop(rsp.StopSignal, rsp.SIGSYS)
		st.Description = fmt.Sprintf("API call at %#x failed: %v", pc, err)
		return st, true, nil
	}
	switch {
	case res.Exited:
		t.exited = true
		return rsp.Stop{Kind: rsp.StopExited, ExitCode: res.ExitCode, Thread: ThreadID}, true, nil
	case res.Unimplemented != "":
		st := t.stop(rsp.StopSignal, rsp.SIGSYS)
		st.Description = fmt.Sprintf("unimplemented API %s called from %#x", res.Unimplemented, res.Caller)
		return st, true, nil
	}
	return rsp.Stop{}, false, nil
}

func (t *Target) stop(kind rsp.StopKind, sig int) rsp.Stop {
	st := rsp.Stop{Kind: kind, Signal: sig, Thread: ThreadID}
	if t.wine != nil {
		st.Thread = int(t.wine.CurrentThread())
		if t.wine.ModulesChanged() {
			st.Library = true
		}
		return st
	}
	if n := len(t.proc.Modules()); n != t.libsSent {
		st.Library = true
		t.libsSent = n
	}
	return st
}

// translate maps an emulator stop to what the debugger sees.
func (t *Target) translate(us unicorn.Stop) rsp.Stop {
	if st, ok := t.breakpointFetch(us); ok {
		return st
	}
	switch us.Reason {
	case unicorn.StopFault, unicorn.StopIllegal, unicorn.StopDivide, unicorn.StopException:
		e := wineException(us)
		t.fault = &e
	}
	switch us.Reason {
	case unicorn.StopBreakpoint:
		return t.stop(rsp.StopSWBreak, rsp.SIGTRAP)
	case unicorn.StopHWBreakpoint:
		return t.stop(rsp.StopHWBreak, rsp.SIGTRAP)
	case unicorn.StopWatch:
		kind := rsp.StopWatch
		switch us.Watch {
		case unicorn.WatchRead:
			kind = rsp.StopRWatch
		case unicorn.WatchAccess:
			kind = rsp.StopAWatch
		}
		st := t.stop(kind, rsp.SIGTRAP)
		st.Addr = us.Addr
		return st
	case unicorn.StopStep:
		return t.stop(rsp.StopSignal, rsp.SIGTRAP)
	case unicorn.StopInterrupt:
		return t.stop(rsp.StopSignal, rsp.SIGINT)
	case unicorn.StopInt3:
		st := t.stop(rsp.StopSignal, rsp.SIGTRAP)
		st.Description = fmt.Sprintf("int3 at %#x", us.PC)
		return st
	case unicorn.StopFault:
		st := t.stop(rsp.StopSignal, rsp.SIGSEGV)
		st.Addr = us.Addr
		what := "read of"
		switch {
		case us.Access&arch.PermExec != 0:
			what = "execution of"
		case us.Access&arch.PermWrite != 0:
			what = "write to"
		}
		st.Description = fmt.Sprintf("access violation: %s %#x at %#x", what, us.Addr, us.PC)
		if us.Inexact {
			st.Description += inexactNote
		}
		return st
	case unicorn.StopIllegal:
		st := t.stop(rsp.StopSignal, rsp.SIGILL)
		st.Description = fmt.Sprintf("illegal instruction at %#x", us.PC)
		if len(us.Insn) > 0 {
			st.Description += fmt.Sprintf(": bytes % x", us.Insn)
		}
		return st
	case unicorn.StopDivide:
		st := t.stop(rsp.StopSignal, rsp.SIGFPE)
		st.Description = fmt.Sprintf("integer divide error at %#x", us.PC)
		return st
	}
	st := t.stop(rsp.StopSignal, us.Reason.GDBSignal())
	switch us.Reason {
	case unicorn.StopHalt:
		st.Description = fmt.Sprintf("hlt at %#x", us.PC)
	case unicorn.StopSyscall:
		st.Description = fmt.Sprintf("syscall instruction at %#x (Windows programs call the system through ntdll)", us.PC)
	case unicorn.StopException:
		st.Description = fmt.Sprintf("CPU exception or int %#x at %#x", us.Vector, us.PC)
	}
	if us.Err != nil {
		st.Description = fmt.Sprintf("emulator stopped at %#x: %v", us.PC, us.Err)
	}
	return st
}

// runToEntry runs a process just loaded to its entry point (StopAtEntry),
// which then is the first stop the debugger sees; release undoes the
// load when that fails.
func (t *Target) runToEntry(entry uint64, release func()) error {
	if err := t.m.AddBreakpoint(entry, true); err != nil {
		release()
		return fmt.Errorf("break at entry point %#x: %w", entry, err)
	}
	st, err := t.run(false)
	t.m.RemoveBreakpoint(entry, true)
	if err != nil {
		release()
		return err
	}
	if st.Kind != rsp.StopHWBreak {
		release()
		return fmt.Errorf("program stopped before its entry point: %s", describeStop(st))
	}
	st.Kind, st.Library = rsp.StopSignal, true
	t.last = st
	return nil
}

// inexactNote ends the description of a fault whose instruction the
// decoder could not prove (without --record or --exact-faults).
const inexactNote = " (the faulting instruction is ambiguous in its block: this is the first candidate; --record or --exact-faults find it for certain)"

func describeStop(st rsp.Stop) string {
	if st.Description != "" {
		return st.Description
	}
	switch st.Kind {
	case rsp.StopExited:
		return fmt.Sprintf("exited with code %d", st.ExitCode)
	case rsp.StopTerminated:
		return fmt.Sprintf("terminated by signal %d", st.Signal)
	}
	return fmt.Sprintf("signal %d", st.Signal)
}

// SupportsBreakpoint implements rsp.Breakpointer.
func (t *Target) SupportsBreakpoint(kind rsp.BreakKind) bool { return kind <= rsp.WatchAccess }

// InsertBreakpoint implements rsp.Breakpointer.
func (t *Target) InsertBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	if err := t.insert(kind, addr, size); err != nil {
		return err
	}
	t.breaks[breakKey{kind, addr, size}] = struct{}{}
	return nil
}

func (t *Target) insert(kind rsp.BreakKind, addr uint64, size int) error {
	switch kind {
	case rsp.BreakSoftware, rsp.BreakHardware:
		return t.m.AddBreakpoint(addr, kind == rsp.BreakHardware)
	}
	return t.m.AddWatchpoint(addr, size, watchKind(kind))
}

// RemoveBreakpoint implements rsp.Breakpointer.
func (t *Target) RemoveBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	delete(t.breaks, breakKey{kind, addr, size})
	switch kind {
	case rsp.BreakSoftware, rsp.BreakHardware:
		if kind == rsp.BreakSoftware && t.hookArmed(addr) {
			return nil // the hooks' breakpoint stays (apihooks.go)
		}
		return t.m.RemoveBreakpoint(addr, kind == rsp.BreakHardware)
	}
	return t.m.RemoveWatchpoint(addr, size, watchKind(kind))
}

// breakAt reports whether the client inserted a breakpoint at pc, and
// the stop it makes (x86 breakpoints are inserted with kind 1).
func (t *Target) breakAt(pc uint64) (rsp.StopKind, bool) {
	if _, ok := t.breaks[breakKey{rsp.BreakSoftware, pc, 1}]; ok {
		return rsp.StopSWBreak, true
	}
	if _, ok := t.breaks[breakKey{rsp.BreakHardware, pc, 1}]; ok {
		return rsp.StopHWBreak, true
	}
	return 0, false
}

func watchKind(k rsp.BreakKind) unicorn.WatchKind {
	switch k {
	case rsp.WatchRead:
		return unicorn.WatchRead
	case rsp.WatchAccess:
		return unicorn.WatchAccess
	}
	return unicorn.WatchWrite
}

// Threads implements rsp.ThreadLister.
func (t *Target) Threads(dst []rsp.ThreadInfo) []rsp.ThreadInfo {
	if t.wine != nil {
		for i, th := range t.wine.Threads() {
			name := th.Name
			if name == "" && i == 0 {
				name = "main"
			}
			dst = append(dst, rsp.ThreadInfo{ID: int(th.TID), Name: name,
				Extra: fmt.Sprintf("Windows thread %#x, %s, TEB %#x", th.TID, th.State, th.TEB)})
		}
		return dst
	}
	return append(dst, rsp.ThreadInfo{ID: ThreadID, Name: "main"})
}

// MemoryRegions implements rsp.MemoryMapper.
func (t *Target) MemoryRegions(dst []rsp.MemoryRegion) []rsp.MemoryRegion {
	for _, r := range t.m.Regions() {
		dst = append(dst, rsp.MemoryRegion{
			Start: r.Start, Size: r.Size,
			Read:  r.Perm&arch.PermRead != 0,
			Write: r.Perm&arch.PermWrite != 0,
			Exec:  r.Perm&arch.PermExec != 0,
			Name:  t.regionName(r.Start),
		})
	}
	return dst
}

// ProcessInfo implements rsp.ProcessInfoer.
func (t *Target) ProcessInfo() rsp.ProcessInfo {
	return rsp.ProcessInfo{PID: 1, Triple: "x86_64-pc-windows-msvc", OSType: "windows", Vendor: "pc"}
}

// Kill implements rsp.Killer.
func (t *Target) Kill() error {
	t.exited = true
	t.last = t.stop(rsp.StopTerminated, rsp.SIGKILL)
	return nil
}

// Detach implements rsp.Detacher: the client's breakpoints go with it.
func (t *Target) Detach() error {
	var errs []error
	for k := range t.breaks {
		errs = append(errs, t.RemoveBreakpoint(k.kind, k.addr, k.size))
	}
	return errors.Join(errs...)
}

// SetConsole implements rsp.Consoler.
func (t *Target) SetConsole(w io.Writer) {
	t.consoleMu.Lock()
	t.console = w
	t.consoleMu.Unlock()
}

// teeConsole copies guest output to the debugger console when one is set.
type teeConsole struct {
	t *Target
	w io.Writer
}

func (c *teeConsole) Write(p []byte) (int, error) {
	if r := c.t.rec; r != nil && !r.show() {
		return len(p), nil // shown before this replay
	}
	c.t.consoleMu.Lock()
	con := c.t.console
	c.t.consoleMu.Unlock()
	if con != nil {
		con.Write(p)
	}
	return c.w.Write(p)
}
