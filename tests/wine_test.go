package tests

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wine userland end to end: Wine's real PE DLLs under the stub,
// debugged by Debian's gdb (with the stub's unwinder script),
// x86_64-w64-mingw32-gdb and lldb, checked against wine itself.

const (
	wineThreadsSrc = "tests/testdata/wthreads.c"
	wineSEHSrc     = "tests/testdata/wseh.c"
	wineConsoleSrc = "tests/testdata/wconsole.c"
)

// buildWineSEH builds the SEH program with clang's msvc target and
// mingw-w64's import libraries (see the source's header).
func buildWineSEH(t *testing.T) string {
	t.Helper()
	lib := "/usr/x86_64-w64-mingw32/lib"
	return testkit.BuildPE(t, wineSEHSrc, testkit.ClangMSVC, "-nostdlib", "-O1", "-gdwarf", "-Wl,-debug:dwarf",
		"-Wl,-entry:start", "-Wl,-subsystem:console",
		filepath.Join(lib, "libkernel32.a"), filepath.Join(lib, "libntdll.a"), filepath.Join(lib, "libucrt.a"))
}

// wineOracle runs exe under wine itself (headless, in a private prefix
// created once per test process) and returns its stdout and exit code.
func wineOracle(t *testing.T, exe string, args ...string) (string, int) {
	t.Helper()
	wine := testkit.Tool(t, "wine")
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
	r := testkit.RunStub(t, 2*time.Minute, nil, append([]string{"run", "--userland", "wine", "--root", t.TempDir()}, args...)...)
	return r.Stdout, r.Stderr, r.Code
}

func sortedLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// TestWineRunMatchesWine: programs run to their end under the wine
// userland print what they print under wine and exit the same way.
func TestWineRunMatchesWine(t *testing.T) {
	testkit.NeedWine(t)
	progs := []struct {
		name string
		exe  func(t *testing.T) string
		// unordered: the threads' lines come in the order the scheduler
		// gives (wine's varies run to run), so lines are compared sorted.
		unordered bool
	}{
		{"hello", func(t *testing.T) string {
			return testkit.BuildPE(t, "guest/wine/testdata/hello.c", testkit.MinGW, "-O1")
		}, false},
		{"threads", func(t *testing.T) string { return testkit.BuildPE(t, wineThreadsSrc, testkit.MinGW, "-O0", "-g") }, true},
		{"seh", buildWineSEH, false},
		// Console functions fail on redirected handles, as under wine.
		{"console-redirected", func(t *testing.T) string { return testkit.BuildPE(t, wineConsoleSrc, testkit.MinGW, "-O1") }, false},
	}
	for _, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			exe := p.exe(t)
			want, wantCode := wineOracle(t, exe)
			got, stderr, code := rspstubRun(t, exe)
			// Paths differ (wine runs the program from Z:, rspstub from
			// C:\rspstub); the hello program prints its argv[0].
			re := regexp.MustCompile(`argv0=\S+`)
			want, got = re.ReplaceAllString(want, "argv0=X"), re.ReplaceAllString(got, "argv0=X")
			if p.unordered {
				want, got = sortedLines(want), sortedLines(got)
			}
			assert.Equal(t, want, got, "stderr:\n%s", stderr)
			assert.Equal(t, wantCode, code, "exit status; stderr:\n%s", stderr)
		})
	}
}

// TestWineThreadsGDB: Debian's gdb with the stub's unwinder script on a
// program with two worker threads: the breakpoint hits in each worker
// thread, info threads lists all three Windows threads, and every
// thread's bt ends in ntdll!RtlUserThreadStart.
func TestWineThreadsGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, wineThreadsSrc, testkit.MinGW, "-O0", "-g")
	script := filepath.Join(t.TempDir(), "rspstub-gdb.py")
	require.NoError(t, os.WriteFile(script, []byte(monitor.GDBScript), 0o644))
	stub := testkit.StartWineStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
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
	// The script has GDB read Wine's DLLs (with their DWARF): GDB names
	// their frames itself; where it has no symbol, the script names them
	// module!symbol.
	frame := func(f string) string {
		if mod, sym, ok := strings.Cut(f, "!"); ok {
			return ` (` + mod + `!)?` + sym + ` \(`
		}
		return " " + f + ` \(`
	}
	bt2 := between(out, "@@bt2", "@@bt1")
	for _, f := range []string{"work", "worker", "kernel32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart"} {
		assert.Regexp(t, frame(f), bt2, "worker thread bt")
	}
	bt1 := between(out, "@@bt1", "@@next")
	for _, f := range []string{"ntdll!NtWaitForMultipleObjects", "main", "kernel32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart"} {
		assert.Regexp(t, frame(f), bt1, "main thread bt")
	}
	assert.Contains(t, between(out, "@@next", "@@end"), "Thread 3 hit Breakpoint 1, ")
	assert.Contains(t, out, "exited normally")
	assert.Contains(t, stub.Stdout(), "total 3")
}

// TestWineThreadsMingwGDB: x86_64-w64-mingw32-gdb unwinds Wine's DLLs
// itself (fetched over vFile, with their DWARF): the worker's stack
// reaches RtlUserThreadStart with file and line in Wine's sources.
func TestWineThreadsMingwGDB(t *testing.T) {
	gdb := testkit.Tool(t, "x86_64-w64-mingw32-gdb")
	exe := testkit.BuildPE(t, wineThreadsSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartWineStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
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
	testkit.Tool(t, "lldb")
	exe := testkit.BuildPE(t, wineThreadsSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartWineStub(t, exe)
	script := filepath.Join(testkit.Root(), "monitor", "scripts", "rspstub_lldb.py")
	out := testkit.LLDB(t, exe, stub.Addr,
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
	gdb := testkit.Tool(t, "gdb")
	exe := buildWineSEH(t)
	want, wantCode := wineOracle(t, exe)
	stub := testkit.StartWineStub(t, "--shadow-stack", exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
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

// TestWineSandboxTraced runs a guest that tries every way out of its C:
// (other drives, "..", NT and device paths, a symlink planted in the
// root, a relative open with a root handle, writes to its read-only
// program folder and to Wine's DLLs) under strace: every attempt fails in
// the guest, the stub opens nothing outside the root, the program's
// folder, Wine's files and its own runtime's, and writes only inside the
// root.
func TestWineSandboxTraced(t *testing.T) {
	testkit.NeedWine(t)
	strace := testkit.Tool(t, "strace")
	exe := testkit.BuildPE(t, "tests/testdata/wescape.c", testkit.MinGW, "-O1")
	root := t.TempDir()
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "hostlink")))
	trace := filepath.Join(t.TempDir(), "trace.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-o", trace,
		"-e", "trace=open,openat,openat2,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,symlink,symlinkat,link,linkat,truncate,chmod,fchmodat",
		testkit.Stub(t), "run", "--userland", "wine", "--root", root, exe)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("guest:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), "\n") {
		if strings.HasPrefix(line, "allowed write") {
			assert.Equal(t, "allowed write: OPENED", line)
			continue
		}
		assert.True(t, strings.HasSuffix(line, ": denied"), "escape attempt %q", line)
	}
	assert.Equal(t, 15, strings.Count(string(out), ": denied"))
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	exeDir := filepath.Dir(exe)
	allowedRead := func(p string) bool {
		for _, pre := range []string{root, exeDir, "/usr/lib/", "/lib/", "/usr/share/wine/", "/sys/", "/proc/sys/"} {
			if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
				return true
			}
		}
		return p == "/etc/ld.so.cache" || p == "/etc/localtime" || strings.HasPrefix(p, "/proc/self/")
	}
	var opened []string
	for _, line := range strings.Split(string(b), "\n") {
		_, call, ok := strings.Cut(line, " ")
		call = strings.TrimSpace(call)
		if !ok || strings.Contains(line, "= -1 ") {
			continue
		}
		name, _, _ := strings.Cut(call, "(")
		q1 := strings.IndexByte(call, '"')
		if q1 < 0 {
			continue
		}
		q2 := strings.IndexByte(call[q1+1:], '"')
		if q2 < 0 {
			continue
		}
		path := call[q1+1 : q1+1+q2]
		if !filepath.IsAbs(path) {
			continue // relative to a directory descriptor: checked by its open
		}
		switch name {
		case "open", "openat", "openat2", "creat":
			opened = append(opened, path)
			writes := strings.Contains(call, "O_WRONLY") || strings.Contains(call, "O_RDWR") || strings.Contains(call, "O_CREAT") || name == "creat"
			if writes && !strings.HasPrefix(path, root) {
				t.Errorf("the stub opened %s for writing: %s", path, line)
			}
			if !allowedRead(path) {
				t.Errorf("the stub opened %s: %s", path, line)
			}
		default:
			if !strings.HasPrefix(path, root) && !strings.HasPrefix(path, "/tmp/rspstub-c-") {
				t.Errorf("the stub changed the file system outside the root: %s", line)
			}
		}
	}
	assert.Contains(t, opened, exe)
	_, err = os.Stat(filepath.Join(root, "inside.txt"))
	assert.NoError(t, err, "the allowed write did not reach the root")
	_, err = os.Stat(filepath.Join(exeDir, "planted.exe"))
	assert.True(t, os.IsNotExist(err), "the guest wrote into its program folder")
}

// TestWineConsoleTerminal: started in a terminal, the program gets a
// console (GetFileType says FILE_TYPE_CHAR, GetConsoleMode and the code
// pages answer), WriteConsoleW prints UTF-8, colours become ANSI escape
// sequences, WriteFile bytes are converted from the output code page,
// CONOUT$ opens, the title round-trips, and ReadConsoleW and fgets read
// the terminal's lines ("\r\n"-terminated for ReadConsoleW).
func TestWineConsoleTerminal(t *testing.T) {
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, wineConsoleSrc, testkit.MinGW, "-O1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.Stub(t), "run", "--userland", "wine", "--root", t.TempDir(), exe)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 100, Rows: 40})
	require.NoError(t, err)
	defer tty.Close()
	_, err = tty.Write([]byte("first line\nsecond\n"))
	require.NoError(t, err)
	var out bytes.Buffer
	_, _ = io.Copy(&out, tty) // ends with EIO when the program exits
	require.NoError(t, cmd.Wait(), "output:\n%s", out.String())
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{
		"type out=2 in=2\n",
		"mode out ok=1 0x3\n",
		"mode in ok=1 0x1f7\n",
		"cp 437 437\n",
		"wide \u263a\n",
		"WriteConsoleW ok=1 n=7\n",
		"screen ok=1 attr=0x7\n",
		"\x1b[0;91;40mred\n\x1b[0m",
		"cp437 \u00e9\n",
		"utf8 \u00e9\n",
		"conout\nCONOUT$ ok=1\n",
		"title [rspstub title]\n",
		"ReadConsoleW n=12 crlf=1 [first line]\n",
		"fgets [second]\n",
	} {
		assert.Contains(t, got, want)
	}
}
