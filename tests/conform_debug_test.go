package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// rspstubDebug runs `rspstub debug ARGS...` with the debugger's commands
// on its standard input, as a user would type them.
func rspstubDebug(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.Stub(t), append([]string{"debug"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = os.Environ()
	if err := cmd.Run(); err != nil {
		t.Logf("rspstub debug: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("rspstub debug timed out:\n%s", out.String())
	}
	return out.String()
}

// TestDebugCommandGDB: `rspstub debug PROGRAM` is a whole session: gdb
// starts attached, with nothing to warn about on its first screen, and
// its own bt is the Windows stack down to RtlUserThreadStart (the
// unwinder script is loaded, the DLLs are read).
func TestDebugCommandGDB(t *testing.T) {
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	for _, tc := range []struct{ name, tool, flag, userland string }{
		{"gdb/synth", "gdb", "", "synth"},
		{"gdb/wine", "gdb", "", "wine"},
		{"mingw-gdb/wine", "x86_64-w64-mingw32-gdb", "--mingw-gdb", "wine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Tool(t, tc.tool)
			if tc.userland == "wine" {
				testkit.NeedWine(t)
			}
			args := []string{"--userland", tc.userland}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			out := rspstubDebug(t, "break count\ncontinue\nbt\nquit\n", append(args, exe)...)
			first, _, _ := strings.Cut(out, "Breakpoint 1 at")
			assert.NotContains(t, first, "warning", "the first screen warns")
			assert.NotContains(t, out, "Could not load shared library symbols")
			assert.Contains(t, out, "Breakpoint 1, count (i=0)")
			frames := regexp.MustCompile(`(?m)(?:^|\(gdb\) )#\d+\s`).FindAllString(out, -1)
			assert.Len(t, frames, 6, "count, main, __tmainCRTStartup, mainCRTStartup, BaseThreadInitThunk, RtlUserThreadStart")
			assert.Regexp(t, `#5\s+0x[0-9a-f]+ in \S*RtlUserThreadStart`, out)
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// TestDebugCommandLLDB: `rspstub debug --lldb` starts lldb connected,
// with its Python package found and the rspstub-bt command loaded.
func TestDebugCommandLLDB(t *testing.T) {
	testkit.Tool(t, "lldb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	out := rspstubDebug(t, "", "--lldb", "--userland", "synth",
		"--debugger-arg=--batch",
		"--debugger-arg=-o", "--debugger-arg=breakpoint set -n count",
		"--debugger-arg=-o", "--debugger-arg=continue",
		"--debugger-arg=-o", "--debugger-arg=rspstub-bt",
		exe)
	assert.NotContains(t, out, "ModuleNotFoundError")
	assert.Contains(t, out, "stop reason = breakpoint 1.1")
	assert.Regexp(t, `(?m)^05 .*ntdll!RtlUserThreadStart`, out)
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
