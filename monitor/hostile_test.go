package monitor_test

import (
	"github.com/stretchr/testify/require"

	"bytes"
	"strings"
	"testing"
	"time"

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
	err := tg.Monitor(cmd, &out)
	d := time.Since(start)
	if d > hostileBound {
		t.Errorf("monitor %s took %v (bound %v)", cmd, d, hostileBound)
	}
	if err != nil {
		if err.Error() == "" || strings.Contains(err.Error(), "internal error") {
			t.Errorf("monitor %s: unclear error %q", cmd, err)
		}
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
	if !strings.HasPrefix(last, "-- ") {
		t.Errorf("bt output has no reason line:\n%s", bt)
	}
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
			if tc.reason != "" && !strings.Contains(end, tc.reason) {
				t.Errorf("bt stopped with %q, want a reason mentioning %q; guest output %q", end, tc.reason, out.String())
			}
			if !strings.Contains(bt, "hostile") || !strings.Contains(bt, "!") {
				t.Errorf("bt found no frame in the program:\n%s", bt)
			}
			if end := endLine(t, timedMonitor(t, tg, "bt -strict")); tc.strict != "" && !strings.Contains(end, tc.strict) {
				t.Errorf("bt -strict stopped with %q, want a reason mentioning %q", end, tc.strict)
			}
			endLine(t, timedMonitor(t, tg, "bt -heuristics -full"))
			timedMonitor(t, tg, "bt -json")
			timedMonitor(t, tg, "frame 1")
			timedMonitor(t, tg, "args 1")
			mods := timedMonitor(t, tg, "modules")
			if !strings.Contains(mods, "hostile") {
				t.Errorf("modules lost the program:\n%s", mods)
			}
			peb := timedMonitor(t, tg, "peb")
			teb := timedMonitor(t, tg, "teb")
			if !strings.Contains(teb, "ProcessEnvironmentBlock") {
				t.Errorf("teb:\n%s", teb)
			}
			switch tc.scenario {
			case "chain1", "chain2":
				if end := endLine(t, timedMonitor(t, tg, "bt -strict")); !strings.Contains(end, "chain") {
					t.Errorf("bt -strict stopped with %q, want the looping chain named", end)
				}
				if ui := timedMonitor(t, tg, "unwind-info victim"); !strings.Contains(ui, "chain loops back") {
					t.Errorf("unwind-info does not report the loop:\n%s", ui)
				}
			case "ldr":
				if !strings.Contains(peb, "loops back") || !strings.Contains(peb, "problem:") {
					t.Errorf("peb does not report the looping list and its problems:\n%s", peb)
				}
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
	addr, _ := tg.Commands().Resolve("smc_target")
	old := make([]byte, 6)
	if n, err := tg.ReadMemory(addr, old); n != 6 || err != nil {
		t.Fatalf("read %#x: %d %v", addr, n, err)
	}
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	if err != nil || st.Kind != rsp.StopSWBreak {
		t.Fatalf("second call: stop %+v %v; output %q", st, err, out.String())
	}
	if pc, _ := tg.Commands().Resolve("smc_target"); pc != addr {
		t.Fatalf("resolve moved: %#x", pc)
	}
	now := make([]byte, 6)
	if n, err := tg.ReadMemory(addr, now); n != 6 || err != nil {
		t.Fatalf("read %#x: %d %v", addr, n, err)
	}
	if want := []byte{0xb8, 42, 0, 0, 0, 0xc3}; !bytes.Equal(now, want) {
		t.Errorf("memory at the breakpoint reads % x, want the rewritten % x (was % x)", now, want, old)
	}
	bt := timedMonitor(t, tg, "bt")
	if !strings.Contains(bt, "!smc_target") {
		t.Errorf("bt at the rewritten function:\n%s", bt)
	}
	require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	if err != nil || st.Kind != rsp.StopExited {
		t.Fatalf("run to the end: stop %+v %v", st, err)
	}
	if got := out.String(); !strings.Contains(got, "before 1\n") || !strings.Contains(got, "after 42\n") {
		t.Errorf("guest output %q: the rewritten code did not run", got)
	}
}
