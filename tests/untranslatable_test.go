package tests

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestUntranslatableGDB: with real gdb, a guest routine in VirtualAlloc'd
// memory holds 42 ff dd (which aborts libunicorn 2.0.1's translator) right
// after a breakpoint in the same translation block
// (tests/testdata/untranslatable.c). The breakpoint stops first; continuing
// stops with SIGILL exactly at the bytes, named in the stop's message; the
// registers and memory read back, monitor answers, and after gdb moves
// RIP past the bytes the program runs to its normal exit.
func TestUntranslatableGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/untranslatable.c", testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		"break *ready",
		"continue",
		"set $code = (unsigned char *)$rcx",
		"break *($code + 5)",
		"continue",
		"echo @@bp\\n",
		"p $pc - $code",
		"p $eax",
		"continue",
		"echo @@ill\\n",
		"p $pc - $code",
		"p $eax",
		"x/3xb $pc",
		"monitor bt",
		"echo @@skip\\n",
		"set $pc = $pc + 3",
		"delete",
		"continue",
	)
	t.Logf("gdb output:\n%s", out)
	bp := section(out, "@@bp", "@@ill")
	ill := section(out, "@@ill", "@@skip")
	end := section(out, "@@skip", "")
	require.NotEmpty(t, bp, "no stop at the breakpoint in the routine")
	assert.Regexp(t, `\$\d+ = 5\n\$\d+ = 41\n`, bp, "the breakpoint before inc eax")
	require.Contains(t, out, "Program received signal SIGILL")
	assert.Regexp(t, `illegal instruction at 0x[0-9a-f]+: bytes 42 ff dd`, out, "the stop's message")
	assert.Regexp(t, `\$\d+ = 7\n\$\d+ = 42\n`, ill, "SIGILL at the bytes, after inc eax ran")
	assert.Regexp(t, regexp.MustCompile(`:\s+0x42\s+0xff\s+0xdd`), ill, "memory at the pc")
	assert.Contains(t, ill, "!main+", "monitor bt at the stop")
	assert.Contains(t, end, "exited normally", "the program did not run to its end")
	assert.Contains(t, stub.Stdout(), "routine returned 42")
	assert.False(t, strings.Contains(stub.Stderr(), "panic"), "the stub panicked:\n%s", stub.Stderr())
}
