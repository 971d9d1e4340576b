package monitor_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// verifyEveryInstruction single-steps exe to its end (or as far as the
// userland runs it) and runs verify-unwind before every instruction. It
// returns the steps taken and the first mismatches.
func verifyEveryInstruction(t *testing.T, exe string, args ...string) (int, []string) {
	t.Helper()
	tg, err := ucwin.New(ucwin.Config{Program: exe, Args: args, ShadowStack: true, Stdout: io.Discard, Stderr: io.Discard})
	require.NoError(t, err)
	defer tg.Close()
	mon := tg.Commands()
	step := []rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}}
	var mismatches []string
	steps := 0
	for ; steps < 3_000_000; steps++ {
		st, err := tg.Resume(step)
		require.NoError(t, err)
		if st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP || st.Description != "" {
			break
		}
		res, err := mon.VerifyUnwind()
		require.NoError(t, err)
		if res.Mismatch != "" {
			pc, _ := tg.Machine().Reg(arch.RIP)
			mismatches = append(mismatches, fmt.Sprintf("pc %#x: %s", pc, res.Mismatch))
		}
	}
	return steps, mismatches
}

// TestVerifyEveryInstructionPrograms is the survey of issue 14: the
// unwinder's own walk (no shadow stack) against the shadow call stack at
// every instruction of real programs. Two shapes it found, each now a
// regression case here:
//   - C++ exceptions (except.cc): free() reached from __cxa_end_catch
//     through _Unwind_DeleteException's REX.W jmp rax (an indirect tail
//     call), so the direct call in main never targets free's function;
//   - a C exception filter (seh.c) without a .pdata entry, called back
//     by the emulated exception dispatcher: its return address is the
//     stub's continuation, which follows no call instruction.
func TestVerifyEveryInstructionPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("single-steps whole programs")
	}
	lib := "/usr/x86_64-w64-mingw32/lib/"
	for _, p := range []struct {
		name, src string
		tc        testkit.Toolchain
		flags     []string
	}{
		{"demo-gcc-O0", "examples/demo/demo.c", testkit.MinGW, []string{"-O0", "-g"}},
		{"demo-gcc-O2", "examples/demo/demo.c", testkit.MinGW, []string{"-O2", "-g"}},
		{"demo-clang-O2", "examples/demo/demo.c", testkit.ClangMinGW, []string{"-O2", "-g"}},
		{"chkstk", "monitor/testdata/chkstk.c", testkit.MinGW, []string{"-O2"}},
		{"chain", "guest/testdata/chain.c", testkit.MinGW, []string{"-O0"}},
		{"except", "guest/testdata/except.cc", testkit.MinGWCXX, []string{"-O1", "-static"}},
		{"cxx-mingw", "monitor/testdata/cxx.cc", testkit.MinGWCXX, []string{"-O1", "-g"}},
		{"cxx-clang-msvc", "monitor/testdata/cxx.cc", testkit.ClangMSVC, []string{"-O1", "-fno-exceptions", "-fno-rtti", "-nostdlib",
			"-Wl,-entry:start", "-Wl,-subsystem:console", lib + "libkernel32.a"}},
		{"seh-clang-msvc", "guest/testdata/seh.c", testkit.ClangMSVC, []string{"-nostdlib", "-Wl,-entry:start",
			"-Wl,-subsystem:console", lib + "libkernel32.a", lib + "libmsvcrt.a"}},
	} {
		t.Run(p.name, func(t *testing.T) {
			exe := testkit.BuildPE(t, p.src, p.tc, p.flags...)
			steps, mism := verifyEveryInstruction(t, exe)
			t.Logf("%s: %d instructions stepped and verified", p.name, steps)
			assert.Greater(t, steps, 20)
			assert.Empty(t, mism, "%d mismatches, first:\n%s", len(mism), strings.Join(mism[:min(len(mism), 5)], "\n"))
		})
	}
}
