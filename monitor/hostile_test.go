package monitor_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// Hostile guests (issue 9): programs that wreck their own stack, unwind
// data or loader lists before they stop, on the real Unicorn backend.
// Every monitor command must answer within hostileBound with what it
// could find and, for bt, why it stopped. Outputs are logged (go test -v).

// hostileBound is how long one monitor command may take on a hostile
// guest (they take milliseconds; the bound catches loops).
const hostileBound = 2 * time.Second

// startHostile runs testdata/hostile.c with the scenario argument to the
// first hit of sym.
func startHostile(t *testing.T, scenario, sym string) (*ucwin.Target, *bytes.Buffer) {
	t.Helper()
	exe := testkit.BuildPE(t, "monitor/testdata/hostile.c", testkit.MinGW, "-O0")
	return runTo(t, ucwin.Config{Program: exe, Args: []string{scenario}}, sym)
}

// timedMonitor runs a command and fails when it takes longer than
// hostileBound. An error is an answer too, as long as it says something.
func timedMonitor(t *testing.T, tg *ucwin.Target, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	start := time.Now()
	err := debuggeetest.View(tg).Monitor(cmd, &out)
	d := time.Since(start)
	assert.LessOrEqual(t, d, hostileBound, "monitor %s took too long", cmd)
	if err != nil {
		assert.NotEmpty(t, err.Error(), "monitor %s: an error without words", cmd)
		assert.NotContains(t, err.Error(), "internal error", "monitor %s: unclear error", cmd)
		out.WriteString("error: " + err.Error() + "\n")
	}
	t.Logf("monitor %s (%v):\n%s", cmd, d.Round(time.Microsecond), out.String())
	return out.String()
}

// endLine is the "-- why the walk stopped" line of bt's table.
func endLine(t *testing.T, bt string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(bt), "\n")
	last := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "-- "), "bt output has no reason line:\n%s", bt)
	return last
}

func TestHostileGuests(t *testing.T) {
	for _, tc := range []struct {
		scenario, sym string
		// reason: what the end line of the first bt must mention. On a
		// looping chain bt falls back (CFI, a scan) where .pdata fails:
		// "bt -strict" must name the chain. nopdata_stop has no unwind
		// data: bt takes no return address that does not follow a call
		// of it, while "bt -strict" applies the Windows leaf rule.
		reason, strict string
	}{
		{"unmapped", "nopdata_stop", "unreadable", "unreadable"},
		{"lookalike", "nopdata_stop", "no provable return address", ""},
		{"cyclic", "nopdata_stop", "no provable return address", "did not increase"},
		{"chain1", "stop_here", "", ""},
		{"chain2", "stop_here", "", ""},
		{"ldr", "stop_here", "end of stack", ""},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			tg, out := startHostile(t, tc.scenario, tc.sym)
			bt := timedMonitor(t, tg, "bt")
			end := endLine(t, bt)
			if tc.reason != "" {
				assert.Contains(t, end, tc.reason, "bt's reason for stopping; guest output %q", out.String())
			}
			assert.Contains(t, bt, "hostile", "bt found no frame in the program")
			assert.Contains(t, bt, "!", "bt found no frame in the program")
			if end := endLine(t, timedMonitor(t, tg, "bt -strict")); tc.strict != "" {
				assert.Contains(t, end, tc.strict, "bt -strict's reason for stopping")
			}
			endLine(t, timedMonitor(t, tg, "bt -heuristics -full"))
			timedMonitor(t, tg, "bt -json")
			timedMonitor(t, tg, "frame 1")
			timedMonitor(t, tg, "args 1")
			mods := timedMonitor(t, tg, "modules")
			assert.Contains(t, mods, "hostile", "modules lost the program:\n%s", mods)
			peb := timedMonitor(t, tg, "peb")
			teb := timedMonitor(t, tg, "teb")
			assert.Contains(t, teb, "ProcessEnvironmentBlock", "teb:\n%s", teb)
			switch tc.scenario {
			case "chain1", "chain2":
				assert.Contains(t, endLine(t, timedMonitor(t, tg, "bt -strict")), "chain", "bt -strict stopped without naming the looping chain")
				assert.Contains(t, timedMonitor(t, tg, "unwind-info victim"), "chain loops back", "unwind-info does not report the loop")
			case "ldr":
				assert.Contains(t, peb, "loops back", "peb does not report the looping list")
				assert.Contains(t, peb, "problem:", "peb does not report the list's problems")
			}
		})
	}
}

// TestHostileSelfModifyingCode: the guest rewrites a function on which a
// breakpoint sits (after running it once, so its old translation
// exists). The breakpoint still stops the second call, memory reads show
// the new bytes, and the new code is what runs.
func TestHostileSelfModifyingCode(t *testing.T) {
	tg, out := startHostile(t, "smc", "smc_target")
	addr, _ := debuggeetest.View(tg).Commands().Resolve("smc_target")
	old := make([]byte, 6)
	n, err := tg.ReadMemory(addr, old)
	require.NoError(t, err, "read %#x", addr)
	require.Equal(t, 6, n, "read %#x", addr)
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err, "second call; output %q", out.String())
	require.Equal(t, rsp.StopSWBreak, st.Kind, "second call: stop %+v; output %q", st, out.String())
	pc, _ := debuggeetest.View(tg).Commands().Resolve("smc_target")
	require.Equal(t, addr, pc, "resolve moved")
	now := make([]byte, 6)
	n, err = tg.ReadMemory(addr, now)
	require.NoError(t, err, "read %#x", addr)
	require.Equal(t, 6, n, "read %#x", addr)
	assert.Equal(t, []byte{0xb8, 42, 0, 0, 0, 0xc3}, now, "memory at the breakpoint, want the rewritten code (was % x)", old)
	bt := timedMonitor(t, tg, "bt")
	assert.Contains(t, bt, "!smc_target", "bt at the rewritten function:\n%s", bt)
	require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err, "run to the end")
	require.Equal(t, rsp.StopExited, st.Kind, "run to the end: stop %+v", st)
	assert.Contains(t, out.String(), "before 1\n", "guest output")
	assert.Contains(t, out.String(), "after 42\n", "guest output: the rewritten code did not run")
}
