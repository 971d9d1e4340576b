package tests

import (
	"regexp"
	"strings"
	"testing"

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
	if n := strings.Count(first+second, "Breakpoint 1, "); n != 2 {
		t.Errorf("the breakpoint stopped %d times, want 2 (before and after the rewrite)", n)
	}
	if !strings.Contains(end, "smc_target in section .text") && !strings.Contains(end, "smc_target() in section") {
		t.Errorf("second stop is not at smc_target")
	}
	bytesRE := regexp.MustCompile(`<smc_target>:\s+0xb8\s+0x2a\s+0x00\s+0x00\s+0x00\s+0xc3`)
	if bytesRE.MatchString(second) {
		t.Errorf("the rewritten bytes show before the rewrite")
	}
	if !bytesRE.MatchString(end) {
		t.Errorf("gdb does not read the rewritten bytes at the breakpoint")
	}
	if !strings.Contains(end, "!smc_target") {
		t.Errorf("monitor bt at the rewritten function")
	}
	if !strings.Contains(out+stub.Stdout(), "after 42") {
		t.Errorf("the rewritten code did not run (no \"after 42\")")
	}
}
