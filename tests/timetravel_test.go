package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
)

// TestTimeTravelGDB: Debian's gdb 13 with the stub's unwinder script
// against `rspstub serve --record` on a program that corrupts a global
// through a chain of calls (tests/testdata/corrupt.c). At the end of
// main, `watch guard` + `reverse-continue` stops at the corrupting store
// with the whole chain in `bt`; reverse-stepi, reverse-finish,
// reverse-next (over a Windows API call) and reverse-stepi into the API
// walk back; `continue` then reaches the end, and the program's output
// is printed once.
func TestTimeTravelGDB(t *testing.T) {
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			gdb := testkit.Tool(t, "gdb")
			exe := testkit.BuildPE(t, "tests/testdata/corrupt.c", testkit.MinGW, "-O0", "-g")
			script := filepath.Join(t.TempDir(), "rspstub-gdb.py")
			require.NoError(t, os.WriteFile(script, []byte(monitor.GDBScript), 0o644))
			var stub *testkit.StubProc
			if land == "wine" {
				stub = testkit.StartWineStub(t, "--record", exe)
			} else {
				stub = testkit.StartStub(t, "--record", exe)
			}
			// GDB 13's reverse-finish out of a function with line
			// information (Wine's kernel32 has DWARF) stops on its first
			// instruction, one step short of the call: its own
			// behaviour (the packets are Z0 after the prologue, bc, one
			// bs); one more reverse-stepi reaches the call.
			extraStep := "echo"
			if land == "wine" {
				extraStep = "reverse-stepi"
			}
			// dos-based: GDB then takes the library list's Windows paths
			// as paths, fetches the DLLs from the stub and knows their
			// exports, so reverse-finish can leave an API function.
			args := []string{"-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
				"-ex", "set width 0", "-ex", "set remotetimeout 30",
				"-ex", "set target-file-system-kind dos-based",
				"-ex", "file " + exe, "-ex", "target remote " + stub.Addr}
			for _, c := range []string{"source " + script,
				"break corrupt.c:40", "continue",
				"echo @@rc\\n", "watch guard", "reverse-continue",
				"echo @@bt\\n", "bt 4", "p $pc",
				"echo @@rsi\\n", "reverse-stepi", "p $pc",
				"echo @@rfinish\\n", "reverse-finish",
				"echo @@rbreak\\n", "delete", "break corrupt.c:22", "reverse-continue", "monitor when",
				"echo @@api\\n", "delete", "reverse-stepi", "reverse-stepi", "bt 2",
				"echo @@apifinish\\n", "reverse-finish", extraStep, "bt 1",
				"echo @@fwd\\n", "break corrupt.c:22", "continue", "delete",
				"echo @@rnext\\n", "reverse-next", "bt 1",
				"echo @@begin\\n", "reverse-continue",
				"echo @@end\\n", "continue"} {
				args = append(args, "-ex", c)
			}
			out := testkit.Run(t, 3*time.Minute, nil, gdb, args...)
			t.Logf("gdb:\n%s", out)

			rc := between(out, "@@rc", "@@bt")
			assert.Contains(t, rc, "Old value = 39")
			assert.Contains(t, rc, "New value = 42")
			assert.Regexp(t, `corrupt \(v=13\) at \S+corrupt.c:15`, rc, "stopped on the store's line")
			bt := between(out, "@@bt", "@@rsi")
			assert.Regexp(t, `(?s)#0 +corrupt \(v=13\).*#1 .* middle \(v=12\).*#2 .* outer \(v=6\).*#3 .* main \(\)`, bt)
			pc := regexp.MustCompile(`\$1 = .* (0x[0-9a-f]+) <corrupt\+(\d+)>`).FindStringSubmatch(bt)
			require.NotNil(t, pc, "pc at the store")
			rsi := between(out, "@@rsi", "@@rfinish")
			pc2 := regexp.MustCompile(`\$2 = .* (0x[0-9a-f]+) <corrupt\+(\d+)>`).FindStringSubmatch(rsi)
			require.NotNil(t, pc2, "pc after reverse-stepi")
			off, _ := strconv.Atoi(pc[2])
			off2, _ := strconv.Atoi(pc2[2])
			assert.Less(t, off2, off, "reverse-stepi went back one instruction")
			assert.Regexp(t, `middle \(v=12\) at \S+corrupt.c:23`, between(out, "@@rfinish", "@@rbreak"), "reverse-finish: back at the call in middle")
			rb := between(out, "@@rbreak", "@@api")
			assert.Regexp(t, `Breakpoint \d+, middle \(v=12\) at \S+corrupt.c:22`, rb, "reverse-continue to an earlier breakpoint")
			api := between(out, "@@api", "@@apifinish")
			assert.Regexp(t, `#0 +0x0*140001[0-9a-f]+ in middle \(v=12\) at \S+corrupt.c:21`, between(out, "@@apifinish", "@@fwd"), "reverse-finish out of the API: at its call")
			assert.Regexp(t, `(?i)#0 .* in (kernel32!)?GetTickCount \(\)[^\n]*\s+#1 .* in middle \(v=12\) at \S+corrupt.c:21`, api, "reverse-stepi back into the API")
			assert.Regexp(t, `Breakpoint \d+, middle \(v=12\) at \S+corrupt.c:22`, between(out, "@@fwd", "@@rnext"), "forward again to line 22")
			assert.Regexp(t, `#0 +middle \(v=12\) at \S+corrupt.c:21`, between(out, "@@rnext", "@@begin"), "reverse-next over GetTickCount")
			assert.Contains(t, between(out, "@@begin", "@@end"), "No more reverse-execution history.")
			assert.Contains(t, between(out, "@@end", "\x00"), "exited with code 01")
			assert.Equal(t, "before: guard=42\nafter: guard=39\n", strings.ReplaceAll(stub.Stdout(), "\r\n", "\n"), "output printed once")
		})
	}
}

// TestTimeTravelLLDB: LLDB 14 has no reverse commands; the monitor's go
// back through the shipped lldb script: after stepping out of the
// function that corrupted the global, `rspstub reverse-continue` returns
// to LLDB's breakpoint in it, `rspstub reverse-stepi 3` and `rspstub
// when` move and report the position.
func TestTimeTravelLLDB(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/corrupt.c", testkit.MinGW, "-O0", "-g")
	script := filepath.Join(t.TempDir(), "rspstub_lldb.py")
	require.NoError(t, os.WriteFile(script, []byte(monitor.LLDBScript), 0o644))
	stub := testkit.StartStub(t, "--record", exe)
	out := testkit.LLDB(t, exe, stub.Addr,
		"command script import "+script,
		"breakpoint set -n corrupt", "continue", "thread step-out",
		"rspstub when", "rspstub reverse-continue", "rspstub bt -n 2",
		"rspstub reverse-stepi 3", "rspstub when",
		// LLDB's registers are stale after the monitor moved the
		// process: the next stop refreshes them (the breakpoint in
		// corrupt again), then the end.
		"continue", "continue")
	t.Logf("lldb:\n%s", out)
	pos := regexp.MustCompile(`(?m)^position (\d+)$`).FindAllStringSubmatch(out, -1)
	require.Len(t, pos, 2, "two `when` answers")
	rc := regexp.MustCompile(`position (\d+): pc 0x[0-9a-f]+ corrupt\S*!corrupt\+0x[0-9a-f]+ \[\S+corrupt.c @ \d+\] \(breakpoint\)`).FindStringSubmatch(out)
	require.NotNil(t, rc, "reverse-continue back to the breakpoint in corrupt")
	at, _ := strconv.Atoi(rc[1])
	after, _ := strconv.Atoi(pos[0][1])
	back, _ := strconv.Atoi(pos[1][1])
	assert.Less(t, at, after)
	assert.Equal(t, at-3, back, "reverse-stepi 3")
	assert.Regexp(t, `01 .* corrupt\S*!middle\+`, out, "bt after going back")
	assert.Contains(t, out, "exited with status = 1")
	assert.Equal(t, "before: guard=42\nafter: guard=39\n", strings.ReplaceAll(stub.Stdout(), "\r\n", "\n"), "output printed once")
}
