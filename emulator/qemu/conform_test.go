package qemu

import (
	"github.com/rspstub/rspstub/internal/testkit"
	"path/filepath"

	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/rsp"
)

// buildConf builds the conformance program (tests/testdata/conf.c) for
// Linux, as a PIE (pie) or not, dynamically linked.
func buildConf(t testing.TB, pie bool) string {
	t.Helper()
	flags := []string{"-no-pie", "-fno-pie"}
	if pie {
		flags = []string{"-pie", "-fPIE"}
	}
	return testkit.BuildELF(t, "tests/testdata/conf.c", append(flags, "-O0", "-g")...)
}

// TestUserRecordNextGDB: GDB's `record` then `next` in front of
// qemu-user. With bare thread ids in stop replies GDB 13 asserted
// (thread_architecture: Assertion 'inf != NULL'): it waits without a
// current thread and took pid 0 for the id. Multiprocess ids (p<pid>.<tid>)
// carry the pid; `info inferiors` shows it.
func TestUserRecordNextGDB(t *testing.T) {
	needTool(t, "gdb")
	prog := buildConf(t, false)
	s := startStub(t, "qemu-x86_64", prog)
	out := runTool(t, nil, "gdb", "-batch", "-nx",
		"-ex", "set confirm off",
		"-ex", "target remote "+s.Addr,
		"-ex", "break count",
		"-ex", "continue",
		"-ex", "record",
		"-ex", "next",
		"-ex", "next",
		"-ex", "reverse-next",
		"-ex", "record stop",
		"-ex", "info inferiors",
		"-ex", "kill",
		prog)
	assert.NotContains(t, out, "internal-error")
	assert.Contains(t, out, "Process record is stopped")
	assert.Regexp(t, `\* 1\s+process \d+\s`, out)
	if t.Failed() {
		t.Logf("gdb output:\n%s", out)
	}
}

// TestUserPIELLDB: LLDB relocates a PIE run by qemu-user from the SVR4
// library list (qXfer:libraries-svr4): the breakpoint resolves at the
// runtime address and hits. With the Windows-form list the breakpoint
// stayed at the file address and the program ran to its end.
func TestUserPIELLDB(t *testing.T) {
	needTool(t, "lldb")
	prog := buildConf(t, true)
	s := startStub(t, "qemu-x86_64", prog)
	env := testkit.LLDBEnv()
	out := runTool(t, env, "lldb", "--batch", "--no-lldbinit",
		"-o", "target create "+prog,
		"-o", "gdb-remote "+s.Addr,
		"-o", "breakpoint set -n count",
		"-o", "continue",
		"-o", "bt",
		"-o", "image list",
		"-o", "kill")
	assert.Contains(t, out, "stop reason = breakpoint 1.1")
	name := regexp.QuoteMeta(filepath.Base(prog))
	assert.Regexp(t, `frame #0: 0x[0-9a-f]+ `+name+"`"+`count\(i=0\)`, out)
	assert.Regexp(t, `frame #1: 0x[0-9a-f]+ `+name+"`"+`main`, out)
	assert.NotContains(t, out, "exited with status = 25", "ran past the breakpoint")
	if t.Failed() {
		t.Logf("lldb output:\n%s", out)
	}
}

// TestUserSVR4List: the SVR4 library list is empty at the dynamic
// linker's entry, then names the executable's link_map entry (main-lm)
// and lists the libraries with their bias and dynamic section.
func TestUserSVR4List(t *testing.T) {
	prog := buildConf(t, true)
	s := startStub(t, "qemu-x86_64", prog)
	c := s.dial(t)
	assert.Equal(t, "+", c.Features()["qXfer:libraries-svr4:read"])
	assert.Empty(t, c.Features()["qXfer:libraries:read"], "no Windows-form list for a Linux program")
	doc, err := c.ReadXfer("libraries-svr4", "")
	require.NoError(t, err)
	assert.Equal(t, "<library-list-svr4 version=\"1.0\">\n</library-list-svr4>\n", string(doc))

	// The PIE's load address (the executable comes first).
	mods, _, err := LinuxModules(memOf{s.target}, mustAuxv(t, s))
	require.NoError(t, err)
	require.NotEmpty(t, mods)
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, mods[0].Base+symbol(t, prog, "main"), 1))
	_, err = c.Continue()
	require.NoError(t, err)
	doc, err = c.ReadXfer("libraries-svr4", "")
	require.NoError(t, err)
	assert.Regexp(t, `^<library-list-svr4 version="1.0" main-lm="0x[0-9a-f]+">`, string(doc))
	assert.Regexp(t, `<library name="/lib/x86_64-linux-gnu/libc.so.6" lm="0x[0-9a-f]+" l_addr="0x[0-9a-f]+" l_ld="0x[0-9a-f]+" lmid="0x0"/>`, string(doc))
	assert.True(t, strings.Count(string(doc), "<library ") >= 2, "%s", doc)
	assert.Regexp(t, regexp.MustCompile(`ld-linux-x86-64.so.2`), string(doc))
}

func mustAuxv(t *testing.T, s *stub) []byte {
	t.Helper()
	b, err := s.target.Auxv()
	require.NoError(t, err)
	return b
}

// TestUserConditionalBreakpointGDB: the server evaluates GDB's condition
// in front of qemu-user too, stepping off the breakpoint itself (QEMU
// hits a breakpoint again at once when resumed on it).
func TestUserConditionalBreakpointGDB(t *testing.T) {
	needTool(t, "gdb")
	prog := buildConf(t, false)
	s := startStub(t, "qemu-x86_64", prog)
	out := runTool(t, nil, "gdb", "-batch", "-nx",
		"-ex", "target remote "+s.Addr,
		"-ex", "break count if i == 2",
		"-ex", "continue",
		"-ex", "info breakpoints",
		"-ex", "continue",
		prog)
	hits := regexp.MustCompile(`Breakpoint 1, count \(i=(\d)\)`).FindAllStringSubmatch(out, -1)
	if assert.Len(t, hits, 1) {
		assert.Equal(t, "2", hits[0][1])
	}
	assert.Contains(t, out, "(target evals)")
	assert.Contains(t, out, "exited with code 031")
	if t.Failed() {
		t.Logf("gdb output:\n%s", out)
	}
}

// TestUserCatchSyscallGDB: `catch syscall` in front of qemu-user, whose
// gdbstub cannot: the entry of write (with its arguments in place), its
// return (rax holds the byte count), then exit_group, as gdbserver
// reports them for the same program.
func TestUserCatchSyscallGDB(t *testing.T) {
	needTool(t, "gdb")
	prog := buildConf(t, false)
	s := startStub(t, "qemu-x86_64", prog)
	out := runTool(t, nil, "gdb", "-batch", "-nx",
		"-ex", "target remote "+s.Addr,
		"-ex", "catch syscall write",
		"-ex", "continue",
		"-ex", "continue",
		"-ex", "p $rax",
		"-ex", "delete",
		"-ex", "catch syscall exit_group",
		"-ex", "continue",
		"-ex", "continue",
		prog)
	assert.Regexp(t, `Catchpoint 1 \(call to syscall write\), .* in \S*write \(fd=1, `, out)
	assert.Contains(t, out, "Catchpoint 1 (returned from syscall write)")
	assert.Contains(t, out, "$1 = 31") // "conf: counter 21 total 3 hello\n"
	assert.Contains(t, out, "Catchpoint 2 (call to syscall exit_group)")
	assert.Contains(t, out, "exited with code 031")
	assert.NotContains(t, out, "lmid", "the SVR4 list is well-formed for GDB 13")
	if t.Failed() {
		t.Logf("gdb output:\n%s", out)
	}
}

// TestUserAllocate: _M in qemu-user maps read-write-execute memory by
// running mmap in the guest; the program's registers are untouched, the
// memory is writable (even after code ran from it) and _m unmaps it.
func TestUserAllocate(t *testing.T) {
	prog := buildConf(t, false)
	s := startStub(t, "qemu-x86_64", prog)
	c := s.dial(t)
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, symbol(t, prog, "count"), 1))
	_, err := c.Continue()
	require.NoError(t, err)
	before, err := c.ReadRegisters()
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		rep, err := c.Request("_M1000,rx")
		require.NoError(t, err)
		addr, err := strconv.ParseUint(rep, 16, 64)
		require.NoError(t, err, "_M: %q", rep)
		assert.Zero(t, addr&0xfff, "not a page: %#x", addr)
		require.NoError(t, c.WriteMemory(addr, []byte{0xc3}), "write %#x", addr)
		var b [1]byte
		_, err = c.ReadMemory(addr, b[:])
		require.NoError(t, err)
		assert.Equal(t, byte(0xc3), b[0])
		rep, err = c.Request(fmt.Sprintf("_m%x", addr))
		require.NoError(t, err)
		assert.Equal(t, "OK", rep)
	}
	after, err := c.ReadRegisters()
	require.NoError(t, err)
	assert.Equal(t, before, after, "the thread's registers changed")
}
