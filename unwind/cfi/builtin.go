package cfi

import (
	"bytes"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// A builtin is CFI that a runtime helper lacks, written here by hand: the
// helper is recognized by its exact instruction bytes, never by a name
// (stripped images have none, and a name proves nothing about the code).
// The CFI is a real .debug_frame (one CIE and one FDE whose initial
// location is 0), decoded and run by package dwarf like a module's own.
type builtin struct {
	name  string
	code  []byte // the whole function, up to and including its ret
	frame []byte // .debug_frame bytes describing code at address 0
	table *dwarf.Table
}

// chkstkMSCode is libgcc's ___chkstk_ms (libgcc/config/i386/cygwin.S, as
// built by Debian's gcc-mingw-w64 12 and linked by both gcc and clang
// --target=x86_64-w64-mingw32): it probes each page of a frame larger
// than 4 KiB. It has neither a .pdata entry nor CFI, yet pushes two
// registers, so the Windows leaf rule reads a pushed register as the
// return address.
var chkstkMSCode = []byte{
	0x51,                               // 00 push rcx
	0x50,                               // 01 push rax
	0x48, 0x3d, 0x00, 0x10, 0x00, 0x00, // 02 cmp rax, 0x1000
	0x48, 0x8d, 0x4c, 0x24, 0x18, // 08 lea rcx, [rsp+0x18]
	0x72, 0x19, // 0d jb 0x28
	0x48, 0x81, 0xe9, 0x00, 0x10, 0x00, 0x00, // 0f sub rcx, 0x1000
	0x48, 0x83, 0x09, 0x00, // 16 or qword [rcx], 0
	0x48, 0x2d, 0x00, 0x10, 0x00, 0x00, // 1a sub rax, 0x1000
	0x48, 0x3d, 0x00, 0x10, 0x00, 0x00, // 20 cmp rax, 0x1000
	0x77, 0xe7, // 26 ja 0x0f
	0x48, 0x29, 0xc1, // 28 sub rcx, rax
	0x48, 0x83, 0x09, 0x00, // 2b or qword [rcx], 0
	0x58, // 2f pop rax
	0x59, // 30 pop rcx
	0xc3, // 31 ret
}

// chkstkMSFrame is the CFI of chkstkMSCode. The rows it gives:
//
//	offset  instruction   CFA      rcx      rax      return address
//	00      push rcx      rsp+8    -        -        [CFA-8]
//	01      push rax      rsp+16   [CFA-16] -        [CFA-8]
//	02..2f  body, pop rax rsp+24   [CFA-16] [CFA-24] [CFA-8]
//	30      pop rcx       rsp+16   [CFA-16] -        [CFA-8]
//	31      ret           rsp+8    -        -        [CFA-8]
var chkstkMSFrame = []byte{
	// CIE at offset 0, 32-bit DWARF.
	0x10, 0x00, 0x00, 0x00, // length 16
	0xff, 0xff, 0xff, 0xff, // CIE_id: all ones in .debug_frame
	0x01,       // version 1
	0x00,       // augmentation ""
	0x01,       // code_alignment_factor 1 (ULEB)
	0x78,       // data_alignment_factor -8 (SLEB)
	0x10,       // return_address_register 16 (u8 in version 1)
	0x0c, 7, 8, // DW_CFA_def_cfa rsp(7), 8
	0x90, 0x01, // DW_CFA_offset r16(RA), 1*-8: RA at CFA-8
	0x00, 0x00, // DW_CFA_nop x2: pad to a multiple of 8
	// FDE at offset 20.
	0x28, 0x00, 0x00, 0x00, // length 40
	0x00, 0x00, 0x00, 0x00, // CIE_pointer: the CIE at offset 0
	0, 0, 0, 0, 0, 0, 0, 0, // initial_location 0
	0x32, 0, 0, 0, 0, 0, 0, 0, // address_range 0x32
	0x41,       // DW_CFA_advance_loc 1: after push rcx (01)
	0x0e, 0x10, // DW_CFA_def_cfa_offset 16
	0x82, 0x02, // DW_CFA_offset rcx(2), 2*-8: at CFA-16
	0x41,       // DW_CFA_advance_loc 1: after push rax (02)
	0x0e, 0x18, // DW_CFA_def_cfa_offset 24
	0x80, 0x03, // DW_CFA_offset rax(0), 3*-8: at CFA-24
	0x6e,       // DW_CFA_advance_loc 46: after pop rax (30)
	0x0e, 0x10, // DW_CFA_def_cfa_offset 16
	0xc0,       // DW_CFA_restore rax
	0x41,       // DW_CFA_advance_loc 1: after pop rcx (31)
	0x0e, 0x08, // DW_CFA_def_cfa_offset 8
	0xc2,       // DW_CFA_restore rcx
	0x00, 0x00, // DW_CFA_nop x2: pad to a multiple of 8
}

// captureContextCode is the start of Wine 8's ntdll!RtlCaptureContext
// (dlls/ntdll/signal_x86_64.c), up to the pop of the flags it pushed
// first. Its .pdata entry has no unwind codes and its CFI is not in the
// PE file, so .pdata (RtlVirtualUnwind itself) takes the pushed flags for
// the return address inside these bytes.
var captureContextCode = []byte{
	0x9c,                                     // 00 pushfq
	0xc7, 0x41, 0x30, 0x0f, 0x00, 0x10, 0x00, // 01 mov dword [rcx+0x30], 0x10000f
	0x0f, 0xae, 0x59, 0x34, // 08 stmxcsr [rcx+0x34]
	0x8c, 0x49, 0x38, // 0c mov [rcx+0x38], cs
	0x8c, 0x59, 0x3a, // 0f mov [rcx+0x3a], ds
	0x8c, 0x41, 0x3c, // 12 mov [rcx+0x3c], es
	0x8c, 0x61, 0x3e, // 15 mov [rcx+0x3e], fs
	0x8c, 0x69, 0x40, // 18 mov [rcx+0x40], gs
	0x8c, 0x51, 0x42, // 1b mov [rcx+0x42], ss
	0x8f, 0x41, 0x44, // 1e pop qword [rcx+0x44]
}

// captureContextFrame is the CFI of captureContextCode:
//
//	offset  instruction   CFA      return address
//	00      pushfq        rsp+8    [CFA-8]
//	01..1e  body, pop     rsp+16   [CFA-8]
var captureContextFrame = []byte{
	// CIE at offset 0, as chkstkMSFrame's.
	0x10, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x01, 0x78, 0x10,
	0x0c, 7, 8, // DW_CFA_def_cfa rsp(7), 8
	0x90, 0x01, // DW_CFA_offset r16(RA), 1*-8
	0x00, 0x00, // DW_CFA_nop x2
	// FDE at offset 20.
	0x18, 0x00, 0x00, 0x00, // length 24
	0x00, 0x00, 0x00, 0x00, // CIE_pointer: the CIE at offset 0
	0, 0, 0, 0, 0, 0, 0, 0, // initial_location 0
	0x21, 0, 0, 0, 0, 0, 0, 0, // address_range 0x21
	0x41,       // DW_CFA_advance_loc 1: after pushfq (01)
	0x0e, 0x10, // DW_CFA_def_cfa_offset 16
	0x00, // DW_CFA_nop
}

// builtins are the helpers the unwinder knows. Checked on Debian 12: clang
// --target=x86_64-w64-mingw32 links libgcc's ___chkstk_ms too (no
// compiler-rt builtins for Windows are packaged), and the MSVC target
// has no __chkstk of its own without a CRT.
var builtins, builtinsErr = buildBuiltins([]builtin{
	{name: "___chkstk_ms", code: chkstkMSCode, frame: chkstkMSFrame},
	{name: "RtlCaptureContext (Wine 8)", code: captureContextCode, frame: captureContextFrame},
})

// maxBuiltinCode is the longest builtin's code, which bounds the bytes
// read around a PC.
const maxBuiltinCode = 64

func buildBuiltins(bs []builtin) ([]builtin, error) {
	for i := range bs {
		b := &bs[i]
		if len(b.code) == 0 || len(b.code) > maxBuiltinCode {
			return nil, fmt.Errorf("builtin %s: code of %d bytes", b.name, len(b.code))
		}
		t, err := dwarf.ParseDebugFrame(b.frame, 0)
		if err != nil {
			return nil, fmt.Errorf("builtin %s: %w", b.name, err)
		}
		if len(t.Errors) > 0 {
			return nil, fmt.Errorf("builtin %s: %w", b.name, t.Errors[0])
		}
		if _, err := t.Lookup(uint64(len(b.code) - 1)); err != nil {
			return nil, fmt.Errorf("builtin %s: CFI does not cover the code: %w", b.name, err)
		}
		b.table = t
	}
	return bs, nil
}

// matchBuiltin finds the builtin helper whose code, in mem, contains pc,
// and returns it with the address the code starts at.
func matchBuiltin(mem unwind.Memory, pc uint64) (*builtin, uint64, bool) {
	if builtinsErr != nil {
		return nil, 0, false
	}
	var buf [2*maxBuiltinCode - 1]byte
	lo := pc - (maxBuiltinCode - 1)
	if pc < maxBuiltinCode-1 {
		lo = 0
	}
	// What lies before pc may be unmapped: then start at pc's page (the
	// window spans at most two), and at last at pc itself.
	n := 0
	for _, from := range [...]uint64{lo, max(lo, pc&^0xfff), pc} {
		lo = from
		if n = read(mem, lo, buf[:pc-lo+maxBuiltinCode]); uint64(n) > pc-lo {
			break
		}
	}
	win := buf[:n]
	for i := range builtins {
		b := &builtins[i]
		// Candidate starts s with s <= pc < s+len(code).
		for s := pc; s+uint64(len(b.code)) > pc && s >= lo; s-- {
			off := s - lo
			if off+uint64(len(b.code)) <= uint64(len(win)) && bytes.Equal(win[off:off+uint64(len(b.code))], b.code) {
				return b, s, true
			}
			if s == 0 {
				break
			}
		}
	}
	return nil, 0, false
}

// read reads the readable prefix of p at addr, clamping a count a faulty
// Memory might report outside [0, len(p)].
func read(mem unwind.Memory, addr uint64, p []byte) int {
	if addr+uint64(len(p)) < addr {
		p = p[:-addr]
	}
	n, _ := mem.ReadMemory(addr, p)
	return max(0, min(n, len(p)))
}

// UnwindBuiltin unwinds ctx with the built-in CFI of a runtime helper
// recognized at its PC by its exact bytes. It reports false when no
// helper matches.
func UnwindBuiltin(mem unwind.Memory, ctx *unwind.Context, exact bool) (bool, error) {
	pc, ok := ctx.Get(arch.RIP)
	if !ok {
		return false, nil
	}
	b, start, ok := matchBuiltin(mem, dwarf.LookupPC(pc, exact))
	if !ok {
		return false, nil
	}
	return unwindWith(b.table, start, mem, ctx, exact)
}

// UnwindFrameTrust implements unwind.CFITruster: the module's CFI, then
// the built-in CFI of a known helper (trust TrustCFIBuiltin). Go's
// rt0_go, whose own CFI is wrong, is unwound by goRT0 first (trust
// TrustCFIBuiltin).
func (u *Unwinder) UnwindFrameTrust(mem unwind.Memory, mod *unwind.Module, ctx *unwind.Context, exact bool) (unwind.Trust, bool, error) {
	if mod != nil && mod.Format != unwind.FormatELF {
		if m := u.module(mem, mod); m.err == nil && m.finder != nil {
			if ok, err := goRT0(m.finder, m.delta, mem, ctx, exact, m.preserved); ok || err != nil {
				return unwind.TrustCFIBuiltin, ok, err
			}
		}
	}
	ok, err := u.UnwindFrame(mem, mod, ctx, exact)
	if ok && err == nil {
		return unwind.TrustCFI, true, nil
	}
	if ok, berr := UnwindBuiltin(mem, ctx, exact); ok || berr != nil {
		return unwind.TrustCFIBuiltin, ok, berr
	}
	return unwind.TrustCFI, ok, err
}
