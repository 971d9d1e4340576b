// Package linuxproc finds the ELF modules of a Linux x86-64 process from
// its memory and its auxiliary vector, as a debugger without /proc does
// (qemu-user's gdbstub gives memory, registers and qXfer:auxv, nothing
// else). It is pure Go and knows no emulator.
//
// # Sources
//
// The kernel (here qemu-user) leaves the auxiliary vector on the initial
// stack: pairs of 64-bit words (a_type, a_val) ending with AT_NULL.
//
//	AT_PHDR, AT_PHNUM    the executable's program headers, in memory
//	AT_ENTRY             the executable's entry point (runtime address)
//	AT_BASE              the dynamic linker's load address (0: none)
//	AT_SYSINFO_EHDR      the vDSO's ELF header (absent: no vDSO)
//	AT_EXECFN            the path the program was started with
//
// The executable's load bias is AT_PHDR minus PT_PHDR's p_vaddr (or,
// without PT_PHDR, found from the ELF header in front of the program
// headers). Its PT_DYNAMIC holds DT_DEBUG, which the dynamic linker points
// at its r_debug once it has run:
//
//	struct r_debug   { int r_version; link_map *r_map; ElfW(Addr) r_brk; int r_state; ElfW(Addr) r_ldbase; };
//	                   +0              +8              +16               +24          +32
//	struct link_map  { ElfW(Addr) l_addr; char *l_name; ElfW(Dyn) *l_ld; link_map *l_next, *l_prev; };
//	                   +0                 +8             +16              +24      +32
//
// l_addr is the module's load bias, l_name its path ("" for the
// executable, "linux-vdso.so.1" for the vDSO). The chain is walked with a
// bound (MaxModules) and a cycle check.
//
// # Before and without the dynamic linker
//
// At the dynamic linker's entry (qemu-user stops there) and up to the
// point where it fills r_debug, DT_DEBUG is 0: the list is the executable,
// the dynamic linker (from AT_BASE, its path from the executable's
// PT_INTERP) and the vDSO. A static executable has
// no PT_DYNAMIC: the list is the executable and the vDSO. Modules always
// include these three when the auxiliary vector names them, whether or not
// the link_map chain does.
//
// # Base and names
//
// Module.Base is the address of the module's lowest PT_LOAD mapping
// (page-aligned), where its ELF header is; Size runs to the end of the
// highest PT_LOAD, page-aligned. Base equals the load bias for shared
// objects and PIEs (linked at 0), not for non-PIE executables (bias 0,
// Base 0x400000 typically). Names: Path is l_name (AT_EXECFN for the
// executable, DT_SONAME for a module with an empty l_name), Name its last
// path element.
//
// Problems that cost a part of the list (an unreadable link_map entry, a
// header that does not decode) are returned as strings beside the modules
// that could be found; the error is for an auxiliary vector that does not
// decode or lacks the executable.
package linuxproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"

	"github.com/rspstub/rspstub/internal/elfmem"
	"github.com/rspstub/rspstub/internal/loaded"
)

// Memory is guest memory: ReadMemory works like io.ReaderAt with a 64-bit
// address, and a short count means "readable up to here".
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// Module is one loaded ELF module. Base is the address of its lowest
// PT_LOAD mapping (page-aligned), where its ELF header is; Size reaches
// the end of its highest PT_LOAD, page-aligned.
type Module = loaded.Module

// Auxiliary vector types (<elf.h>).
const (
	AT_NULL         = 0
	AT_PHDR         = 3
	AT_PHENT        = 4
	AT_PHNUM        = 5
	AT_BASE         = 7
	AT_ENTRY        = 9
	AT_EXECFN       = 31
	AT_SYSINFO_EHDR = 33
)

// MaxModules bounds the link_map walk; MaxAuxv the auxiliary vector.
const (
	MaxModules = 4096
	MaxAuxv    = 512
)

// ErrAuxv reports an auxiliary vector that does not decode or lacks what
// is needed to find the executable.
var ErrAuxv = errors.New("auxiliary vector")

// Auxv is a decoded auxiliary vector.
type Auxv map[uint64]uint64

// ParseAuxv decodes 64-bit (a_type, a_val) pairs up to AT_NULL or the end.
func ParseAuxv(b []byte) (Auxv, error) {
	if len(b)%16 != 0 {
		return nil, fmt.Errorf("%w: %d bytes, not a whole number of 16-byte entries", ErrAuxv, len(b))
	}
	a := make(Auxv)
	for i := 0; i+16 <= len(b) && i/16 < MaxAuxv; i += 16 {
		t := binary.LittleEndian.Uint64(b[i:])
		if t == AT_NULL {
			break
		}
		if _, dup := a[t]; !dup { // the first one counts, as in glibc's getauxval
			a[t] = binary.LittleEndian.Uint64(b[i+8:])
		}
	}
	return a, nil
}

// Modules lists the modules of the process: the executable first, then
// the link_map chain in its order, then the dynamic linker and the vDSO if
// the chain did not have them. problems says what could not be read.
func Modules(mem Memory, auxv []byte) ([]Module, []string, error) {
	a, err := ParseAuxv(auxv)
	if err != nil {
		return nil, nil, err
	}
	phdr, phnum := a[AT_PHDR], a[AT_PHNUM]
	if phdr == 0 || phnum == 0 {
		return nil, nil, fmt.Errorf("%w: no AT_PHDR/AT_PHNUM", ErrAuxv)
	}
	if ent, ok := a[AT_PHENT]; ok && ent != 56 {
		return nil, nil, fmt.Errorf("%w: AT_PHENT %d (not ELF64)", ErrAuxv, ent)
	}
	w := walker{mem: mem}
	exe, err := w.executable(a)
	if err != nil {
		return nil, nil, fmt.Errorf("executable: %w", err)
	}
	w.add(exe.mod)
	if exe.img.Dynamic != 0 {
		w.linkMap(exe)
	}
	if base := a[AT_BASE]; base != 0 {
		// Its path is the executable's PT_INTERP (its DT_SONAME is only a
		// name).
		var interp string
		if exe.img.Interp != 0 {
			s, err := elfmem.ReadString(w.mem, exe.img.Interp, 0)
			if err != nil {
				w.problem("PT_INTERP: %v", err)
			}
			interp = s
		}
		w.addAt(base, interp, "dynamic linker")
	}
	if vdso := a[AT_SYSINFO_EHDR]; vdso != 0 {
		w.addAt(vdso, "linux-vdso.so.1", "vDSO")
	}
	return w.mods, w.problems, nil
}

type walker struct {
	mem      Memory
	mods     []Module
	problems []string
}

func (w *walker) problem(format string, args ...any) {
	if len(w.problems) < 64 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// mapped is a module with its ELF view.
type mapped struct {
	mod Module
	img *elfmem.Image
	dyn []elfmem.Dyn
}

// executable finds the program from its program headers in memory.
func (w *walker) executable(a Auxv) (*mapped, error) {
	phdr, phnum := a[AT_PHDR], a[AT_PHNUM]
	if phnum > elfmem.MaxPhnum {
		return nil, fmt.Errorf("%w: AT_PHNUM %d", ErrAuxv, phnum)
	}
	progs, err := elfmem.ReadProgs(w.mem, phdr, int(phnum))
	if err != nil {
		return nil, err
	}
	bias, ok := uint64(0), false
	for _, p := range progs {
		if p.Type == elfmem.PT_PHDR {
			bias, ok = phdr-p.Vaddr, true
			break
		}
	}
	if !ok {
		// No PT_PHDR (static executables often lack it): the program
		// headers follow the ELF header in the first PT_LOAD; find the
		// header whose e_phoff and e_phnum point back at them.
		bias, err = biasFromHeader(w.mem, phdr, progs)
		if err != nil {
			return nil, err
		}
	}
	img, err := elfmem.FromProgs(progs, bias)
	if err != nil {
		return nil, err
	}
	if e := a[AT_ENTRY]; e != 0 && !img.Contains(e) {
		w.problem("AT_ENTRY %#x is outside the executable %#x-%#x", e, img.Base, img.Base+img.Size)
	}
	ex := &mapped{img: img, mod: Module{Base: img.Base, Size: img.Size}}
	if fn := a[AT_EXECFN]; fn != 0 {
		if s, err := elfmem.ReadString(w.mem, fn, 0); err == nil {
			ex.mod.Path = s
		} else {
			w.problem("AT_EXECFN: %v", err)
		}
	}
	if img.Dynamic != 0 {
		ex.dyn, err = elfmem.ReadDynamic(w.mem, img.Dynamic, img.DynamicSize)
		if err != nil {
			w.problem("executable's dynamic section: %v", err)
		}
		if ex.mod.Path == "" {
			if s, err := img.SoName(w.mem, ex.dyn); err == nil {
				ex.mod.Path = s
			}
		}
	}
	ex.mod.Name = path.Base(ex.mod.Path)
	if ex.mod.Path == "" {
		ex.mod.Name = "a.out"
	}
	return ex, nil
}

// biasFromHeader finds the load bias of program headers at phdr that have
// no PT_PHDR entry: the lowest PT_LOAD maps file offset 0 (the ELF
// header) and the headers are at e_phoff in it.
func biasFromHeader(mem Memory, phdr uint64, progs []elfmem.Prog) (uint64, error) {
	for _, p := range progs {
		if p.Type != elfmem.PT_LOAD || p.Off != 0 {
			continue
		}
		for _, base := range []uint64{p.Vaddr &^ (elfmem.PageSize - 1), phdr &^ (elfmem.PageSize - 1)} {
			h, err := elfmem.ReadHeader(mem, base)
			if err != nil || int(h.Phnum) != len(progs) || base+h.Phoff != phdr {
				continue
			}
			return base - (p.Vaddr &^ (elfmem.PageSize - 1)), nil
		}
	}
	return 0, fmt.Errorf("%w: no PT_PHDR, and no ELF header found in front of the program headers at %#x", elfmem.ErrBadImage, phdr)
}

// add records a module unless one with the same base is there already (a
// name fills an empty one).
func (w *walker) add(m Module) {
	for i := range w.mods {
		if w.mods[i].Base == m.Base {
			if w.mods[i].Path == "" && m.Path != "" {
				w.mods[i].Path, w.mods[i].Name = m.Path, m.Name
			}
			return
		}
	}
	w.mods = append(w.mods, m)
}

// addAt adds the module whose ELF header is at base (the dynamic linker
// from AT_BASE, the vDSO from AT_SYSINFO_EHDR).
func (w *walker) addAt(base uint64, name, what string) {
	for _, m := range w.mods {
		if m.Base == base {
			return
		}
	}
	img, err := elfmem.Load(w.mem, base)
	if err != nil {
		w.problem("%s at %#x: %v", what, base, err)
		return
	}
	m := Module{Base: img.Base, Size: img.Size, Path: name}
	if img.Dynamic != 0 {
		if dyn, err := elfmem.ReadDynamic(w.mem, img.Dynamic, img.DynamicSize); err == nil {
			if s, err := img.SoName(w.mem, dyn); err == nil && s != "" && name == "" {
				m.Path = s
			}
		}
	}
	m.Name = path.Base(m.Path)
	if m.Path == "" {
		m.Name = what
	}
	w.add(m)
}

// linkMap walks r_debug's link_map chain.
func (w *walker) linkMap(exe *mapped) {
	w.chain(exe, func(lm, lAddr, lName, lLD uint64) { w.linkEntry(exe, lAddr, lName, lLD) })
}

// LinkMapEntry is one entry of r_debug's link_map chain as the dynamic
// linker keeps it: what an SVR4 library list (qXfer:libraries-svr4)
// reports.
type LinkMapEntry struct {
	Name    string // l_name ("" for the executable)
	LM      uint64 // the entry's own address
	Addr    uint64 // l_addr: the load bias
	Dynamic uint64 // l_ld: the module's PT_DYNAMIC in memory
	Main    bool   // the executable's entry (its l_ld is the executable's PT_DYNAMIC)
}

// LinkMap returns r_debug's link_map chain in order. It is empty until
// the dynamic linker has filled r_debug (at its entry point, where
// qemu-user starts) and for executables without DT_DEBUG (static ones).
func LinkMap(mem Memory, auxv []byte) ([]LinkMapEntry, []string, error) {
	a, err := ParseAuxv(auxv)
	if err != nil {
		return nil, nil, err
	}
	if a[AT_PHDR] == 0 || a[AT_PHNUM] == 0 {
		return nil, nil, fmt.Errorf("%w: no AT_PHDR/AT_PHNUM", ErrAuxv)
	}
	w := walker{mem: mem}
	exe, err := w.executable(a)
	if err != nil {
		return nil, nil, fmt.Errorf("executable: %w", err)
	}
	var out []LinkMapEntry
	w.chain(exe, func(lm, lAddr, lName, lLD uint64) {
		e := LinkMapEntry{LM: lm, Addr: lAddr, Dynamic: lLD, Main: lLD == exe.img.Dynamic}
		if lName != 0 {
			s, err := elfmem.ReadString(w.mem, lName, 0)
			if err != nil {
				w.problem("l_name at %#x: %v", lName, err)
			}
			e.Name = s
		}
		out = append(out, e)
	})
	return out, w.problems, nil
}

// chain calls fn for each entry of r_debug's link_map chain (bounded,
// cycle-checked); nothing before the dynamic linker has filled r_debug.
func (w *walker) chain(exe *mapped, fn func(lm, lAddr, lName, lLD uint64)) {
	if exe.img.Dynamic == 0 {
		return // static: no dynamic linker
	}
	dbg, ok := elfmem.Lookup(exe.dyn, elfmem.DT_DEBUG)
	if !ok || dbg == 0 {
		return // not filled in yet, or no DT_DEBUG (static-pie, -z nodebug)
	}
	lm, err := elfmem.Read64(w.mem, "r_debug.r_map", dbg+8)
	if err != nil {
		w.problem("r_debug at %#x: %v", dbg, err)
		return
	}
	seen := make(map[uint64]bool)
	for n := 0; lm != 0; n++ {
		if n >= MaxModules {
			w.problem("link_map chain longer than %d entries", MaxModules)
			return
		}
		if seen[lm] {
			w.problem("link_map chain loops at %#x", lm)
			return
		}
		seen[lm] = true
		var e [40]byte
		if err := elfmem.Read(w.mem, "link_map", lm, e[:]); err != nil {
			w.problem("link_map entry %d: %v", n, err)
			return
		}
		lAddr := binary.LittleEndian.Uint64(e[0:])
		lName := binary.LittleEndian.Uint64(e[8:])
		lLD := binary.LittleEndian.Uint64(e[16:])
		next := binary.LittleEndian.Uint64(e[24:])
		fn(lm, lAddr, lName, lLD)
		lm = next
	}
}

// linkEntry adds one link_map entry's module.
func (w *walker) linkEntry(exe *mapped, lAddr, lName, lLD uint64) {
	if lLD == exe.img.Dynamic {
		return // the executable itself
	}
	var name string
	if lName != 0 {
		s, err := elfmem.ReadString(w.mem, lName, 0)
		if err != nil {
			w.problem("l_name at %#x: %v", lName, err)
		}
		name = s
	}
	// The ELF header is at the lowest PT_LOAD, which is l_addr for an
	// object linked at 0: every shared object (prelinked ones, linked
	// elsewhere, are not made any more; they are reported as a problem).
	img, err := elfmem.Load(w.mem, lAddr)
	if err != nil {
		w.problem("module %q at %#x: %v", name, lAddr, err)
		return
	}
	if img.Bias != lAddr {
		w.problem("module %q: ELF header at %#x gives bias %#x, link_map says %#x", name, lAddr, img.Bias, lAddr)
	}
	if name == "" && img.Dynamic != 0 {
		if dyn, err := elfmem.ReadDynamic(w.mem, img.Dynamic, img.DynamicSize); err == nil {
			name, _ = img.SoName(w.mem, dyn)
		}
	}
	m := Module{Path: name, Name: path.Base(name), Base: img.Base, Size: img.Size}
	if name == "" {
		m.Name = fmt.Sprintf("module@%#x", img.Base)
	}
	w.add(m)
}
