package tests

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestInferiorCallsMingwGDB: GDB's inferior calls return through a
// breakpoint it puts on the (non-executable) stack; the stub reports that
// fetch as the breakpoint, so calls return their value without a fault
// message, and printf with a string literal (which GDB allocates in the
// guest with malloc) works. Debian's gdb has no Windows calling
// convention (arguments go to rdi, rsi...): only mingw-gdb is asked.
func TestInferiorCallsMingwGDB(t *testing.T) {
	gdb := testkit.Tool(t, "x86_64-w64-mingw32-gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr, "break count", "continue",
				"call square(5)", "print square(2)+1", `printf "%s|%d\n", "xy", add(2,3)`,
				"continue", "kill")
			assert.Contains(t, out, "$1 = 25")
			assert.Contains(t, out, "$2 = 5")
			assert.Contains(t, out, "xy|5\n")
			assert.Contains(t, out, "Breakpoint 1, count (i=1)", "the program goes on after the calls")
			assert.NotContains(t, out, "access violation")
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
	}
}

// TestInferiorCallsLLDB: LLDB's expression evaluator allocates guest
// memory (_M) for JIT code, places the arguments where the Windows x64
// ABI wants them (the description's generic arg roles), and rewrites its
// code buffer for each expression (the stub drops stale translations).
func TestInferiorCallsLLDB(t *testing.T) {
	testkit.Tool(t, "lldb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			out := testkit.LLDB(t, exe, stub.Addr, "breakpoint set -n count", "continue",
				"expression square(3)", "expression add(3,4)+1", "expression (int)square(5)+add(1,1)",
				"continue", "kill")
			assert.Contains(t, out, "(int) $0 = 9")
			assert.Contains(t, out, "(int) $1 = 8")
			assert.Contains(t, out, "(int) $2 = 27")
			assert.Contains(t, out, "count(i=1)", "the program goes on after the calls")
			if t.Failed() {
				t.Logf("lldb output:\n%s", out)
			}
		})
	}
}
