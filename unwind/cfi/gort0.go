package cfi

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// Go's runtime.rt0_go (src/runtime/asm_amd64.s) is the first Go code a
// Go program runs: the entry point (_rt0_amd64_windows, _rt0_amd64) jumps
// to it with DI = [RSP] (argc on Linux; on Windows, the return address
// into BaseThreadInitThunk) and SI = RSP+8 (argv; the caller's RSP). It has
// no .pdata entry, and its CFI in Go's .debug_frame keeps "CFA = RSP+8"
// across the SUBQ and ANDQ that move RSP in its prologue, so both the
// Windows leaf rule and Go's CFI read [RSP]: the low 32 bits of the
// return address, which rt0_go stores there as argc. The prologue keeps
// what the unwinder needs in its frame:
//
//	00  48 89 f8            mov  rax, rdi        ; the return address
//	03  48 89 f3            mov  rbx, rsi        ; entry RSP + 8: the CFA
//	06  48 83 ec 28         sub  rsp, 0x28
//	0a  48 83 e4 f0         and  rsp, -16        ; RSP no longer says where the CFA is
//	0e  48 89 44 24 18      mov  [rsp+0x18], rax
//	13  48 89 5c 24 20      mov  [rsp+0x20], rbx
//	18
//
// The function is recognized by these bytes at the start of the FDE that
// covers the PC. From 0x18 on, the CFA is [B+0x20] and the return address
// [CFA-8], which must equal the copy at [B+0x18], where B is RSP after the
// prologue: Go's own CFA minus 8 (its CFI does track the PUSHQ/POPQ
// around the call of newproc). Between 0x06 and 0x18 the CFA is RBX.
// Before 0x06 Go's CFI is right and is used as it is. rt0_go never
// returns and keeps none of its caller's registers: the caller's frame
// gets RIP and RSP only.
var goRT0Prologue = []byte{
	0x48, 0x89, 0xf8, // mov rax, rdi
	0x48, 0x89, 0xf3, // mov rbx, rsi
	0x48, 0x83, 0xec, 0x28, // sub rsp, 0x28
	0x48, 0x83, 0xe4, 0xf0, // and rsp, -16
	0x48, 0x89, 0x44, 0x24, 0x18, // mov [rsp+0x18], rax
	0x48, 0x89, 0x5c, 0x24, 0x20, // mov [rsp+0x20], rbx
}

const (
	goRT0SaveRBX = 0x06 // the CFA is in RBX from here
	goRT0Body    = 0x18 // the CFA is in the frame from here
)

// goRT0 unwinds a frame of Go's rt0_go (see goRT0Prologue). It reports
// false when the PC's FDE does not start with that prologue, or when the
// PC lies before the SUBQ, where the module's CFI is right.
func goRT0(f dwarf.Finder, delta uint64, mem unwind.Memory, ctx *unwind.Context, exact bool, preserved dwarf.RegSet) (bool, error) {
	pc, ok := ctx.Get(arch.RIP)
	if !ok {
		return false, nil
	}
	lookup := dwarf.LookupPC(pc, exact)
	fde, err := f.Lookup(lookup - delta)
	if err != nil {
		return false, nil
	}
	start := fde.Begin + delta
	off := lookup - start
	if off < goRT0SaveRBX || fde.End-fde.Begin < goRT0Body {
		return false, nil
	}
	var code [goRT0Body]byte
	if read(mem, start, code[:]) != len(code) || !bytes.Equal(code[:], goRT0Prologue) {
		return false, nil
	}
	var cfa uint64
	if off < goRT0Body {
		if cfa, ok = ctx.Get(arch.RBX); !ok {
			return true, fmt.Errorf("Go rt0_go at %#x, in its prologue: rbx (the caller's rsp) unknown: %w", pc, unwind.ErrUnknownRegister)
		}
	} else {
		// Go's CFA gives RSP after the prologue (B).
		c := *ctx
		if ok, err := unwindSet(f, delta, mem, &c, exact, preserved); !ok || err != nil {
			return ok, err
		}
		b := c.RSP() - 8
		if cfa, err = word(mem, b+0x20); err != nil {
			return true, err
		}
		if cfa <= b+0x20 {
			return true, fmt.Errorf("Go rt0_go at %#x: the caller's rsp %#x saved at %#x lies below it: %w", pc, cfa, b+0x20, dwarf.ErrNoCFA)
		}
		copied, err := word(mem, b+0x18)
		if err != nil {
			return true, err
		}
		if ra, err := word(mem, cfa-8); err != nil || ra != copied {
			return true, fmt.Errorf("Go rt0_go at %#x: return address %#x at %#x, but rt0_go copied %#x: %w", pc, ra, cfa-8, copied, dwarf.ErrNoCFA)
		}
	}
	ra, err := word(mem, cfa-8)
	if err != nil {
		return true, err
	}
	var next unwind.Context
	next.Set(arch.RIP, ra)
	next.RIPAddr = cfa - 8
	next.Set(arch.RSP, cfa)
	*ctx = next
	return true, nil
}

// word reads a little-endian word.
func word(mem unwind.Memory, addr uint64) (uint64, error) {
	var b [8]byte
	if n := read(mem, addr, b[:]); n != len(b) {
		return 0, fmt.Errorf("stack at %#x: %d of 8 bytes readable", addr, n)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}
