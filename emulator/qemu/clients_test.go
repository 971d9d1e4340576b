package qemu

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// runTool runs a debugger in batch mode with a time limit (testkit.Run).
func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	return testkit.Run(t, 20*time.Second, env, name, args...)
}

// TestGDBUser: GDB in front of qemu-user through rspstub.
func TestGDBUser(t *testing.T) {
	needTool(t, "gdb")
	prog := buildHello(t)
	s := startStub(t, "qemu-x86_64", prog)
	out := runTool(t, nil, "gdb", "-batch", "-nx",
		"-ex", "set confirm off",
		"-ex", "target remote "+s.Addr,
		"-ex", "break bump",
		"-ex", "continue",
		"-ex", "info registers rip",
		"-ex", "x/4gx $rsp",
		"-ex", "watch counter",
		"-ex", "continue",
		"-ex", "delete",
		"-ex", "stepi",
		"-ex", "info threads",
		"-ex", "monitor help",
		"-ex", "continue",
		prog)
	t.Logf("gdb output:\n%s", out)
	for _, want := range []string{
		"Breakpoint 1, ",
		"<bump+", // GDB breaks after the prologue
		"Hardware watchpoint 2: counter",
		"Old value = 0",
		"New value = 1",
		"qemu CMD",
		"exited with code 07",
	} {
		assert.Contains(t, out, want, "gdb output has no %q", want)
	}
	// x/4gx $rsp prints one line of two quad words per 16 bytes.
	assert.GreaterOrEqual(t, strings.Count(out, ":\t0x"), 2, "x/4gx lines")
	for _, bad := range []string{"Remote 'g' packet reply is too long", "Could not load XML", "Cannot access memory"} {
		assert.NotContains(t, out, bad, "gdb output has %q", bad)
	}
}

// TestLLDBUser: LLDB in front of qemu-user through rspstub.
func TestLLDBUser(t *testing.T) {
	needTool(t, "lldb")
	prog := buildHello(t)
	bump := symbol(t, prog, "bump")
	s := startStub(t, "qemu-x86_64", prog)
	env := testkit.LLDBEnv()
	out := runTool(t, env, "lldb", "--batch", "--no-lldbinit",
		"-o", "gdb-remote "+s.Addr,
		"-o", "register read",
		"-o", fmt.Sprintf("breakpoint set -a %#x", bump),
		"-o", "process continue",
		"-o", "register read rip",
		"-o", "memory read -c 16 $rsp",
		"-o", "process kill")
	t.Logf("lldb output:\n%s", out)
	for _, want := range []string{"rax = 0x", "rip = 0x", "cs = 0x00000033",
		"stop reason = breakpoint 1.1", fmt.Sprintf("rip = 0x%016x", bump)} {
		assert.Contains(t, out, want, "lldb output has no %q", want)
	}
}

// TestGDBSystem: GDB in front of qemu-system through rspstub: system
// registers and vCPUs as threads.
func TestGDBSystem(t *testing.T) {
	needTool(t, "gdb")
	kernel := buildGuest(t)
	elf64 := guestSymbols(t)
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 2)...)
	out := runTool(t, nil, "gdb", "-batch", "-nx",
		"-ex", "set confirm off",
		"-ex", "target remote "+s.Addr,
		"-ex", "break tick",
		"-ex", "continue",
		"-ex", "info registers rip cr0 cr3 efer",
		"-ex", "info threads",
		"-ex", "monitor qemu info cpus",
		"-ex", "bt",
		"-ex", "detach",
		elf64)
	t.Logf("gdb output:\n%s", out)
	for _, want := range []string{
		"Breakpoint 1, ",
		"<tick",
		fmt.Sprintf("cr3            0x%x", symbol(t, elf64, "pml4")),
		"efer           0x",
		"Thread 1.1 ", // multiprocess ids: pid 1
		"Thread 1.2 ",
		"CPU #0",
		"#1  ",
	} {
		assert.Contains(t, out, want, "gdb output has no %q", want)
	}
	for _, bad := range []string{"Remote 'g' packet reply is too long", "Could not load XML"} {
		assert.NotContains(t, out, bad, "gdb output has %q", bad)
	}
}

// TestLLDBSystem: LLDB shows every register of a vCPU, system ones
// included.
func TestLLDBSystem(t *testing.T) {
	needTool(t, "lldb")
	kernel := buildGuest(t)
	elf64 := guestSymbols(t)
	tick := symbol(t, elf64, "tick")
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
	env := testkit.LLDBEnv()
	out := runTool(t, env, "lldb", "--batch", "--no-lldbinit",
		"-o", "gdb-remote "+s.Addr,
		"-o", fmt.Sprintf("breakpoint set -a %#x", tick),
		"-o", "process continue",
		"-o", "register read --all",
		"-o", "process detach")
	t.Logf("lldb output:\n%s", out)
	for _, want := range []string{"stop reason = breakpoint 1.1", fmt.Sprintf("rip = 0x%016x", tick),
		"cr0 = 0x", fmt.Sprintf("cr3 = 0x%016x", symbol(t, elf64, "pml4")), "efer = 0x0000000000000500", "xmm15 = {", "st7 = {"} {
		assert.Contains(t, out, want, "lldb output has no %q", want)
	}
}
