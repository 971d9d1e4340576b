package monitor

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/internal/elfmem"
	"github.com/rspstub/rspstub/unwind"
)

// ELF modules (Linux programs under qemu-user). Symbols come, in this
// order of preference for one address, from the DWARF subprograms of the
// module's file (the names GDB shows), its .symtab, the .symtab of its
// separate debug file (DebugFiler, by GNU build ID) when the file is
// stripped, and .dynsym; without a file, from the dynamic symbol table in
// guest memory (DT_SYMTAB, DT_STRTAB, and DT_GNU_HASH or DT_HASH for the
// count). Line tables and parameters come from the module file's DWARF.
// A file's addresses are link-time ones: the module's base (its lowest
// PT_LOAD mapping) is the link-time address of that segment's page.

// format tells a module's file format from the magic at its base.
func (s *symbolizer) format(m Module) unwind.Format {
	if f, ok := s.formats[m]; ok {
		return f
	}
	f := m.Format
	var b [4]byte
	if n, _ := s.t.ReadMemory(m.Base, b[:]); n == len(b) && string(b[:]) == "\x7fELF" {
		f = unwind.FormatELF
	}
	s.formats[m] = f
	return f
}

// readELF builds the symbols of an ELF module.
func (ms *modSyms) readELF(t Target) {
	seen := make(map[uint32]bool)
	fromFile := false
	if mf, ok := t.(ModuleFiler); ok && !ms.mod.Synthetic {
		data, err := mf.ModuleFile(ms.mod)
		if err == nil {
			err = ms.readELFFile(t, data, seen)
			fromFile = err == nil
		}
		if err != nil {
			ms.notes = append(ms.notes, fmt.Sprintf("module file: %v", err))
		}
	}
	if !fromFile {
		if err := ms.readDynMemory(t, seen); err != nil {
			ms.notes = append(ms.notes, fmt.Sprintf("dynamic symbols in memory: %v", err))
		}
	}
	sortSyms(ms)
}

// readELFFile reads symbols, lines and parameters from the module's file.
func (ms *modSyms) readELFFile(t Target, data []byte, seen map[uint32]bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("module file of %s: malformed (%v)", ms.mod.Name, r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("module file of %s: %w", ms.mod.Name, err)
	}
	linkBase, ok := elfLinkBase(f)
	if !ok {
		return fmt.Errorf("module file of %s: no PT_LOAD segment", ms.mod.Name)
	}
	d, derr := f.DWARF()
	if derr == nil {
		ms.dwarfFuncs(d, linkBase, seen)
	}
	syms, serr := f.Symbols()
	ms.addELFSyms(f, syms, linkBase, seen)
	if serr != nil || len(syms) == 0 {
		// Stripped (Debian's libraries): the separate debug file has the
		// full table, and the DWARF names of static functions.
		if df, ok := t.(DebugFiler); ok {
			if id := buildID(f); id != nil {
				if dd, err := df.DebugFile(ms.mod, id); err == nil {
					ms.readDebugFile(dd, linkBase, seen)
				}
			}
		}
	}
	dsyms, _ := f.DynamicSymbols()
	ms.addELFSyms(f, dsyms, linkBase, seen)
	if derr == nil {
		ms.readLines(d, linkBase)
		ms.readParams(d, linkBase)
	}
	return nil
}

// readDebugFile adds the DWARF function names and .symtab of a separate
// debug file (same link-time addresses as the module file).
func (ms *modSyms) readDebugFile(data []byte, linkBase uint64, seen map[uint32]bool) {
	defer func() { _ = recover() }()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return
	}
	if d, err := f.DWARF(); err == nil {
		ms.dwarfFuncs(d, linkBase, seen)
	}
	syms, _ := f.Symbols()
	ms.addELFSyms(f, syms, linkBase, seen)
}

// elfLinkBase is the page of the lowest PT_LOAD: the link-time address
// of the module's base.
func elfLinkBase(f *elf.File) (uint64, bool) {
	lo, any := ^uint64(0), false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Memsz != 0 {
			lo, any = min(lo, p.Vaddr), true
		}
	}
	return lo &^ (elfmem.PageSize - 1), any
}

// buildID returns the GNU build ID note's descriptor, nil if none.
func buildID(f *elf.File) []byte {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, err := s.Data()
		if err != nil || len(b) > 1<<16 {
			continue
		}
		for len(b) >= 12 {
			nsz := uint64(f.ByteOrder.Uint32(b[0:]))
			dsz := uint64(f.ByteOrder.Uint32(b[4:]))
			typ := f.ByteOrder.Uint32(b[8:])
			na := (nsz + 3) &^ 3
			da := (dsz + 3) &^ 3
			if 12+na+da > uint64(len(b)) {
				break
			}
			if typ == 3 && nsz == 4 && string(b[12:15]) == "GNU" { // NT_GNU_BUILD_ID
				return bytes.Clone(b[12+na : 12+na+dsz])
			}
			b = b[12+na+da:]
		}
	}
	return nil
}

// addELFSyms adds the defined function symbols of a file's table, then
// its untyped symbols in executable sections (assembly entry points such
// as the dynamic linker's _start), so that a function wins an address.
func (ms *modSyms) addELFSyms(f *elf.File, syms []elf.Symbol, linkBase uint64, seen map[uint32]bool) {
	syms = syms[:min(len(syms), maxSymbols)]
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if (typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC) || s.Section == elf.SHN_UNDEF || s.Value == 0 || s.Name == "" {
			continue
		}
		ms.addAt(s.Value, s.Size, linkBase, s.Name, seen)
	}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_NOTYPE || s.Value == 0 || s.Name == "" || s.Name[0] == '.' ||
			int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) || s.Section >= elf.SHN_LORESERVE ||
			f.Sections[s.Section].Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		ms.addAt(s.Value, s.Size, linkBase, s.Name, seen)
	}
}

// addAt adds a symbol at a link-time address; the first name for an
// address wins.
func (ms *modSyms) addAt(addr, size, linkBase uint64, name string, seen map[uint32]bool) {
	if addr < linkBase || addr-linkBase >= ms.mod.Size || addr-linkBase >= 1<<32 {
		return
	}
	rva := uint32(addr - linkBase)
	if seen[rva] {
		return
	}
	seen[rva] = true
	ms.syms = append(ms.syms, symbol{rva: rva, name: name, size: uint32(min(size, 1<<31))})
}

// dwarfFuncs adds the names of DWARF subprograms that have code: the
// names GDB prints (__libc_start_main_impl where .symtab also has
// __libc_start_main and its aliases at the same address).
func (ms *modSyms) dwarfFuncs(d *dwarf.Data, linkBase uint64, seen map[uint32]bool) {
	r := d.Reader()
	for n := 0; n < maxSymbols*8; n++ {
		e, err := r.Next()
		if err != nil || e == nil {
			return
		}
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagNamespace, dwarf.TagPartialUnit:
			continue // look inside
		case dwarf.TagSubprogram:
			name, _ := e.Val(dwarf.AttrName).(string)
			lo, ok := e.Val(dwarf.AttrLowpc).(uint64)
			if ok && name != "" {
				ms.addAt(lo, dwarfSize(e, lo), linkBase, name, seen)
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

// dwarfSize is a subprogram's code size from DW_AT_high_pc (an address,
// or since DWARF 4 an offset from low_pc); 0 when unknown.
func dwarfSize(e *dwarf.Entry, lo uint64) uint64 {
	f := e.AttrField(dwarf.AttrHighpc)
	if f == nil {
		return 0
	}
	switch v := f.Val.(type) {
	case uint64:
		if f.Class == dwarf.ClassAddress {
			if v > lo {
				return v - lo
			}
			return 0
		}
		return v
	case int64:
		if v > 0 {
			return uint64(v)
		}
	}
	return 0
}

// readDynMemory reads the dynamic symbol table from guest memory.
func (ms *modSyms) readDynMemory(t Target, seen map[uint32]bool) error {
	img, err := elfmem.Load(t, ms.mod.Base)
	if err != nil {
		return err
	}
	if img.Dynamic == 0 {
		return fmt.Errorf("no PT_DYNAMIC (a static executable has no dynamic symbols)")
	}
	dyn, err := elfmem.ReadDynamic(t, img.Dynamic, img.DynamicSize)
	if err != nil {
		return err
	}
	syms, err := img.DynSymbols(t, dyn)
	for _, s := range syms {
		if s.IsFun {
			ms.addAt(s.Addr, s.Size, ms.mod.Base, s.Name, seen)
		}
	}
	return err
}

func sortSyms(ms *modSyms) {
	sort.SliceStable(ms.syms, func(i, j int) bool { return ms.syms[i].rva < ms.syms[j].rva })
	sort.SliceStable(ms.lines, func(i, j int) bool { return ms.lines[i].rva < ms.lines[j].rva })
}
