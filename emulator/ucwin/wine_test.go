package ucwin

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func needWine(t *testing.T) {
	t.Helper()
	if !wine.Installed() {
		testkit.Missing(t, "Wine 8's PE DLLs (package libwine) are not installed")
	}
}

// verifyFromMain runs exe in the wine userland to main, then single-steps
// it to its end, and before every instruction checks the monitor's walk
// (made without the shadow stack) against the emulator's shadow call
// stack: through the program, msvcrt, kernelbase, ntdll's system-call
// thunks and, for a C++ throw, libgcc's unwinder and Wine's RtlUnwindEx.
func verifyFromMain(t *testing.T, exe string, maxSteps int) (steps int, out string) {
	var stdout bytes.Buffer
	tg, err := New(Config{Program: exe, Userland: UserlandWine, ShadowStack: true, Stdout: &stdout, Root: t.TempDir()})
	require.NoError(t, err)
	defer tg.Close()
	mon := tg.Commands()
	main, err := mon.Resolve("main")
	require.NoError(t, err)
	require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, main, 1))
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err)
	require.Equal(t, rsp.StopSWBreak, st.Kind, "%+v", st)
	require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, main, 1))
	step := []rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}}
	var mismatches []string
	for ; steps < maxSteps; steps++ {
		res, err := mon.VerifyUnwind()
		require.NoError(t, err)
		if res.Mismatch != "" {
			pc, _ := tg.Machine().Reg(arch.RIP)
			if len(mismatches) < 10 {
				mismatches = append(mismatches, fmt.Sprintf("step %d at %s: %s", steps, mon.SymbolName(pc), res.Mismatch))
			}
		}
		st, err := tg.Resume(step)
		require.NoError(t, err)
		if st.Kind == rsp.StopExited {
			break
		}
		require.Equal(t, rsp.StopSignal, st.Kind, "step %d: %+v", steps, st)
	}
	assert.Empty(t, mismatches, "the walk disagrees with the shadow stack")
	return steps, stdout.String()
}

func TestWineShadowHello(t *testing.T) {
	needWine(t)
	exe := testkit.BuildPE(t, "guest/wine/testdata/hello.c", testkit.MinGW, "-O1")
	steps, out := verifyFromMain(t, exe, 2_000_000)
	t.Logf("%d instructions from main to the end, each checked", steps)
	assert.Contains(t, out, "hello from printf")
	assert.Greater(t, steps, 1000)
}

func TestWineShadowCxxException(t *testing.T) {
	needWine(t)
	exe := testkit.BuildPE(t, "guest/wine/testdata/throw.cc", testkit.MinGWCXX, "-O1", "-static")
	steps, out := verifyFromMain(t, exe, 3_000_000)
	t.Logf("%d instructions from main to the end, each checked", steps)
	assert.Contains(t, out, "caught 42")
}

var _ = monitor.ErrNoShadowStack

// BenchmarkWineSyscalls runs tests/testdata/syscalls.c (a loop of
// NtQueryPerformanceCounter through ntdll's thunk) in the wine userland,
// b.N system calls: "hook" serves them in place from the syscall hook,
// "stop" stops the emulator for each one (the path of calls that cannot
// be served in place).
func BenchmarkWineSyscalls(b *testing.B) {
	if !wine.Installed() {
		b.Skip("Wine 8's PE DLLs (package libwine) are not installed")
	}
	exe := testkit.BuildPE(b, "tests/testdata/syscalls.c", testkit.MinGW, "-O2")
	for _, inPlace := range []bool{true, false} {
		name := map[bool]string{true: "hook", false: "stop"}[inPlace]
		b.Run(name, func(b *testing.B) {
			tg, err := New(Config{Program: exe, Args: []string{fmt.Sprint(b.N)}, Userland: UserlandWine, Root: b.TempDir()})
			require.NoError(b, err)
			defer tg.Close()
			if !inPlace {
				tg.Machine().SetSyscallHandler(nil)
			}
			mon := tg.Commands()
			main, err := mon.Resolve("main")
			require.NoError(b, err)
			require.NoError(b, tg.InsertBreakpoint(rsp.BreakSoftware, main, 1))
			st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			require.NoError(b, err)
			require.Equal(b, rsp.StopSWBreak, st.Kind, "%+v", st)
			require.NoError(b, tg.RemoveBreakpoint(rsp.BreakSoftware, main, 1))
			b.ResetTimer()
			st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			b.StopTimer()
			require.NoError(b, err)
			require.Equal(b, rsp.StopExited, st.Kind, "%+v", st)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
