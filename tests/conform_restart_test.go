package tests

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestRestartLoopGDB: through `target extended-remote`, GDB's `run`
// reloads the program in a fresh guest 20 times in one session (the
// breakpoint hits each time, with the arguments of `run N` when given),
// `start` stops in main, `kill` keeps the stub, and the stub still
// serves once GDB has gone.
func TestRestartLoopGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	const runs = 20
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			pid := stub.Pid()
			before := readProc(t, pid)
			cmds := []string{"break count"}
			for i := 0; i < runs; i++ {
				run := "run"
				if i == runs/2 {
					run = "run 6" // new arguments (TestRestartArgsGDB checks their effect)
				}
				cmds = append(cmds, fmt.Sprintf("echo @@run %d\\n", i), run, "info args")
			}
			cmds = append(cmds, "echo @@start\\n", "start", "echo @@kill\\n", "kill", "echo @@end\\n")
			args := []string{"-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
				"-ex", "file " + exe, "-ex", "target extended-remote " + stub.Addr}
			for _, c := range cmds {
				args = append(args, "-ex", c)
			}
			start := time.Now()
			out := testkit.Run(t, 5*time.Minute, nil, gdb, args...)
			elapsed := time.Since(start)
			hits := regexp.MustCompile(`Breakpoint 1, count \(i=0\)`).FindAllString(out, -1)
			assert.Len(t, hits, runs, "every run stops at the breakpoint")
			for i := 0; i < runs; i++ {
				sec := section(out, fmt.Sprintf("@@run %d\n", i), fmt.Sprintf("@@run %d\n", i+1))
				assert.Contains(t, sec, "i = 0", "run %d", i)
			}
			// `run 6` set the arguments for the runs after it too.
			assert.Regexp(t, `Temporary breakpoint 2, main \(argc=2, argv=`, section(out, "@@start", "@@kill"))
			assert.Contains(t, section(out, "@@kill", "@@end"), "killed")
			assert.NotContains(t, out, "Remote connection closed")
			after := readProc(t, pid)
			t.Logf("%d runs in %v (%.0f ms a run); stub before: %v; after: %v",
				runs, elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())/runs, before, after)

			// The stub is still serving.
			c := rawDial(t, stub.Addr)
			defer c.Close()
			reply := c.request("?")
			assert.True(t, strings.HasPrefix(reply, "X") || strings.HasPrefix(reply, "W") || strings.HasPrefix(reply, "T"),
				"the stub answers a new client after the session: %q", reply)
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
	}
}

// TestRestartArgsGDB: `run ARGS` in extended mode gives the new guest
// those arguments (conf's loop count), and the program's output shows it.
func TestRestartArgsGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	args := []string{"-batch", "-nx", "-ex", "set confirm off", "-ex", "file " + exe,
		"-ex", "target extended-remote " + stub.Addr, "-ex", "run 5", "-ex", "run 2", "-ex", "kill"}
	out := testkit.Run(t, 2*time.Minute, nil, gdb, args...)
	require.Contains(t, out, "exited with code", out)
	// 0+1+2+3+4 = 10, then 0+1 = 1.
	assert.Contains(t, stub.Stdout(), "conf: counter 21 total 10 hello")
	assert.Contains(t, stub.Stdout(), "conf: counter 21 total 1 hello")
	if t.Failed() {
		t.Logf("gdb output:\n%s", out)
	}
}
