package tests

import (
	"debug/pe"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

const demoSrc = "examples/demo/demo.c"

// demoBuilds are the seed scenario's builds: mingw gcc at -O0 and -O2,
// and clang's mingw target.
var demoBuilds = []struct {
	name  string
	tc    testkit.Toolchain
	flags []string
}{
	{"mingw-O0", testkit.MinGW, []string{"-O0", "-g"}},
	{"mingw-O2", testkit.MinGW, []string{"-O2", "-g"}},
	{"clang-mingw-O0", testkit.ClangMinGW, []string{"-O0", "-g"}},
}

// hexField finds the first "NAME 0xHEX" in gdb's output.
func hexField(t *testing.T, out, re string) uint64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	require.NotNil(t, m, "no match for %q in gdb output:\n%s", re, out)
	v, err := strconv.ParseUint(strings.TrimPrefix(m[1], "0x"), 16, 64)
	require.NoError(t, err, "parse %q", m[1])
	return v
}

// TestSeedScenarioGDB is issue 3's seed scenario with Debian's gdb 13:
// break d, continue, sane registers, x/s, stepi, a watchpoint on a
// global, the guest's output, and the exit code.
func TestSeedScenarioGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	for _, b := range demoBuilds {
		t.Run(b.name, func(t *testing.T) {
			exe := testkit.BuildPE(t, demoSrc, b.tc, b.flags...)
			stub := testkit.StartStub(t, exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr,
				"break d",
				"continue",
				"echo @@frame\\n",
				"info symbol $pc",
				"echo @@regs\\n",
				"p/x $rsp",
				"p/x $gs_base",
				"x/gx $gs_base+0x30",
				"x/gx $gs_base+0x8",
				"x/gx $gs_base+0x10",
				"echo @@string\\n",
				"x/s greeting",
				"echo @@stepi\\n",
				"p/x $pc",
				"stepi",
				"p/x $pc",
				"echo @@watch\\n",
				"delete",
				"watch counter",
				"continue",
				"p/x $pc",
				"info symbol $pc",
				"echo @@exit\\n",
				"delete",
				"continue",
			)
			t.Logf("gdb output:\n%s", out)
			require.Contains(t, out, "Breakpoint 1, ", "did not stop at d")
			require.Regexp(t, `\bd \(`, out, "did not stop at d")
			frame := section(out, "@@frame", "@@regs")
			assert.True(t, strings.HasPrefix(strings.TrimSpace(frame), "d ") || strings.Contains(frame, "d in section .text"), "pc is not in d: %q", frame)
			// Registers: rsp inside the thread's stack (TEB StackLimit <=
			// rsp < StackBase), gs_base is the TEB, whose self pointer
			// (TEB+0x30) points to itself.
			regs := section(out, "@@regs", "@@string")
			rsp := hexField(t, regs, `\$1 = (0x[0-9a-f]+)`)
			gs := hexField(t, regs, `\$2 = (0x[0-9a-f]+)`)
			vals := regexp.MustCompile(`:\s+(0x[0-9a-f]+)`).FindAllStringSubmatch(regs, -1)
			require.Len(t, vals, 3, "x/gx results in %q", regs)
			self, _ := strconv.ParseUint(vals[0][1][2:], 16, 64)
			base, _ := strconv.ParseUint(vals[1][1][2:], 16, 64)
			limit, _ := strconv.ParseUint(vals[2][1][2:], 16, 64)
			assert.NotZero(t, gs, "gs_base")
			assert.Equal(t, gs, self, "the TEB's self pointer is gs_base")
			assert.True(t, limit <= rsp && rsp < base, "rsp %#x is outside the stack [%#x, %#x)", rsp, limit, base)
			assert.Contains(t, section(out, "@@string", "@@stepi"), `"hello from the demo guest"`, "x/s greeting")
			step := section(out, "@@stepi", "@@watch")
			pcs := regexp.MustCompile(`= (0x[0-9a-f]+)`).FindAllStringSubmatch(step, -1)
			if assert.Len(t, pcs, 2, "pcs before and after stepi: %q", step) {
				assert.NotEqual(t, pcs[0][1], pcs[1][1], "stepi did not move the pc: %q", step)
			}
			watch := section(out, "@@watch", "@@exit")
			assert.Contains(t, watch, "atchpoint 2: counter", "watchpoint did not report the write of 8 to counter")
			assert.Contains(t, watch, "New value = 8", "watchpoint did not report the write of 8 to counter")
			assert.Regexp(t, `(?m)^d (\+ \d+ )?in section`, watch, "watchpoint stop is not in d: %q", watch)
			exit := section(out, "@@exit", "")
			// main returns a(1) = 11 = 013 octal.
			assert.Contains(t, exit, "exited with code 013", "exit code not reported as 11: %q", exit)
			for _, line := range []string{"main: hello from the demo guest", "a: 1", "b: 2", "c: 3", "d: 4", "main: result 11"} {
				assert.Contains(t, stub.Stdout(), line, "guest output lacks %q; stdout:\n%s", line, stub.Stdout())
			}
		})
	}
}

// section returns the part of out between two markers ("" = the end).
func section(out, from, to string) string {
	i := strings.Index(out, from)
	if i < 0 {
		return ""
	}
	s := out[i+len(from):]
	if to != "" {
		if j := strings.Index(s, to); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// TestNullWriteSIGSEGV: a write through NULL stops with SIGSEGV at the
// faulting store itself, not at the start of its translation block.
func TestNullWriteSIGSEGV(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	for _, b := range demoBuilds[:2] {
		t.Run(b.name, func(t *testing.T) {
			exe := testkit.BuildPE(t, "tests/testdata/nullwrite.c", b.tc, b.flags...)
			stub := testkit.StartStub(t, exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr,
				"continue",
				"echo @@pc\\n",
				"info symbol $pc",
				"x/i $pc",
				"continue",
			)
			t.Logf("gdb output:\n%s", out)
			require.Contains(t, out, "SIGSEGV", "no SIGSEGV")
			pc := section(out, "@@pc", "")
			assert.True(t, strings.HasPrefix(strings.TrimSpace(pc), "poke"), "fault not reported in poke: %q", pc)
			// The instruction at the pc must be the store to memory.
			ins := regexp.MustCompile(`=> 0x[0-9a-f]+ <[^>]*>:\s+(.*)`).FindStringSubmatch(pc)
			if assert.NotNil(t, ins, "no instruction at the pc: %q", pc) {
				assert.Regexp(t, `^mov.*,\(%`, ins[1], "pc is not at the faulting store: %q", pc)
			}
			assert.NotContains(t, stub.Stdout(), "not reached", "the guest ran past the fault")
		})
	}
}

// TestInterruptInfiniteLoop: Ctrl-C during gdb's `continue` stops a
// guest spinning in a tight loop.
func TestInterruptInfiniteLoop(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDBInterrupt(t, gdb, exe, stub.Addr, 2*time.Second,
		"continue",
		"echo @@where\\n",
		"info symbol $pc",
		"p spins",
		"kill",
	)
	t.Logf("gdb output:\n%s", out)
	require.Contains(t, out, "SIGINT", "the loop was not interrupted with SIGINT")
	where := section(out, "@@where", "")
	assert.True(t, strings.HasPrefix(strings.TrimSpace(where), "main"), "interrupted outside main's loop: %q", where)
	spins := hexField(t, where, `\$1 = (\d+)`) // decimal digits parse as hex: only != 0 matters
	assert.NotZero(t, spins, "the loop did not run")
	assert.Contains(t, stub.Stdout(), "spinning", "guest output missing: %q", stub.Stdout())
}

// TestUnimplementedAPIStops: a call to an API the guest model lacks
// stops the guest with a report naming dll!function and the caller.
func TestUnimplementedAPIStops(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/unimpl.c", testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr, "continue", "echo @@bt\\n", "x/gx $rsp", "kill")
	t.Logf("gdb output:\n%s", out)
	assert.Contains(t, out, "SIGSYS", "no SIGSYS stop")
	m := regexp.MustCompile(`unimplemented API (\S+) called from (0x[0-9a-f]+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no unimplemented-API report in gdb's console")
	assert.True(t, strings.EqualFold(m[1], "KERNEL32.dll!GetSystemPowerStatus"), "report names %s", m[1])
	// The caller is the return address on the stack at the API entry.
	ret := section(out, "@@bt", "")
	assert.Equal(t, hexField(t, ret, `:\s+(0x[0-9a-f]+)`), hexField(t, m[0], `from (0x[0-9a-f]+)`), "caller %s is not the return address at [rsp]: %q", m[2], ret)
	assert.Contains(t, stub.Stdout(), "asking for power status", "guest output missing")
}

// symbolAddr reads a COFF symbol's virtual address from a PE file.
func symbolAddr(t *testing.T, exe, name string) uint64 {
	t.Helper()
	f, err := pe.Open(exe)
	require.NoError(t, err)
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	require.True(t, ok, "%s is not PE32+", exe)
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) {
			sec := f.Sections[s.SectionNumber-1]
			return oh.ImageBase + uint64(sec.VirtualAddress) + uint64(s.Value)
		}
	}
	require.FailNow(t, "no symbol", "%s in %s", name, exe)
	return 0
}

// TestLLDB: lldb 14 connects with gdb-remote, reads registers, stops at
// a breakpoint set by address, and reads memory.
func TestLLDB(t *testing.T) {
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	d := symbolAddr(t, exe, "d")
	stub := testkit.StartStub(t, exe)
	out := testkit.LLDB(t, exe, stub.Addr,
		"register read",
		fmt.Sprintf("breakpoint set --address %#x", d),
		"continue",
		"register read rip rsp gs_base",
		"memory read --size 8 --format x --count 2 $rsp",
		"kill",
	)
	t.Logf("lldb output:\n%s", out)
	assert.Regexp(t, `rip = 0x[0-9a-f]+`, out, "register read shows no rip")
	assert.Regexp(t, fmt.Sprintf(`rip = 0x0*%x`, d), out, "did not stop at d (%#x)", d)
	assert.Regexp(t, `0x[0-9a-f]+: 0x[0-9a-f]{16} 0x[0-9a-f]{16}`, out, "memory read printed nothing")
	assert.Contains(t, stub.Stdout(), "c: 3", "guest output missing: %q", stub.Stdout())
}

// TestBadInput: missing files and non-PE input get one clear line and
// exit code 2.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notPE := dir + "/notpe.exe"
	writeFile(t, notPE, []byte("this is not a PE file at all"))
	for _, tc := range []struct{ name, arg, want string }{
		{"missing", dir + "/nope.exe", "no such file"},
		{"not-pe", notPE, notPE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := testkit.Launch(t, "serve", "--listen", "127.0.0.1:0", tc.arg)
			require.Empty(t, stub.Addr, "the stub listens")
			code := stub.ExitCode(t, 30*time.Second)
			out := stub.Stdout() + stub.Stderr()
			assert.Equal(t, 2, code, "exit code; output %q", out)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if assert.Len(t, lines, 1, "want one line; output %q", out) {
				assert.Contains(t, lines[0], tc.want)
			}
		})
	}
}

// TestGuestFaults: each kind of guest fault stops with its signal at the
// faulting instruction, and the stub keeps serving afterwards.
func TestGuestFaults(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/faults.c", testkit.MinGW, "-O0", "-g")
	for _, tc := range []struct {
		arg, signal, fn, insn string
	}{
		{"ill", "SIGILL", "do_ill", "ud2"},
		{"div", "SIGFPE", "do_div", "idiv"},
		{"int3", "SIGTRAP", "do_int3", ""}, // the pc is after the int3, as on hardware
		{"exec", "SIGSEGV", "", ""},        // a call to address 0: the pc is 0
	} {
		t.Run(tc.arg, func(t *testing.T) {
			stub := testkit.StartStub(t, exe, tc.arg)
			out := testkit.GDB(t, gdb, exe, stub.Addr,
				"continue",
				"echo @@pc\\n",
				"p/x $pc",
				"info symbol $pc",
				"x/i $pc",
				"echo @@after\\n",
				"p/x $rsp",
				"kill",
			)
			t.Logf("gdb output:\n%s", out)
			require.Contains(t, out, "signal "+tc.signal, "no %s stop", tc.signal)
			pc := section(out, "@@pc", "@@after")
			switch {
			case tc.arg == "exec":
				assert.Contains(t, pc, "= 0x0\n", "pc is not 0 after a call through NULL: %q", pc)
			case tc.arg == "int3":
				assert.Contains(t, pc, tc.fn, "stop is not in %s: %q", tc.fn, pc)
			default:
				assert.Contains(t, pc, tc.fn, "pc is not in %s", tc.fn)
				assert.Regexp(t, `=> 0x[0-9a-f]+ <[^>]*>:\s+`+tc.insn, pc, "pc is not at the %s in %s", tc.insn, tc.fn)
			}
			assert.Regexp(t, `@@after\n\$\d+ = 0x[0-9a-f]+`, out, "the stub stopped answering after the fault")
		})
	}
}

// TestStopAtEntry: --stop-at entry stops at the image entry point.
func TestStopAtEntry(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	f, err := pe.Open(exe)
	require.NoError(t, err)
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	entry := oh.ImageBase + uint64(oh.AddressOfEntryPoint)
	f.Close()
	stub := testkit.StartStub(t, "--stop-at", "entry", exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr, "p/x $pc", "info symbol $pc", "kill")
	t.Logf("gdb output:\n%s", out)
	assert.Equal(t, entry, hexField(t, out, `\$1 = (0x[0-9a-f]+)`), "first stop is not the entry point %#x", entry)
	assert.Contains(t, out, "mainCRTStartup", "entry point symbol is not mainCRTStartup")
}

// TestReadMemoryMappedLater: memory the guest maps while it runs
// (VirtualAlloc) is readable from gdb, which would refuse it had the stub
// advertised a memory map at connect time.
func TestReadMemoryMappedLater(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/valloc.c", testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr, "break stop_here", "continue", "x/s p", "kill")
	t.Logf("gdb output:\n%s", out)
	assert.Regexp(t, `0x[0-9a-f]+:\s+"hi"`, out, "gdb could not read the VirtualAlloc'd string")
}

// TestClangMSVCProgram: a program built by clang's msvc target (lld-link,
// no CRT) runs under the stub, stops at its entry point, prints through
// kernel32 and reports its exit code.
func TestClangMSVCProgram(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	lib := "/usr/x86_64-w64-mingw32/lib/libkernel32.a"
	if _, err := os.Stat(lib); err != nil {
		testkit.Tool(t, "x86_64-w64-mingw32-gcc") // skips or fails with the reason
		require.FailNow(t, "mingw-w64 is installed but a library is missing", lib)
	}
	exe := testkit.BuildPE(t, "tests/testdata/msvc.c", testkit.ClangMSVC, "-O2", "-nostdlib",
		"-fasynchronous-unwind-tables", lib, "-Wl,-entry:start", "-Wl,-subsystem:console")
	f, err := pe.Open(exe)
	require.NoError(t, err)
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	entry := oh.ImageBase + uint64(oh.AddressOfEntryPoint)
	f.Close()
	stub := testkit.StartStub(t, "--stop-at", "entry", exe)
	out := testkit.GDB(t, gdb, "", stub.Addr, "p/x $pc", "continue")
	t.Logf("gdb output:\n%s", out)
	assert.Equal(t, entry, hexField(t, out, `\$1 = (0x[0-9a-f]+)`), "first stop is not the entry point %#x", entry)
	assert.Contains(t, out, "exited with code 05", "exit code 5 not reported")
	assert.Contains(t, stub.Stdout(), "d: hello from msvc", "guest output missing: %q", stub.Stdout())
}

// TestBreakOnAPI: with the Windows-ABI gdb, which fetches the synthesized
// system DLLs through vFile, `break msvcrt!fputc` stops at the API entry
// (not after a prolog the emulated call never runs), the backtrace goes
// through the DLL into the program, and `finish` performs the call.
func TestBreakOnAPI(t *testing.T) {
	gdb := testkit.Tool(t, "x86_64-w64-mingw32-gdb")
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		"info sharedlibrary",
		"break msvcrt!fputc",
		"continue",
		"echo @@bt\\n",
		"bt",
		"p/c $rcx",
		"echo @@finish\\n",
		"finish",
		"p/c $rax",
		"kill",
	)
	t.Logf("gdb output:\n%s", out)
	for _, dll := range []string{"ntdll.dll", "KERNEL32.dll", "msvcrt.dll"} {
		assert.Regexp(t, `0x[0-9a-f]+\s+0x[0-9a-f]+\s+Yes.*`+regexp.QuoteMeta(dll), out, "gdb did not load %s's symbols through vFile", dll)
	}
	bt := section(out, "@@bt", "@@finish")
	assert.Regexp(t, `#0\s+0x[0-9a-f]+ in msvcrt!fputc \(\)`, bt, "did not stop at the entry of msvcrt!fputc: %q", bt)
	assert.Regexp(t, `in main \(`, bt, "backtrace does not reach main: %q", bt)
	assert.Contains(t, bt, "= 109 'm'", "first character written is not 'm': %q", bt)
	assert.Contains(t, section(out, "@@finish", ""), "= 109 'm'", "fputc did not return its character after finish")
}
