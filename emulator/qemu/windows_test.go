package qemu

import (
	"debug/pe"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/rsp"
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
	buildMu.Lock()
	defer buildMu.Unlock()
	dir := sharedTemp(t)
	g := winGuest{kernel: filepath.Join(dir, "winguest.elf"), elf64: filepath.Join(dir, "winguest64.elf"),
		exe: filepath.Join(dir, "chain.exe"), dll: filepath.Join(dir, "kernel32.dll")}
	if built["winguest"] != "" {
		return g
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	flags := []string{"-O2", "-fomit-frame-pointer", "-ffreestanding", "-nostdlib",
		"-Wl,--file-alignment,0x1000", "-Wl,--section-alignment,0x1000", "-Wl,--disable-dynamicbase"}
	run(t, dir, "x86_64-w64-mingw32-gcc", append(flags, "-Wl,--image-base,0x800000", "-Wl,-e,entry",
		"-o", "chain.exe", abs("testdata/winchain.c"))...)
	run(t, dir, "x86_64-w64-mingw32-gcc", append(flags, "-shared", "-Wl,--image-base,0xa00000", "-Wl,-e,BaseThreadInitThunk",
		"-o", "kernel32.dll", abs("testdata/winthunk.c"))...)
	for _, img := range []string{g.exe, g.dll} {
		f, err := pe.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Sections {
			if s.Size > 0 && s.Offset != s.VirtualAddress {
				t.Fatalf("%s: section %s at file offset %#x, rva %#x: the guest's copy would be wrong", img, s.Name, s.Offset, s.VirtualAddress)
			}
		}
		if len(f.Sections) == 0 || f.Section(".pdata") == nil {
			t.Fatalf("%s has no .pdata", img)
		}
		f.Close()
	}
	run(t, dir, "gcc", "-c", "-o", "winguest.o", abs("testdata/winguest.S"))
	run(t, dir, "ld", "-m", "elf_x86_64", "-T", abs("testdata/guest.ld"), "-o", "winguest64.elf", "winguest.o")
	run(t, dir, "objcopy", "-O", "elf32-i386", "winguest64.elf", "winguest.elf")
	built["winguest"] = g.kernel
	return g
}

// peSymbol is a COFF symbol's address in a PE image.
func peSymbol(t testing.TB, path, name string) uint64 {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := f.OptionalHeader.(*pe.OptionalHeader64).ImageBase
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) {
			return base + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

func mon(t *testing.T, c *rsp.Client, cmd string) string {
	t.Helper()
	out, err := c.Monitor(cmd)
	if err != nil {
		t.Errorf("monitor %s: %v\n%s", cmd, err, out)
	}
	return out
}

// monErr runs a monitor command that must fail with want in its text.
func monErr(t *testing.T, c *rsp.Client, cmd, want string) {
	t.Helper()
	out, err := c.Monitor(cmd)
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("monitor %s = %q, %v; want an error with %q", cmd, out, err, want)
	}
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
	if len(got) < len(want) {
		t.Errorf("bt has %d named frames, want %v:\n%s", len(got), want, bt)
		return
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("frame %d is %s, want %s:\n%s", i, got[i], w, bt)
		}
	}
}

// TestWindowsGuest: module discovery over QEMU from guest memory only,
// in the three phases of testdata/winguest.S, through our Go client.
func TestWindowsGuest(t *testing.T) {
	g := buildWinGuest(t)
	s := startStub(t, systemArgs(g.kernel, "1")...)
	c := s.dial(t)
	monErr(t, c, "teb", "not in 64-bit long mode")

	d := peSymbol(t, g.exe, "d")
	if err := c.SetBreakpoint(rsp.BreakSoftware, d, 1); err != nil {
		t.Fatal(err)
	}
	stopAtD := func(phase uint64) rsp.Stop {
		t.Helper()
		if phase > 1 {
			// Step off the breakpoint first, as debuggers do (QEMU would
			// report it again at once).
			if err := c.RemoveBreakpoint(rsp.BreakSoftware, d, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Step(); err != nil {
				t.Fatal(err)
			}
			if err := c.SetBreakpoint(rsp.BreakSoftware, d, 1); err != nil {
				t.Fatal(err)
			}
		}
		st, err := c.Continue()
		if err != nil || st.Kind != rsp.StopSWBreak {
			t.Fatalf("phase %d: stop %+v, %v; want the breakpoint at d", phase, st, err)
		}
		// entry(phase) -> a(phase) -> b(+1) -> c(+2) -> d(+3)
		if r := regs(t, c, "rip", "rcx"); r["rip"] != d || uint32(r["rcx"]) != uint32(phase+3) {
			t.Fatalf("phase %d: rip %#x rcx %#x; want d %#x with %d", phase, r["rip"], r["rcx"], d, phase+3)
		}
		return st
	}
	// Frames are named module!symbol, the module without its extension.
	chain := []string{"chain!d", "chain!c", "chain!b", "chain!a", "chain!entry"}

	// Phase 1: gs_base 0. The MZ scan names the image from its exports.
	stopAtD(1)
	monErr(t, c, "teb", "gs_base 0x0: is 0")
	if rep, err := c.Request("qGetTIBAddr:1"); err == nil {
		t.Errorf("qGetTIBAddr with no TEB = %q, %v", rep, err)
	}
	if out := mon(t, c, "modules"); !strings.Contains(out, "00000000`00800000  00000000`00808000  0x8000     chain.exe") {
		t.Errorf("modules by MZ scan:\n%s", out)
	}
	if out := mon(t, c, "discovery"); !strings.Contains(out, "MZ scan back from rip") {
		t.Errorf("discovery:\n%s", out)
	}
	checkFrames(t, mon(t, c, "bt"), chain...)

	// Phase 2: gs_base points at unmapped memory.
	stopAtD(2)
	monErr(t, c, "teb", "gs_base 0x1800000: TEB unmapped")

	// Phase 3: the TEB, PEB and loader list.
	st := stopAtD(3)
	if !st.Library {
		t.Errorf("the stop after the modules appeared has no library: flag")
	}
	teb := symbol(t, g.elf64, "teb")
	if rep, err := c.Request("qGetTIBAddr:1"); err != nil || rep != fmt.Sprintf("%x", teb) {
		t.Errorf("qGetTIBAddr:1 = %q, %v; want %x", rep, err, teb)
	}
	if out := mon(t, c, "teb"); !strings.Contains(out, fmt.Sprintf("Self                       %#x", teb)) {
		t.Errorf("teb:\n%s", out)
	}
	out := mon(t, c, "modules")
	for _, want := range []string{
		"00000000`00800000  00000000`00808000  0x8000     chain.exe            C:\\guest\\chain.exe",
		"00000000`00a00000  00000000`00a08000  0x8000     kernel32.dll         C:\\Windows\\System32\\kernel32.dll",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("modules: no %q in\n%s", want, out)
		}
	}
	checkFrames(t, mon(t, c, "bt"), append(chain, "kernel32!BaseThreadInitThunk")...)
	if out := mon(t, c, "peb"); !strings.Contains(out, "0x8000     kernel32.dll") {
		t.Errorf("peb:\n%s", out)
	}
	if out := mon(t, c, "discovery"); !strings.Contains(out, "PEB loader list") {
		t.Errorf("discovery:\n%s", out)
	}
	libs, err := c.ReadXfer("libraries", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<library name="C:\guest\chain.exe"><segment address="0x801000"/>`,
		`<library name="C:\Windows\System32\kernel32.dll"><segment address="0xa01000"/>`} {
		if !strings.Contains(string(libs), want) {
			t.Errorf("library list has no %s:\n%s", want, libs)
		}
	}
	if out := mon(t, c, "help"); !strings.Contains(out, "verify-unwind") || !strings.Contains(out, "qemu CMD") {
		t.Errorf("help lists both command sets?\n%s", out)
	}
	buf := make([]byte, 0x200)
	if n, err := c.ReadMemory(0x1000000-24, buf); n != 24 {
		t.Errorf("read across 0x1000000: %d bytes (%v), want 24", n, err)
	}
}
