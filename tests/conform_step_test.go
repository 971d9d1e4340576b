package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

const confSrc = "tests/testdata/conf.c"

// confLine is the line of conf.c that carries marker (LINE_STEP, ...).
func confLine(t testing.TB, marker string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.Root(), confSrc))
	require.NoError(t, err)
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "/* "+marker+" */") {
			return i + 1
		}
	}
	t.Fatalf("no %s in %s", marker, confSrc)
	return 0
}

// TestStepStopsAtBreakpointInRange: `next`, `step` and `until` walk a
// line whose middle holds a breakpoint (`midline`); GDB range-steps the
// line (vCont;r), and each must stop there ("Breakpoint 2, 0x... in
// stepped"), as they do against gdbserver (see the command table).
func TestStepStopsAtBreakpointInRange(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	line := confLine(t, "LINE_STEP")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			var stub *testkit.StubProc
			if userland == "wine" {
				stub = testkit.StartWineStub(t, exe)
			} else {
				stub = testkit.StartStub(t, exe)
			}
			out := testkit.GDB(t, gdb, exe, stub.Addr,
				fmt.Sprintf("break conf.c:%d", line),
				"continue",
				"break *midline",
				"echo @@next\\n", "next",
				"continue",
				"echo @@step\\n", "step",
				"continue",
				"echo @@until\\n", "until",
				"echo @@end\\n",
				"kill")
			for _, cmd := range []string{"next", "step", "until"} {
				to := map[string]string{"next": "@@step", "step": "@@until", "until": "@@end"}[cmd]
				assert.Regexp(t, `Breakpoint 2, 0x[0-9a-f]+ in stepped `, section(out, "@@"+cmd, to),
					"%s ran past the breakpoint inside the line", cmd)
			}
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
	}
}
