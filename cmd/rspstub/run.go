package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
)

// Exit codes of rspstub run.
const (
	runHit   = 0 // the breakpoint was hit (the requested number of times)
	runEnded = 1 // the program ended (or stopped for good) first
	runUsage = 2 // bad command line, program or breakpoint
)

// maxSpuriousStops bounds stops that are neither the breakpoint nor an
// end (a guest int3, a stray trap): each resumes the program.
const maxSpuriousStops = 10000

const runUsageText = `Usage: rspstub run PROGRAM.exe [flags] [--] [ARGS...]

Runs PROGRAM in the emulator without a debugger. With --break, until the
N-th hit of a breakpoint (or until the program ends), then prints the
stop, the backtrace and/or the registers; exit status: 0 the breakpoint
was hit, 1 the program ended (or faulted) first, 2 bad input. Without
--break, until the program ends; the exit status is then the program's
exit code (its low 8 bits), 2 bad input, 125 when the program stopped
for another reason (an unimplemented call, a deadlock), which is printed
on stderr.

--break takes a symbol of the program (its COFF symbol table: "d", "main"), an
export of a loaded DLL ("msvcrt!fputc", "KERNEL32!ExitProcess"), with
an optional +offset, or an address (0x140001550).

With --json, stdout is exactly one JSON object (see README.md, "Monitor
commands"); the program's own output then goes to stderr.

Flags:
`

// runResult is the JSON object rspstub run --json prints.
type runResult struct {
	Program     string              `json:"program"`
	Break       string              `json:"break"`
	Address     string              `json:"address"`
	Hit         bool                `json:"hit"`
	Hits        int                 `json:"hits"`
	Count       int                 `json:"count"`
	Stop        string              `json:"stop"` // breakpoint, exited, signal, timeout
	Description string              `json:"description,omitempty"`
	ExitCode    *int                `json:"exit_code,omitempty"`
	Signal      int                 `json:"signal,omitempty"`
	Frames      []monitor.FrameJSON `json:"frames,omitempty"`
	Regs        map[string]string   `json:"regs,omitempty"`
	Minidump    string              `json:"minidump,omitempty"` // the file written
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brk      = fs.String("break", "", "where to stop: SYMBOL, MODULE!SYMBOL[+OFF] or 0xADDR (without it: run to the end)")
		count    = fs.Int("count", 1, "stop at the N-th hit of the breakpoint")
		bt       = fs.Bool("bt", false, "print the backtrace at the stop (the default when neither --bt nor --regs is given; always in --json)")
		regs     = fs.Bool("regs", false, "print the registers at the stop (\"regs\" in --json)")
		asJSON   = fs.Bool("json", false, "print one JSON object on stdout (the program's output goes to stderr)")
		shadow   = fs.Bool("shadow-stack", false, "keep a shadow call stack: exact frames through code without unwind data (shellcode, JIT code) and a check of the backtrace (reported in text mode); off by default, it slows call-heavy code about 1.4x and tight loops up to 7.5x")
		timeout  = fs.Duration("timeout", 0, "give up after this long (0: no limit); counts as the program not reaching the breakpoint")
		maxFrame = fs.Int("max-frames", 0, "at most this many frames in the backtrace (0: the unwinder's default)")
		verbose  = fs.Bool("v", false, "verbose logging to stderr")
		dump     = fs.String("minidump", "", "write a Windows minidump to this file at the stop (the breakpoint, or a fault no handler took); not written when the program exits normally")
		unwinder = unwinderFlag(fs)
		dllPaths multiFlag
		gf       = addGuestFlags(fs)
	)
	fs.Var(&dllPaths, "dll-path", "a folder to search for the program's DLLs (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsageText)
		fs.PrintDefaults()
	}
	// PROGRAM may come before or after the flags; what follows PROGRAM
	// and the flags after it are the program's arguments.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return runUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "rspstub run: no program given")
		fs.Usage()
		return runUsage
	}
	prog := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return runUsage
	}
	guestArgs := fs.Args()
	land, err := gf.check()
	if err != nil {
		fmt.Fprintf(stderr, "rspstub run: %s\n", oneLine(err))
		return runUsage
	}
	if *count < 1 {
		fmt.Fprintf(stderr, "rspstub run: --count must be at least 1, not %d\n", *count)
		return runUsage
	}
	if *maxFrame < 0 {
		fmt.Fprintf(stderr, "rspstub run: --max-frames must not be negative\n")
		return runUsage
	}
	if !*bt && !*regs {
		*bt = true
	}
	if _, err := os.Stat(prog); err != nil {
		fmt.Fprintf(stderr, "rspstub run: %v\n", err)
		return runUsage
	}
	if *dump != "" {
		if err := minidump.CheckPath(*dump); err != nil {
			fmt.Fprintf(stderr, "rspstub run: --minidump: %s\n", oneLine(err))
			return runUsage
		}
	}
	guestOut := stdout
	if *asJSON {
		guestOut = stderr
	}
	log := newLogger(stderr, *verbose)
	if !*verbose && !*gf.traceSyscalls && *gf.wineDebug == "" {
		// Only warnings: the output is for scripts.
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg := ucwin.Config{
		Program:       prog,
		Args:          guestArgs,
		DLLPaths:      dllPaths,
		ShadowStack:   *shadow,
		Stdout:        guestOut,
		Stderr:        stderr,
		Logger:        log,
		DeliverFaults: true,
		DumpFaults:    *dump != "",
	}
	gf.apply(&cfg, land)
	if *asJSON {
		cfg.StdioKinds[1] = cfg.StdioKinds[2] // the program's output goes to stderr
	}
	target, stop, ok := gf.startUnicorn("run", "rspstub run", cfg, log, stderr)
	if !ok {
		return runUsage
	}
	defer stop()
	view := debuggee.New(target)
	view.SetCFIPreference(*unwinder)
	mon := view.Commands()
	if *brk == "" {
		return runToEnd(target, mon, prog, *timeout, *asJSON, *dump, stdout, stderr)
	}
	// A breakpoint in a DLL the program loads later is pending: the run
	// stops at each load until the DLL is there.
	addr, err := mon.Resolve(*brk)
	var notLoaded *monitor.NotLoadedError
	pending := errors.As(err, &notLoaded) && target.Userland() == ucwin.UserlandWine
	switch {
	case pending:
		target.SetStopOnLoad(true)
	case err != nil:
		fmt.Fprintf(stderr, "rspstub run: --break %s: %s\n", *brk, oneLine(err))
		return runUsage
	default:
		if err := target.InsertBreakpoint(rsp.BreakSoftware, addr, 1); err != nil {
			fmt.Fprintf(stderr, "rspstub run: --break %s (%#x): %s\n", *brk, addr, oneLine(err))
			return runUsage
		}
	}
	if *timeout > 0 {
		timer := time.AfterFunc(*timeout, target.Interrupt)
		defer timer.Stop()
	}

	res := runResult{Program: prog, Break: *brk, Address: fmt.Sprintf("%#x", addr), Count: *count}
	var st rsp.Stop
	for spurious := 0; ; {
		st, err = target.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
		if err != nil {
			fmt.Fprintf(stderr, "rspstub run: %s\n", oneLine(err))
			return runEnded
		}
		if pending && st.Library && st.Description == "library loaded" {
			a, err := mon.Resolve(*brk)
			if errors.As(err, &notLoaded) {
				continue
			}
			if err != nil {
				fmt.Fprintf(stderr, "rspstub run: --break %s: %s\n", *brk, oneLine(err))
				return runUsage
			}
			pending, addr = false, a
			target.SetStopOnLoad(false)
			res.Address = fmt.Sprintf("%#x", addr)
			if err := target.InsertBreakpoint(rsp.BreakSoftware, addr, 1); err != nil {
				fmt.Fprintf(stderr, "rspstub run: --break %s (%#x): %s\n", *brk, addr, oneLine(err))
				return runUsage
			}
			continue
		}
		pc, _ := target.Machine().Reg(arch.RIP)
		if (st.Kind == rsp.StopSWBreak || st.Kind == rsp.StopHWBreak) && pc == addr {
			res.Hits++
			if res.Hits >= *count {
				res.Hit, res.Stop = true, "breakpoint"
				break
			}
			continue
		}
		if st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP && st.Description == "" && spurious < maxSpuriousStops {
			spurious++
			continue
		}
		switch st.Kind {
		case rsp.StopExited:
			code := st.ExitCode
			res.Stop, res.ExitCode = "exited", &code
			res.Description = fmt.Sprintf("the program exited with code %d", code)
		case rsp.StopTerminated:
			res.Stop, res.Signal = "terminated", st.Signal
			res.Description = fmt.Sprintf("the program was terminated (signal %d)", st.Signal)
		default:
			res.Stop, res.Signal = "signal", st.Signal
			if st.Signal == rsp.SIGINT {
				res.Stop = "timeout"
			}
			res.Description = st.Description
			if res.Description == "" {
				res.Description = fmt.Sprintf("stopped with signal %d", st.Signal)
			}
			if res.Stop == "timeout" {
				res.Description = fmt.Sprintf("timed out after %v", *timeout)
			}
		}
		break
	}
	alive := st.Kind != rsp.StopExited && st.Kind != rsp.StopTerminated
	if *dump != "" {
		res.Minidump = writeRunDump(target, *dump, st, stderr)
	}

	var trace *monitor.Backtrace
	var regVals *monitor.Registers
	if alive {
		trace, err = mon.Backtrace(monitor.BacktraceOptions{MaxFrames: *maxFrame})
		if err != nil {
			fmt.Fprintf(stderr, "rspstub run: backtrace: %s\n", oneLine(err))
		}
		if *regs {
			r, err := monitorRegisters(target)
			if err != nil {
				fmt.Fprintf(stderr, "rspstub run: registers: %s\n", oneLine(err))
			} else {
				regVals = &r
			}
		}
	}
	code := runEnded
	if res.Hit {
		code = runHit
	}
	if *asJSON {
		if trace != nil { // frames are always part of the JSON result
			res.Frames = trace.JSON()
			if res.Frames == nil {
				res.Frames = []monitor.FrameJSON{}
			}
		}
		if regVals != nil {
			res.Regs = registerMap(regVals)
		}
		if err := writeJSONTo(stdout, res); err != nil {
			fmt.Fprintf(stderr, "rspstub run: %v\n", err)
			return runEnded
		}
		return code
	}
	if res.Hit {
		fmt.Fprintf(stdout, "breakpoint %s (%#x) hit", *brk, addr)
		if *count > 1 {
			fmt.Fprintf(stdout, " %d times", res.Hits)
		}
		fmt.Fprintln(stdout)
	} else {
		fmt.Fprintf(stdout, "breakpoint %s (%#x) not reached (%d of %d hits): %s\n", *brk, addr, res.Hits, *count, res.Description)
	}
	if trace != nil && *bt {
		monitor.WriteTable(stdout, trace, false)
		if *shadow {
			if vr, err := mon.VerifyUnwind(); err == nil {
				if vr.Mismatch != "" {
					fmt.Fprintf(stdout, "-- shadow stack MISMATCH: %s\n", vr.Mismatch)
				} else {
					fmt.Fprintf(stdout, "-- the shadow call stack agrees (%d calls)\n", vr.Checked)
				}
			}
		}
	}
	if regVals != nil {
		writeRegisters(stdout, regVals)
	}
	return code
}

func monitorRegisters(t *ucwin.Target) (monitor.Registers, error) {
	var r monitor.Registers
	for reg := arch.RAX; reg <= arch.RFLAGS; reg++ {
		v, err := t.Machine().Reg(reg)
		if err != nil {
			return r, err
		}
		switch {
		case reg <= arch.R15:
			r.GPR[reg] = v
		case reg == arch.RIP:
			r.RIP = v
		default:
			r.RFLAGS = v
		}
	}
	return r, nil
}

// regOrder is the order registers are printed in.
var regOrder = []arch.Reg{arch.RAX, arch.RBX, arch.RCX, arch.RDX, arch.RSI, arch.RDI, arch.RBP, arch.RSP,
	arch.R8, arch.R9, arch.R10, arch.R11, arch.R12, arch.R13, arch.R14, arch.R15, arch.RIP, arch.RFLAGS}

func registerMap(r *monitor.Registers) map[string]string {
	m := make(map[string]string, len(regOrder))
	for _, reg := range regOrder {
		m[reg.String()] = fmt.Sprintf("%#x", r.Get(reg))
	}
	return m
}

func writeRegisters(w io.Writer, r *monitor.Registers) {
	var line strings.Builder
	for i, reg := range regOrder {
		fmt.Fprintf(&line, "%-6s %016x", reg, r.Get(reg))
		if i%3 == 2 || i == len(regOrder)-1 {
			fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
			line.Reset()
		} else {
			line.WriteString("   ")
		}
	}
}

func writeJSONTo(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// runExitStopped is run's exit status when the program stopped for good
// without exiting (an unimplemented call, a deadlock, a kernel error).
const runExitStopped = 125

// writeRunDump writes --minidump at the run's stop and returns the path
// written ("" when none: the program had ended, or the write failed,
// which stderr says).
func writeRunDump(target *ucwin.Target, path string, st rsp.Stop, stderr io.Writer) string {
	var (
		s   minidump.Summary
		err error
	)
	d, code := target.FaultDump()
	switch {
	case st.Kind == rsp.StopExited && d != nil && uint32(st.ExitCode) == code:
		// The program's handlers did not take the fault: it ended the
		// process. The dump is the process at the fault.
		s = d.Summary()
		s.FileBytes, err = minidump.WriteFile(path, d)
	case st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated:
		fmt.Fprintf(stderr, "rspstub run: --minidump: not written: the program ended\n")
		return ""
	default:
		s, err = target.WriteMinidump(path, false)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rspstub run: --minidump: %s\n", oneLine(err))
		return ""
	}
	fmt.Fprintf(stderr, "rspstub run: wrote %s: %s\n", path, monitor.DescribeMinidump(s))
	return path
}

// runToEnd runs the program until it ends and exits with its code.
func runToEnd(target *ucwin.Target, mon *monitor.Monitor, prog string, timeout time.Duration, asJSON bool, dump string, stdout, stderr io.Writer) int {
	if timeout > 0 {
		timer := time.AfterFunc(timeout, target.Interrupt)
		defer timer.Stop()
	}
	res := runResult{Program: prog}
	var st rsp.Stop
	var err error
	for spurious := 0; ; spurious++ {
		st, err = target.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
		if err != nil {
			fmt.Fprintf(stderr, "rspstub run: %s\n", oneLine(err))
			return runExitStopped
		}
		if st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP && st.Description == "" && spurious < maxSpuriousStops {
			continue
		}
		if dump != "" {
			res.Minidump = writeRunDump(target, dump, st, stderr)
			dump = ""
			if target.SecondChance() {
				continue // the process ends with the exception's code, as without --minidump
			}
		}
		break
	}
	code := runExitStopped
	switch st.Kind {
	case rsp.StopExited:
		c := st.ExitCode
		res.Stop, res.ExitCode = "exited", &c
		res.Description = fmt.Sprintf("the program exited with code %d (%#x)", c, uint32(c))
		if st.Description != "" {
			res.Description += ": " + st.Description
		} else if e, ok := target.EndingException(uint32(c)); ok {
			// Its handlers did not take a fault: Windows ends the
			// process with the exception's code, silently.
			res.Description += ": no handler took " + e
			st.Description = e
		}
		code = c & 0xff
	case rsp.StopTerminated:
		res.Stop, res.Signal = "terminated", st.Signal
		res.Description = fmt.Sprintf("the program was terminated (signal %d)", st.Signal)
	default:
		res.Stop, res.Signal = "signal", st.Signal
		res.Description = st.Description
		if st.Signal == rsp.SIGINT {
			res.Stop, res.Description = "timeout", fmt.Sprintf("timed out after %v", timeout)
		}
		if res.Description == "" {
			res.Description = fmt.Sprintf("stopped with signal %d", st.Signal)
		}
		if tr, err := mon.Backtrace(monitor.BacktraceOptions{}); err == nil {
			res.Frames = tr.JSON()
			if !asJSON {
				fmt.Fprintf(stderr, "rspstub run: %s\n", res.Description)
				monitor.WriteTable(stderr, tr, false)
			}
		}
	}
	if asJSON {
		if err := writeJSONTo(stdout, res); err != nil {
			fmt.Fprintf(stderr, "rspstub run: %v\n", err)
		}
	} else if res.Stop == "exited" && st.Description != "" {
		fmt.Fprintf(stderr, "rspstub run: %s\n", res.Description)
	}
	return code
}
