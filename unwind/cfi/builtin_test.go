package cfi

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bytes"
	"encoding/binary"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// flat is memory holding b at base; everything else is unmapped (the
// kit's fake memory).
func flat(base uint64, b []byte) *testkit.Memory {
	m := &testkit.Memory{}
	m.Map(base, b)
	return m
}

// pair is two regions: code and stack.
func pair(codeBase uint64, code []byte, stackBase uint64, stack []byte) *testkit.Memory {
	m := flat(codeBase, code)
	m.Map(stackBase, stack)
	return m
}

// TestBuiltinRows pins the rows of the hand-written ___chkstk_ms CFI to
// the instructions' effect on the stack, offset by offset.
func TestBuiltinRows(t *testing.T) {
	if builtinsErr != nil {
		t.Fatal(builtinsErr)
	}
	b := &builtins[0]
	for off := uint64(0); off < uint64(len(b.code)); off++ {
		fde, err := b.table.Lookup(off)
		if err != nil {
			t.Fatalf("offset %#x: %v", off, err)
		}
		row, err := fde.RowAt(off)
		if err != nil {
			t.Fatalf("offset %#x: %v", off, err)
		}
		// Pushed bytes at this offset, from the instructions.
		var pushed int64
		var rcx, rax bool
		switch {
		case off == 0x00 || off == 0x31:
		case off == 0x01 || off == 0x30:
			pushed, rcx = 8, true
		default:
			pushed, rcx, rax = 16, true, true
		}
		if row.CFA.Kind != dwarf.CFARegOffset || row.CFA.Reg != dwarf.RSP || row.CFA.Offset != 8+pushed {
			t.Errorf("offset %#x: CFA %+v, want rsp+%d", off, row.CFA, 8+pushed)
		}
		if r := row.Regs[dwarf.RA]; r.Kind != dwarf.RuleOffset || r.Offset != -8 {
			t.Errorf("offset %#x: RA rule %+v", off, r)
		}
		check := func(reg uint64, saved bool, at int64) {
			r := row.Regs[reg]
			if saved && (r.Kind != dwarf.RuleOffset || r.Offset != at) {
				t.Errorf("offset %#x: %s rule %+v, want offset(%d)", off, dwarf.RegName(reg), r, at)
			}
			if !saved && r.Kind == dwarf.RuleOffset {
				t.Errorf("offset %#x: %s rule %+v, want not saved", off, dwarf.RegName(reg), r)
			}
		}
		check(dwarf.RCX, rcx, -16)
		check(dwarf.RAX, rax, -24)
	}
}

const (
	codeBase  = 0x140001fe0
	stackBase = 0x10000
)

// machine places code at codeBase and a stack whose return address is
// retAddr, with rcx and rax pushed as ___chkstk_ms pushes them at off.
func machine(code []byte, off uint64, retAddr uint64) (*testkit.Memory, unwind.Context) {
	stack := make([]byte, 0x100)
	sp := uint64(stackBase + 0x80)
	binary.LittleEndian.PutUint64(stack[0x80:], retAddr)
	var pushed uint64
	switch {
	case off == 0x00 || off == 0x31:
	case off == 0x01 || off == 0x30:
		pushed = 8
	default:
		pushed = 16
	}
	if pushed >= 8 {
		binary.LittleEndian.PutUint64(stack[0x78:], 0x1111) // rcx
	}
	if pushed >= 16 {
		binary.LittleEndian.PutUint64(stack[0x70:], 0x2222) // rax
	}
	var ctx unwind.Context
	ctx.Set(arch.RIP, codeBase+off)
	ctx.Set(arch.RSP, sp-pushed)
	ctx.Set(arch.RBX, 0x3333)
	// The mapping starts before the helper, as a page does, with int3
	// padding.
	lead := make([]byte, 0x40, 0x40+len(code))
	for i := range lead {
		lead[i] = 0xcc
	}
	return pair(codeBase-0x40, append(lead, code...), stackBase, stack), ctx
}

// TestBuiltinUnwind: at every instruction of ___chkstk_ms the built-in
// CFI finds the return address and the caller's RSP.
func TestBuiltinUnwind(t *testing.T) {
	code := append(append([]byte{}, chkstkMSCode...), 0x90, 0x90, 0x90)
	for off := uint64(0); off < uint64(len(chkstkMSCode)); off++ {
		mem, ctx := machine(code, off, 0x140001515)
		ok, err := UnwindBuiltin(mem, &ctx, true)
		if !ok || err != nil {
			t.Fatalf("offset %#x: %v %v", off, ok, err)
		}
		if pc, _ := ctx.Get(arch.RIP); pc != 0x140001515 {
			t.Errorf("offset %#x: caller pc %#x", off, pc)
		}
		if sp, _ := ctx.Get(arch.RSP); sp != stackBase+0x88 {
			t.Errorf("offset %#x: caller rsp %#x", off, sp)
		}
		if ctx.RIPAddr != stackBase+0x80 {
			t.Errorf("offset %#x: return address read at %#x", off, ctx.RIPAddr)
		}
		if v, ok := ctx.Get(arch.RBX); !ok || v != 0x3333 {
			t.Errorf("offset %#x: rbx %#x %v, want it preserved", off, v, ok)
		}
		if off >= 2 && off < 0x30 {
			if v, ok := ctx.Get(arch.RAX); !ok || v != 0x2222 || ctx.GPRAddr[arch.RAX] != stackBase+0x70 {
				t.Errorf("offset %#x: rax %#x %v at %#x", off, v, ok, ctx.GPRAddr[arch.RAX])
			}
		}
	}
	// Past the ret, in the padding, nothing matches.
	mem, ctx := machine(code, uint64(len(chkstkMSCode)), 0x140001515)
	if ok, _ := UnwindBuiltin(mem, &ctx, true); ok {
		t.Error("a PC after the ret matched")
	}
}

// TestBuiltinNearMiss: code that differs from ___chkstk_ms in one byte,
// is cut short, or has its pushes swapped is not ___chkstk_ms.
func TestBuiltinNearMiss(t *testing.T) {
	variants := map[string][]byte{}
	for i := range chkstkMSCode {
		v := append([]byte{}, chkstkMSCode...)
		v[i] ^= 0x01
		variants["flip byte "+string(rune('0'+i/10))+string(rune('0'+i%10))] = v
	}
	swapped := append([]byte{}, chkstkMSCode...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	variants["pushes swapped"] = swapped
	variants["no ret"] = append([]byte{}, chkstkMSCode[:len(chkstkMSCode)-1]...)
	variants["page size 0x2000"] = func() []byte {
		v := append([]byte{}, chkstkMSCode...)
		v[4] = 0x20
		return v
	}()
	for name, v := range variants {
		for off := uint64(0); off < uint64(len(v)); off++ {
			mem, ctx := machine(v, off, 0x140001515)
			if ok, err := UnwindBuiltin(mem, &ctx, true); ok || err != nil {
				t.Errorf("%s: matched at offset %#x (%v)", name, off, err)
				break
			}
		}
	}
}

// TestBuiltinAtPageStart: the helper at the start of a mapping with
// nothing readable before it is still found.
func TestBuiltinAtPageStart(t *testing.T) {
	code := append([]byte{}, chkstkMSCode...)
	stack := make([]byte, 0x100)
	binary.LittleEndian.PutUint64(stack[0x80:], 0x140001515)
	mem := pair(0x140002000, code, stackBase, stack)
	var ctx unwind.Context
	ctx.Set(arch.RIP, 0x140002000+0x31)
	ctx.Set(arch.RSP, stackBase+0x80)
	if ok, err := UnwindBuiltin(mem, &ctx, true); !ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	if pc, _ := ctx.Get(arch.RIP); pc != 0x140001515 {
		t.Errorf("caller pc %#x", pc)
	}
}

// TestBuiltinReturnAddress: a return address right after the helper
// (a caller frame, not exact) is looked up at the byte before it.
func TestBuiltinReturnAddress(t *testing.T) {
	code := append(append([]byte{}, chkstkMSCode...), 0x90)
	mem, ctx := machine(code, 0x31, 0x140001515)
	ctx.Set(arch.RIP, codeBase+0x32)
	if ok, err := UnwindBuiltin(mem, &ctx, false); !ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	mem, ctx = machine(code, 0x31, 0x140001515)
	ctx.Set(arch.RIP, codeBase+0x32)
	if ok, _ := UnwindBuiltin(mem, &ctx, true); ok {
		t.Error("exact pc past the ret matched")
	}
}

// FuzzMatchBuiltin: arbitrary code and PCs never panic, and a match is
// always the helper's exact bytes around the PC.
func FuzzMatchBuiltin(f *testing.F) {
	f.Add(chkstkMSCode, uint16(5))
	f.Add(chkstkMSCode[3:], uint16(0))
	f.Fuzz(func(t *testing.T, code []byte, off uint16) {
		mem := flat(codeBase, code)
		pc := codeBase + uint64(off)
		b, start, ok := matchBuiltin(mem, pc)
		if !ok {
			return
		}
		if start > pc || pc-start >= uint64(len(b.code)) || start < codeBase ||
			string(code[start-codeBase:start-codeBase+uint64(len(b.code))]) != string(b.code) {
			t.Fatalf("bad match at %#x for pc %#x", start, pc)
		}
	})
}

// TestBuiltinCaptureContext: inside Wine's RtlCaptureContext, between its
// pushfq and the pop of the flags, the return address is above the
// pushed flags.
func TestBuiltinCaptureContext(t *testing.T) {
	code := append(append([]byte{}, captureContextCode...), 0x48, 0x89, 0x41, 0x78) // then mov [rcx+0x78], rax
	for off := uint64(0); off < uint64(len(captureContextCode)); off++ {
		stack := make([]byte, 0x100)
		binary.LittleEndian.PutUint64(stack[0x80:], 0x170055561) // return address
		binary.LittleEndian.PutUint64(stack[0x78:], 0x246)       // the pushed flags
		sp := uint64(stackBase + 0x80)
		if off > 0 {
			sp -= 8
		}
		var ctx unwind.Context
		ctx.Set(arch.RIP, codeBase+off)
		ctx.Set(arch.RSP, sp)
		lead := bytes.Repeat([]byte{0xcc}, 0x40) // the page starts before the function
		mem := pair(codeBase-0x40, append(lead, code...), stackBase, stack)
		ok, err := UnwindBuiltin(mem, &ctx, true)
		require.NoError(t, err, "offset %#x", off)
		require.True(t, ok, "offset %#x", off)
		pc, _ := ctx.Get(arch.RIP)
		assert.Equal(t, uint64(0x170055561), pc, "offset %#x", off)
		csp, _ := ctx.Get(arch.RSP)
		assert.Equal(t, uint64(stackBase+0x88), csp, "offset %#x", off)
	}
}
