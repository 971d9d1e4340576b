package ucwin

import (
	"fmt"
	"log/slog"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/rsp"
)

// The wine userland: Wine's PE DLLs on the NT system-call kernel of
// guest/wine. Most system calls are served inside the emulator's run
// (the syscall hook calls wine.Process.FastSyscall); the rest stop it and
// runWine serves them and goes on, so the debugger sees only the stops
// that mean something to it. Guest threads are the debugger's threads (their
// Windows thread ids). A guest fault stops first-chance with its signal;
// resuming with the signal (GDB's default for SIGSEGV) hands the
// exception to the guest's handlers through KiUserExceptionDispatcher,
// resuming without one executes the instruction again.

func (t *Target) loadWine(cfg Config, log *slog.Logger) error {
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = discard{}
	}
	if stderr == nil {
		stderr = discard{}
	}
	p, err := wine.Load(t.m, wine.Config{
		Program:                   cfg.Program,
		Args:                      cfg.Args,
		Env:                       cfg.Env,
		Root:                      cfg.Root,
		Cwd:                       cfg.Cwd,
		WineDebug:                 cfg.WineDebug,
		TraceSyscalls:             cfg.TraceSyscalls,
		UnimplementedReturnsError: cfg.UnimplementedReturnsError,
		RealClock:                 cfg.RealClock,
		Stdin:                     cfg.Stdin,
		StdioKinds:                cfg.StdioKinds,
		ConsoleSize:               cfg.ConsoleSize,
		Stdout:                    &teeConsole{t: t.owner, w: stdout},
		Stderr:                    &teeConsole{t: t.owner, w: stderr},
		Logger:                    log,
		Symbolize:                 t.owner.symbolize,
	})
	if err != nil {
		return err
	}
	t.wine = p
	t.deliver = cfg.DeliverFaults
	// Most system calls are served inside the run, from the syscall hook;
	// the rest stop it and runWine serves them.
	rec := t.rec
	t.m.SetSyscallHandler(func() bool {
		rec.mutated()
		return p.FastSyscall()
	})
	for _, reg := range cfg.Registry {
		if err := p.LoadRegFile(reg); err != nil {
			p.Close()
			return fmt.Errorf("--registry: %w", err)
		}
	}
	t.desc = rsp.AMD64(rsp.AMD64Options{AVX: t.m.HasAVX(), Win64: true})
	if cfg.ShadowStack {
		t.m.SetShadowStack(true)
	}
	t.m.SetExactFaults(cfg.ExactFaults)
	if cfg.DecodeFaults {
		if err := t.m.SetFaultPaging(false); err != nil {
			return err
		}
	}
	t.last = rsp.Stop{Kind: rsp.StopSignal, Signal: rsp.SIGTRAP, Thread: int(p.CurrentThread()), Library: true}
	t.libsSent = len(p.Modules())
	p.ModulesChanged()
	if cfg.StopAtEntry {
		return t.runToEntry(p.EntryPoint(), func() { p.Close() })
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// symbolize names a guest address for traces through the monitor's
// symbols (exports, DWARF), without failing; "" without a layer above
// to give them (SetSymbols).
func (t *Target) symbolize(pc uint64) string {
	if t.symbolizer == nil {
		return ""
	}
	return t.symbolizer(pc)
}

// resolveSymbol finds a function by name (FUNC or DLL!FUNC) through the
// monitor's symbols.
func (t *Target) resolveSymbol(name string) (uint64, error) {
	if t.resolver == nil {
		return 0, fmt.Errorf("%s: no symbols (the target is not served through package debuggee)", name)
	}
	return t.resolver(name)
}

// runWine continues (or single-steps) the wine guest, serving system
// calls, until a stop the debugger must see.
func (t *Target) runWine(step bool) (rsp.Stop, error) {
	if t.exited {
		return t.last, nil
	}
	if t.final != nil {
		st := *t.final
		t.final = nil
		t.exited = true
		return st, nil
	}
	t.interrupted.Store(false)
	for n := 0; ; n++ {
		// Time slices while several threads live (deterministic: counted
		// in translation blocks entered).
		q := int64(0)
		if t.wine.LiveThreads() > 1 {
			q = wineQuantum
		}
		if err := t.m.SetQuantum(q); err != nil {
			return rsp.Stop{}, err
		}
		us := t.machineRun(step)
		switch us.Reason {
		case unicorn.StopQuantum:
			prev := t.wine.CurrentThread()
			t.rec.mutated()
			ev, err := t.wine.Yield()
			if err != nil {
				return rsp.Stop{}, err
			}
			t.swapShadow(prev, ev)
			if st, done := t.wineEvent(ev); done {
				return st, nil
			}
			if t.interrupted.Swap(false) {
				return t.stop(rsp.StopSignal, rsp.SIGINT), nil
			}
			continue
		case unicorn.StopSyscall:
			prev := t.wine.CurrentThread()
			t.rec.mutated()
			ev, err := t.wine.Syscall()
			if err != nil {
				return rsp.Stop{}, err
			}
			t.swapShadow(prev, ev)
			if st, done := t.wineEvent(ev); done {
				return st, nil
			}
			if t.hk != nil {
				t.rescanHooks(false)
				if st, ok := t.caughtSyscall(); ok {
					return st, nil
				}
			}
			if step {
				return t.stop(rsp.StopSignal, rsp.SIGTRAP), nil
			}
			if g := t.wine.ModuleGeneration(); t.stopOnLoad && g != t.loadGen {
				t.loadGen = g
				st := t.stop(rsp.StopSignal, rsp.SIGTRAP)
				st.Library, st.Description = true, "library loaded"
				return st, nil
			}
			if t.interrupted.Swap(false) {
				return t.stop(rsp.StopSignal, rsp.SIGINT), nil
			}
			continue
		case unicorn.StopFault, unicorn.StopDivide, unicorn.StopIllegal, unicorn.StopInt3, unicorn.StopException:
			if st, ok := t.breakpointFetch(us); ok {
				return st, nil // a debugger's return address (calls.go)
			}
			e := wineException(us)
			if t.deliver {
				t.delivered = &e
				if t.cfg.DumpFaults {
					t.fault = &e
					t.faultDump, _ = t.Minidump(false)
					t.fault = nil
				}
				prev := t.wine.CurrentThread()
				t.rec.mutated()
				ev, err := t.wine.DispatchException(e)
				if err != nil {
					return rsp.Stop{}, err
				}
				t.swapShadow(prev, ev)
				if st, done := t.wineEvent(ev); done {
					return st, nil
				}
				continue
			}
			st := t.translate(us)
			st.Description = "first chance: " + e.String()
			if us.Inexact {
				st.Description += inexactNote
			}
			if us.Reason == unicorn.StopInt3 {
				st.Description = fmt.Sprintf("int3 at %#x", us.Addr)
			}
			t.pending = &e
			return st, nil
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

// wineException turns an emulator fault into a Windows exception.
func wineException(us unicorn.Stop) wine.Exception {
	switch us.Reason {
	case unicorn.StopFault:
		kind := uint64(wine.AccessRead)
		switch {
		case us.Access&arch.PermExec != 0:
			kind = wine.AccessExecute
		case us.Access&arch.PermWrite != 0:
			kind = wine.AccessWrite
		}
		return wine.Exception{Code: wine.EXCEPTION_ACCESS_VIOLATION, Address: us.PC, Params: []uint64{kind, us.Addr}}
	case unicorn.StopDivide:
		return wine.Exception{Code: wine.EXCEPTION_INT_DIVIDE_BY_ZERO, Address: us.PC}
	case unicorn.StopIllegal:
		return wine.Exception{Code: wine.EXCEPTION_ILLEGAL_INSTRUCTION, Address: us.PC}
	case unicorn.StopInt3:
		return wine.Exception{Code: wine.EXCEPTION_BREAKPOINT, Address: us.Addr, Params: []uint64{0}}
	}
	// Other CPU exceptions, by vector.
	switch us.Vector {
	case 0:
		return wine.Exception{Code: wine.EXCEPTION_INT_DIVIDE_BY_ZERO, Address: us.PC}
	case 1:
		return wine.Exception{Code: wine.EXCEPTION_SINGLE_STEP, Address: us.PC}
	case 4:
		return wine.Exception{Code: wine.EXCEPTION_INT_OVERFLOW, Address: us.PC}
	case 5:
		return wine.Exception{Code: 0xC000008C, Address: us.PC} // EXCEPTION_ARRAY_BOUNDS_EXCEEDED
	case 6:
		return wine.Exception{Code: wine.EXCEPTION_ILLEGAL_INSTRUCTION, Address: us.PC}
	case 16, 19:
		return wine.Exception{Code: wine.EXCEPTION_FLT_INVALID_OPERATON, Address: us.PC}
	}
	return wine.Exception{Code: wine.EXCEPTION_PRIV_INSTRUCTION, Address: us.PC, Vector: us.Vector}
}

// wineEvent maps what a system call or a dispatch did to a stop; done is
// false when the guest just goes on.
func (t *Target) wineEvent(ev wine.Event) (rsp.Stop, bool) {
	switch ev.Kind {
	case wine.EventExited:
		exit := rsp.Stop{Kind: rsp.StopExited, ExitCode: int(ev.ExitCode), Thread: int(t.wine.CurrentThread())}
		if e, ok := t.wine.Unhandled(); ok && (!t.deliver || t.cfg.DumpFaults) {
			// Second chance: show the exception, then the exit.
			st := t.stop(rsp.StopSignal, signalOf(e.Code))
			st.Description = "second chance (no handler took it): " + e.String()
			t.final = &exit
			return st, true
		}
		if ev.Description != "" {
			exit.Description = ev.Description
		}
		t.exited = true
		return exit, true
	case wine.EventUnimplemented:
		st := t.stop(rsp.StopSignal, rsp.SIGSYS)
		st.Description = ev.Description
		return st, true
	case wine.EventDeadlock, wine.EventError:
		st := t.stop(rsp.StopSignal, rsp.SIGABRT)
		st.Description = ev.Description
		return st, true
	}
	return rsp.Stop{}, false
}

func signalOf(code uint32) int {
	switch code {
	case wine.EXCEPTION_ACCESS_VIOLATION, wine.EXCEPTION_STACK_OVERFLOW:
		return rsp.SIGSEGV
	case wine.EXCEPTION_INT_DIVIDE_BY_ZERO, wine.EXCEPTION_INT_OVERFLOW, wine.EXCEPTION_FLT_DIVIDE_BY_ZERO:
		return rsp.SIGFPE
	case wine.EXCEPTION_ILLEGAL_INSTRUCTION, wine.EXCEPTION_PRIV_INSTRUCTION:
		return rsp.SIGILL
	case wine.EXCEPTION_BREAKPOINT, wine.EXCEPTION_SINGLE_STEP:
		return rsp.SIGTRAP
	}
	return rsp.SIGABRT
}

// resumeWine applies a resume action's signal: a pending guest exception
// is delivered when the client passes a signal, dropped otherwise.
func (t *Target) resumeWine(act rsp.ResumeAction) error {
	if t.pending == nil {
		return nil
	}
	e := *t.pending
	t.pending = nil
	if act.Signal == 0 {
		return nil
	}
	prev := t.wine.CurrentThread()
	t.rec.mutated()
	ev, err := t.wine.DispatchException(e)
	if err != nil {
		return err
	}
	t.swapShadow(prev, ev)
	if st, done := t.wineEvent(ev); done {
		t.final = &st
	}
	return nil
}

// EndingException describes the exception that ended a process which
// exited with code: one no handler took, or the last fault delivered to
// the guest when the code is that fault's (Wine's top-level filter ends
// the process with the exception's code, as Windows does). The wine
// userland only: the synth userland stops at a fault instead.
func (t *Target) EndingException(code uint32) (string, bool) {
	if t.wine == nil {
		return "", false
	}
	if e, ok := t.wine.Unhandled(); ok {
		return e.String(), true
	}
	if e := t.delivered; e != nil && e.Code == code {
		return e.String(), true
	}
	return "", false
}

// SecondChance reports that the process is stopped at an exception no
// handler took: the next resume ends it with the exception's code.
func (t *Target) SecondChance() bool { return t.final != nil && !t.exited }

// wineThread resolves a client thread id (0 or -1: the current thread).
func (t *Target) wineThread(tid int) uint32 {
	if tid <= 0 {
		return t.wine.CurrentThread()
	}
	return uint32(tid)
}

// wineContext fills t.ctx with thread tid's registers.
func (t *Target) wineContext(tid int) error {
	c, err := t.wine.ThreadContext(t.wineThread(tid))
	if err != nil {
		return err
	}
	t.ctx = *c
	return nil
}

// SetStopOnLoad makes runs stop (SIGTRAP, "library loaded") each time the
// guest maps an image, so a caller can place breakpoints in DLLs as they
// arrive. Only the wine userland loads DLLs this way; it is a no-op for
// synth.
func (t *Target) SetStopOnLoad(on bool) {
	t.stopOnLoad = on
	if t.wine != nil {
		t.loadGen = t.wine.ModuleGeneration()
	}
}

// wineQuantum is the time slice of a guest thread while several live, in
// translation blocks (some millions of instructions).
const wineQuantum = 200_000

// swapShadow keeps one shadow call stack per guest thread: when a thread
// switch happened, the machine's stack is the previous thread's.
func (t *Target) swapShadow(prev uint32, ev wine.Event) {
	if !ev.Switched || t.m.ShadowStack() == nil {
		return
	}
	if t.shadows == nil {
		t.shadows = map[uint32][]unicorn.ShadowFrame{}
	}
	t.shadows[prev] = t.m.ShadowStack()
	cur := t.wine.CurrentThread()
	t.m.SetShadowFrames(t.shadows[cur])
	delete(t.shadows, cur)
}
