package qemu

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// ModuleFile is an image the user placed with --module FILE[@BASE]: its
// file is the only host file the stub serves, and it overrides whatever
// the guest-memory walk finds at that range. A PE32+ image needs its
// base; an ELF image (a kernel, firmware) is where it was linked unless
// a base is given for a position-independent one.
type ModuleFile struct {
	Path            string // absolute host path
	Base            uint64 // PE: the image base; ELF: where its lowest PT_LOAD page is
	Size            uint64 // PE: SizeOfImage; ELF: the PT_LOAD pages' span
	FirstSectionRVA uint32
	Format          unwind.Format
	data            []byte
}

// Name is the file's base name.
func (m *ModuleFile) Name() string { return filepath.Base(m.Path) }

// ParseModuleFile reads "FILE@BASE" (BASE in hex, 0x optional) or, for
// an ELF image loaded where it was linked, "FILE", and checks that FILE
// is a PE32+ x64 image or an ELF64 x86-64 one and BASE a page-aligned
// address.
func ParseModuleFile(spec string) (*ModuleFile, error) {
	path, base, hasBase := spec, uint64(0), false
	if i := strings.LastIndexByte(spec, '@'); i > 0 {
		bs := strings.TrimPrefix(strings.ToLower(spec[i+1:]), "0x")
		b, err := strconv.ParseUint(bs, 16, 64)
		if err != nil || b == 0 || b%0x1000 != 0 {
			return nil, fmt.Errorf("--module %q: base %q is not a non-zero, page-aligned hex address", spec, spec[i+1:])
		}
		path, base, hasBase = spec[:i], b, true
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("--module %q: %w", spec, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("--module %q: %w", spec, err)
	}
	if bytes.HasPrefix(data, []byte("\x7fELF")) {
		m, err := parseELFModule(data, base, hasBase)
		if err != nil {
			return nil, fmt.Errorf("--module %q: %w", spec, err)
		}
		m.Path = abs
		return m, nil
	}
	if !hasBase {
		return nil, fmt.Errorf("--module %q: want FILE@BASE for a PE image (BASE in hex, e.g. kernel32.dll@0x7ffb10000000); an ELF image may omit it", spec)
	}
	f, err := peimage.ReadFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("--module %q: not a PE or ELF image: %w", spec, err)
	}
	if f.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC || f.Machine != peimage.IMAGE_FILE_MACHINE_AMD64 {
		return nil, fmt.Errorf("--module %q: not a PE32+ x64 image (machine %#x)", spec, f.Machine)
	}
	m := &ModuleFile{Path: abs, Base: base, Size: uint64(f.SizeOfImage), FirstSectionRVA: 0x1000, data: data}
	if len(f.Sections) > 0 {
		m.FirstSectionRVA = f.Sections[0].VirtualAddress
	}
	if m.Size == 0 || base+m.Size < base {
		return nil, fmt.Errorf("--module %q: SizeOfImage %#x does not fit at %#x", spec, m.Size, base)
	}
	return m, nil
}

// maxELFSpan bounds the address span of an ELF module's PT_LOAD pages.
const maxELFSpan = 1 << 40

// parseELFModule checks an ELF64 x86-64 image and finds where it lies:
// its PT_LOAD pages, moved to base when one is given (only for a
// position-independent image: an ET_EXEC one runs where it was linked).
func parseELFModule(data []byte, base uint64, hasBase bool) (m *ModuleFile, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed ELF image (%v)", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an ELF image: %w", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("not an ELF64 x86-64 image (%v, %v; give the 64-bit file, not the elf32-i386 copy a multiboot loader boots)", f.Class, f.Machine)
	}
	lo, hi := ^uint64(0), uint64(0)
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		end := p.Vaddr + p.Memsz
		if end < p.Vaddr {
			return nil, fmt.Errorf("PT_LOAD at %#x of %#x bytes wraps", p.Vaddr, p.Memsz)
		}
		lo, hi = min(lo, p.Vaddr), max(hi, end)
	}
	if hi == 0 {
		return nil, errors.New("no PT_LOAD segment")
	}
	lo &^= 0xfff
	hi = (hi + 0xfff) &^ 0xfff
	if hi-lo > maxELFSpan || hi < lo {
		return nil, fmt.Errorf("PT_LOAD segments span %#x bytes", hi-lo)
	}
	if !hasBase {
		base = lo
	} else if f.Type == elf.ET_EXEC && base != lo {
		return nil, fmt.Errorf("an ET_EXEC image runs where it was linked (%#x), not at %#x: leave out @BASE", lo, base)
	}
	if base+(hi-lo) < base {
		return nil, fmt.Errorf("%#x bytes do not fit at %#x", hi-lo, base)
	}
	return &ModuleFile{Base: base, Size: hi - lo, Format: unwind.FormatELF, data: data}, nil
}

// UserModulesFunc is the seam for qemu-user (Linux) module discovery:
// given guest memory and the auxiliary vector (qXfer:auxv:read), the
// loaded ELF objects and the problems found.
type UserModulesFunc func(mem winproc.Memory, auxv []byte) ([]winproc.Module, []string, error)

// discovery is what one stop's module discovery found, cached until the
// guest runs again.
type discovery struct {
	gen     uint64
	tid     int
	scanned bool // the MZ scan was tried (only when asked: it may read many pages)
	teb     uint64
	tebErr  error
	source  string
	mods    []winproc.Module
	probs   []string
}

// memOf adapts the target's memory (through the selected vCPU) for
// winproc, without taking the lock.
type memOf struct{ t *Target }

func (m memOf) ReadMemory(addr uint64, p []byte) (int, error) { return m.t.readMemory(addr, p) }

// discover finds the modules for thread tid (0: the debugger's
// thread), from the cache when the guest has not run since. scan allows
// the backward MZ scan when the loader list gives nothing.
func (t *Target) discover(tid int, scan bool) *discovery {
	if tid <= 0 {
		tid = t.dbgThread()
	}
	d := &t.disc
	if d.gen == t.gen && d.tid == tid && d.gen != 0 && (d.scanned || !scan) {
		return d
	}
	*d = discovery{gen: t.gen, tid: tid, scanned: scan}
	var found []winproc.Module
	if t.mode == ModeUser {
		found = t.userDiscover(d)
	} else {
		found = t.windowsDiscover(d, tid, scan)
	}
	user := make([]winproc.Module, len(t.userMods))
	for i, m := range t.userMods {
		user[i] = winproc.Module{Name: m.Name(), Path: m.Path, Base: m.Base, Size: m.Size}
	}
	d.mods = winproc.Merge(found, user)
	if len(user) > 0 {
		d.source += fmt.Sprintf(" + %d --module file(s)", len(user))
	}
	return d
}

func (t *Target) userDiscover(d *discovery) []winproc.Module {
	d.tebErr = errors.New("qemu-user runs a Linux program: there is no TEB")
	if t.userModules == nil {
		d.source = "none (no ELF module discovery in this build)"
		return nil
	}
	if t.auxv == nil {
		auxv, err := t.c.ReadAuxv()
		if err != nil {
			d.probs = append(d.probs, "read the auxiliary vector: "+t.check(err).Error())
			return nil
		}
		t.auxv = auxv
	}
	mods, probs, err := t.userModules(memOf{t}, t.auxv)
	d.probs = append(d.probs, probs...)
	if err != nil {
		d.probs = append(d.probs, err.Error())
	}
	d.source = "ELF link map"
	return mods
}

func (t *Target) windowsDiscover(d *discovery, tid int, scan bool) []winproc.Module {
	d.source = "none"
	if err := t.selectThread(tid); err != nil {
		d.tebErr = err
		return nil
	}
	get := func(name string) (uint64, error) {
		i := t.desc.Lookup(name)
		if i < 0 || t.regmap[i] < 0 {
			return 0, fmt.Errorf("QEMU reports no %s register", name)
		}
		return t.reg64(tid, i)
	}
	var r winproc.Regs
	var errs []error
	var err error
	r.CS, err = get("cs")
	errs = append(errs, err)
	r.GSBase, err = get("gs_base")
	errs = append(errs, err)
	r.KernelGSBase, err = get("k_gs_base")
	errs = append(errs, err)
	efer, err := get("efer")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		d.tebErr = fmt.Errorf("vCPU thread %d: %w", tid, err)
		return nil
	}
	if efer&0x400 == 0 {
		d.tebErr = fmt.Errorf("vCPU thread %d is not in 64-bit long mode (efer %#x): no Windows x64 TEB", tid, efer)
		return nil
	}
	mem := memOf{t}
	d.teb, d.tebErr = winproc.FindTEB(mem, r)
	if d.tebErr == nil {
		p, err := winproc.Walk(mem, d.teb)
		if err != nil {
			d.probs = append(d.probs, err.Error())
		} else {
			for _, pr := range p.Problems {
				d.probs = append(d.probs, pr.Msg)
			}
			if len(p.Modules) > 0 {
				d.source = fmt.Sprintf("PEB loader list (TEB %#x, PEB %#x)", d.teb, p.PEB)
				return p.Modules
			}
		}
	}
	if !scan {
		return nil
	}
	pc, err := t.reg64(tid, t.desc.PC)
	if err != nil {
		d.probs = append(d.probs, err.Error())
		return nil
	}
	m, err := winproc.ScanImage(mem, pc, 0)
	if err != nil {
		d.probs = append(d.probs, "scan: "+err.Error())
		return nil
	}
	d.source = fmt.Sprintf("MZ scan back from rip %#x", pc)
	return []winproc.Module{m}
}

// dbgThread is the thread the debugger last read registers of (its Hg
// thread), else the thread that stopped.
func (t *Target) dbgThread() int {
	if t.hg > 0 {
		return t.hg
	}
	if t.last.Thread > 0 {
		return t.last.Thread
	}
	if len(t.threads) > 0 {
		return t.threads[0]
	}
	return 1
}

// noteLibraries marks a stop whose module list differs from the one the
// debugger last saw (the stop reply then carries library:). Single
// steps are left alone: they are the hot path, and no module is loaded
// by one instruction the debugger watches.
func (t *Target) noteLibraries(st *rsp.Stop, actions []rsp.ResumeAction) {
	for _, a := range actions {
		if a.Step || a.RangeStart < a.RangeEnd {
			return
		}
	}
	if st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated || t.gone.Load() {
		return
	}
	d := t.discover(st.Thread, false)
	if sig := modulesSig(d.mods); sig != t.libSig {
		t.libSig = sig
		st.Library = true
		t.last.Library = true
	}
}

func modulesSig(mods []winproc.Module) string {
	var b strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&b, "%s@%x+%x;", m.Path, m.Base, m.Size)
	}
	return b.String()
}

// userModule is the --module file loaded at base, or nil.
func (t *Target) userModule(base uint64) *ModuleFile {
	for _, m := range t.userMods {
		if m.Base == base {
			return m
		}
	}
	return nil
}

// libraries implements rsp.LibraryLister: Windows paths as the guest's
// loader names them, the host path for --module files (which vFile
// serves).
func (t *Target) libraries(dst []rsp.Library) []rsp.Library {
	d := t.discover(0, true)
	t.libSig = modulesSig(d.mods)
	for _, m := range d.mods {
		if um := t.userModule(m.Base); um != nil && um.Path == m.Path && um.Format == unwind.FormatELF {
			// A kernel or firmware the debugger loads itself (file
			// KERNEL): a Windows library entry would load it again.
			continue
		}
		name := m.Path
		if name == "" {
			name = m.Name
		}
		rva := uint32(0x1000)
		if um := t.userModule(m.Base); um != nil && um.Path == m.Path {
			rva = um.FirstSectionRVA
		} else if t.mode == ModeSystem {
			rva = winproc.FirstSectionRVA(memOf{t}, m.Base)
		}
		dst = append(dst, rsp.Library{Name: name, Base: m.Base, SegmentAddr: m.Base + uint64(rva)})
	}
	return dst
}

// tibAddress implements rsp.TIBer.
func (t *Target) tibAddress(tid int) (uint64, error) {
	if t.gone.Load() {
		return 0, ErrGone
	}
	d := t.discover(tid, false)
	return d.teb, d.tebErr
}

// execFile implements rsp.ExecFiler: only a --module file can be the
// program's file (never another host file).
func (t *Target) execFile(pid int) (string, error) {
	d := t.discover(0, true)
	if len(d.mods) > 0 {
		if um := t.userModule(d.mods[0].Base); um != nil && um.Path == d.mods[0].Path {
			return um.Path, nil
		}
	}
	return "", fmt.Errorf("the program's file is unknown (give it with --module FILE@BASE): %w", fs.ErrNotExist)
}

// openFile implements rsp.FileServer: the --module files, by their host
// path or base name, and nothing else.
func (t *Target) openFile(name string) (rsp.File, error) {
	for _, m := range t.userMods {
		if name == m.Path || strings.EqualFold(name, m.Name()) {
			return memFile{bytes.NewReader(m.data)}, nil
		}
	}
	return nil, fmt.Errorf("open %q: only --module files are served: %w", name, fs.ErrNotExist)
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// fileLoadAddress implements rsp.FileLoadAddresser (LLDB).
func (t *Target) fileLoadAddress(name string) (uint64, error) {
	base := filepath.Base(strings.ReplaceAll(name, `\`, "/"))
	for _, m := range t.discover(0, true).mods {
		if strings.EqualFold(m.Name, base) || strings.EqualFold(filepath.Base(strings.ReplaceAll(m.Path, `\`, "/")), base) {
			return m.Base, nil
		}
	}
	return 0, fmt.Errorf("%s is not loaded: %w", name, fs.ErrNotExist)
}

// ---- monitor commands

var gprNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// monTarget adapts the target to package monitor, for the debugger's
// thread.
type monTarget struct{ t *Target }

func (a monTarget) Registers() (monitor.Registers, error) {
	t := a.t
	if t.gone.Load() {
		return monitor.Registers{}, ErrGone
	}
	buf := make([]byte, t.desc.Size())
	if err := t.readRegisters(t.dbgThread(), buf); err != nil {
		return monitor.Registers{}, err
	}
	u64 := func(name string) uint64 {
		i := t.desc.Lookup(name)
		if i < 0 {
			return 0
		}
		r := &t.desc.Registers[i]
		var v uint64
		for k := min(r.Size(), 8) - 1; k >= 0; k-- {
			v = v<<8 | uint64(buf[r.Offset+k])
		}
		return v
	}
	var r monitor.Registers
	for i, n := range gprNames {
		r.GPR[i] = u64(n)
	}
	r.RIP, r.RFLAGS = u64("rip"), u64("eflags")
	r.HasXMM = true
	for i := range r.XMM {
		j := t.desc.Lookup(fmt.Sprintf("xmm%d", i))
		if j < 0 || t.desc.Registers[j].Size() != 16 {
			r.HasXMM = false
			continue
		}
		o := t.desc.Registers[j].Offset
		for k := 7; k >= 0; k-- {
			r.XMM[i].Lo = r.XMM[i].Lo<<8 | uint64(buf[o+k])
			r.XMM[i].Hi = r.XMM[i].Hi<<8 | uint64(buf[o+8+k])
		}
	}
	return r, nil
}

func (a monTarget) ReadMemory(addr uint64, p []byte) (int, error) {
	if err := a.t.selectThread(a.t.dbgThread()); err != nil {
		return 0, err
	}
	return a.t.readMemory(addr, p)
}

func (a monTarget) Modules() []monitor.Module {
	d := a.t.discover(0, true)
	out := make([]monitor.Module, len(d.mods))
	for i, m := range d.mods {
		out[i] = monitor.Module{Name: m.Name, Path: m.Path, Base: m.Base, Size: m.Size}
		if um := a.t.userModule(m.Base); um != nil && um.Path == m.Path {
			out[i].Format = um.Format
		}
	}
	return out
}

func (a monTarget) TEB() (uint64, error) {
	d := a.t.discover(0, false)
	return d.teb, d.tebErr
}

func (a monTarget) ModuleFile(m monitor.Module) ([]byte, error) {
	if um := a.t.userModule(m.Base); um != nil && um.Path == m.Path {
		return um.data, nil
	}
	if a.t.mode == ModeUser {
		return a.t.hostFile(m) // a Linux program's ELF files (usermods.go)
	}
	return nil, fmt.Errorf("%s: no file (only --module files are read from the host)", m.Name)
}

// discoveryReport is "monitor discovery": how the modules were found.
func (t *Target) discoveryReport(out io.Writer) {
	d := t.discover(0, true)
	fmt.Fprintf(out, "thread %d: modules from %s\n", d.tid, d.source)
	if d.tebErr != nil {
		fmt.Fprintf(out, "TEB: %v\n", d.tebErr)
	} else {
		fmt.Fprintf(out, "TEB: %#x\n", d.teb)
	}
	for _, m := range d.mods {
		fmt.Fprintf(out, "  %#016x %#-10x %s\n", m.Base, m.Size, m.Name)
	}
	for _, p := range d.probs {
		fmt.Fprintf(out, "problem: %s\n", p)
	}
}
