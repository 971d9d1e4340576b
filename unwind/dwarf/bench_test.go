package dwarf

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkRowAt(b *testing.B) {
	sec := cat(ehCIE, ehFDE(0x1000, 0x200, drapProgram))
	tab, err := ParseEHFrame(sec, ehSectionAddr, Bases{})
	if err != nil {
		b.Fatal(err)
	}
	f := tab.FDEs[0]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := f.RowAt(0x1040); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwindDRAP(b *testing.B) {
	sec := cat(ehCIE, ehFDE(0x1000, 0x200, drapProgram))
	tab, err := ParseEHFrame(sec, ehSectionAddr, Bases{})
	if err != nil {
		b.Fatal(err)
	}
	regs, mem := drapStack()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Unwind(tab, regs, mem, true, SysVPreserved); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseNtdll decodes Wine's ntdll.dll .debug_frame (about 1100
// FDEs).
func BenchmarkParseNtdll(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(wineDir, "ntdll.dll"))
	if err != nil {
		b.Skip(err)
	}
	s, err := PESections(data)
	if err != nil || s.DebugFrame == nil {
		b.Skip("no .debug_frame")
	}
	b.SetBytes(int64(len(s.DebugFrame.Data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseDebugFrame(s.DebugFrame.Data, s.DebugFrame.Addr); err != nil {
			b.Fatal(err)
		}
	}
}
