// Command rspstub is a GDB remote-protocol stub for emulated x86-64
// Windows programs. See README.md for a tour.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/rspstub/rspstub/monitor"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the stub failed while serving
	exitUsage = 2 // bad command line or bad input program
)

const usage = `rspstub: a GDB/LLDB remote stub for emulated x86-64 Windows programs

Usage:
  rspstub debug [--lldb|--mingw-gdb] PROGRAM.exe [ARGS...]
                                                one-command session: the stub on a private socket and
                                                gdb (or lldb) attached, with the unwinder script loaded
  rspstub serve [flags] PROGRAM.exe [ARGS...]   load PROGRAM into Unicorn and serve it
  rspstub run PROGRAM.exe --break SYMBOL|0xADDR [--count N] [--bt] [--regs] [--json] [--dll-path DIR]... [ARGS...]
                                                run PROGRAM without a debugger to a breakpoint; print the backtrace
  rspstub qemu [flags] --connect ADDR | -- QEMU ARGS...
                                                serve a QEMU gdbstub (qemu-system-x86_64, qemu-x86_64)
  rspstub check-unwind [--json] [-n N] FILE...  compare .pdata and DWARF CFI unwind data at every instruction
  rspstub gdb-script                            print the GDB Python unwinder (source it in gdb)
  rspstub lldb-script                           print the LLDB command script (command script import)
  rspstub version                               print the version

Run "rspstub debug -h", "rspstub serve -h", "rspstub run -h" or "rspstub qemu -h" for their flags.
`

var version = "0.1.0-dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "qemu" && os.Getenv("GOMAXPROCS") == "" {
		// The QEMU proxy does one thing at a time: with one P the
		// scheduler never wakes a second thread to look for work that
		// is not there. Measured under GDB's stepi: 23 thread switches
		// a step become 20, and the CPU rspstub takes from GDB and
		// QEMU on a small machine falls by a sixth.
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serveCmd(args[1:], stdout, stderr)
	case "debug":
		return debugCmd(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "qemu":
		return qemuCmd(args[1:], stdout, stderr)
	case "check-unwind":
		return checkUnwindCmd(args[1:], stdout, stderr)
	case "gdb-script":
		fmt.Fprint(stdout, monitor.GDBScript)
		return exitOK
	case "lldb-script":
		fmt.Fprint(stdout, monitor.LLDBScript)
		return exitOK
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "rspstub", version)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "rspstub: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// newLogger logs to stderr; -v shows debug messages (and, with
// --log-packets, every packet).
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
