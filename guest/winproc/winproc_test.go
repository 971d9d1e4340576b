package winproc

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

// fakeMem is sparse guest memory in 4 KiB pages; reads stop at the
// first unmapped page (a readable prefix), as the backends do.
type fakeMem struct{ pages map[uint64][]byte }

func newMem() *fakeMem { return &fakeMem{pages: map[uint64][]byte{}} }

func (m *fakeMem) ReadMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pg, ok := m.pages[a&^0xfff]
		if !ok {
			if n == 0 {
				return 0, errors.New("unmapped")
			}
			return n, nil
		}
		n += copy(p[n:], pg[a&0xfff:])
	}
	return n, nil
}

func (m *fakeMem) write(addr uint64, b []byte) {
	for len(b) > 0 {
		pg, ok := m.pages[addr&^0xfff]
		if !ok {
			pg = make([]byte, 0x1000)
			m.pages[addr&^0xfff] = pg
		}
		n := copy(pg[addr&0xfff:], b)
		b, addr = b[n:], addr+uint64(n)
	}
}

func (m *fakeMem) u64(addr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	m.write(addr, b[:])
}

func (m *fakeMem) u32(addr uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	m.write(addr, b[:])
}

// ustr writes a UNICODE_STRING at addr whose text lives at buf.
func (m *fakeMem) ustr(addr, buf uint64, s string) {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	m.write(buf, b)
	var h [16]byte
	binary.LittleEndian.PutUint16(h[0:], uint16(len(b)))
	binary.LittleEndian.PutUint16(h[2:], uint16(len(b)+2))
	binary.LittleEndian.PutUint64(h[8:], buf)
	m.write(addr, h[:])
}

// Layout of the fake process.
const (
	fTEB   = 0x7ff0_0000_0000
	fPEB   = 0x7ff0_0001_0000
	fLdr   = 0x7ff0_0002_0000
	fEntry = 0x7ff0_0003_0000 // entries 0x200 apart, names at +0x100
)

// process builds TEB, PEB, PEB_LDR_DATA and one entry per module,
// linked in order. It returns the entry addresses.
func (m *fakeMem) process(mods []Module) []uint64 {
	m.u64(fTEB+0x30, fTEB)
	m.u64(fTEB+0x60, fPEB)
	if len(mods) > 0 {
		m.u64(fPEB+0x10, mods[0].Base)
	}
	m.u64(fPEB+0x18, fLdr)
	head := uint64(fLdr + 0x10)
	prev := head
	var entries []uint64
	for i, md := range mods {
		e := uint64(fEntry + 0x200*i)
		entries = append(entries, e)
		m.u64(prev, e)   // prev.Flink
		m.u64(e+8, prev) // Blink
		m.u64(e+0x30, md.Base)
		m.u32(e+0x40, uint32(md.Size))
		m.ustr(e+0x48, e+0x100, md.Path)
		m.ustr(e+0x58, e+0x180, md.Name)
		prev = e
	}
	m.u64(prev, head)
	m.u64(head+8, prev)
	return entries
}

var twoMods = []Module{
	{Name: "demo.exe", Path: `C:\demo\demo.exe`, Base: 0x140000000, Size: 0x9000},
	{Name: "KERNEL32.DLL", Path: `C:\Windows\System32\KERNEL32.DLL`, Base: 0x7ffb_1000_0000, Size: 0xc2000},
}

func TestWalk(t *testing.T) {
	m := newMem()
	m.process(twoMods)
	teb, err := FindTEB(m, Regs{CS: 0x33, GSBase: fTEB})
	if err != nil || teb != fTEB {
		t.Fatalf("FindTEB = %#x, %v", teb, err)
	}
	p, err := Walk(m, teb)
	if err != nil {
		t.Fatal(err)
	}
	if p.PEB != fPEB || p.Ldr != fLdr || p.ImageBase != 0x140000000 {
		t.Errorf("PEB %#x Ldr %#x ImageBase %#x", p.PEB, p.Ldr, p.ImageBase)
	}
	if len(p.Problems) != 0 {
		t.Errorf("problems: %v", p.Problems)
	}
	if len(p.Modules) != 2 || p.Modules[0] != twoMods[0] || p.Modules[1] != twoMods[1] {
		t.Errorf("modules %+v, want %+v", p.Modules, twoMods)
	}
}

func TestFindTEBModes(t *testing.T) {
	m := newMem()
	m.process(twoMods)
	const kpcr = 0xfffff800_0000_0000
	m.u64(kpcr+0x18, kpcr) // KPCR.Self: not at +0x30
	for _, tc := range []struct {
		name string
		r    Regs
		ok   bool
		want string // in the error
	}{
		{"user gs", Regs{CS: 0x33, GSBase: fTEB, KernelGSBase: kpcr}, true, ""},
		{"kernel after swapgs", Regs{CS: 0x10, GSBase: kpcr, KernelGSBase: fTEB}, true, ""},
		{"kernel before swapgs", Regs{CS: 0x10, GSBase: fTEB, KernelGSBase: kpcr}, true, ""},
		{"no gs yet", Regs{CS: 0x33}, false, "gs_base 0x0: is 0"},
		{"unmapped", Regs{CS: 0x33, GSBase: 0x5000}, false, "TEB unmapped"},
		{"kpcr only", Regs{CS: 0x10, GSBase: kpcr}, false, "stopped in kernel mode"},
		{"not canonical", Regs{CS: 0x33, GSBase: 0x8000_0000_0000}, false, "canonical"},
	} {
		teb, err := FindTEB(m, tc.r)
		if tc.ok {
			if err != nil || teb != fTEB {
				t.Errorf("%s: FindTEB = %#x, %v; want %#x", tc.name, teb, err, uint64(fTEB))
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrNoTEB) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: FindTEB = %#x, %v; want an error with %q", tc.name, teb, err, tc.want)
		}
	}
}

func TestWalkProblems(t *testing.T) {
	t.Run("loop", func(t *testing.T) {
		m := newMem()
		e := m.process(append(twoMods, Module{Name: "c.dll", Base: 0x180000000, Size: 0x2000}))
		m.u64(e[2], e[1]) // c.dll's Flink back to KERNEL32
		p, err := Walk(m, fTEB)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Modules) != 3 || !hasKind(p.Problems, ProblemLoop) {
			t.Errorf("modules %d, problems %v; want 3 and a loop", len(p.Modules), p.Problems)
		}
	})
	t.Run("corrupt entry", func(t *testing.T) {
		m := newMem()
		e := m.process(append(twoMods, Module{Name: "c.dll", Base: 0x180000000, Size: 0x2000}))
		m.u32(e[1]+0x40, 0)     // KERNEL32 SizeOfImage 0
		m.u64(e[2]+0x30, 0x123) // c.dll misaligned base
		p, err := Walk(m, fTEB)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Modules) != 1 || p.Modules[0].Name != "demo.exe" || len(p.Problems) != 2 {
			t.Errorf("modules %+v, problems %v; want demo.exe and 2 problems", p.Modules, p.Problems)
		}
	})
	t.Run("unmapped entry", func(t *testing.T) {
		m := newMem()
		e := m.process(twoMods)
		m.u64(e[0], 0x7ff0_0009_0000) // demo.exe's Flink into nothing
		p, err := Walk(m, fTEB)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Modules) != 1 || !hasKind(p.Problems, ProblemUnreadable) {
			t.Errorf("modules %+v, problems %v", p.Modules, p.Problems)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		m := newMem()
		e := m.process(twoMods)
		m.u64(e[1]+0x58+8, 0x7ff0_0009_0000) // BaseDllName buffer unmapped
		m.u64(e[1]+0x48+8, 0x7ff0_0009_0000)
		p, _ := Walk(m, fTEB)
		if len(p.Modules) != 1 || len(p.Problems) != 2 {
			t.Errorf("modules %+v, problems %v", p.Modules, p.Problems)
		}
	})
	t.Run("no ldr", func(t *testing.T) {
		m := newMem()
		m.process(twoMods)
		m.u64(fPEB+0x18, 0)
		p, err := Walk(m, fTEB)
		if err != nil || len(p.Modules) != 0 || len(p.Problems) != 1 || !strings.Contains(p.Problems[0].Msg, "Ldr is 0") {
			t.Errorf("%+v %v", p, err)
		}
	})
	t.Run("unmapped peb", func(t *testing.T) {
		m := newMem()
		m.u64(fTEB+0x30, fTEB)
		m.u64(fTEB+0x60, 0x7ff0_0009_0000)
		if _, err := Walk(m, fTEB); err == nil || !strings.Contains(err.Error(), "read the PEB") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("too many", func(t *testing.T) {
		m := newMem()
		var mods []Module
		for i := 0; i < MaxModules+5; i++ {
			mods = append(mods, Module{Name: "x.dll", Base: 0x180000000 + uint64(i)*0x10000, Size: 0x1000})
		}
		m.process(mods)
		p, _ := Walk(m, fTEB)
		if len(p.Modules) != MaxModules || !hasKind(p.Problems, ProblemTooMany) {
			t.Errorf("%d modules, problems %v", len(p.Modules), p.Problems)
		}
	})
}

func hasKind(ps []Problem, k ProblemKind) bool {
	for _, p := range ps {
		if p.Kind == k {
			return true
		}
	}
	return false
}

// pe writes minimal PE32+ x64 headers at base, with an export directory
// naming the image when name != "".
func (m *fakeMem) pe(base uint64, size uint32, name string, machine uint16) {
	m.write(base, []byte("MZ"))
	m.u32(base+0x3c, 0x80)
	nt := base + 0x80
	m.write(nt, []byte("PE\x00\x00"))
	m.write(nt+4, []byte{byte(machine), byte(machine >> 8)})
	opt := nt + 24
	m.write(opt, []byte{0x0b, 0x02})
	m.u32(opt+56, size)
	m.u32(opt+108, 16)
	if name != "" {
		m.u32(opt+112, 0x200)         // export directory rva
		m.u32(base+0x200+0x0c, 0x300) // its Name rva
		m.write(base+0x300, append([]byte(name), 0))
	}
}

func TestScanImage(t *testing.T) {
	m := newMem()
	const base = 0x180000000
	m.pe(base, 0x20000, "kernel32.dll", 0x8664)
	for a := uint64(base + 0x1000); a < base+0x20000; a += 0x1000 {
		if a != base+0x3000 { // a paged-out page in the middle
			m.write(a, []byte{0xcc})
		}
	}
	got, err := ScanImage(m, base+0x1f123, 0)
	if err != nil || got != (Module{Name: "kernel32.dll", Base: base, Size: 0x20000}) {
		t.Errorf("ScanImage = %+v, %v", got, err)
	}
	// Past SizeOfImage: not this image.
	if got, err := ScanImage(m, base+0x20010, 0x40000); err == nil {
		t.Errorf("ScanImage past the image = %+v", got)
	}
	// Bounded distance.
	if _, err := ScanImage(m, base+0x1f123, 0x4000); !errors.Is(err, ErrNoImage) {
		t.Errorf("bounded scan: %v", err)
	}
	// No export directory: a generic name.
	m.pe(0x140000000, 0x5000, "", 0x8664)
	if got, err := ScanImage(m, 0x140004000, 0); err != nil || got.Name != "image@0x140000000" {
		t.Errorf("unnamed = %+v, %v", got, err)
	}
	// i386 images are refused.
	m.pe(0x10000000, 0x5000, "x86.dll", 0x14c)
	if got, err := ScanImage(m, 0x10001000, 0x2000); err == nil {
		t.Errorf("i386 image accepted: %+v", got)
	}
	if _, err := ImageAt(m, 0x10000000); err == nil || !strings.Contains(err.Error(), "not x64") {
		t.Errorf("ImageAt i386: %v", err)
	}
}

func TestMerge(t *testing.T) {
	user := []Module{{Name: "k32.dll", Path: "/tmp/k32.dll", Base: 0x7ffb_1000_0000, Size: 0x1000}, {Name: "x.dll", Base: 0x1000_0000, Size: 0x1000}}
	got := Merge(twoMods, user)
	want := []Module{twoMods[0], user[1], user[0]}
	if len(got) != len(want) {
		t.Fatalf("Merge = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Merge[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzWalk: any memory contents give modules and problems, never a
// panic or an unbounded walk.
func FuzzWalk(f *testing.F) {
	m := newMem()
	m.process(twoMods)
	var seed []byte
	for _, a := range []uint64{fTEB, fPEB, fLdr, fEntry} {
		seed = append(seed, m.pages[a][:0x200]...)
	}
	f.Add(seed, uint16(0))
	f.Add(make([]byte, 64), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, shift uint16) {
		// Four pages at the fake layout, filled from data (and shifted):
		// pointers in data land in mapped memory often enough.
		m := newMem()
		for i, a := range []uint64{fTEB, fPEB, fLdr, fEntry} {
			lo := (i*0x200 + int(shift)) % (len(data) + 1)
			if lo < len(data) {
				m.write(a, data[lo:min(len(data), lo+0x1000)])
			}
		}
		m.u64(fTEB+0x30, fTEB)
		teb, err := FindTEB(m, Regs{CS: 0x33, GSBase: fTEB})
		if err != nil {
			t.Fatal(err)
		}
		p, err := Walk(m, teb)
		if err == nil && len(p.Modules) > MaxModules {
			t.Fatalf("%d modules", len(p.Modules))
		}
		ScanImage(m, fEntry+0x800, 0x40000)
	})
}
