package wine

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/require"
)

// runResult is what running a program to its end gave.
type runResult struct {
	stdout, stderr bytes.Buffer
	exitCode       uint32
	proc           *Process
	stops          []string // stops other than system calls
}

// runProgram runs cfg.Program under the kernel in a real Unicorn machine
// until it exits, delivering faults to the guest as Windows would.
func runProgram(t testing.TB, cfg Config, maxStops int) *runResult {
	t.Helper()
	m, err := unicorn.New()
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	r := &runResult{}
	if cfg.Stdout == nil {
		cfg.Stdout = &r.stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = &r.stderr
	}
	p, err := Load(m, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	r.proc = p
	for i := 0; i < maxStops; i++ {
		st := m.Run()
		var ev Event
		switch st.Reason {
		case unicorn.StopSyscall:
			ev, err = p.Syscall()
			require.NoError(t, err)
		case unicorn.StopFault:
			kind := uint64(AccessRead)
			switch {
			case st.Access&arch.PermExec != 0:
				kind = AccessExecute
			case st.Access&arch.PermWrite != 0:
				kind = AccessWrite
			}
			r.stops = append(r.stops, fmt.Sprintf("fault %#x at %#x", st.Addr, st.PC))
			ev, err = p.DispatchException(Exception{Code: EXCEPTION_ACCESS_VIOLATION, Address: st.PC, Params: []uint64{kind, st.Addr}})
			require.NoError(t, err)
		case unicorn.StopDivide:
			ev, err = p.DispatchException(Exception{Code: EXCEPTION_INT_DIVIDE_BY_ZERO, Address: st.PC})
			require.NoError(t, err)
		default:
			pc, _ := m.Reg(arch.RIP)
			t.Fatalf("unexpected stop %v at %#x (%v); stdout so far %q, stderr %q", st.Reason, pc, st.Err, r.stdout.String(), r.stderr.String())
		}
		switch ev.Kind {
		case EventExited:
			r.exitCode = ev.ExitCode
			return r
		case EventNone:
		default:
			t.Fatalf("event %v: %s; stdout so far %q", ev.Kind, ev.Description, r.stdout.String())
		}
	}
	t.Fatalf("no exit after %d stops; stdout so far %q", maxStops, r.stdout.String())
	return r
}

// needWine skips (or fails under RSPSTUB_REQUIRE_TOOLS=1) without Wine's
// PE DLLs.
func needWine(t testing.TB) {
	t.Helper()
	if !Installed() {
		testkit.Missing(t, "Wine 8's PE DLLs (package libwine) are not installed")
	}
}

func TestHello(t *testing.T) {
	needWine(t)
	exe := testkit.BuildPE(t, "guest/wine/testdata/hello.c", testkit.MinGW, "-O1")
	r := runProgram(t, Config{Program: exe, Args: []string{"x"}, TraceSyscalls: true, Logger: testLogger(t)}, 10000)
	require.Equal(t, uint32(42), r.exitCode)
	require.Equal(t, "hello from WriteFile\nhello from printf, argc=2 argv0=C:\\rspstub\\"+filepath.Base(exe)+"\r\n", r.stdout.String())
}
