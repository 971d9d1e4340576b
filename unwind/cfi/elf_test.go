package cfi

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"debug/elf"
	"os"
	"testing"

	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// mapELF maps an ELF file's PT_LOAD segments at bias, as the dynamic
// linker does (the kit's Memory.MapELF), and returns the file's bytes.
func mapELF(t *testing.T, path string, bias uint64) (*testkit.Memory, []byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		testkit.Missing(t, "%v", err)
	}
	m := &testkit.Memory{}
	m.MapELF(t, path, bias)
	return m, data
}

// An ELF module's CFI read from guest memory (PT_GNU_EH_FRAME, the
// .eh_frame_hdr table) finds, for the start of every function of libc's
// .dynsym, the same FDE as the file's sections shifted by the load bias.
func TestELFMemoryMatchesFile(t *testing.T) {
	const path, bias = "/lib/x86_64-linux-gnu/libc.so.6", 0x7f1234560000
	mem, data := mapELF(t, path, bias)
	mod := &unwind.Module{Name: "libc.so.6", Base: bias, Format: unwind.FormatELF}
	fromMem, err := elfMemory(mem, mod)
	require.NoError(t, err)
	fromFile, delta, err := elfFile(data, bias)
	require.NoError(t, err)
	if delta != bias {
		t.Fatalf("delta %#x, want the bias %#x", delta, uint64(bias))
	}
	f, _ := elf.Open(path)
	defer f.Close()
	syms, err := f.DynamicSymbols()
	require.NoError(t, err)
	checked := 0
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
			continue
		}
		a, errA := fromFile.Lookup(s.Value)
		b, errB := fromMem.Lookup(bias + s.Value)
		if (errA == nil) != (errB == nil) {
			t.Errorf("%s: file %v, memory %v", s.Name, errA, errB)
			continue
		}
		if errA != nil {
			continue
		}
		if a.Begin+bias != b.Begin || a.End+bias != b.End {
			t.Errorf("%s: file FDE %#x-%#x (+bias), memory %#x-%#x", s.Name, a.Begin, a.End, b.Begin, b.End)
		}
		checked++
	}
	if checked < 1000 {
		t.Errorf("only %d functions had an FDE", checked)
	}
	t.Logf("%d functions: the same FDE from memory and from the file", checked)
}

// Through the Unwinder: an ELF module without a file gets its CFI from
// memory, with the System V preserved set.
func TestELFModuleWithoutFile(t *testing.T) {
	const path, bias = "/lib/x86_64-linux-gnu/libc.so.6", 0x7f0000000000
	mem, _ := mapELF(t, path, bias)
	u := New(nil)
	mod := &unwind.Module{Name: "libc.so.6", Base: bias, Size: 0x200000, Format: unwind.FormatELF}
	m := u.module(mem, mod)
	if m.err != nil || m.finder == nil {
		t.Fatalf("no CFI from memory: %v", m.err)
	}
	if m.delta != 0 || m.preserved.Has(dwarf.RSI) || !m.preserved.Has(dwarf.RBX) {
		t.Errorf("delta %#x, preserved %v", m.delta, m.preserved)
	}
}
