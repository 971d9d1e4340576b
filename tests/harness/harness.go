// Package harness is what the end-to-end tests share: it builds the
// rspstub binary and Windows test programs from sources in the repo,
// starts a stub on a fixture, and drives the real gdb and lldb.
//
// A missing external tool skips the test with a reason, except when the
// environment sets RSPSTUB_REQUIRE_TOOLS=1 (CI does): then it fails, so a
// green CI run means every end-to-end test really ran.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireTools reports whether missing tools must fail tests.
func RequireTools() bool { return os.Getenv("RSPSTUB_REQUIRE_TOOLS") == "1" }

// Tool returns the path of an external tool, or skips (fails under
// RSPSTUB_REQUIRE_TOOLS=1) when it is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if RequireTools() {
			t.Fatalf("required tool %s is missing (RSPSTUB_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("skipping: %s is not installed", name)
	}
	return p
}

// ToolAny is Tool for a tool known by several names (Debian installs
// lldb-vscode as lldb-vscode-14): the first one found.
func ToolAny(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if RequireTools() {
		t.Fatalf("required tool %s is missing (RSPSTUB_REQUIRE_TOOLS=1)", strings.Join(names, " or "))
	}
	t.Skipf("skipping: none of %s is installed", strings.Join(names, ", "))
	return ""
}

// Root is the repository's top folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	workOnce sync.Once
	workDir  string
	workErr  error
)

// dir is a folder shared by all tests of this process for built artifacts.
func dir(t testing.TB) string {
	t.Helper()
	workOnce.Do(func() {
		workDir, workErr = os.MkdirTemp("", "rspstub-e2e-")
	})
	if workErr != nil {
		t.Fatal(workErr)
	}
	return workDir
}

var (
	stubOnce sync.Once
	stubPath string
	stubErr  error
)

// Stub builds cmd/rspstub once per test process and returns its path.
func Stub(t testing.TB) string {
	t.Helper()
	d := dir(t)
	stubOnce.Do(func() {
		stubPath = filepath.Join(d, "rspstub")
		cmd := exec.Command("go", "build", "-o", stubPath, "./cmd/rspstub")
		cmd.Dir = Root()
		out, err := cmd.CombinedOutput()
		if err != nil {
			stubErr = fmt.Errorf("go build ./cmd/rspstub: %v\n%s", err, out)
		}
	})
	if stubErr != nil {
		t.Fatal(stubErr)
	}
	return stubPath
}

// Toolchain is a way to build Windows x64 programs.
type Toolchain string

const (
	MinGW      Toolchain = "mingw-gcc"   // x86_64-w64-mingw32-gcc
	MinGWCXX   Toolchain = "mingw-g++"   // x86_64-w64-mingw32-g++ (C++ sources)
	ClangMinGW Toolchain = "clang-mingw" // clang --target=x86_64-w64-mingw32 -fuse-ld=lld
	ClangMSVC  Toolchain = "clang-msvc"  // clang --target=x86_64-pc-windows-msvc -fuse-ld=lld
)

var buildMu sync.Mutex

// BuildPE compiles a C (or, with MinGWCXX, C++) source (a path relative to the repository root)
// into a Windows x64 executable with the given toolchain and flags, and
// returns the executable's path. Results are cached per test process.
func BuildPE(t testing.TB, src string, tc Toolchain, flags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	h := sha256.Sum256([]byte(src + "\x00" + string(tc) + "\x00" + strings.Join(flags, "\x00")))
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(src), ".c"), ".cc")
	out := filepath.Join(dir(t), base+"-"+hex.EncodeToString(h[:6])+".exe")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	in := filepath.Join(Root(), src)
	var cmd *exec.Cmd
	switch tc {
	case MinGW:
		gcc := Tool(t, "x86_64-w64-mingw32-gcc")
		cmd = exec.Command(gcc, append(append([]string{}, flags...), "-o", out, in)...)
	case MinGWCXX:
		gxx := Tool(t, "x86_64-w64-mingw32-g++")
		cmd = exec.Command(gxx, append(append([]string{}, flags...), "-o", out, in)...)
	case ClangMinGW:
		clang := Tool(t, "clang")
		gcc := Tool(t, "x86_64-w64-mingw32-gcc")
		libgcc, err := exec.Command(gcc, "-print-libgcc-file-name").Output()
		if err != nil {
			t.Fatalf("%s -print-libgcc-file-name: %v", gcc, err)
		}
		args := []string{"--target=x86_64-w64-mingw32", "-fuse-ld=lld",
			"-L" + filepath.Dir(strings.TrimSpace(string(libgcc)))}
		cmd = exec.Command(clang, append(append(args, flags...), "-o", out, in)...)
	case ClangMSVC:
		clang := Tool(t, "clang")
		args := []string{"--target=x86_64-pc-windows-msvc", "-fuse-ld=lld"}
		cmd = exec.Command(clang, append(append(args, flags...), "-o", out, in)...)
	default:
		t.Fatalf("unknown toolchain %q", tc)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s with %s: %v\n%s", src, tc, err, b)
	}
	return out
}

// NeedWine skips (or fails under RSPSTUB_REQUIRE_TOOLS=1) when Wine 8's
// PE DLLs (Debian package libwine) are missing.
func NeedWine(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntdll.dll"); err != nil {
		if RequireTools() {
			t.Fatal("Wine 8's PE DLLs (package libwine) are missing and RSPSTUB_REQUIRE_TOOLS=1")
		}
		t.Skip("Wine 8's PE DLLs (package libwine) are not installed")
	}
}

// StartWineStub starts a stub running the wine userland.
func StartWineStub(t testing.TB, args ...string) *StubProc {
	t.Helper()
	NeedWine(t)
	return StartStub(t, append([]string{"--userland", "wine"}, args...)...)
}

// StubProc is a running `rspstub serve`.
type StubProc struct {
	Addr string // what to give `target remote` / `gdb-remote`
	cmd  *exec.Cmd

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

var listenRE = regexp.MustCompile(`listening on ([^\s;]+)`)

// StartStub runs `rspstub serve --listen 127.0.0.1:0 ARGS...` and waits
// until it listens. The stub is killed when the test ends.
//
// Unless args choose one with --userland, the stub runs the synthesized
// userland: the end-to-end tests written before the wine userland check
// its module names and API traps; the wine userland's scenarios pass
// --userland wine (see StartWineStub).
func StartStub(t testing.TB, args ...string) *StubProc {
	t.Helper()
	bin := Stub(t)
	chosen := false
	for _, a := range args {
		if strings.HasPrefix(a, "--userland") {
			chosen = true
		}
	}
	if !chosen {
		args = append([]string{"--userland", "synth"}, args...)
	}
	return startProc(t, bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
}

// StartQEMUStub runs `rspstub qemu --listen 127.0.0.1:0 -- ARGV...` (a
// QEMU command line: qemu-x86_64 PROGRAM for a Linux program) and waits
// until it listens.
func StartQEMUStub(t testing.TB, argv ...string) *StubProc {
	t.Helper()
	Tool(t, argv[0])
	return startProc(t, Stub(t), append([]string{"qemu", "--listen", "127.0.0.1:0", "--"}, argv...))
}

func startProc(t testing.TB, bin string, all []string) *StubProc {
	t.Helper()
	s := &StubProc{cmd: exec.Command(bin, all...), done: make(chan struct{})}
	outPipe, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.copy(&s.stdout, outPipe, nil)
	}()
	go func() {
		defer wg.Done()
		s.copy(&s.stderr, errPipe, addrc)
	}()
	go func() {
		wg.Wait()
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("stub stdout:\n%s\nstub stderr:\n%s", s.Stdout(), s.Stderr())
		}
	})
	select {
	case s.Addr = <-addrc:
	case <-s.done:
		t.Fatalf("rspstub %s exited before listening: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(all, " "), s.err, s.Stdout(), s.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("rspstub did not start listening within 30s\nstderr:\n%s", s.Stderr())
	}
	return s
}

func (s *StubProc) copy(dst *bytes.Buffer, r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		dst.WriteString(line)
		dst.WriteByte('\n')
		s.mu.Unlock()
		if addrc != nil {
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}
}

// Wait waits up to timeout for the stub to exit by itself and reports
// whether it did.
func (s *StubProc) Wait(timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stdout is what the stub (that is, the guest) printed so far.
func (s *StubProc) Stdout() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String()
}

// Stderr is the stub's log so far.
func (s *StubProc) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// Run runs a command with a timeout and returns its combined output.
func Run(t testing.TB, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s timed out after %v; output so far:\n%s", name, timeout, out)
	}
	if err != nil {
		t.Logf("%s exited with %v", name, err)
	}
	return string(out)
}

// GDB runs gdb in batch mode against a stub: it loads exe for symbols,
// connects, then runs cmds. gdb is the debugger's path (gdb or
// x86_64-w64-mingw32-gdb).
func GDB(t testing.TB, gdb, exe, addr string, cmds ...string) string {
	t.Helper()
	args := []string{"-batch", "-nx",
		"-ex", "set pagination off",
		"-ex", "set confirm off",
		"-ex", "set width 0",
		"-ex", "set remotetimeout 30",
	}
	if exe != "" {
		args = append(args, "-ex", "file "+exe)
	}
	args = append(args, "-ex", "target remote "+addr)
	for _, c := range cmds {
		args = append(args, "-ex", c)
	}
	return Run(t, 2*time.Minute, nil, gdb, args...)
}

// GDBInterrupt is GDB with a Ctrl-C: it sends SIGINT to gdb after
// delay, as a user pressing Ctrl-C during a `continue` would; gdb then
// sends the interrupt byte to the stub.
func GDBInterrupt(t testing.TB, gdb, exe, addr string, delay time.Duration, cmds ...string) string {
	t.Helper()
	args := []string{"-batch", "-nx", "-ex", "set confirm off", "-ex", "file " + exe,
		"-ex", "target remote " + addr}
	for _, c := range cmds {
		args = append(args, "-ex", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, gdb, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Logf("%s exited with %v", gdb, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("gdb timed out; output so far:\n%s", out.String())
	}
	return out.String()
}

// LLDBEnv is the environment that makes Debian's lldb find its Python
// package (NOTES.md: otherwise it prints a harmless ModuleNotFoundError).
func LLDBEnv() []string {
	out, err := exec.Command("dpkg", "-L", "python3-lldb-14").Output()
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(line, "/lldb/__init__.py") {
			return []string{"PYTHONPATH=" + filepath.Dir(filepath.Dir(line))}
		}
	}
	return nil
}

// LLDB runs lldb in batch mode: connects to the stub, then runs cmds.
func LLDB(t testing.TB, exe, addr string, cmds ...string) string {
	t.Helper()
	lldb := Tool(t, "lldb")
	args := []string{"--no-lldbinit", "--batch"}
	if exe != "" {
		args = append(args, "-o", "target create "+exe)
	}
	args = append(args, "-o", "gdb-remote "+addr)
	for _, c := range cmds {
		args = append(args, "-o", c)
	}
	return Run(t, 2*time.Minute, LLDBEnv(), lldb, args...)
}
