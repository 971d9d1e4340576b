package tests

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestConditionalBreakpointGDB: with ConditionalBreakpoints+ GDB hands
// `break count if i == 2` to the stub as an agent expression (it says
// "target evals"), and the first stop is the hit where i is 2: the two
// false hits before it never reach GDB.
func TestConditionalBreakpointGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr, "break count if i == 2", "continue",
				"info breakpoints", "continue")
			hits := regexp.MustCompile(`Breakpoint 1, count \(i=(\d)\)`).FindAllStringSubmatch(out, -1)
			if assert.Len(t, hits, 1) {
				assert.Equal(t, "2", hits[0][1])
			}
			assert.Contains(t, out, "stop only if i == 2 (target evals)")
			assert.Contains(t, out, "breakpoint already hit 1 time")
			assert.Contains(t, out, "exited with code 031")
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
	}
}
