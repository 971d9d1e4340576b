package cfi

import (
	"bytes"
	"debug/elf"
	"fmt"

	"github.com/rspstub/rspstub/internal/elfmem"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// elfModule finds the CFI of an ELF module: from its file when file gives
// one (.eh_frame through .eh_frame_hdr, and .debug_frame), else from
// guest memory through the PT_GNU_EH_FRAME segment (.eh_frame_hdr and the
// .eh_frame it points to: the loaded image has no section headers). The
// file's addresses are link-time ones: delta is the load bias, the
// module's base (its lowest PT_LOAD mapping) minus that segment's page.
func elfModule(file func(*unwind.Module) ([]byte, error), mem unwind.Memory, mod *unwind.Module) (dwarf.Finder, uint64, error) {
	var fileErr error
	if file != nil {
		b, err := file(mod)
		if err == nil {
			f, delta, err := elfFile(b, mod.Base)
			if err == nil {
				return f, delta, nil
			}
			fileErr = err
		} else {
			fileErr = err
		}
	}
	f, err := elfMemory(mem, mod)
	if err != nil {
		if fileErr != nil {
			return nil, 0, fmt.Errorf("%s: file: %v; memory: %w", mod.Name, fileErr, err)
		}
		return nil, 0, fmt.Errorf("%s: %w", mod.Name, err)
	}
	return f, 0, nil
}

// elfFile reads the CFI sections of an ELF file loaded at base.
func elfFile(b []byte, base uint64) (dwarf.Finder, uint64, error) {
	secs, err := dwarf.ELFSections(bytes.NewReader(b))
	if err != nil {
		return nil, 0, err
	}
	lo, err := lowestLoad(b)
	if err != nil {
		return nil, 0, err
	}
	f, err := finderOf(secs)
	if err != nil {
		return nil, 0, err
	}
	return f, base - lo&^(elfmem.PageSize-1), nil
}

// lowestLoad is the lowest PT_LOAD address of an ELF file.
func lowestLoad(b []byte) (lo uint64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: debug/elf panicked: %v", dwarf.ErrNotELF, p)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", dwarf.ErrNotELF, err)
	}
	lo, any := ^uint64(0), false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Memsz != 0 {
			lo, any = min(lo, p.Vaddr), true
		}
	}
	if !any {
		return 0, fmt.Errorf("%w: no PT_LOAD segment", dwarf.ErrNotELF)
	}
	return lo, nil
}

// elfMemory reads .eh_frame_hdr and .eh_frame of the module loaded at
// mod.Base out of guest memory. The .eh_frame's size is recorded
// nowhere in memory: the read stops at the module's end.
func elfMemory(mem unwind.Memory, mod *unwind.Module) (dwarf.Finder, error) {
	img, err := elfmem.Load(mem, mod.Base)
	if err != nil {
		return nil, err
	}
	if img.EHFrameHdr == 0 || !img.Contains(img.EHFrameHdr) {
		return nil, fmt.Errorf("no PT_GNU_EH_FRAME segment: %w", dwarf.ErrNoFDE)
	}
	left := img.Base + img.Size - img.EHFrameHdr
	hdrSize := min(img.EHFrameHdrSize, left)
	f, err := dwarf.ReadEHFrame(mem, img.EHFrameHdr, int(hdrSize), int(min(left, dwarf.MaxEHFrameSize)), dwarf.Bases{})
	if err != nil {
		return nil, err
	}
	return f, nil
}
