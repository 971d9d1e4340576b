package dwarf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz tests: every decoder and the interpreter must return errors, never
// panic or loop, on any input. Run one with, for example,
//
//	go test -run '^$' -fuzz FuzzEHFrame -fuzztime 30s -parallel 1 ./unwind/dwarf/

// watchdog panics (naming the input) when one fuzz input runs for more
// than 5 s: go test -fuzz has no hang detection of its own, a hung input
// only freezes the exec count. The panic makes the fuzzer keep the input
// in testdata/fuzz.
func watchdog(input []byte) func() {
	tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("fuzz input hangs: %q", input)) })
	return func() { tm.Stop() }
}

// fuzzRegs is a register file with every tracked register known.
func fuzzRegs() *Registers {
	var r Registers
	for i := uint64(0); i < NumRegs; i++ {
		r.Set(i, 0x7fff0000+i*8)
	}
	return &r
}

// fuzzMem answers every read below 1<<48 with a pattern derived from the
// address, and nothing above: deref chains always have something to read.
type fuzzMem struct{}

func (fuzzMem) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr >= 1<<48 {
		return 0, nil
	}
	for i := range p {
		p[i] = byte((addr + uint64(i)) * 7)
	}
	return len(p), nil
}

// exercise runs everything a table offers.
func exercise(tab *Table) {
	regs := fuzzRegs()
	for i, f := range tab.FDEs {
		if i >= 64 {
			break
		}
		_ = f.EachRow(func(r *Row) bool { return true })
		for _, pc := range []uint64{f.Begin, f.Begin + (f.End-f.Begin)/2, f.End - 1} {
			row, err := f.RowAt(pc)
			if err != nil {
				continue
			}
			regs.Set(RA, pc)
			_, _ = Step(f, row, regs, fuzzMem{}, SysVPreserved)
		}
		_, _ = tab.Lookup(f.Begin)
	}
}

func wineSeed(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(wineDir, "*.dll"))
	for _, p := range files {
		if filepath.Base(p) != "ntdll.dll" {
			continue
		}
		fh, err := os.Open(p)
		if err != nil {
			return
		}
		defer fh.Close()
		fi, _ := fh.Stat()
		s, err := PESectionsAt(fh, fi.Size())
		if err == nil && s.DebugFrame != nil && len(s.DebugFrame.Data) > 0 {
			f.Add(s.DebugFrame.Data[:min(len(s.DebugFrame.Data), 2048)])
		}
	}
}

func FuzzEHFrame(f *testing.F) {
	f.Add(cat(ehCIE, ehFDE(0x1000, 0x200, drapProgram), u32(0)))
	f.Add(cat(ehCIE, ehFDE(0x1000, 0x200, b(0x0a, 0x83, 2, 0x41, 0x0b, 0x0f, 1, 0x06))))
	f.Add(cat(u32(28), u32(0), b(1, 'z', 'P', 'L', 'R', 0, 1, 0x78, 16, 7, 0x9b), s32(0x100), b(0x1b, 0x1b, 0x0c, 7, 8, 0x90, 1, 0, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		tab, _ := ParseEHFrame(data, ehSectionAddr, Bases{Text: 0x1000, Data: 0x2000})
		exercise(tab)
		s := NewEHFrame(data, ehSectionAddr, Bases{})
		s.Mem = fuzzMem{}
		for off := int64(0); off < int64(len(data)) && off < 64; off += 4 {
			_, _ = s.CIEAt(off)
			_, _ = s.FDEAt(off)
		}
	})
}

func FuzzDebugFrame(f *testing.F) {
	f.Add(cat(u32(16), u32(0xffffffff), b(1, 0, 1, 0x78, 16, 0x0c, 7, 8, 0x90, 1, 0, 0, 0),
		u32(26), u32(0), u64(0x140001000), u64(0x40), b(0x41, 0x0e, 16, 0x12, 7, 0x7e)))
	f.Add(cat(u32(0xffffffff), u64(21), u64(^uint64(0)), b(4, 0, 8, 0, 1, 0x78, 16, 0x0c, 7, 8, 0x90, 1)))
	wineSeed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		tab, _ := ParseDebugFrame(data, 0)
		exercise(tab)
	})
}

// FuzzCFAProgram fuzzes the interpreter and the unwind step through the
// instructions of one FDE.
func FuzzCFAProgram(f *testing.F) {
	f.Add(drapProgram)
	f.Add(b(0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x0a, 0x0c, 7, 8, 0x41, 0x0b))
	f.Add(b(0x16, 4, 2, 0x23, 0x10, 0x10, 5, 3, 0x09, 0xe8, 0x22, 0x05, 23, 6, 0x2f, 14, 2))
	f.Fuzz(func(t *testing.T, prog []byte) {
		defer watchdog(prog)()
		sec := cat(ehCIE, ehFDE(0x1000, 0x200, prog))
		tab, _ := ParseEHFrame(sec, ehSectionAddr, Bases{})
		exercise(tab)
	})
}

func FuzzEHFrameHdr(f *testing.F) {
	f.Add(cat(b(1, 0x1b, 0x03, 0x3b), s32(0x100), u32(2), s32(-0x100), s32(0x40), s32(-0x80), s32(0x60)))
	f.Add(cat(b(1, 0x1b, 0x03, 0x32), s32(0x100), u32(1), b(1, 0, 2, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		h, err := ParseEHFrameHdr(data, 0x1f00)
		if err != nil {
			return
		}
		sec := NewEHFrame(cat(ehCIE, ehFDE(0x1000, 0x200, nil)), ehSectionAddr, Bases{})
		for _, pc := range []uint64{0, 0x1000, 0x1f00, ^uint64(0)} {
			_, _, _ = h.Lookup(pc)
			_, _ = sec.Find(h, pc)
		}
		for i := uint64(0); i < 4; i++ {
			_, _, _ = h.Entry(i)
		}
	})
}

func FuzzEval(f *testing.F) {
	f.Add(b(0x76, 0x58, 0x06), uint64(0x7000))
	f.Add(b(0x33, 0x31, 0x1c, 0x12, 0x28, 0xfa, 0xff), uint64(0))
	f.Add(b(0x2f, 0xfd, 0xff), uint64(1))
	f.Add(b(0x92, 12, 3, 0x94, 4, 0x31, 0x1b, 0x17, 0x15, 1), uint64(8))
	f.Fuzz(func(t *testing.T, expr []byte, cfa uint64) {
		defer watchdog(expr)()
		_, _ = Eval(expr, fuzzRegs(), fuzzMem{}, cfa)
		_, _ = Eval(expr, nil, nil)
	})
}

func FuzzPESections(f *testing.F) {
	f.Add(tinyPE())
	f.Add(zdebugPE(f, zlibSection([]byte("DFDFDFDF"), 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		s, err := PESections(data)
		if err != nil {
			return
		}
		if fin, err := s.Finder(); err == nil {
			_, _ = fin.Lookup(0x140001000)
		}
	})
}
