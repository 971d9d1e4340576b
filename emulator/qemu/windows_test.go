package qemu

import (
	"bytes"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// winGuest is the Windows-shaped fixture of testdata/winguest.S.
type winGuest struct {
	kernel, elf64 string // multiboot image, and the same with 64-bit symbols
	exe, dll      string // chain.exe and kernel32.dll
}

// buildWinGuest builds the two PE images with mingw, checks that their
// file layout is their memory layout (the guest copies them as they
// are), and the kernel that embeds them.
func buildWinGuest(t testing.TB) winGuest {
	t.Helper()
	needTool(t, "x86_64-w64-mingw32-gcc", "gcc", "ld", "objcopy")
	dir := testkit.Fixture(t, "winguest", func(t testing.TB, dir string) {
		abs := func(p string) string { a, _ := filepath.Abs(p); return a }
		flags := []string{"-O2", "-fomit-frame-pointer", "-ffreestanding", "-nostdlib",
			"-Wl,--file-alignment,0x1000", "-Wl,--section-alignment,0x1000", "-Wl,--disable-dynamicbase"}
		run(t, dir, "x86_64-w64-mingw32-gcc", append(flags, "-Wl,--image-base,0x800000", "-Wl,-e,entry",
			"-o", "chain.exe", abs("testdata/winchain.c"))...)
		run(t, dir, "x86_64-w64-mingw32-gcc", append(flags, "-shared", "-Wl,--image-base,0xa00000", "-Wl,-e,BaseThreadInitThunk",
			"-o", "kernel32.dll", abs("testdata/winthunk.c"))...)
		for _, img := range []string{filepath.Join(dir, "chain.exe"), filepath.Join(dir, "kernel32.dll")} {
			f, err := pe.Open(img)
			require.NoError(t, err)
			for _, s := range f.Sections {
				if s.Size > 0 {
					require.Equal(t, s.VirtualAddress, s.Offset, "%s: section %s: file offset and rva differ: the guest's copy would be wrong", img, s.Name)
				}
			}
			require.NotNil(t, f.Section(".pdata"), "%s has no .pdata", img)
			f.Close()
		}
		run(t, dir, "gcc", "-c", "-o", "winguest.o", abs("testdata/winguest.S"))
		run(t, dir, "ld", "-m", "elf_x86_64", "-T", abs("testdata/guest.ld"), "-o", "winguest64.elf", "winguest.o")
		run(t, dir, "objcopy", "-O", "elf32-i386", "winguest64.elf", "winguest.elf")
	})
	return winGuest{kernel: filepath.Join(dir, "winguest.elf"), elf64: filepath.Join(dir, "winguest64.elf"),
		exe: filepath.Join(dir, "chain.exe"), dll: filepath.Join(dir, "kernel32.dll")}
}

// peSymbol is a COFF symbol's address in a PE image.
func peSymbol(t testing.TB, path, name string) uint64 {
	t.Helper()
	f, err := pe.Open(path)
	require.NoError(t, err)
	defer f.Close()
	base := f.OptionalHeader.(*pe.OptionalHeader64).ImageBase
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) {
			return base + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	require.FailNow(t, "no symbol", "%s: %s", path, name)
	return 0
}

func mon(t *testing.T, c *rsp.Client, cmd string) string {
	t.Helper()
	out, err := c.Monitor(cmd)
	assert.NoError(t, err, "monitor %s\n%s", cmd, out)
	return out
}

// monErr runs a monitor command that must fail with want in its text.
func monErr(t *testing.T, c *rsp.Client, cmd, want string) {
	t.Helper()
	out, err := c.Monitor(cmd)
	assert.Error(t, err, "monitor %s = %q", cmd, out)
	assert.Contains(t, out, want, "monitor %s", cmd)
}

// checkFrames checks that bt's first frames are want, in order.
func checkFrames(t *testing.T, bt string, want ...string) {
	t.Helper()
	var got []string
	re := regexp.MustCompile(`\b([A-Za-z0-9_.]+![A-Za-z0-9_]+)\b`)
	for _, line := range strings.Split(bt, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			got = append(got, m[1])
		}
	}
	if !assert.GreaterOrEqual(t, len(got), len(want), "bt's named frames, want %v:\n%s", want, bt) {
		return
	}
	assert.Equal(t, want, got[:len(want)], "bt's first frames:\n%s", bt)
}

// TestWindowsGuest: module discovery over QEMU from guest memory only,
// in the three phases of testdata/winguest.S, through our Go client.
func TestWindowsGuest(t *testing.T) {
	g := buildWinGuest(t)
	s := startStub(t, testkit.QEMUSystemArgs(g.kernel, 2)...)
	c := s.dial(t)
	monErr(t, c, "teb", "not in 64-bit long mode")

	d := peSymbol(t, g.exe, "d")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, d, 1))
	stopAtD := func(phase uint64) rsp.Stop {
		t.Helper()
		if phase > 1 {
			// Step off the breakpoint first, as debuggers do (QEMU would
			// report it again at once).
			require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, d, 1))
			_, err := c.Step()
			require.NoError(t, err, "step off d")
			require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, d, 1))
		}
		st, err := c.Continue()
		require.NoError(t, err, "phase %d: continue", phase)
		require.Equal(t, rsp.StopSWBreak, st.Kind, "phase %d: stop %+v; want the breakpoint at d", phase, st)
		// entry(phase) -> a(phase) -> b(+1) -> c(+2) -> d(+3)
		r := regs(t, c, "rip", "rcx")
		require.Equal(t, d, r["rip"], "phase %d: rip, want d", phase)
		require.Equal(t, uint32(phase+3), uint32(r["rcx"]), "phase %d: ecx, d's argument", phase)
		return st
	}
	// Frames are named module!symbol, the module without its extension.
	chain := []string{"chain!d", "chain!c", "chain!b", "chain!a", "chain!entry"}

	// Phase 1: gs_base 0. The MZ scan names the image from its exports.
	stopAtD(1)
	monErr(t, c, "teb", "gs_base 0x0: is 0")
	rep, err := c.Request("qGetTIBAddr:1")
	assert.Error(t, err, "qGetTIBAddr with no TEB = %q", rep)
	assert.Contains(t, mon(t, c, "modules"), "00000000`00800000  00000000`00808000  0x8000     chain.exe", "modules by MZ scan")
	assert.Contains(t, mon(t, c, "discovery"), "MZ scan back from rip", "discovery")
	checkFrames(t, mon(t, c, "bt"), chain...)

	// Phase 2: gs_base points at unmapped memory.
	stopAtD(2)
	monErr(t, c, "teb", "gs_base 0x1800000: TEB unmapped")

	// Phase 3: the TEB, PEB and loader list.
	st := stopAtD(3)
	assert.True(t, st.Library, "the stop after the modules appeared has no library: flag")
	teb := symbol(t, g.elf64, "teb")
	rep, err = c.Request("qGetTIBAddr:1")
	if assert.NoError(t, err, "qGetTIBAddr:1") {
		assert.Equal(t, fmt.Sprintf("%x", teb), rep, "qGetTIBAddr:1")
	}
	assert.Contains(t, mon(t, c, "teb"), fmt.Sprintf("Self                       %#x", teb), "teb")
	out := mon(t, c, "modules")
	for _, want := range []string{
		"00000000`00800000  00000000`00808000  0x8000     chain.exe            C:\\guest\\chain.exe",
		"00000000`00a00000  00000000`00a08000  0x8000     kernel32.dll         C:\\Windows\\System32\\kernel32.dll",
	} {
		assert.Contains(t, out, want, "modules: no %q in\n%s", want, out)
	}
	checkFrames(t, mon(t, c, "bt"), append(chain, "kernel32!BaseThreadInitThunk")...)
	assert.Contains(t, mon(t, c, "peb"), "0x8000     kernel32.dll", "peb")
	assert.Contains(t, mon(t, c, "discovery"), "PEB loader list", "discovery")
	libs, err := c.ReadXfer("libraries", "")
	require.NoError(t, err)
	for _, want := range []string{`<library name="C:\guest\chain.exe"><segment address="0x801000"/>`,
		`<library name="C:\Windows\System32\kernel32.dll"><segment address="0xa01000"/>`} {
		assert.Contains(t, string(libs), want, "library list has no %s:\n%s", want, libs)
	}
	help := mon(t, c, "help")
	assert.Contains(t, help, "verify-unwind", "help lists the shared commands")
	assert.Contains(t, help, "qemu CMD", "help lists QEMU's commands")
	// Monitor commands follow the debugger's thread (Hg): vCPU 1 is
	// halted in protected mode, where there is no TEB.
	_, err = c.Request("Hg2")
	require.NoError(t, err)
	regs(t, c, "rip")
	monErr(t, c, "teb", "vCPU thread 2 is not in 64-bit long mode")
	_, err = c.Request("Hg1")
	require.NoError(t, err)
	regs(t, c, "rip")
	checkFrames(t, mon(t, c, "bt"), chain...)

	buf := make([]byte, 0x200)
	n, err := c.ReadMemory(0x1000000-24, buf)
	assert.Equal(t, 24, n, "read across 0x1000000: bytes (%v)", err)
}

// TestGDBWindowsGuest: GDB through rspstub on the Windows guest: a
// breakpoint in the deepest function by its PE address, monitor bt,
// modules and teb, qGetTIBAddr, the library list, system registers, a
// read across the end of the mapping, and Ctrl-C (interrupt).
func TestGDBWindowsGuest(t *testing.T) {
	needTool(t, "gdb")
	g := buildWinGuest(t)
	d := peSymbol(t, g.exe, "d")
	s := startStub(t, testkit.QEMUSystemArgs(g.kernel, 1)...)
	// Ctrl-C: SIGINT to gdb while it waits in "continue".
	out := runInterrupted(t, "@@running", "gdb", "-batch", "-nx",
		"-ex", "set confirm off",
		"-ex", "target remote "+s.Addr,
		"-ex", "hbreak good_loop",
		"-ex", "continue",
		"-ex", "delete",
		"-ex", fmt.Sprintf("break *%#x", d),
		"-ex", "continue",
		"-ex", "info registers rip cr3 efer gs_base",
		"-ex", "echo @@bt\\n",
		"-ex", "monitor bt",
		"-ex", "echo @@modules\\n",
		"-ex", "monitor modules",
		"-ex", "monitor teb",
		"-ex", "maint packet qGetTIBAddr:1",
		"-ex", "sharedlibrary",
		"-ex", "info sharedlibrary",
		"-ex", "x/32xb 0xfffff0",
		"-ex", "delete",
		"-ex", "echo @@running\\n",
		"-ex", "continue",
		"-ex", "echo @@after-interrupt\\n",
		"-ex", "info registers rip",
		"-ex", "detach",
		g.elf64)
	t.Logf("gdb output:\n%s", out)
	teb := symbol(t, g.elf64, "teb")
	for _, want := range []string{
		fmt.Sprintf("Breakpoint 2, %#016x in ?? ()", d),
		fmt.Sprintf("cr3            %#x", symbol(t, g.elf64, "pml4")),
		"efer           0x500",
		fmt.Sprintf("gs_base        %#x", teb),
		"kernel32!BaseThreadInitThunk",
		`C:\Windows\System32\kernel32.dll`,
		fmt.Sprintf("Self                       %#x", teb),
		fmt.Sprintf("received: \"%x\"", teb),
		"No          C:\\Windows\\System32\\kernel32.dll", // the library list, without the file
		"Cannot access memory at address 0x1000000",
		"Program received signal SIGINT",
	} {
		assert.Contains(t, out, want, "gdb output has no %q", want)
	}
	checkFrames(t, section(out, "@@bt", "@@modules"), "chain!d", "chain!c", "chain!b", "chain!a", "chain!entry", "kernel32!BaseThreadInitThunk")
	// 16 bytes up to the end of the mapping are printed before the error.
	assert.Regexp(t, `0xfffff8:(\s+0x[0-9a-f]{2}){8}`, out, "x/32xb across the end of the mapping printed no prefix")
	for _, bad := range []string{"Remote 'g' packet reply is too long", "Could not load XML"} {
		assert.NotContains(t, out, bad, "gdb output has %q", bad)
	}
}

// runInterrupted runs a debugger and sends it SIGINT (a Ctrl-C) once
// marker is in its output and a moment has passed. On a loaded machine
// the debugger may not be waiting in "continue" yet when the first one
// lands (GDB then drops it), so it is sent again, up to three times in
// all, while no "received signal SIGINT" has appeared 3 s after the last.
func runInterrupted(t *testing.T, marker, name string, args ...string) string {
	t.Helper()
	var buf lockedWriter
	buf.w = new(bytes.Buffer)
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	text := func() string {
		buf.mu.Lock()
		defer buf.mu.Unlock()
		return buf.w.String()
	}
	deadline := time.After(30 * time.Second)
	sent, sends := false, 0
	var last time.Time
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Logf("%s: %v", name, err)
			}
			assert.True(t, sent, "%s ended before %q", name, marker)
			return text()
		case <-deadline:
			cmd.Process.Kill()
			require.FailNow(t, "timed out", "%s:\n%s", name, text())
		case <-time.After(50 * time.Millisecond):
			if !sent && strings.Contains(text(), marker) {
				time.Sleep(500 * time.Millisecond)
				cmd.Process.Signal(os.Interrupt)
				sent, sends, last = true, 1, time.Now()
			} else if sent && sends < 3 && time.Since(last) > 3*time.Second && !strings.Contains(text(), "received signal SIGINT") {
				t.Logf("no stop 3 s after Ctrl-C %d; sending another", sends)
				cmd.Process.Signal(os.Interrupt)
				sends, last = sends+1, time.Now()
			}
		}
	}
}

// section is the text between two markers of a transcript.
func section(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

// TestLLDBWindowsGuest: LLDB connects and shows every register,
// system ones included, at the Windows guest's deepest function.
func TestLLDBWindowsGuest(t *testing.T) {
	needTool(t, "lldb")
	g := buildWinGuest(t)
	d := peSymbol(t, g.exe, "d")
	good := symbol(t, g.elf64, "good_loop")
	s := startStub(t, testkit.QEMUSystemArgs(g.kernel, 1)...)
	env := testkit.LLDBEnv()
	out := runTool(t, env, "lldb", "--batch", "--no-lldbinit",
		"-o", "gdb-remote "+s.Addr,
		"-o", fmt.Sprintf("breakpoint set -a %#x", good),
		"-o", "process continue",
		"-o", "breakpoint delete -f",
		"-o", fmt.Sprintf("breakpoint set -a %#x", d),
		"-o", "process continue",
		"-o", "register read --all",
		"-o", "process plugin packet monitor modules",
		"-o", "process detach")
	t.Logf("lldb output:\n%s", out)
	for _, want := range []string{fmt.Sprintf("rip = 0x%016x", d), "rsp = 0x", "r15 = 0x",
		fmt.Sprintf("cr3 = 0x%016x", symbol(t, g.elf64, "pml4")), "efer = 0x0000000000000500",
		fmt.Sprintf("gs_base = 0x%016x", symbol(t, g.elf64, "teb")), "k_gs_base = 0x", "xmm15 = {", "st7 = {", "mxcsr = 0x"} {
		assert.Contains(t, out, want, "lldb output has no %q", want)
	}
}

// TestWindowsGuestModuleFile: with --module FILE@BASE, a stop where no
// TEB exists yet (phase 1, gs_base 0) still has named frames, from the
// file's COFF symbols, and the file is what vFile and exec-file serve,
// and nothing else.
func TestWindowsGuestModuleFile(t *testing.T) {
	g := buildWinGuest(t)
	mf, err := ParseModuleFile(g.exe + "@800000")
	require.NoError(t, err)
	s := startStubWith(t, Options{Modules: []*ModuleFile{mf}}, testkit.QEMUSystemArgs(g.kernel, 1)...)
	c := s.dial(t)
	// A static function is in the COFF symbols only, not the exports:
	// names come from the file. d is exported, so check the symbol
	// source by the module path instead.
	d := peSymbol(t, g.exe, "d")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, d, 1))
	st, err := c.Continue()
	require.NoError(t, err, "continue")
	require.Equal(t, rsp.StopSWBreak, st.Kind, "stop %+v", st)
	require.Zero(t, regs(t, c, "gs_base")["gs_base"], "gs_base: not the phase without a TEB")
	out := mon(t, c, "modules")
	assert.Contains(t, out, "0x8000     chain.exe            "+g.exe, "modules with --module:\n%s", out)
	assert.Contains(t, mon(t, c, "discovery"), "1 --module file", "discovery")
	checkFrames(t, mon(t, c, "bt"), "chain!d", "chain!c", "chain!b", "chain!a", "chain!entry")
	libs, err := c.ReadXfer("libraries", "")
	if assert.NoError(t, err, "library list") {
		assert.Contains(t, string(libs), fmt.Sprintf(`<library name="%s"><segment address="0x801000"/>`, g.exe), "library list")
	}
	exe, err := c.ReadXfer("exec-file", "1")
	if assert.NoError(t, err, "exec-file") {
		assert.Equal(t, g.exe, string(exe), "exec-file")
	}
	for _, name := range []string{g.exe, "/etc/passwd", g.dll} {
		rep, err := c.Request("vFile:open:" + hexString(name) + ",0,0")
		ok := err == nil && strings.HasPrefix(rep, "F") && !strings.HasPrefix(rep, "F-1")
		assert.Equal(t, name == g.exe, ok, "vFile:open %s = %q, %v: opens", name, rep, err)
	}
}

func hexString(s string) string { return fmt.Sprintf("%x", s) }

// TestParseModuleFile: --module validation.
func TestParseModuleFile(t *testing.T) {
	g := buildWinGuest(t)
	m, err := ParseModuleFile(g.dll + "@0xA00000")
	if assert.NoError(t, err, "ParseModuleFile") {
		assert.Equal(t, uint64(0xa00000), m.Base, "ParseModuleFile: Base")
		assert.Equal(t, uint64(0x8000), m.Size, "ParseModuleFile: Size")
		assert.Equal(t, uint32(0x1000), m.FirstSectionRVA, "ParseModuleFile: FirstSectionRVA")
		assert.Equal(t, "kernel32.dll", m.Name(), "ParseModuleFile: Name")
	}
	// An ELF image: where it was linked (the guest's lowest PT_LOAD page).
	m, err = ParseModuleFile(g.elf64)
	if assert.NoError(t, err, "ParseModuleFile(ELF)") {
		assert.Equal(t, uint64(0x100000), m.Base, "ParseModuleFile(ELF): Base")
		assert.Equal(t, unwind.FormatELF, m.Format, "ParseModuleFile(ELF): Format")
		assert.NotZero(t, m.Size, "ParseModuleFile(ELF): Size")
		assert.Zero(t, m.Size%0x1000, "ParseModuleFile(ELF): Size %#x in pages", m.Size)
	}
	m, err = ParseModuleFile(g.elf64 + "@0x100000")
	if assert.NoError(t, err, "ParseModuleFile(ELF@its base)") {
		assert.Equal(t, uint64(0x100000), m.Base, "ParseModuleFile(ELF@its base): Base")
	}
	for _, tc := range []struct{ spec, want string }{
		{g.dll, "want FILE@BASE"},
		{g.dll + "@", "not a non-zero, page-aligned hex address"},
		{g.dll + "@xyz", "not a non-zero, page-aligned hex address"},
		{g.dll + "@0xa00010", "page-aligned"},
		{"/nonexistent.dll@0x1000", "no such file"},
		{g.elf64 + "@0x1000", "runs where it was linked (0x100000)"},
		{g.kernel, "not an ELF64 x86-64 image"}, // the elf32-i386 copy QEMU boots
		{"testdata/guest.ld@0x1000", "not a PE or ELF image"},
	} {
		_, err := ParseModuleFile(tc.spec)
		assert.ErrorContains(t, err, tc.want, "ParseModuleFile(%q)", tc.spec)
	}
}
