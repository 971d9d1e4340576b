package unwind

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// An ELF module has no .pdata: every one of its frames goes to the CFI
// hook (trust cfi), and without CFI the walk stops with ErrNoCFI, never
// with a PE parse error.
func TestWalkELFModule(t *testing.T) {
	const base, sp = 0x400000, 0x7ff000
	m := &fakeMem{}
	m.Map(base, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 0x2000)...))
	stack := make([]byte, 0x100)
	// [sp] = return into the module, [sp+8] = another, [sp+16] = 0.
	binary.LittleEndian.PutUint64(stack[0:], base+0x1100)
	binary.LittleEndian.PutUint64(stack[8:], base+0x1200)
	m.Map(sp, stack)
	mods := []Module{{Name: "prog", Base: base, Size: 0x2000, Format: FormatELF}}

	u := New(m, mods)
	cfi := &fakeCFI{}
	s := u.Walk(ctxWith(base+0x1000, sp, nil), WalkOptions{CFI: cfi, Scan: true})
	if s.Reason != StopZeroReturn || len(s.Frames) != 3 || cfi.calls != 3 {
		t.Fatalf("reason %v (%v), %d frames, %d CFI calls", s.Reason, s.Err, len(s.Frames), cfi.calls)
	}
	for i, want := range []uint64{base + 0x1000, base + 0x1100, base + 0x1200} {
		f := s.Frames[i]
		if f.PC != want || (i > 0 && f.Trust != TrustCFI) || f.Module == nil || f.Module.Format != FormatELF {
			t.Errorf("frame %d: pc %#x trust %v module %v", i, f.PC, f.Trust, f.Module)
		}
	}

	// No CFI hook, or CFI without an entry for the PC.
	for _, opt := range []WalkOptions{{}, {CFI: noCFI{}, Scan: true}} {
		s = New(m, mods).Walk(ctxWith(base+0x1000, sp, nil), opt)
		if s.Reason != StopMissingData || !errors.Is(s.Err, ErrNoCFI) || len(s.Frames) != 1 {
			t.Errorf("without CFI: reason %v (%v), %d frames", s.Reason, s.Err, len(s.Frames))
		}
		if s.Err != nil && strings.Contains(s.Err.Error(), "PE") {
			t.Errorf("PE noise for an ELF module: %v", s.Err)
		}
	}
}

// noCFI covers no PC.
type noCFI struct{}

func (noCFI) UnwindFrame(Memory, *Module, *Context, bool) (bool, error) { return false, nil }
