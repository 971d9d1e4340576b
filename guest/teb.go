package guest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/internal/arch"
)

func putU64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// Offsets of the x64 Windows structures the guest and debuggers read.
// Checked against the mingw-w64 headers (winternl.h, winnt.h) by
// TestStructLayoutAgainstMinGWHeaders.
const (
	// NT_TIB / TEB
	tebExceptionList      = 0x00
	tebStackBase          = 0x08
	tebStackLimit         = 0x10
	tebSelf               = 0x30
	tebEnvironmentPointer = 0x38
	tebClientID           = 0x40 // UniqueProcess; UniqueThread at +8
	tebTLSPointer         = 0x58
	tebPEB                = 0x60
	tebLastError          = 0x68
	tebTLSSlots           = 0x1480 // 64 slots
	tebDeallocationStack  = 0x1478
	tebTLSExpansion       = 0x1780
	tebSize               = 0x2000

	// PEB
	pebBeingDebugged      = 0x02
	pebImageBase          = 0x10
	pebLdr                = 0x18
	pebProcessParameters  = 0x20
	pebProcessHeap        = 0x30
	pebNumberOfProcessors = 0xB8
	pebOSMajorVersion     = 0x118
	pebOSMinorVersion     = 0x11C
	pebOSBuildNumber      = 0x120
	pebOSPlatformID       = 0x124
	pebSessionID          = 0x2C0

	// PEB_LDR_DATA
	ldrLength        = 0x00
	ldrInitialized   = 0x04
	ldrInLoadOrder   = 0x10
	ldrInMemoryOrder = 0x20
	ldrInInitOrder   = 0x30
	ldrDataSize      = 0x58

	// LDR_DATA_TABLE_ENTRY
	lteInLoadOrderLinks   = 0x00
	lteInMemoryOrderLinks = 0x10
	lteInInitOrderLinks   = 0x20
	lteDllBase            = 0x30
	lteEntryPoint         = 0x38
	lteSizeOfImage        = 0x40
	lteFullDllName        = 0x48
	lteBaseDllName        = 0x58
	lteFlags              = 0x68
	lteLoadCount          = 0x6C
	lteTLSIndex           = 0x6E
	lteHashLinks          = 0x70
	lteTimeDateStamp      = 0x80
	lteSize               = 0x120

	// RTL_USER_PROCESS_PARAMETERS
	rppMaximumLength    = 0x00
	rppLength           = 0x04
	rppFlags            = 0x08
	rppStandardInput    = 0x20
	rppStandardOutput   = 0x28
	rppStandardError    = 0x30
	rppCurrentDirectory = 0x38
	rppDllPath          = 0x50
	rppImagePathName    = 0x60
	rppCommandLine      = 0x70
	rppEnvironment      = 0x80
	rppWindowTitle      = 0xB0
	rppEnvironmentSize  = 0x3F0
	rppSize             = 0x400
)

// Fixed identities of the one process and thread.
const (
	guestPID = 0x1a2c
	guestTID = 0x1a30
)

// writeUnicodeString allocates the UTF-16 buffer on the heap and writes a
// UNICODE_STRING {Length, MaximumLength, Buffer} at addr.
func (p *Process) writeUnicodeString(addr uint64, s string) (uint64, error) {
	b := utf16Bytes(s, true)
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
	return p.write(addr, us[:])
}

// setupProcess creates the thread stack, TEB, PEB, loader data, process
// parameters and TLS, runs the synthesized DLLs' data initializers and sets
// the initial registers.
func (p *Process) setupProcess() error {
	// The stack is the image's SizeOfStackReserve (at least 1 MiB, at most
	// 256 MiB), all committed: no guard-page growth to emulate.
	size := uint64(stackSize)
	if r := p.exe.pp.File.SizeOfStackReserve; r > size {
		size = min(pageUp(r), 256<<20)
	}
	sb, err := p.as.findFree(size, stackHint, 0x10000, userLimit)
	if err != nil {
		return err
	}
	if _, err := p.as.mapRange(sb, size, arch.PermRW, "stack"); err != nil {
		return err
	}
	p.stackLimit, p.stackBase = sb, sb+size

	pb, err := p.as.findFree(pageSize+tebSize, tebHint, 0x10000, userLimit)
	if err != nil {
		return err
	}
	if _, err := p.as.mapRange(pb, pageSize, arch.PermRW, "PEB"); err != nil {
		return err
	}
	if _, err := p.as.mapRange(pb+pageSize, tebSize, arch.PermRW, "TEB"); err != nil {
		return err
	}
	p.peb, p.teb = pb, pb+pageSize

	// The first heap block makes the heap exist; its arena base is the
	// process heap handle.
	if _, err := p.heap.alloc(16, true); err != nil {
		return err
	}
	heapHandle := p.heap.arenas[0].base

	p.ldrData, err = p.heap.alloc(ldrDataSize, true)
	if err != nil {
		return err
	}
	w := &errWriter{p: p}
	w.u32(p.ldrData+ldrLength, ldrDataSize)
	w.u8(p.ldrData+ldrInitialized, 1)
	for _, h := range []uint64{ldrInLoadOrder, ldrInMemoryOrder, ldrInInitOrder} {
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
	w.u64(p.teb+tebStackBase, p.stackBase)
	w.u64(p.teb+tebStackLimit, p.stackLimit)
	w.u64(p.teb+tebSelf, p.teb)
	w.u64(p.teb+tebClientID, guestPID)
	w.u64(p.teb+tebClientID+8, guestTID)
	w.u64(p.teb+tebPEB, p.peb)
	w.u64(p.teb+tebDeallocationStack, p.stackLimit)
	// PEB
	w.u64(p.peb+pebImageBase, p.exe.Base)
	w.u64(p.peb+pebLdr, p.ldrData)
	w.u64(p.peb+pebProcessParameters, p.params)
	w.u64(p.peb+pebProcessHeap, heapHandle)
	w.u32(p.peb+pebNumberOfProcessors, 1)
	w.u32(p.peb+pebOSMajorVersion, 10)
	w.u32(p.peb+pebOSMinorVersion, 0)
	w.u16(p.peb+pebOSBuildNumber, 19045)
	w.u32(p.peb+pebOSPlatformID, 2)
	if w.err != nil {
		return w.err
	}
	p.win32.processHeap = heapHandle

	// Implicit TLS of the statically loaded images.
	tlsArr, err := p.heap.alloc(8*maxTLSModules, true)
	if err != nil {
		return err
	}
	if err := p.writeU64(p.teb+tebTLSPointer, tlsArr); err != nil {
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
	if err := p.writeU64(sp, 0); err != nil {
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
		w.err = w.p.writeU64(a, v)
	}
}
func (w *errWriter) u32(a uint64, v uint32) {
	if w.err == nil {
		w.err = w.p.writeU32(a, v)
	}
}
func (w *errWriter) u16(a uint64, v uint16) {
	if w.err == nil {
		w.err = w.p.writeU16(a, v)
	}
}
func (w *errWriter) u8(a uint64, v byte) {
	if w.err == nil {
		w.err = w.p.write(a, []byte{v})
	}
}

// listInsertTail links entry before head (at the tail of the list).
func (p *Process) listInsertTail(head, entry uint64) error {
	blink, err := p.readU64(head + 8)
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
	e, err := p.heap.alloc(lteSize, true)
	if err != nil {
		return err
	}
	m.ldr = e
	full := utf16Bytes(m.Path, true)
	buf, err := p.heap.allocBytes(full)
	if err != nil {
		return err
	}
	baseOff := 0
	if i := strings.LastIndexByte(m.Path, '\\'); i >= 0 {
		baseOff = 2 * len([]rune(m.Path[:i+1])) // ASCII paths: units == runes
	}
	w := &errWriter{p: p}
	w.u64(e+lteDllBase, m.Base)
	w.u64(e+lteEntryPoint, m.entry)
	w.u32(e+lteSizeOfImage, uint32(m.Size))
	if w.err != nil {
		return w.err
	}
	if err := p.writeUnicodeStringAt(e+lteFullDllName, buf, len(full)-2, len(full)); err != nil {
		return err
	}
	if err := p.writeUnicodeStringAt(e+lteBaseDllName, buf+uint64(baseOff), len(full)-2-baseOff, len(full)-baseOff); err != nil {
		return err
	}
	flags := uint32(0)
	if m.isDLL {
		flags |= 0x4 // LDRP_IMAGE_DLL
	}
	if m.entry != 0 {
		flags |= 0x80000 // LDRP_PROCESS_ATTACH_CALLED once initialized; harmless early
	}
	w.u32(e+lteFlags, flags)
	w.u16(e+lteLoadCount, 0xFFFF)
	w.u64(e+lteHashLinks, e+lteHashLinks)
	w.u64(e+lteHashLinks+8, e+lteHashLinks)
	if m.pp != nil {
		w.u32(e+lteTimeDateStamp, m.pp.File.TimeDateStamp)
	}
	if w.err != nil {
		return w.err
	}
	if err := p.listInsertTail(p.ldrData+ldrInLoadOrder, e+lteInLoadOrderLinks); err != nil {
		return err
	}
	if err := p.listInsertTail(p.ldrData+ldrInMemoryOrder, e+lteInMemoryOrderLinks); err != nil {
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
	return p.listInsertTail(p.ldrData+ldrInInitOrder, m.ldr+lteInInitOrderLinks)
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
	if err := p.read(m.Base+uint64(dd.VirtualAddress), d); err != nil {
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
	if err := p.read(start, tmpl[:end-start]); err != nil {
		return fmt.Errorf("%s: read TLS template: %w", m.Name, err)
	}
	blk, err := p.heap.allocBytes(tmpl)
	if err != nil {
		return err
	}
	arr, err := p.readU64(p.teb + tebTLSPointer)
	if err != nil {
		return err
	}
	if err := p.writeU64(arr+8*uint64(idx), blk); err != nil {
		return err
	}
	if idxAddr != 0 {
		if err := p.writeU32(idxAddr, uint32(idx)); err != nil {
			return fmt.Errorf("%s: write TLS index: %w", m.Name, err)
		}
	}
	if m.ldr != 0 {
		return p.writeU16(m.ldr+lteTLSIndex, uint16(idx))
	}
	return nil
}

// quoteArg quotes one argument the way CommandLineToArgvW and the CRT
// parse it back.
func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n\v\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	bs := 0
	for _, r := range a {
		switch r {
		case '\\':
			bs++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*bs+1))
			b.WriteByte('"')
		default:
			b.WriteString(strings.Repeat(`\`, bs))
			b.WriteRune(r)
		}
		bs = 0
	}
	b.WriteString(strings.Repeat(`\`, 2*bs))
	b.WriteByte('"')
	return b.String()
}

func (p *Process) commandLine() string {
	parts := []string{quoteArg(p.guestWinPath)}
	for _, a := range p.cfg.Args {
		parts = append(parts, quoteArg(a))
	}
	return strings.Join(parts, " ")
}

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
	w.u32(pa+rppMaximumLength, rppSize)
	w.u32(pa+rppLength, rppSize)
	w.u32(pa+rppFlags, 1) // RTL_USER_PROC_PARAMS_NORMALIZED
	w.u64(pa+rppStandardInput, stdInputHandle)
	w.u64(pa+rppStandardOutput, stdOutputHandle)
	w.u64(pa+rppStandardError, stdErrorHandle)
	if w.err != nil {
		return w.err
	}
	for _, f := range []struct {
		off uint64
		s   string
	}{
		{rppCurrentDirectory, `C:\rspstub\`},
		{rppDllPath, `C:\rspstub;C:\Windows\system32`},
		{rppImagePathName, p.guestWinPath},
		{rppCommandLine, p.commandLine()},
		{rppWindowTitle, p.guestWinPath},
	} {
		if _, err := p.writeUnicodeString(pa+f.off, f.s); err != nil {
			return err
		}
	}
	var env []byte
	for _, e := range p.environment() {
		env = append(env, utf16Bytes(e, true)...)
	}
	env = append(env, 0, 0)
	if len(env) < 4 {
		env = append(env, 0, 0)
	}
	eb, err := p.heap.allocBytes(env)
	if err != nil {
		return err
	}
	w.u64(pa+rppEnvironment, eb)
	w.u64(pa+rppEnvironmentSize, uint64(len(env)))
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
