package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCatchGDB: monitor catch api stops a gdb session at WriteFile's
// entry with the arguments decoded in the stop's text (GDB prints it
// before the SIGTRAP), monitor catch lists the hit, catch delete removes
// it and the program runs to its exit; in the Wine userland catch
// syscall stops after NtWriteFile with its status (issue 16).
func TestCatchGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0", "-g")
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(land), exe)
			cmds := []string{
				"monitor catch api kernel32!WriteFile",
				"continue",
				"bt 2",
				"monitor catch",
				"monitor catch delete 1",
			}
			if land == "wine" {
				cmds = append(cmds, "monitor catch syscall NtWriteFile", "continue", "monitor catch delete")
			}
			cmds = append(cmds, "continue")
			out := testkit.GDB(t, gdb, exe, stub.Addr, cmds...)
			t.Logf("gdb:\n%s", out)
			assert.Regexp(t, `catch 1: api (KERNEL32\.dll|kernel32)!WriteFile\(hFile=0x[0-9a-f]+, lpBuffer=0x[0-9a-f]+ "traced line\\n", nNumberOfBytesToWrite=12, lpNumberOfBytesWritten=0x[0-9a-f]+, lpOverlapped=0x0\) from apitrace-[0-9a-f]+!main\+0x`, out)
			assert.Contains(t, out, "received signal SIGTRAP")
			assert.Regexp(t, `#1 +0x[0-9a-f]+ in main \(\) at .*apitrace\.c`, out, "the stop is at WriteFile's entry, called from main")
			assert.Regexp(t, `catch 1: api kernel32!WriteFile at 0x[0-9a-f]+.*, 1 hit\(s\); last: `, out)
			if land == "wine" {
				assert.Regexp(t, `catch 2: syscall NtWriteFile\(0x[0-9a-f]+, .*\) .*= STATUS_SUCCESS from .*\(thread \d+\)`, out)
			}
			assert.True(t, strings.Contains(out, "exited with code 07"), "runs to the exit after catch delete")
		})
	}
}

// TestServeTraceAPI: rspstub serve --trace-api --coverage under gdb: the
// files are written when the stub ends after the program exited, the
// trace with the calls made while gdb drove the program (a breakpoint
// hit in work and a continue), the coverage with blocks of the program.
func TestServeTraceAPI(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0", "-g")
	dir := t.TempDir()
	trace, cov := filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "c.drcov")
	stub := testkit.StartStub(t, "--trace-api", trace, "--coverage", cov, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr, "break work", "continue", "continue")
	t.Logf("gdb:\n%s", out)
	assert.Contains(t, out, "Breakpoint 1, work")
	assert.Contains(t, out, "exited with code 07")
	require.True(t, stub.Wait(30*time.Second), "the stub ends after the program and gdb")
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	assert.Regexp(t, `"api":"KERNEL32.dll!WriteFile","args":\[\{"name":"hFile","value":"0x[0-9a-f]+"\},\{"name":"lpBuffer","value":"0x[0-9a-f]+","str":"traced line\\n"\},\{"name":"nNumberOfBytesToWrite","value":"12"\}`, string(b))
	assert.Contains(t, string(b), `"api":"KERNEL32.dll!GetLastError","args":[],"ret":"0x4d2"`)
	c, err := os.ReadFile(cov)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(c), "DRCOV VERSION: 2\nDRCOV FLAVOR: rspstub\n"))
	assert.Contains(t, string(c), filepath.Base(exe)+"\n")
}
