package guest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

func putU64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// Sizes of the structures as this userland allocates them (their
// offsets are package process's).
const (
	tebSize = 0x2000 // two pages
	rppSize = 0x400
)

// Fixed identities of the one process and thread.
const (
	guestPID = 0x1a2c
	guestTID = 0x1a30
)

// writeUnicodeString allocates the UTF-16 buffer on the heap and writes a
// UNICODE_STRING {Length, MaximumLength, Buffer} at addr.
func (p *Process) writeUnicodeString(addr uint64, s string) (uint64, error) {
	b := process.UTF16Bytes(s, true)
	buf, err := p.heap.allocBytes(b)
	if err != nil {
		return 0, err
	}
	return buf, p.writeUnicodeStringAt(addr, buf, len(b)-2, len(b))
}

func (p *Process) writeUnicodeStringAt(addr, buf uint64, length, max int) error {
	var us [16]byte
	binary.LittleEndian.PutUint16(us[0:], uint16(length))
	binary.LittleEndian.PutUint16(us[2:], uint16(max))
	binary.LittleEndian.PutUint64(us[8:], buf)
	return p.mem.Write(addr, us[:])
}

// setupProcess creates the thread stack, TEB, PEB, loader data, process
// parameters and TLS, runs the synthesized DLLs' data initializers and sets
// the initial registers.
func (p *Process) setupProcess() error {
	// The stack is the image's SizeOfStackReserve (at least 1 MiB, at most
	// 256 MiB), all committed: no guard-page growth to emulate.
	size := uint64(stackSize)
	if r := p.exe.pp.File.SizeOfStackReserve; r > size {
		size = min(process.PageUp(r), 256<<20)
	}
	sb, err := p.as.findFree(size, stackHint, 0x10000, process.UserLimit)
	if err != nil {
		return err
	}
	if _, err := p.as.mapRange(sb, size, arch.PermRW, "stack"); err != nil {
		return err
	}
	p.stackLimit, p.stackBase = sb, sb+size

	pb, err := p.as.findFree(process.PageSize+tebSize, tebHint, 0x10000, process.UserLimit)
	if err != nil {
		return err
	}
	if _, err := p.as.mapRange(pb, process.PageSize, arch.PermRW, "PEB"); err != nil {
		return err
	}
	if _, err := p.as.mapRange(pb+process.PageSize, tebSize, arch.PermRW, "TEB"); err != nil {
		return err
	}
	p.peb, p.teb = pb, pb+process.PageSize

	// The first heap block makes the heap exist; its arena base is the
	// process heap handle.
	if _, err := p.heap.alloc(16, true); err != nil {
		return err
	}
	heapHandle := p.heap.arenas[0].base

	p.ldrData, err = p.heap.alloc(process.LdrDataSize, true)
	if err != nil {
		return err
	}
	w := &errWriter{p: p}
	w.u32(p.ldrData+process.LdrLength, process.LdrDataSize)
	w.u8(p.ldrData+process.LdrInitialized, 1)
	for _, h := range []uint64{process.LdrInLoadOrder, process.LdrInMemoryOrder, process.LdrInInitOrder} {
		w.u64(p.ldrData+h, p.ldrData+h)
		w.u64(p.ldrData+h+8, p.ldrData+h)
	}
	if w.err != nil {
		return w.err
	}
	for _, m := range p.modules {
		if err := p.linkModule(m, false); err != nil {
			return err
		}
	}
	for _, m := range p.initOrder {
		if err := p.linkInitOrder(m); err != nil {
			return err
		}
	}

	if err := p.setupParams(); err != nil {
		return err
	}

	// TEB
	tb := process.ThreadBlock{TEB: p.teb, PEB: p.peb, StackBase: p.stackBase, StackLimit: p.stackLimit,
		DeallocationStack: p.stackLimit, ProcessID: guestPID, ThreadID: guestTID}
	for _, f := range tb.Fields() {
		w.u64(p.teb+f[0], f[1])
	}
	// PEB
	w.u64(p.peb+process.PEBImageBase, p.exe.Base)
	w.u64(p.peb+process.PEBLdr, p.ldrData)
	w.u64(p.peb+process.PEBProcessParameters, p.params)
	w.u64(p.peb+process.PEBProcessHeap, heapHandle)
	w.u32(p.peb+process.PEBNumberOfProcessors, 1)
	w.u32(p.peb+process.PEBOSMajorVersion, 10)
	w.u32(p.peb+process.PEBOSMinorVersion, 0)
	w.u16(p.peb+process.PEBOSBuildNumber, 19045)
	w.u32(p.peb+process.PEBOSPlatformID, 2)
	if w.err != nil {
		return w.err
	}
	p.win32.processHeap = heapHandle

	// Implicit TLS of the statically loaded images.
	tlsArr, err := p.heap.alloc(8*maxTLSModules, true)
	if err != nil {
		return err
	}
	if err := p.mem.WriteU64(p.teb+process.TEBTLSPointer, tlsArr); err != nil {
		return err
	}
	for _, m := range p.modules {
		if err := p.allocTLS(m); err != nil {
			return err
		}
	}

	for _, m := range p.modules {
		if m.kind != nil && m.kind.init != nil {
			if err := m.kind.init(p, m); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
	}
	p.ready = true

	// Registers: RIP = ntdll!LdrInitializeThunk, which runs DllMain and TLS
	// callbacks as guest code and then enters RtlUserThreadStart.
	ntdll := p.findModule("ntdll.dll")
	p.startPC = ntdll.Base + uint64(ntdll.synth.stubRVA["LdrInitializeThunk"])
	sp := p.stackBase - 8 // [sp] = 0: no return address, the walk ends
	if err := p.mem.WriteU64(sp, 0); err != nil {
		return err
	}
	for _, r := range []struct {
		r arch.Reg
		v uint64
	}{{arch.RSP, sp}, {arch.RIP, p.startPC}, {arch.RCX, 0}, {arch.RDX, 0}, {arch.GSBase, p.teb}, {arch.RFLAGS, 0x202}} {
		if err := p.m.SetReg(r.r, r.v); err != nil {
			return fmt.Errorf("set %s: %w", r.r, err)
		}
	}
	return nil
}

const maxTLSModules = 64

// errWriter is a sticky-error writer for filling structures.
type errWriter struct {
	p   *Process
	err error
}

func (w *errWriter) u64(a, v uint64) {
	if w.err == nil {
		w.err = w.p.mem.WriteU64(a, v)
	}
}
func (w *errWriter) u32(a uint64, v uint32) {
	if w.err == nil {
		w.err = w.p.mem.WriteU32(a, v)
	}
}
func (w *errWriter) u16(a uint64, v uint16) {
	if w.err == nil {
		w.err = w.p.mem.WriteU16(a, v)
	}
}
func (w *errWriter) u8(a uint64, v byte) {
	if w.err == nil {
		w.err = w.p.mem.Write(a, []byte{v})
	}
}

// listInsertTail links entry before head (at the tail of the list).
func (p *Process) listInsertTail(head, entry uint64) error {
	blink, err := p.mem.ReadU64(head + 8)
	if err != nil {
		return err
	}
	w := &errWriter{p: p}
	w.u64(entry, head)
	w.u64(entry+8, blink)
	w.u64(blink, entry)
	w.u64(head+8, entry)
	return w.err
}

// linkModule creates the LDR_DATA_TABLE_ENTRY of m and links it in load and
// memory order (and initialization order when init is set).
func (p *Process) linkModule(m *module, init bool) error {
	e, err := p.heap.alloc(process.LTESize, true)
	if err != nil {
		return err
	}
	m.ldr = e
	full := process.UTF16Bytes(m.Path, true)
	buf, err := p.heap.allocBytes(full)
	if err != nil {
		return err
	}
	baseOff := 0
	if i := strings.LastIndexByte(m.Path, '\\'); i >= 0 {
		baseOff = 2 * len([]rune(m.Path[:i+1])) // ASCII paths: units == runes
	}
	w := &errWriter{p: p}
	w.u64(e+process.LTEDllBase, m.Base)
	w.u64(e+process.LTEEntryPoint, m.entry)
	w.u32(e+process.LTESizeOfImage, uint32(m.Size))
	if w.err != nil {
		return w.err
	}
	if err := p.writeUnicodeStringAt(e+process.LTEFullDllName, buf, len(full)-2, len(full)); err != nil {
		return err
	}
	if err := p.writeUnicodeStringAt(e+process.LTEBaseDllName, buf+uint64(baseOff), len(full)-2-baseOff, len(full)-baseOff); err != nil {
		return err
	}
	flags := uint32(0)
	if m.isDLL {
		flags |= 0x4 // LDRP_IMAGE_DLL
	}
	if m.entry != 0 {
		flags |= 0x80000 // LDRP_PROCESS_ATTACH_CALLED once initialized; harmless early
	}
	w.u32(e+process.LTEFlags, flags)
	w.u16(e+process.LTELoadCount, 0xFFFF)
	w.u64(e+process.LTEHashLinks, e+process.LTEHashLinks)
	w.u64(e+process.LTEHashLinks+8, e+process.LTEHashLinks)
	if m.pp != nil {
		w.u32(e+process.LTETimeDateStamp, m.pp.File.TimeDateStamp)
	}
	if w.err != nil {
		return w.err
	}
	if err := p.listInsertTail(p.ldrData+process.LdrInLoadOrder, e+process.LTEInLoadOrderLinks); err != nil {
		return err
	}
	if err := p.listInsertTail(p.ldrData+process.LdrInMemoryOrder, e+process.LTEInMemoryOrderLinks); err != nil {
		return err
	}
	if init {
		return p.linkInitOrder(m)
	}
	return nil
}

func (p *Process) linkInitOrder(m *module) error {
	if m.ldr == 0 {
		return nil
	}
	return p.listInsertTail(p.ldrData+process.LdrInInitOrder, m.ldr+process.LTEInInitOrderLinks)
}

// readTLS reads the TLS directory from the laid-out image (already relocated).
func (p *Process) readTLS(m *module) error {
	dd := m.pp.File.DataDirectory[9]
	if dd.VirtualAddress == 0 {
		return nil
	}
	img := m.img
	if uint64(dd.VirtualAddress)+40 > uint64(len(img)) {
		return fmt.Errorf("%w: TLS directory rva %#x outside the image", ErrCorrupt, dd.VirtualAddress)
	}
	d := img[dd.VirtualAddress:]
	le := binary.LittleEndian
	m.hasTLS = true
	cb := le.Uint64(d[24:])
	if cb == 0 {
		return nil
	}
	for i := 0; i < 64; i++ {
		off := cb - m.Base + 8*uint64(i)
		if cb < m.Base || off+8 > uint64(len(img)) {
			return fmt.Errorf("%w: TLS callback table at %#x outside the image", ErrCorrupt, cb)
		}
		f := le.Uint64(img[off:])
		if f == 0 {
			break
		}
		if f < m.Base || f >= m.Base+m.Size {
			return fmt.Errorf("%w: TLS callback %#x outside the image", ErrCorrupt, f)
		}
		m.tlsCalls = append(m.tlsCalls, f)
	}
	return nil
}

// allocTLS gives m its implicit TLS index and this thread's copy of the
// template.
func (p *Process) allocTLS(m *module) error {
	if !m.hasTLS {
		return nil
	}
	dd := m.pp.File.DataDirectory[9]
	d := make([]byte, 40)
	if err := p.mem.Read(m.Base+uint64(dd.VirtualAddress), d); err != nil {
		return err
	}
	le := binary.LittleEndian
	start, end, idxAddr := le.Uint64(d[0:]), le.Uint64(d[8:]), le.Uint64(d[16:])
	zero := uint64(le.Uint32(d[32:]))
	if end < start || end-start > 1<<24 || zero > 1<<24 {
		return fmt.Errorf("%s: %w: TLS template %#x-%#x", m.Name, ErrCorrupt, start, end)
	}
	if p.win32.nextTLSIndex >= maxTLSModules {
		return fmt.Errorf("%s: too many modules with TLS", m.Name)
	}
	idx := p.win32.nextTLSIndex
	p.win32.nextTLSIndex++
	m.tlsIndex = idx
	tmpl := make([]byte, end-start+zero)
	if err := p.mem.Read(start, tmpl[:end-start]); err != nil {
		return fmt.Errorf("%s: read TLS template: %w", m.Name, err)
	}
	blk, err := p.heap.allocBytes(tmpl)
	if err != nil {
		return err
	}
	arr, err := p.mem.ReadU64(p.teb + process.TEBTLSPointer)
	if err != nil {
		return err
	}
	if err := p.mem.WriteU64(arr+8*uint64(idx), blk); err != nil {
		return err
	}
	if idxAddr != 0 {
		if err := p.mem.WriteU32(idxAddr, uint32(idx)); err != nil {
			return fmt.Errorf("%s: write TLS index: %w", m.Name, err)
		}
	}
	if m.ldr != 0 {
		return p.mem.WriteU16(m.ldr+process.LTETLSIndex, uint16(idx))
	}
	return nil
}

func (p *Process) commandLine() string { return process.CommandLine(p.guestWinPath, p.cfg.Args) }

func (p *Process) environment() []string {
	if p.cfg.Env != nil {
		return p.cfg.Env
	}
	return []string{`PATH=C:\Windows\system32;C:\Windows`, `SystemRoot=C:\Windows`, `TEMP=C:\Windows\Temp`, `TMP=C:\Windows\Temp`, `USERNAME=rspstub`}
}

func (p *Process) setupParams() error {
	pa, err := p.heap.alloc(rppSize, true)
	if err != nil {
		return err
	}
	p.params = pa
	w := &errWriter{p: p}
	w.u32(pa+process.RPPMaximumLength, rppSize)
	w.u32(pa+process.RPPLength, rppSize)
	w.u32(pa+process.RPPFlags, 1) // RTL_USER_PROC_PARAMS_NORMALIZED
	w.u64(pa+process.RPPStandardInput, stdInputHandle)
	w.u64(pa+process.RPPStandardOutput, stdOutputHandle)
	w.u64(pa+process.RPPStandardError, stdErrorHandle)
	if w.err != nil {
		return w.err
	}
	for _, f := range []struct {
		off uint64
		s   string
	}{
		{process.RPPCurrentDirectory, `C:\rspstub\`},
		{process.RPPDllPath, `C:\rspstub;C:\Windows\system32`},
		{process.RPPImagePathName, p.guestWinPath},
		{process.RPPCommandLine, p.commandLine()},
		{process.RPPWindowTitle, p.guestWinPath},
	} {
		if _, err := p.writeUnicodeString(pa+f.off, f.s); err != nil {
			return err
		}
	}
	env := process.EnvironmentBlock(p.environment())
	eb, err := p.heap.allocBytes(env)
	if err != nil {
		return err
	}
	w.u64(pa+process.RPPEnvironment, eb)
	w.u64(pa+process.RPPEnvironmentSize, uint64(len(env)))
	return w.err
}

// ModuleImage returns the bytes a debugger should read for a module: the
// file on disk for real images, the generated image for synthesized DLLs.
// name may be the module name or its guest path; anything else is refused.
func (p *Process) ModuleImage(name string) ([]byte, error) {
	for _, m := range p.modules {
		if !strings.EqualFold(m.Name, name) && !strings.EqualFold(m.Path, name) {
			continue
		}
		if m.synth != nil {
			return append([]byte(nil), m.synth.image...), nil
		}
		return os.ReadFile(m.pp.Path)
	}
	return nil, fmt.Errorf("%s: %w: not a loaded module", filepath.Base(name), os.ErrNotExist)
}
