package tests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestHostileSelfModifyingCodeGDB: with real gdb, a breakpoint sits on a
// function the guest rewrites (after calling it once) and calls again
// (monitor/testdata/hostile.c, "smc"). The breakpoint stops both calls,
// gdb reads the new bytes at it, the new code runs, and the stub still
// answers monitor bt there.
func TestHostileSelfModifyingCodeGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "monitor/testdata/hostile.c", testkit.MinGW, "-O0")
	stub := testkit.StartStub(t, exe, "smc")
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		// At the entry itself: gdb's "break smc_target" skips the prolog
		// (+4), which the rewrite turns into the middle of an instruction
		// that never executes.
		"break *smc_target",
		"continue",
		"echo @@first\\n",
		"x/6xb smc_target",
		"continue",
		"echo @@second\\n",
		"info symbol $pc",
		"x/6xb smc_target",
		"monitor bt -n 2",
		"echo @@end\\n",
		"delete",
		"continue",
	)
	t.Logf("gdb output:\n%s", out)
	first, rest, _ := strings.Cut(out, "@@first")
	second, end, _ := strings.Cut(rest, "@@second")
	assert.Equal(t, 2, strings.Count(first+second, "Breakpoint 1, "), "the breakpoint's stops (before and after the rewrite)")
	assert.Regexp(t, `smc_target in section \.text|smc_target\(\) in section`, end, "second stop is not at smc_target")
	bytesRE := `<smc_target>:\s+0xb8\s+0x2a\s+0x00\s+0x00\s+0x00\s+0xc3`
	assert.NotRegexp(t, bytesRE, second, "the rewritten bytes show before the rewrite")
	assert.Regexp(t, bytesRE, end, "gdb does not read the rewritten bytes at the breakpoint")
	assert.Contains(t, end, "!smc_target", "monitor bt at the rewritten function")
	assert.Contains(t, out+stub.Stdout(), "after 42", "the rewritten code did not run (no \"after 42\")")
}
