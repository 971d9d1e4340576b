package testkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
	if p := LLDBPythonPath(); p != "" {
		return []string{"PYTHONPATH=" + p}
	}
	return nil
}

// LLDBPythonPath is the folder holding Debian's lldb Python package (the
// folder that has lldb/__init__.py), or "" when none is found: first
// what package python3-lldb-14 installed, then the usual folders.
func LLDBPythonPath() string {
	if out, err := exec.Command("dpkg", "-L", "python3-lldb-14").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(line, "/lldb/__init__.py") {
				return filepath.Dir(filepath.Dir(line))
			}
		}
	}
	for _, p := range []string{"/usr/lib/llvm-14/lib/python3.11/dist-packages", "/usr/lib/llvm-14/lib/python3/dist-packages", "/usr/lib/python3/dist-packages"} {
		if _, err := os.Stat(filepath.Join(p, "lldb", "__init__.py")); err == nil {
			return p
		}
	}
	return ""
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
