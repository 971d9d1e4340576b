// Package cfi plugs DWARF call frame information (package unwind/dwarf)
// into the Windows stack walker (package unwind) as its CFIUnwinder: the
// walker asks it for frames whose PC has no .pdata entry (libgcc's
// ___chkstk_ms in MinGW images has CFI but no entry, and pushes before it
// returns) and for frames .pdata could not unwind.
//
// Unwind data comes from each module's file, which the caller provides;
// it is parsed once per module and cached. CFI addresses are those of the
// module loaded at its preferred base, so lookups are shifted by the
// distance between that base and where the module really is.
//
// Go's runtime.rt0_go has no .pdata entry and CFI that ignores the
// stack realignment of its prologue: it is recognized by the bytes of
// that prologue at the start of its FDE and unwound from the copies of
// the return address and of the caller's RSP the prologue stores
// (gort0.go; trust "cfi (builtin)").
//
// ELF modules (unwind.FormatELF: Linux programs under qemu-user) have no
// .pdata: the walker unwinds every one of their frames here, with the
// System V callee-saved set (rbx, rbp, r12-r15; dwarf.SysVPreserved).
// Their CFI comes from the file when the callback gives one (ELFSections:
// .eh_frame through .eh_frame_hdr, and .debug_frame; the load bias is the
// module's base minus its lowest PT_LOAD page, 0 for a non-PIE
// executable), else from guest memory: the PT_GNU_EH_FRAME segment's
// .eh_frame_hdr search table and the .eh_frame it points to, read up to
// the module's end (the loaded image has no section headers, and nothing
// in memory records the .eh_frame's size). See elf.go.
package cfi

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// Unwinder implements unwind.CFIUnwinder.
type Unwinder struct {
	// File returns the bytes of a module's image file, or an error when
	// none is known (the module then has no CFI).
	File func(mod *unwind.Module) ([]byte, error)

	cache map[moduleKey]*moduleCFI
}

type moduleKey struct {
	name string
	base uint64
}

type moduleCFI struct {
	finder    dwarf.Finder
	delta     uint64 // loaded base - preferred base
	preserved dwarf.RegSet
	err       error
}

// New returns an Unwinder reading module files through file.
func New(file func(mod *unwind.Module) ([]byte, error)) *Unwinder {
	return &Unwinder{File: file, cache: make(map[moduleKey]*moduleCFI)}
}

// Flush forgets every parsed module (after modules were unloaded).
func (u *Unwinder) Flush() { clear(u.cache) }

func (u *Unwinder) module(mem unwind.Memory, mod *unwind.Module) *moduleCFI {
	k := moduleKey{mod.Name, mod.Base}
	if m, ok := u.cache[k]; ok {
		return m
	}
	m := &moduleCFI{preserved: dwarf.WindowsPreserved}
	u.cache[k] = m
	if mod.Format == unwind.FormatELF {
		m.preserved = dwarf.SysVPreserved
		m.finder, m.delta, m.err = elfModule(u.File, mem, mod)
		return m
	}
	if u.File == nil {
		m.err = fmt.Errorf("%s: no module files", mod.Name)
		return m
	}
	file, err := u.File(mod)
	if err != nil {
		m.err = fmt.Errorf("%s: %w", mod.Name, err)
		return m
	}
	secs, err := dwarf.PESections(file)
	if err != nil {
		m.err = fmt.Errorf("%s: %w", mod.Name, err)
		return m
	}
	m.finder, m.err = finderOf(secs)
	m.delta = mod.Base - secs.ImageBase
	return m
}

// finderOf looks FDEs up in .eh_frame and then .debug_frame: a MinGW
// image can have both (hand-written assembly in one, the CRT in the
// other).
func finderOf(secs *dwarf.Sections) (dwarf.Finder, error) {
	var fs finders
	if secs.EHFrame != nil {
		only := *secs
		only.DebugFrame = nil
		if f, err := only.Finder(); err == nil {
			fs = append(fs, f)
		}
	}
	if secs.DebugFrame != nil {
		if t, err := dwarf.ParseDebugFrame(secs.DebugFrame.Data, secs.DebugFrame.Addr); err == nil && t != nil {
			fs = append(fs, t)
		}
	}
	if len(fs) == 0 {
		return nil, dwarf.ErrNoFDE
	}
	return fs, nil
}

// finders tries each finder in turn.
type finders []dwarf.Finder

func (fs finders) Lookup(pc uint64) (*dwarf.FDE, error) {
	var first error
	for _, f := range fs {
		fde, err := f.Lookup(pc)
		if err == nil {
			return fde, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// dwarfOf maps arch register numbers (RAX..R15) to DWARF numbers.
var dwarfOf = [16]uint64{
	arch.RAX: dwarf.RAX, arch.RCX: dwarf.RCX, arch.RDX: dwarf.RDX, arch.RBX: dwarf.RBX,
	arch.RSP: dwarf.RSP, arch.RBP: dwarf.RBP, arch.RSI: dwarf.RSI, arch.RDI: dwarf.RDI,
	arch.R8: dwarf.R8, arch.R9: dwarf.R9, arch.R10: dwarf.R10, arch.R11: dwarf.R11,
	arch.R12: dwarf.R12, arch.R13: dwarf.R13, arch.R14: dwarf.R14, arch.R15: dwarf.R15,
}

// UnwindFrame implements unwind.CFIUnwinder: it turns ctx into its
// caller's context and reports whether the module's CFI covered the PC.
func (u *Unwinder) UnwindFrame(mem unwind.Memory, mod *unwind.Module, ctx *unwind.Context, exact bool) (bool, error) {
	if mod == nil {
		return false, nil
	}
	m := u.module(mem, mod)
	if m.err != nil || m.finder == nil {
		return false, nil
	}
	return unwindSet(m.finder, m.delta, mem, ctx, exact, m.preserved)
}

// unwindWith unwinds ctx with the CFI of f, whose addresses are the
// target's minus delta, for Windows code.
func unwindWith(f dwarf.Finder, delta uint64, mem unwind.Memory, ctx *unwind.Context, exact bool) (bool, error) {
	return unwindSet(f, delta, mem, ctx, exact, dwarf.WindowsPreserved)
}

// unwindSet is unwindWith with the callee-saved registers of the
// module's ABI.
func unwindSet(f dwarf.Finder, delta uint64, mem unwind.Memory, ctx *unwind.Context, exact bool, preserved dwarf.RegSet) (bool, error) {
	var regs dwarf.Registers
	for r := arch.RAX; r <= arch.R15; r++ {
		if v, ok := ctx.Get(r); ok {
			regs.Set(dwarfOf[r], v)
		}
	}
	for i := 0; i < 16; i++ {
		if x, ok := ctx.GetXMM(i); ok {
			regs.Set(dwarf.XMM0+uint64(i), x.Lo)
			regs.High[dwarf.XMM0+uint64(i)] = x.Hi
		}
	}
	pc, ok := ctx.Get(arch.RIP)
	if !ok {
		return false, nil
	}
	// The CFI describes the module at its preferred base.
	regs.Set(dwarf.RA, pc-delta)
	fr, err := dwarf.Unwind(f, &regs, mem, exact, preserved)
	if errors.Is(err, dwarf.ErrNoFDE) {
		return false, nil // not covered: the caller's other rules apply
	}
	if err != nil {
		return false, err
	}
	var next unwind.Context
	if fr.End {
		next.Set(arch.RIP, 0) // the outermost frame: the walk ends here
		next.Set(arch.RSP, fr.CFA)
		*ctx = next
		return true, nil
	}
	c := &fr.Caller
	for r := arch.RAX; r <= arch.R15; r++ {
		d := dwarfOf[r]
		if v, ok := c.Get(d); ok {
			next.Set(r, v)
			if c.Saved.Has(d) {
				next.GPRAddr[r] = c.Addr[d]
			}
		}
	}
	if _, ok := c.Get(dwarf.RSP); !ok {
		next.Set(arch.RSP, fr.CFA)
	}
	for i := 0; i < 16; i++ {
		d := dwarf.XMM0 + uint64(i)
		if v, ok := c.Get(d); ok {
			next.SetXMM(i, unwind.Uint128{Lo: v, Hi: c.High[d]})
			if c.Saved.Has(d) {
				next.XMMAddr[i] = c.Addr[d]
			}
		}
	}
	ra, ok := c.Get(dwarf.RA)
	if !ok {
		return false, nil
	}
	next.Set(arch.RIP, ra)
	if c.Saved.Has(dwarf.RA) {
		next.RIPAddr = c.Addr[dwarf.RA]
	}
	*ctx = next
	return true, nil
}
