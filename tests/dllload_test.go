package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestBreakAfterDLLLoad: the first stop after a DLL loaded at run time
// is a breakpoint; GDB must show it (issue 16 item 2: the stop used to
// carry swbreak and library together, GDB took it for a library event,
// resumed, and the breakpoint never showed). Both userlands; then
// continue runs to the exit.
func TestBreakAfterDLLLoad(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/dllload.c", testkit.MinGW, "-O0", "-g")
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(land), exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr, "break after", "continue", "bt 2", "info sharedlibrary", "continue")
			t.Logf("gdb:\n%s", out)
			assert.Regexp(t, `Breakpoint 1, after \(x=\d+\) at .*dllload\.c`, out)
			assert.Regexp(t, `(?i)version\.dll`, out, "the DLL loaded at run time is listed")
			assert.Contains(t, out, "[Inferior 1 (process 1) exited")
		})
	}
}

// TestRunBreakDLLLoadedLater: rspstub run --break on a function of a DLL
// the program loads at run time waits for the DLL and stops there (issue
// 16 item 9: "no module ... is loaded" before); the backtrace reaches
// main.
func TestRunBreakDLLLoadedLater(t *testing.T) {
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, "tests/testdata/dllload.c", testkit.MinGW, "-O0", "-g")
	r := testkit.RunStub(t, 2*time.Minute, nil, "run", "--userland", "wine", "--break", "version!GetFileVersionInfoSizeA", exe)
	t.Logf("rspstub run:\n%s%s", r.Stdout, r.Stderr)
	require.Zero(t, r.Code, "exit status 0: the breakpoint was hit")
	s := r.Stdout + r.Stderr
	assert.Regexp(t, `(?i)version!GetFileVersionInfoSizeA`, s)
	i := strings.Index(s, "main")
	assert.True(t, i > 0, "the backtrace reaches main")
}
