package tests

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// scenarioProgram builds what each backend runs: conf.c as a Windows
// program (Unicorn) or a Linux one (QEMU user), the multiboot guest for
// QEMU system. fn is the function both debuggers stop in.
func scenarioProgram(t *testing.T, b testkit.Backend) (prog, symbols, fn string) {
	t.Helper()
	switch b {
	case testkit.UnicornSynth, testkit.UnicornWine:
		exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
		return exe, exe, "count"
	case testkit.QEMUUser:
		elf := testkit.BuildELF(t, confSrc, "-O0", "-g", "-no-pie", "-fno-pie")
		return elf, elf, "count"
	case testkit.QEMUSystem:
		boot, syms := testkit.BuildQEMUKernel(t)
		return boot, syms, "tick"
	}
	t.Fatalf("unknown backend %s", b)
	return
}

// TestScenarioPerBackend is one GDB scenario and one LLDB scenario,
// written once and run against every backend through the kit's Start:
// a (hardware) breakpoint on a function, continue, the PC there, one
// instruction step that moves it.
func TestScenarioPerBackend(t *testing.T) {
	for _, b := range testkit.Backends {
		t.Run(string(b)+"/gdb", func(t *testing.T) {
			gdb := testkit.RequireTool(t, "gdb")
			prog, syms, fn := scenarioProgram(t, b)
			stub := testkit.Start(t, b, prog)
			out := testkit.GDB(t, gdb, syms, stub.Addr,
				"hbreak "+fn, "continue",
				"printf \"@pc1 %#lx\\n\", $pc", "info symbol $pc",
				"stepi", "printf \"@pc2 %#lx\\n\", $pc")
			assert.Regexp(t, regexp.MustCompile(`(?m)^`+fn+`( \+ \d+)? in section`), out, "stopped in %s", fn)
			pc1, pc2 := hexAfter(out, "@pc1 "), hexAfter(out, "@pc2 ")
			assert.NotZero(t, pc1, "pc at the breakpoint:\n%s", out)
			assert.NotEqual(t, pc1, pc2, "stepi moves the pc:\n%s", out)
		})
		t.Run(string(b)+"/lldb", func(t *testing.T) {
			prog, syms, fn := scenarioProgram(t, b)
			stub := testkit.Start(t, b, prog)
			out := testkit.LLDB(t, syms, stub.Addr,
				"breakpoint set --hardware --name "+fn, "continue",
				"register read pc", "thread step-inst", "register read pc")
			assert.Regexp(t, regexp.MustCompile(`stop reason = breakpoint 1\.1`), out)
			assert.Regexp(t, regexp.MustCompile("`"+fn+"\\b"), out, "stopped in %s", fn)
			pcs := regexp.MustCompile(`(?m)^\s*(?:rip|pc) = (0x[0-9a-f]+)`).FindAllStringSubmatch(out, -1)
			if assert.Len(t, pcs, 2, "two register reads of pc:\n%s", out) {
				assert.NotEqual(t, pcs[0][1], pcs[1][1], "thread step-inst moves the pc:\n%s", out)
			}
		})
	}
}

// hexAfter parses the hex number that follows marker in out (0 if none).
func hexAfter(out, marker string) uint64 {
	m := regexp.MustCompile(regexp.QuoteMeta(marker) + `(0x[0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	var v uint64
	fmt.Sscanf(m[1], "0x%x", &v)
	return v
}
