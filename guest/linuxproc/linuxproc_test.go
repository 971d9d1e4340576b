package linuxproc

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/elfmem"
)

// fakeMem is guest memory made of regions; a read returns the readable
// prefix.
type fakeMem struct{ regions map[uint64][]byte }

func newMem() *fakeMem { return &fakeMem{regions: map[uint64][]byte{}} }

func (m *fakeMem) mapAt(addr uint64, b []byte) { m.regions[addr] = b }

func (m *fakeMem) ReadMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		found := false
		for base, b := range m.regions {
			if a >= base && a-base < uint64(len(b)) {
				n += copy(p[n:], b[a-base:])
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return n, nil
}

func (m *fakeMem) put64(addr, v uint64) {
	for base, b := range m.regions {
		if addr >= base && addr-base+8 <= uint64(len(b)) {
			binary.LittleEndian.PutUint64(b[addr-base:], v)
			return
		}
	}
	panic("put64 outside memory")
}

// image is a minimal ELF64 module, one PT_LOAD of two pages:
//
//	0x000 ELF header
//	0x040 program headers: [PT_PHDR] PT_LOAD [PT_DYNAMIC]
//	0x200 dynamic section: [DT_DEBUG] DT_STRTAB DT_STRSZ [DT_SONAME] DT_NULL
//	0x300 string table: "\0" soname "\0"
//	0x380 [PT_INTERP path]
type image struct {
	typ      uint16 // ET_EXEC or ET_DYN
	link     uint64 // link-time address of the first byte
	phdr     bool   // has PT_PHDR
	dynamic  bool
	debug    bool // has DT_DEBUG
	soname   string
	interp   string // PT_INTERP, at 0x380
	dynAddr  uint64 // link-time address of the dynamic section
	debugOff uint64 // offset of DT_DEBUG's value in the image
}

const imgSize = 0x2000

func (im *image) build() []byte {
	b := make([]byte, imgSize)
	copy(b, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], im.typ)
	le.PutUint16(b[18:], 62)
	le.PutUint64(b[24:], im.link+0x400) // e_entry
	le.PutUint64(b[32:], 0x40)          // e_phoff
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[54:], 56)
	var ph [][7]uint64 // type|flags<<32, off, vaddr, paddr, filesz, memsz, align
	if im.phdr {
		ph = append(ph, [7]uint64{elfmem.PT_PHDR | 4<<32, 0x40, im.link + 0x40, im.link + 0x40, 0, 0, 8})
	}
	ph = append(ph, [7]uint64{elfmem.PT_LOAD | 5<<32, 0, im.link, im.link, imgSize, imgSize, 0x1000})
	if im.interp != "" {
		copy(b[0x380:], im.interp)
		n := uint64(len(im.interp) + 1)
		ph = append(ph, [7]uint64{elfmem.PT_INTERP | 4<<32, 0x380, im.link + 0x380, im.link + 0x380, n, n, 1})
	}
	if im.dynamic {
		ph = append(ph, [7]uint64{elfmem.PT_DYNAMIC | 6<<32, 0x200, im.link + 0x200, im.link + 0x200, 0x100, 0x100, 8})
	}
	if im.phdr {
		n := uint64(len(ph) * 56)
		ph[0][4], ph[0][5] = n, n
	}
	le.PutUint16(b[56:], uint16(len(ph)))
	for i, p := range ph {
		o := 0x40 + i*56
		le.PutUint32(b[o:], uint32(p[0]))
		le.PutUint32(b[o+4:], uint32(p[0]>>32))
		for j := 1; j < 7; j++ {
			le.PutUint64(b[o+8*j:], p[j])
		}
	}
	im.dynAddr = im.link + 0x200
	o := 0x200
	dyn := func(tag int64, v uint64) {
		le.PutUint64(b[o:], uint64(tag))
		le.PutUint64(b[o+8:], v)
		o += 16
	}
	if im.debug {
		im.debugOff = uint64(o + 8)
		dyn(elfmem.DT_DEBUG, 0)
	}
	copy(b[0x301:], im.soname)
	dyn(elfmem.DT_STRTAB, im.link+0x300)
	dyn(elfmem.DT_STRSZ, uint64(len(im.soname)+2))
	if im.soname != "" {
		dyn(elfmem.DT_SONAME, 1)
	}
	dyn(elfmem.DT_NULL, 0)
	return b
}

func auxv(pairs ...uint64) []byte {
	b := make([]byte, 8*len(pairs)+16)
	for i, v := range pairs {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return b
}

// process lays out a PIE program, the dynamic linker, a library and the
// vDSO, with a data page for strings, r_debug and link_map entries.
type process struct {
	mem                      *fakeMem
	exe, ld, lib, vdso       uint64
	exeImg                   *image
	data                     uint64
	execfn, ldName, libName  uint64
	rdebug, lmExe, lmLib, lm uint64
}

func newProcess(t *testing.T, pie bool) *process {
	p := &process{mem: newMem(), exe: 0x555555554000, ld: 0x7ffff7fc3000, lib: 0x7ffff7d80000, vdso: 0x7ffff7fc1000, data: 0x7ffffffde000}
	p.exeImg = &image{typ: 3, phdr: true, dynamic: true, debug: true, interp: "/lib64/ld-linux-x86-64.so.2"}
	if !pie {
		p.exe = 0x400000
		p.exeImg.typ, p.exeImg.link = 2, 0x400000
	}
	p.mem.mapAt(p.exe, p.exeImg.build())
	p.mem.mapAt(p.ld, (&image{typ: 3, dynamic: true, soname: "ld-linux-x86-64.so.2"}).build())
	p.mem.mapAt(p.lib, (&image{typ: 3, dynamic: true, soname: "libfoo.so.1"}).build())
	p.mem.mapAt(p.vdso, (&image{typ: 3, dynamic: true, soname: "linux-vdso.so.1"}).build())
	data := make([]byte, 0x1000)
	p.mem.mapAt(p.data, data)
	copy(data[0x10:], "/usr/bin/prog\x00")
	copy(data[0x30:], "/lib64/ld-linux-x86-64.so.2\x00")
	copy(data[0x60:], "/lib/x86_64-linux-gnu/libfoo.so.1\x00")
	p.execfn, p.ldName, p.libName = p.data+0x10, p.data+0x30, p.data+0x60
	p.rdebug = p.data + 0x100
	p.lmExe, p.lmLib, p.lm = p.data+0x200, p.data+0x240, p.data+0x280
	return p
}

func (p *process) auxv() []byte {
	return auxv(AT_PHDR, p.exe+0x40, AT_PHENT, 56, AT_PHNUM, 4, AT_BASE, p.ld,
		AT_ENTRY, p.exe+0x400, AT_EXECFN, p.execfn, AT_SYSINFO_EHDR, p.vdso)
}

// linkMap fills r_debug and the chain exe -> libfoo -> ld.so.
func (p *process) linkMap() {
	bias := p.exe - p.exeImg.link
	p.mem.put64(p.exe+p.exeImg.debugOff, p.rdebug)
	p.mem.put64(p.rdebug, 1)
	p.mem.put64(p.rdebug+8, p.lmExe)
	entry := func(at, addr, name, ld, next uint64) {
		p.mem.put64(at, addr)
		p.mem.put64(at+8, name)
		p.mem.put64(at+16, ld)
		p.mem.put64(at+24, next)
	}
	entry(p.lmExe, bias, p.data, bias+p.exeImg.dynAddr, p.lmLib) // l_name "" (data[0] is 0)
	entry(p.lmLib, p.lib, p.libName, p.lib+0x200, p.lm)
	entry(p.lm, p.ld, p.ldName, p.ld+0x200, 0)
}

func names(mods []Module) string {
	var s []string
	for _, m := range mods {
		s = append(s, m.Name+"="+m.Path)
	}
	return strings.Join(s, " ")
}

func TestModulesLinkMap(t *testing.T) {
	for _, pie := range []bool{true, false} {
		p := newProcess(t, pie)
		p.linkMap()
		mods, problems, err := Modules(p.mem, p.auxv())
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) != 0 {
			t.Errorf("problems: %q", problems)
		}
		want := "prog=/usr/bin/prog libfoo.so.1=/lib/x86_64-linux-gnu/libfoo.so.1 ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 linux-vdso.so.1=linux-vdso.so.1"
		if got := names(mods); got != want {
			t.Errorf("pie=%v modules\n got %s\nwant %s", pie, got, want)
		}
		for i, base := range []uint64{p.exe, p.lib, p.ld, p.vdso} {
			if i < len(mods) && (mods[i].Base != base || mods[i].Size != imgSize) {
				t.Errorf("module %s at %#x size %#x, want %#x size %#x", mods[i].Name, mods[i].Base, mods[i].Size, base, imgSize)
			}
		}
	}
}

// TestLinkMap: the chain as the dynamic linker keeps it, the
// executable's entry marked; nothing before r_debug is filled; a loop is
// a problem, not a hang.
func TestLinkMap(t *testing.T) {
	for _, pie := range []bool{true, false} {
		p := newProcess(t, pie)
		got, problems, err := LinkMap(p.mem, p.auxv())
		require.NoError(t, err)
		assert.Empty(t, got, "before the dynamic linker ran")
		assert.Empty(t, problems)

		p.linkMap()
		got, problems, err = LinkMap(p.mem, p.auxv())
		require.NoError(t, err)
		assert.Empty(t, problems)
		bias := p.exe - p.exeImg.link
		assert.Equal(t, []LinkMapEntry{
			{Name: "", LM: p.lmExe, Addr: bias, Dynamic: bias + p.exeImg.dynAddr, Main: true},
			{Name: "/lib/x86_64-linux-gnu/libfoo.so.1", LM: p.lmLib, Addr: p.lib, Dynamic: p.lib + 0x200},
			{Name: "/lib64/ld-linux-x86-64.so.2", LM: p.lm, Addr: p.ld, Dynamic: p.ld + 0x200},
		}, got, "pie=%v", pie)

		p.mem.put64(p.lm+24, p.lmLib)
		got, problems, err = LinkMap(p.mem, p.auxv())
		require.NoError(t, err)
		assert.Len(t, got, 3)
		require.Len(t, problems, 1)
		assert.Contains(t, problems[0], "loops")
	}
	_, _, err := LinkMap(newMem(), auxv(AT_ENTRY, 1))
	assert.ErrorIs(t, err, ErrAuxv)
}

// Before the dynamic linker has filled r_debug (qemu-user stops at its
// entry): the program, the dynamic linker (path from PT_INTERP), the vDSO.
func TestModulesBeforeLinker(t *testing.T) {
	p := newProcess(t, true)
	mods, problems, err := Modules(p.mem, p.auxv())
	if err != nil || len(problems) != 0 {
		t.Fatalf("err %v, problems %q", err, problems)
	}
	want := "prog=/usr/bin/prog ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 linux-vdso.so.1=linux-vdso.so.1"
	if got := names(mods); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// A static non-PIE executable without PT_PHDR or PT_DYNAMIC: its bias
// comes from the ELF header in front of the program headers.
func TestModulesStatic(t *testing.T) {
	m := newMem()
	im := &image{typ: 2, link: 0x400000}
	m.mapAt(0x400000, im.build())
	m.mapAt(0x7ffffffde000, append([]byte("/tmp/static\x00"), make([]byte, 64)...))
	mods, problems, err := Modules(m, auxv(AT_PHDR, 0x400040, AT_PHNUM, 1, AT_ENTRY, 0x400400, AT_EXECFN, 0x7ffffffde000))
	if err != nil || len(problems) != 0 {
		t.Fatalf("err %v, problems %q", err, problems)
	}
	if len(mods) != 1 || mods[0].Name != "static" || mods[0].Base != 0x400000 || mods[0].Size != imgSize {
		t.Errorf("modules %+v", mods)
	}
}

func TestModulesCycle(t *testing.T) {
	p := newProcess(t, true)
	p.linkMap()
	p.mem.put64(p.lm+24, p.lmLib) // ld.so's l_next back to libfoo
	mods, problems, err := Modules(p.mem, p.auxv())
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "loops") {
		t.Errorf("problems %q, want one loop", problems)
	}
	if len(mods) != 4 {
		t.Errorf("modules %s", names(mods))
	}
}

func TestModulesUnreadable(t *testing.T) {
	p := newProcess(t, true)
	p.linkMap()
	p.mem.put64(p.lmLib+24, 0xdead0000) // l_next into nothing
	mods, problems, err := Modules(p.mem, p.auxv())
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "link_map entry 2") {
		t.Errorf("problems %q", problems)
	}
	// The dynamic linker still comes from AT_BASE.
	if got := names(mods); !strings.Contains(got, "libfoo.so.1") || !strings.Contains(got, "ld-linux-x86-64.so.2") {
		t.Errorf("modules %s", got)
	}
}

func TestModulesBadAuxv(t *testing.T) {
	m := newMem()
	for _, a := range [][]byte{nil, make([]byte, 15), auxv(AT_PHNUM, 3), auxv(AT_PHDR, 0x1000, AT_PHNUM, 3)} {
		if _, _, err := Modules(m, a); err == nil {
			t.Errorf("auxv %x: no error", a)
		}
	}
}

// mapFile maps an ELF file's PT_LOAD segments at bias, as the dynamic
// linker does.
func mapFile(t *testing.T, m *fakeMem, path string, bias uint64) {
	f, err := elf.Open(path)
	if err != nil {
		testkit.Missing(t, "%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		start := p.Vaddr &^ 0xfff
		b := make([]byte, p.Vaddr+p.Memsz-start)
		if _, err := p.ReadAt(b[p.Vaddr-start:p.Vaddr-start+p.Filesz], 0); err != nil {
			t.Fatal(err)
		}
		m.mapAt(bias+start, b)
	}
}

// The dynamic symbol table read from memory (count from DT_GNU_HASH)
// equals debug/elf's reading of the file's .dynsym.
func TestDynSymbolsLibc(t *testing.T) {
	const path, bias = "/lib/x86_64-linux-gnu/libc.so.6", 0x7f0000000000
	m := newMem()
	mapFile(t, m, path, bias)
	img, err := elfmem.Load(m, bias)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := elfmem.ReadDynamic(m, img.Dynamic, img.DynamicSize)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := img.SoName(m, dyn); err != nil || s != "libc.so.6" {
		t.Errorf("soname %q %v", s, err)
	}
	got, err := img.DynSymbols(m, dyn)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := elf.Open(path)
	defer f.Close()
	fs, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var want, have []string
	for _, s := range fs {
		if s.Section != elf.SHN_UNDEF && s.Value != 0 && s.Name != "" {
			want = append(want, s.Name+"@"+hex(bias+s.Value))
		}
	}
	for _, s := range got {
		have = append(have, s.Name+"@"+hex(s.Addr))
	}
	sort.Strings(want)
	sort.Strings(have)
	if len(want) < 1000 || strings.Join(want, ",") != strings.Join(have, ",") {
		t.Errorf("%d symbols from memory, %d from the file", len(have), len(want))
	}
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

// FuzzModules: any auxiliary vector over any memory ends without a panic,
// within the bounds.
func FuzzModules(f *testing.F) {
	p := newProcess(nil, true)
	p.linkMap()
	f.Add(p.auxv(), p.mem.regions[p.exe][:0x400], p.mem.regions[p.data][:0x300])
	f.Add(auxv(AT_PHDR, 0x10040, AT_PHNUM, 3), []byte("\x7fELF"), []byte{})
	f.Fuzz(func(t *testing.T, av, exe, data []byte) {
		m := newMem()
		m.mapAt(0x10000, exe)
		m.mapAt(0x7ffffffde000, data)
		mods, problems, err := Modules(m, av)
		if err == nil && len(mods) == 0 {
			t.Errorf("no error and no module")
		}
		lms, lmProblems, _ := LinkMap(m, av)
		if len(lms) > MaxModules || len(lmProblems) > 64 {
			t.Errorf("%d link_map entries, %d problems", len(lms), len(lmProblems))
		}
		if len(mods) > MaxModules+3 || len(problems) > 64 {
			t.Errorf("%d modules, %d problems", len(mods), len(problems))
		}
	})
}
