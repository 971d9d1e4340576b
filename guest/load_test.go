package guest

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/guest/peload"
	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

func loadFake(t *testing.T, exe string, args ...string) (*Process, *fakeMachine, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	m := newFakeMachine()
	var out, errb bytes.Buffer
	p, err := Load(m, Config{Program: exe, Args: args, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p, m, &out, &errb
}

func TestLoadMingwHello(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, m, _, _ := loadFake(t, exe, "arg one")

	mods := p.Modules()
	var names []string
	for _, md := range mods {
		names = append(names, md.Name)
	}
	t.Logf("modules: %v", names)
	if mods[0].Name != "hello-O0.exe" || mods[0].Base != 0x140000000 || mods[0].Synthetic {
		t.Fatalf("first module = %+v", mods[0])
	}
	for _, want := range []string{"ntdll.dll", "KERNEL32.dll", "KERNELBASE.dll", "msvcrt.dll"} {
		if p.findModule(want) == nil {
			t.Errorf("module %s not loaded", want)
		}
	}
	// Section protections.
	text, _ := m.perm(0x140001000)
	if text != arch.PermRX {
		t.Errorf(".text perm = %v", text)
	}
	hdr, _ := m.perm(0x140000000)
	if hdr != arch.PermRead {
		t.Errorf("header perm = %v", hdr)
	}
	// Section protections never cover part of a machine region: each
	// run of equal permissions is mapped as its own region (Unicorn
	// copies a whole region to protect part of it).
	for _, md := range mods {
		for _, sp := range m.splits {
			if sp[0] >= md.Base && sp[0] < md.Base+md.Size {
				t.Errorf("%s: protect %#x+%#x splits a region", md.Name, sp[0], sp[1])
			}
		}
	}
	if got := p.RegionName(0x140001010); got != "hello-O0.exe .text" {
		t.Errorf("RegionName(.text) = %q", got)
	}
	if got := p.RegionName(p.StackBase() - 8); got != "stack" {
		t.Errorf("RegionName(stack) = %q", got)
	}
	if got := p.RegionName(p.TEB()); got != "TEB" {
		t.Errorf("RegionName(TEB) = %q", got)
	}

	// Every IAT entry points at a trap stub, a native function or data of
	// a synthesized DLL.
	for _, imp := range p.exe.pp.Imports {
		for i, fn := range imp.Functions {
			v, err := p.mem.ReadU64(mods[0].Base + uint64(imp.Descriptor.FirstThunk) + 8*uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			mod := p.moduleAt(v)
			if mod == nil || !mod.Synthetic {
				t.Errorf("%s!%s -> %#x: not in a synthesized DLL", imp.Name, fn.Name, v)
				continue
			}
			if s := p.stubs[v]; s != nil {
				if !m.inTrap(v) {
					t.Errorf("%s!%s stub %#x not in a trap range", imp.Name, fn.Name, v)
				}
			} else if r, ok := mod.synth.codeRVA[fn.Name]; ok {
				if mod.Base+uint64(r) != v {
					t.Errorf("%s!%s -> %#x: not the native function's start", imp.Name, fn.Name, v)
				}
			} else if _, ok := mod.synth.dataRVA[fn.Name]; !ok {
				t.Errorf("%s!%s -> %#x: neither stub, native function nor data", imp.Name, fn.Name, v)
			}
		}
	}

	// Registers at the start.
	rip, _ := m.Reg(arch.RIP)
	if rip != p.StartPC() || p.stubs[rip] == nil || p.stubs[rip].name != "LdrInitializeThunk" {
		t.Errorf("RIP %#x is not LdrInitializeThunk", rip)
	}
	gs, _ := m.Reg(arch.GSBase)
	if gs != p.TEB() {
		t.Errorf("gs_base %#x != TEB %#x", gs, p.TEB())
	}
	rsp, _ := m.Reg(arch.RSP)
	if rsp >= p.StackBase() || rsp < p.StackLimit() || rsp%16 != 8 {
		t.Errorf("rsp %#x outside stack [%#x,%#x) or misaligned", rsp, p.StackLimit(), p.StackBase())
	}
	if p.EntryPoint() != mods[0].Base+uint64(p.exe.pp.File.AddressOfEntryPoint) {
		t.Errorf("entry point %#x", p.EntryPoint())
	}
}

func u64(t *testing.T, p *Process, a uint64) uint64 {
	t.Helper()
	v, err := p.mem.ReadU64(a)
	if err != nil {
		t.Fatalf("read %#x: %v", a, err)
	}
	return v
}

func unicodeString(t *testing.T, p *Process, a uint64) string {
	t.Helper()
	n, _ := p.mem.ReadU16(a)
	buf := u64(t, p, a+8)
	s, err := p.mem.ReadWStringN(buf, int(n/2))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTEBPEBLoaderLists(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, _, _, _ := loadFake(t, exe, "a b", `q"uote`)
	teb, peb := p.TEB(), p.PEB()
	checks := []struct {
		name string
		addr uint64
		want uint64
	}{
		{"TEB.StackBase", teb + 0x8, p.StackBase()},
		{"TEB.StackLimit", teb + 0x10, p.StackLimit()},
		{"TEB.Self", teb + 0x30, teb},
		{"TEB.ClientId.UniqueProcess", teb + 0x40, guestPID},
		{"TEB.ClientId.UniqueThread", teb + 0x48, guestTID},
		{"TEB.ProcessEnvironmentBlock", teb + 0x60, peb},
		{"PEB.ImageBaseAddress", peb + 0x10, 0x140000000},
	}
	for _, c := range checks {
		if got := u64(t, p, c.addr); got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, got, c.want)
		}
	}
	if u64(t, p, peb+0x30) == 0 {
		t.Error("PEB.ProcessHeap is 0")
	}
	// TLS: the exe has a .tls section, so slot 0 of ThreadLocalStoragePointer is set.
	tls := u64(t, p, teb+0x58)
	if tls == 0 || u64(t, p, tls) == 0 {
		t.Error("ThreadLocalStoragePointer[0] not set")
	}

	// Process parameters.
	params := u64(t, p, peb+0x20)
	cmd := unicodeString(t, p, params+0x70)
	if want := `C:\rspstub\hello-O0.exe "a b" "q\"uote"`; cmd != want {
		t.Errorf("CommandLine = %q, want %q", cmd, want)
	}
	if img := unicodeString(t, p, params+0x60); img != `C:\rspstub\hello-O0.exe` {
		t.Errorf("ImagePathName = %q", img)
	}
	env := u64(t, p, params+0x80)
	first, _ := p.mem.ReadWString(env, 0)
	if !strings.HasPrefix(first, "PATH=") {
		t.Errorf("first environment string %q", first)
	}

	// Loader lists: walk each with its link offset.
	ldr := u64(t, p, peb+0x18)
	walk := func(head, linkOff uint64) []string {
		var names []string
		for e, i := u64(t, p, ldr+head), 0; e != ldr+head && i < 100; e, i = u64(t, p, e), i+1 {
			entry := e - linkOff
			names = append(names, unicodeString(t, p, entry+0x58))
			base := u64(t, p, entry+0x30)
			full := unicodeString(t, p, entry+0x48)
			m := p.findModule(names[len(names)-1])
			if m == nil || m.Base != base || m.Path != full {
				t.Errorf("entry %s: base %#x full %q, module %+v", names[len(names)-1], base, full, m)
			}
			// Blink of the next entry points back.
			next := u64(t, p, e)
			if u64(t, p, next+8) != e {
				t.Errorf("broken Blink after %s", names[len(names)-1])
			}
		}
		return names
	}
	load := walk(0x10, 0x00)
	mem := walk(0x20, 0x10)
	init := walk(0x30, 0x20)
	t.Logf("load order %v; init order %v", load, init)
	if len(load) != len(p.Modules()) || load[0] != "hello-O0.exe" || load[1] != "ntdll.dll" {
		t.Errorf("load order %v", load)
	}
	if strings.Join(mem, ",") != strings.Join(load, ",") {
		t.Errorf("memory order %v", mem)
	}
	if len(init) != len(load)-1 || init[0] != "ntdll.dll" {
		t.Errorf("init order %v", init)
	}
	if n, _ := p.mem.ReadU32(ldr); n != 0x58 {
		t.Errorf("PEB_LDR_DATA.Length = %#x", n)
	}
}

func TestSynthImageParses(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, m, _, _ := loadFake(t, exe)
	for _, md := range p.Modules() {
		if !md.Synthetic {
			continue
		}
		img, err := p.ModuleImage(md.Name)
		if err != nil {
			t.Fatal(err)
		}
		pp, err := peload.Parse(md.Name, img, process.UserLimit)
		if err != nil {
			t.Fatalf("%s: generated image does not parse: %v", md.Name, err)
		}
		if pp.File.ImageBase != md.Base || uint64(pp.File.SizeOfImage) != md.Size {
			t.Errorf("%s: header base %#x size %#x", md.Name, pp.File.ImageBase, pp.File.SizeOfImage)
		}
		// The export table parses back and agrees with the stubs.
		ed := pp.File.DataDirectory[0]
		et, err := peload.ParseExports(img, ed.VirtualAddress, ed.Size)
		if err != nil {
			t.Fatal(err)
		}
		mod := p.findModule(md.Name)
		for name, r := range mod.synth.stubRVA {
			idx, ok := et.Names[name]
			if !ok || et.Funcs[idx] != r {
				t.Errorf("%s!%s missing from exports", md.Name, name)
			}
		}
		// .pdata covers each stub with UNWIND_INFO "sub rsp,28h".
		pd := pp.File.DataDirectory[3]
		if pd.Size == 0 || pd.Size%12 != 0 {
			t.Fatalf("%s: .pdata size %d", md.Name, pd.Size)
		}
		var prev uint32
		for o := pd.VirtualAddress; o < pd.VirtualAddress+pd.Size; o += 12 {
			b, e, u := binary.LittleEndian.Uint32(img[o:]), binary.LittleEndian.Uint32(img[o+4:]), binary.LittleEndian.Uint32(img[o+8:])
			if b < prev || e <= b {
				t.Fatalf("%s: .pdata not sorted at %#x", md.Name, o)
			}
			prev = e
			if img[u] != 1 || img[u+1] != 4 || img[u+2] != 1 || img[u+5]&0xF != 2 {
				t.Errorf("%s: unwind info at %#x = % x", md.Name, u, img[u:u+8])
			}
		}
		// Guest memory holds the same bytes.
		got := make([]byte, len(img))
		m.ReadMemory(md.Base, got)
		if md.Name != "msvcrt.dll" && !bytes.Equal(got, img) {
			t.Errorf("%s: guest memory differs from ModuleImage", md.Name)
		}
	}
	if _, err := p.ModuleImage("/etc/passwd"); err == nil {
		t.Error("ModuleImage accepted an arbitrary path")
	}
}
