// Package monitortest helps regression tests of emulated Windows programs:
// connect to a stopped stub (ours or any RSP stub with a Windows library
// list), run to a breakpoint, take a backtrace in the client, and compare
// it with a golden file that "go test -update" rewrites.
//
//	s := monitortest.Start(t, "demo.exe", nil)  // our stub, in-process
//	// or: c, _ := rsp.Dial(addr); s := monitortest.Attach(t, c, files)
//	//     for any stub (rspstub serve, QEMU, gdbserver)
//	s.RunTo(t, "d")                             // breakpoint on a symbol, continue
//	monitortest.Golden(t, "testdata/d.golden", monitortest.Stack(s.Backtrace(t)))
package monitortest

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// Golden compares got with the file at path, or writes it when the test
// runs with -update (the kit's golden files: internal/testkit.Golden).
func Golden(t testing.TB, path, got string) {
	t.Helper()
	testkit.GoldenString(t, path, got)
}

// Stack renders a backtrace without addresses, one frame a line
// ("demo.exe!d", "KERNEL32.dll!BaseThreadInitThunk", "demo.exe+0x1234"),
// then how the walk ended: stable across builds and address layouts.
func Stack(bt *monitor.Backtrace) string {
	var b strings.Builder
	for _, f := range bt.Frames {
		switch {
		case f.Loc.Module == "":
			b.WriteString("?")
		case f.Loc.Symbol != "":
			b.WriteString(f.Loc.Module + "!" + f.Loc.Symbol)
		default:
			fmt.Fprintf(&b, "%s+%#x", f.Loc.Module, f.Loc.RVA)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "-- %s\n", bt.Reason)
	return b.String()
}

// Session is a connected stub with the monitor running in the client.
type Session struct {
	Client  *rsp.Client
	Monitor *monitor.Monitor
}

// Attach wraps a connected client; files gives module file bytes (for
// COFF symbols, DWARF lines and CFI) and may be nil.
func Attach(t testing.TB, c *rsp.Client, files func(monitor.Module) ([]byte, error)) *Session {
	t.Helper()
	return &Session{Client: c, Monitor: monitor.New(monitor.Remote(c, files))}
}

// RunTo sets a breakpoint at where (symbol, module!symbol or 0xADDR),
// continues until it is hit, and removes it.
func (s *Session) RunTo(t testing.TB, where string) rsp.Stop {
	t.Helper()
	addr, err := s.Monitor.Resolve(where)
	require.NoError(t, err, "break %s", where)
	require.NoError(t, s.Client.SetBreakpoint(rsp.BreakSoftware, addr, 1), "break %s (%#x)", where, addr)
	defer s.Client.RemoveBreakpoint(rsp.BreakSoftware, addr, 1)
	st, err := s.Client.Continue()
	require.NoError(t, err, "continue to %s", where)
	require.Contains(t, []rsp.StopKind{rsp.StopSWBreak, rsp.StopHWBreak}, st.Kind, "continue to %s: stopped with %+v", where, st)
	return st
}

// ReverseStep undoes one instruction (bs; StartRecorded sessions).
func (s *Session) ReverseStep(t testing.TB) rsp.Stop {
	t.Helper()
	st, err := s.Client.ReverseStep()
	require.NoError(t, err, "reverse-stepi")
	return st
}

// ReverseContinue goes back to the last breakpoint or watchpoint hit
// (bc; StartRecorded sessions); ReplayLog "begin" means none was hit.
func (s *Session) ReverseContinue(t testing.TB) rsp.Stop {
	t.Helper()
	st, err := s.Client.ReverseContinue()
	require.NoError(t, err, "reverse-continue")
	return st
}

// BackToWrite goes back to the last write to [addr, addr+size) before
// the current position: the session stops before the writing
// instruction, and the backtrace there says who wrote.
func (s *Session) BackToWrite(t testing.TB, addr uint64, size int) rsp.Stop {
	t.Helper()
	require.NoError(t, s.Client.SetBreakpoint(rsp.WatchWrite, addr, size), "watch %#x", addr)
	defer s.Client.RemoveBreakpoint(rsp.WatchWrite, addr, size)
	return s.ReverseContinue(t)
}

// Position is the number of instructions executed (monitor when).
func (s *Session) Position(t testing.TB) uint64 {
	t.Helper()
	out, err := s.Client.Monitor("when")
	require.NoError(t, err, "monitor when")
	var n uint64
	_, err = fmt.Sscanf(strings.TrimSpace(out), "position %d", &n)
	require.NoError(t, err, "monitor when: %q", out)
	return n
}

// Backtrace walks the stopped thread's stack in the client.
func (s *Session) Backtrace(t testing.TB) *monitor.Backtrace {
	t.Helper()
	bt, err := s.Monitor.Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err, "backtrace")
	return bt
}

// ReadU64 reads a little-endian word of guest memory.
func (s *Session) ReadU64(t testing.TB, addr uint64) uint64 {
	t.Helper()
	var b [8]byte
	n, err := s.Client.ReadMemory(addr, b[:])
	require.Equal(t, 8, n, "read %#x: %v", addr, err)
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Start loads exe in the Unicorn backend, serves it over RSP on a
// loopback port in this process, and attaches a client to it. The guest's
// output goes to stdout (nil: discarded). Everything stops when the test
// ends.
func Start(t testing.TB, exe string, stdout io.Writer, args ...string) *Session {
	t.Helper()
	return start(t, ucwin.Config{Program: exe, Args: args, Stdout: stdout, Stderr: stdout})
}

// StartRecorded is Start with the execution recorded (rspstub serve
// --record): the session can go back in time (ReverseStep,
// ReverseContinue, BackToWrite), for tests that bisect a failure back to
// its cause.
func StartRecorded(t testing.TB, exe string, stdout io.Writer, args ...string) *Session {
	t.Helper()
	return start(t, ucwin.Config{Program: exe, Args: args, Stdout: stdout, Stderr: stdout, Record: true})
}

func start(t testing.TB, cfg ucwin.Config) *Session {
	t.Helper()
	exe := cfg.Program
	if cfg.Stdout == nil {
		cfg.Stdout, cfg.Stderr = io.Discard, io.Discard
	}
	tg, err := ucwin.New(cfg)
	require.NoError(t, err, "load %s", exe)
	t.Cleanup(func() { tg.Close() }) // after the server's and the client's
	quiet := slog.New(slog.DiscardHandler)
	srv := rsptest.Start(t, debuggee.New(tg), rsp.WithLogger(quiet))
	c, err := rsp.Dial(srv.Addr, rsp.WithClientLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return Attach(t, c, func(m monitor.Module) ([]byte, error) { return tg.Process().ModuleImage(m.Name) })
}
