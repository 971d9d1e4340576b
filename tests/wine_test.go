package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/tests/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wine userland end to end: Wine's real PE DLLs under the stub,
// debugged by Debian's gdb (with the stub's unwinder script),
// x86_64-w64-mingw32-gdb and lldb, checked against wine itself.

const (
	wineThreadsSrc = "tests/testdata/wthreads.c"
	wineSEHSrc     = "tests/testdata/wseh.c"
)

// buildWineSEH builds the SEH program with clang's msvc target and
// mingw-w64's import libraries (see the source's header).
func buildWineSEH(t *testing.T) string {
	t.Helper()
	lib := "/usr/x86_64-w64-mingw32/lib"
	return harness.BuildPE(t, wineSEHSrc, harness.ClangMSVC, "-nostdlib", "-O1", "-gdwarf", "-Wl,-debug:dwarf",
		"-Wl,-entry:start", "-Wl,-subsystem:console",
		filepath.Join(lib, "libkernel32.a"), filepath.Join(lib, "libntdll.a"), filepath.Join(lib, "libucrt.a"))
}

// wineOracle runs exe under wine itself (headless, in a private prefix
// created once per test process) and returns its stdout and exit code.
func wineOracle(t *testing.T, exe string, args ...string) (string, int) {
	t.Helper()
	wine := harness.Tool(t, "wine")
	prefix := winePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wine, append([]string{exe}, args...)...)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "DISPLAY=")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "wine %s", exe)
	}
	return out.String(), code
}

var winePrefixDir string

func winePrefix(t *testing.T) string {
	t.Helper()
	if winePrefixDir == "" {
		d, err := os.MkdirTemp("", "rspstub-wineprefix-")
		require.NoError(t, err)
		winePrefixDir = d
	}
	return winePrefixDir
}

// rspstubRun runs `rspstub run PROGRAM ARGS` to the end in a fresh folder
// and returns the program's stdout and exit status.
func rspstubRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	bin := harness.Stub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"run", "--userland", "wine", "--root", t.TempDir()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "rspstub run timed out; stderr:\n%s", errb.String())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// TestWineRunMatchesWine: programs run to their end under the wine
// userland print what they print under wine and exit the same way.
func TestWineRunMatchesWine(t *testing.T) {
	harness.NeedWine(t)
	progs := []struct {
		name string
		exe  func(t *testing.T) string
	}{
		{"hello", func(t *testing.T) string {
			return harness.BuildPE(t, "guest/wine/testdata/hello.c", harness.MinGW, "-O1")
		}},
		{"threads", func(t *testing.T) string { return harness.BuildPE(t, wineThreadsSrc, harness.MinGW, "-O0", "-g") }},
		{"seh", buildWineSEH},
	}
	for _, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			exe := p.exe(t)
			want, wantCode := wineOracle(t, exe)
			got, stderr, code := rspstubRun(t, exe)
			// Paths differ (wine runs the program from Z:, rspstub from
			// C:\rspstub); the hello program prints its argv[0].
			re := regexp.MustCompile(`argv0=\S+`)
			assert.Equal(t, re.ReplaceAllString(want, "argv0=X"), re.ReplaceAllString(got, "argv0=X"), "stderr:\n%s", stderr)
			assert.Equal(t, wantCode, code, "exit status; stderr:\n%s", stderr)
		})
	}
}

// TestWineThreadsGDB: Debian's gdb with the stub's unwinder script on a
// program with two worker threads: the breakpoint hits in each worker
// thread, info threads lists all three Windows threads, and every
// thread's bt ends in ntdll!RtlUserThreadStart.
func TestWineThreadsGDB(t *testing.T) {
	gdb := harness.Tool(t, "gdb")
	exe := harness.BuildPE(t, wineThreadsSrc, harness.MinGW, "-O0", "-g")
	script := filepath.Join(t.TempDir(), "rspstub-gdb.py")
	require.NoError(t, os.WriteFile(script, []byte(monitor.GDBScript), 0o644))
	stub := harness.StartWineStub(t, exe)
	out := harness.GDB(t, gdb, exe, stub.Addr,
		"source "+script,
		"break work", "continue",
		"echo @@threads\\n", "info threads",
		"echo @@bt2\\n", "bt",
		"echo @@bt1\\n", "thread 1", "bt",
		"echo @@next\\n", "continue",
		"echo @@end\\n", "continue")
	t.Logf("gdb:\n%s", out)
	threads := between(out, "@@threads", "@@bt2")
	assert.Equal(t, 3, strings.Count(threads, "Windows thread"), "info threads")
	bt2 := between(out, "@@bt2", "@@bt1")
	for _, f := range []string{"work", "worker", "kernel32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart"} {
		assert.Contains(t, bt2, " "+f+" (", "worker thread bt")
	}
	bt1 := between(out, "@@bt1", "@@next")
	for _, f := range []string{"ntdll!NtWaitForMultipleObjects", "main", "kernel32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart"} {
		assert.Contains(t, bt1, " "+f+" (", "main thread bt")
	}
	assert.Contains(t, between(out, "@@next", "@@end"), "Thread 3 hit Breakpoint 1, ")
	assert.Contains(t, out, "exited normally")
	assert.Contains(t, stub.Stdout(), "total 3")
}

// TestWineThreadsMingwGDB: x86_64-w64-mingw32-gdb unwinds Wine's DLLs
// itself (fetched over vFile, with their DWARF): the worker's stack
// reaches RtlUserThreadStart with file and line in Wine's sources.
func TestWineThreadsMingwGDB(t *testing.T) {
	gdb := harness.Tool(t, "x86_64-w64-mingw32-gdb")
	exe := harness.BuildPE(t, wineThreadsSrc, harness.MinGW, "-O0", "-g")
	stub := harness.StartWineStub(t, exe)
	out := harness.GDB(t, gdb, exe, stub.Addr,
		"break work", "continue",
		"echo @@threads\\n", "info threads",
		"echo @@bt\\n", "bt",
		"echo @@end\\n", "continue", "continue")
	t.Logf("gdb:\n%s", out)
	assert.Equal(t, 3, strings.Count(between(out, "@@threads", "@@bt"), "Windows thread"))
	bt := between(out, "@@bt", "@@end")
	assert.Regexp(t, `in BaseThreadInitThunk .* at dlls/kernel32/thread\.c:\d+`, bt)
	assert.Regexp(t, `in RtlUserThreadStart .* at dlls/ntdll/thread\.c:\d+`, bt)
	assert.Contains(t, out, "Thread 3 hit Breakpoint 1")
	assert.Contains(t, out, "exited normally")
}

// TestWineThreadsLLDB: lldb lists the three threads, stops in each
// worker, and the shipped command gives each thread's Windows stack.
func TestWineThreadsLLDB(t *testing.T) {
	harness.Tool(t, "lldb")
	exe := harness.BuildPE(t, wineThreadsSrc, harness.MinGW, "-O0", "-g")
	stub := harness.StartWineStub(t, exe)
	script := filepath.Join(harness.Root(), "monitor", "scripts", "rspstub_lldb.py")
	out := harness.LLDB(t, exe, stub.Addr,
		"breakpoint set --name work", "continue",
		"thread list",
		"command script import "+script,
		"script print('@@bt2')", "rspstub-bt",
		"thread select 1", "script print('@@bt1')", "rspstub-bt",
		"script print('@@next')", "continue",
		"script print('@@end')", "continue")
	t.Logf("lldb:\n%s", out)
	assert.Regexp(t, `(?s)thread #1: tid = 0x0024.*thread #2: tid = 0x0028.*thread #3: tid = 0x002c`, out)
	bt2 := between(out, "@@bt2", "@@bt1")
	assert.Regexp(t, `(?s)wthreads.*!worker.*kernel32!BaseThreadInitThunk.*ntdll!RtlUserThreadStart`, bt2)
	bt1 := between(out, "@@bt1", "@@next")
	assert.Regexp(t, `(?s)ntdll!NtWaitForMultipleObjects.*!main\+.*ntdll!RtlUserThreadStart`, bt1)
	assert.Regexp(t, `thread #3, stop reason = breakpoint`, between(out, "@@next", "@@end"))
	assert.Contains(t, out, "exited with status = 0")
}

// TestWineFirstChance: a null write inside __try stops first-chance in
// gdb (SIGSEGV) with the faulting frame on top; continue delivers it to
// the guest's handlers (gdb passes SIGSEGV) and the __except block runs;
// the output equals wine's, and the stack at both stops agrees with the
// emulator's shadow call stack.
func TestWineFirstChance(t *testing.T) {
	gdb := harness.Tool(t, "gdb")
	exe := buildWineSEH(t)
	want, wantCode := wineOracle(t, exe)
	stub := harness.StartWineStub(t, "--shadow-stack", exe)
	out := harness.GDB(t, gdb, exe, stub.Addr,
		"break handler_reached",
		"continue",
		"echo @@fault\\n", "monitor bt", "monitor verify-unwind",
		"echo @@handler\\n", "continue", "monitor bt", "monitor verify-unwind",
		"echo @@end\\n", "continue")
	t.Logf("gdb:\n%s", out)
	fault := between(out, "@@fault", "@@handler")
	assert.Contains(t, out, "Program received signal SIGSEGV")
	assert.Contains(t, out, "first chance: access violation")
	assert.Regexp(t, `(?m)^00 .*wseh[^ ]*!poke`, fault)
	assert.Regexp(t, `(?m)^01 .*wseh[^ ]*!start`, fault)
	assert.Contains(t, fault, "ntdll!RtlUserThreadStart")
	assert.Contains(t, fault, "OK: the unwinder agrees with the shadow call stack")
	handler := between(out, "@@handler", "@@end")
	assert.Contains(t, handler, "Breakpoint 1, ")
	assert.Regexp(t, `(?m)^00 .*!handler_reached`, handler)
	assert.Contains(t, handler, "ntdll!RtlUserThreadStart")
	assert.Contains(t, handler, "OK: the unwinder agrees with the shadow call stack")
	assert.Contains(t, out, "exited with code 07")
	assert.Equal(t, 7, wantCode)
	// The harness reads the stub's output by lines (CRs dropped).
	assert.Equal(t, strings.ReplaceAll(want, "\r", ""), stub.Stdout())
}

// between returns the text of s after the first from and before the next
// to (the rest of s when to is missing).
func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, to)
	return before
}
