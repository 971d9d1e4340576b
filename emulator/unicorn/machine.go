package unicorn

/*
#cgo LDFLAGS: -lunicorn
#include <stdlib.h>
#include "machine.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rspstub/rspstub/internal/arch"
)

// PageSize is the granularity of Map, Unmap and Protect.
const PageSize = 0x1000

// ErrClosed is returned by every method of a closed Machine.
var ErrClosed = errors.New("unicorn: machine is closed")

// Error is a libunicorn error code.
type Error struct {
	Code int    // uc_err value
	Op   string // what was being done
}

func (e *Error) Error() string {
	return fmt.Sprintf("unicorn: %s: %s", e.Op, C.GoString(C.uc_strerror(C.uc_err(e.Code))))
}

func ucErr(op string, e C.uc_err) error {
	if e == C.UC_ERR_OK {
		return nil
	}
	return &Error{Code: int(e), Op: op}
}

// Machine is one x86-64 Unicorn instance. Methods other than Interrupt
// must be called from one goroutine at a time.
type Machine struct {
	c *C.rs_machine

	// stopMu orders Interrupt's uc_emu_stop against Close.
	stopMu      sync.Mutex
	running     atomic.Bool
	interrupted atomic.Bool
	gen         uint64 // run number, under stopMu
	closed      bool
	shadow      bool
	pcSync      bool
	twin        bool // the twin engine is open and mirrors the memory map (watch.c)
	quantum     int64
	syscallFn   func() bool  // see SetSyscallHandler
	regions     []hostRegion // mapped memory, sorted (hostmem.go)
	// While a system-call handler runs inside Run: the C hook has read
	// the general registers into c.sys_regs (valid until a register
	// write other than RAX), and a RAX write is left in c.sys_rax for the
	// hook to apply, so the handler makes no cgo call for them.
	inSyscall    bool
	sysRegsValid bool
	// ctxCache is the last ReadContext while ctxValid: nothing ran and no
	// register was written since.
	ctxCache Context
	ctxValid bool
	exact    bool
	scratch  [16]byte // Step's instruction bytes (decoding is done before the next use)
	handle   cgo.Handle
	tbBuf    [faultScanLen]byte // a translated block's bytes, for rsPlanSyncs
	faultBuf [faultScanLen]byte // a block's bytes, for findFaultPC
	notTaken uint64             // scanBlock: the successor the block's branch does not take
	ranToEnd bool               // scanBlock: the registers allow the block to have run to its end
	memLater bool               // scanBlock: a memory instruction after the block's first
}

// New opens a 64-bit x86 machine with no memory mapped.
func New() (*Machine, error) {
	var e C.uc_err
	c := C.rs_new(&e)
	if c == nil {
		return nil, ucErr("open", e)
	}
	m := &Machine{c: c}
	m.handle = cgo.NewHandle(m)
	C.rs_set_handle(c, C.uintptr_t(m.handle))
	if err := m.SetFaultPaging(true); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close releases the machine. Calling it again is harmless.
func (m *Machine) Close() error {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	C.rs_close(m.c)
	m.c = nil
	m.freeHost()
	m.handle.Delete()
	return nil
}

func (m *Machine) check() error {
	if m == nil || m.closed {
		return ErrClosed
	}
	return nil
}

func pageRange(op string, addr, size uint64) error {
	if size == 0 {
		return fmt.Errorf("unicorn: %s %#x: size is zero", op, addr)
	}
	if addr%PageSize != 0 || size%PageSize != 0 {
		return fmt.Errorf("unicorn: %s %#x+%#x: address and size must be multiples of %#x", op, addr, size, PageSize)
	}
	if addr+size < addr {
		return fmt.Errorf("unicorn: %s %#x+%#x: range wraps around", op, addr, size)
	}
	return nil
}

func ucPerm(p arch.Perm) C.uint32_t {
	var u C.uint32_t
	if p&arch.PermRead != 0 {
		u |= C.UC_PROT_READ
	}
	if p&arch.PermWrite != 0 {
		u |= C.UC_PROT_WRITE
	}
	if p&arch.PermExec != 0 {
		u |= C.UC_PROT_EXEC
	}
	return u
}

func archPerm(u C.uint32_t) arch.Perm {
	var p arch.Perm
	if u&C.UC_PROT_READ != 0 {
		p |= arch.PermRead
	}
	if u&C.UC_PROT_WRITE != 0 {
		p |= arch.PermWrite
	}
	if u&C.UC_PROT_EXEC != 0 {
		p |= arch.PermExec
	}
	return p
}

// reserved is the non-canonical range the machine uses itself (the PC-sync
// hook, the escape page of translator aborts and the page New runs one
// instruction on, machine.c); it is never mapped.
const reservedStart, reservedEnd = 0x8000000000000000, 0x8000000000003000

// Map maps zeroed memory at [addr, addr+size) with perm.
func (m *Machine) Map(addr, size uint64, perm arch.Perm) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := pageRange("map", addr, size); err != nil {
		return err
	}
	if addr < reservedEnd && addr+size > reservedStart {
		return fmt.Errorf("unicorn: map %#x+%#x: [%#x, %#x) is reserved", addr, size, uint64(reservedStart), uint64(reservedEnd))
	}
	if addr < C.RS_PT_BASE+C.RS_PT_SIZE && addr+size > C.RS_PT_BASE {
		return fmt.Errorf("unicorn: map %#x+%#x: [%#x, %#x) is reserved for the watchpoints' page tables",
			addr, size, uint64(C.RS_PT_BASE), uint64(C.RS_PT_BASE+C.RS_PT_SIZE))
	}
	if err := m.mapHost(addr, size, perm); err != nil {
		return err
	}
	return m.mapChanged()
}

// Unmap removes [addr, addr+size) from the address space.
func (m *Machine) Unmap(addr, size uint64) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := pageRange("unmap", addr, size); err != nil {
		return err
	}
	m.dropCode(addr, addr+size)
	if e := C.uc_mem_unmap(m.c.uc, C.uint64_t(addr), C.size_t(size)); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("unmap %#x+%#x", addr, size), e)
	}
	if e := C.rs_twin_unmap(m.c, C.uint64_t(addr), C.uint64_t(size)); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("twin unmap %#x+%#x", addr, size), e)
	}
	m.unmapHost(addr, addr+size)
	return m.mapChanged()
}

// Protect changes the guest permissions of [addr, addr+size).
func (m *Machine) Protect(addr, size uint64, perm arch.Perm) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := pageRange("protect", addr, size); err != nil {
		return err
	}
	if e := C.uc_mem_protect(m.c.uc, C.uint64_t(addr), C.size_t(size), ucPerm(perm)); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("protect %#x+%#x", addr, size), e)
	}
	if e := C.rs_twin_protect(m.c, C.uint64_t(addr), C.uint64_t(size), ucPerm(perm)); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("twin protect %#x+%#x", addr, size), e)
	}
	// The tables first: protectHost may drop translations, which takes a
	// fetch through them.
	err := m.mapChanged()
	m.protectHost(addr, addr+size, perm)
	return err
}

// Region is one mapped range.
type Region struct {
	Start, Size uint64
	Perm        arch.Perm
}

// Regions returns the mapped regions sorted by Start (as libunicorn
// keeps them: a Protect splits a region, nothing merges them).
func (m *Machine) Regions() []Region {
	if m.check() != nil || len(m.regions) == 0 {
		return nil
	}
	out := make([]Region, len(m.regions))
	for i, r := range m.regions {
		out[i] = Region{Start: r.start, Size: r.end - r.start, Perm: r.perm}
	}
	return out
}

// ReadMemory reads guest memory, ignoring guest protections. A short
// count with a nil error means the rest is not mapped; n == 0 comes with
// an error.
func (m *Machine) ReadMemory(addr uint64, p []byte) (int, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	return m.copyMem(addr, p, false)
}

// WriteMemory writes guest memory the way a debugger does: guest
// protections are ignored. Short counts mean what they mean for
// ReadMemory.
func (m *Machine) WriteMemory(addr uint64, p []byte) (int, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	return m.copyMem(addr, p, true)
}

var regIDs = [arch.NumRegs]C.int{
	C.UC_X86_REG_RAX, C.UC_X86_REG_RCX, C.UC_X86_REG_RDX, C.UC_X86_REG_RBX,
	C.UC_X86_REG_RSP, C.UC_X86_REG_RBP, C.UC_X86_REG_RSI, C.UC_X86_REG_RDI,
	C.UC_X86_REG_R8, C.UC_X86_REG_R9, C.UC_X86_REG_R10, C.UC_X86_REG_R11,
	C.UC_X86_REG_R12, C.UC_X86_REG_R13, C.UC_X86_REG_R14, C.UC_X86_REG_R15,
	C.UC_X86_REG_RIP, C.UC_X86_REG_RFLAGS,
	C.UC_X86_REG_CS, C.UC_X86_REG_SS, C.UC_X86_REG_DS, C.UC_X86_REG_ES, C.UC_X86_REG_FS, C.UC_X86_REG_GS,
	C.UC_X86_REG_FS_BASE, C.UC_X86_REG_GS_BASE,
}

// Reg reads one register. Segment selectors are zero-extended.
func (m *Machine) Reg(r arch.Reg) (uint64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	if r >= arch.NumRegs {
		return 0, fmt.Errorf("unicorn: no register %d", r)
	}
	if m.inSyscall {
		if r == arch.RAX && m.c.sys_rax_set != 0 {
			return uint64(m.c.sys_rax), nil
		}
		if m.sysRegsValid && r <= arch.RFLAGS {
			return m.sysReg(r), nil
		}
	}
	res := C.rs_reg_get(m.c, regIDs[r])
	if res.err != C.UC_ERR_OK {
		return 0, ucErr("read "+r.String(), res.err)
	}
	v := res.v
	if r >= arch.CS && r <= arch.GS {
		v &= 0xffff
	}
	return uint64(v), nil
}

// SetReg writes one register. Loading a segment selector fails if the
// guest's descriptor tables do not allow it.
func (m *Machine) SetReg(r arch.Reg, v uint64) error {
	if err := m.check(); err != nil {
		return err
	}
	if r >= arch.NumRegs {
		return fmt.Errorf("unicorn: no register %d", r)
	}
	m.ctxValid = false
	if m.inSyscall {
		if r == arch.RAX {
			m.c.sys_rax, m.c.sys_rax_set = C.uint64_t(v), 1
			return nil
		}
		m.sysFlush()
	}
	if e := C.rs_reg_write(m.c, regIDs[r], C.uint64_t(v)); e != C.UC_ERR_OK {
		return ucErr("write "+r.String(), e)
	}
	return nil
}

// Context is every register GDB's amd64 description has (arch.Context);
// its layout mirrors rs_context in machine.h.
type Context = arch.Context

// The layouts must agree; this fails to compile if the sizes differ.
var _ [unsafe.Sizeof(Context{}) - unsafe.Sizeof(C.rs_context{})]struct{}
var _ [unsafe.Sizeof(C.rs_context{}) - unsafe.Sizeof(Context{})]struct{}

// ReadContext fills c with all registers in one cgo call, or from a
// copy kept since the last one while the machine has neither run nor had
// a register written: a debugger reads registers many times at one stop
// (`p` after `p`), and a cgo call costs more than the copy.
func (m *Machine) ReadContext(c *Context) error {
	if err := m.check(); err != nil {
		return err
	}
	if m.ctxValid {
		*c = m.ctxCache
		return nil
	}
	m.sysFlush()
	if err := ucErr("read context", C.rs_read_context(m.c, (*C.rs_context)(unsafe.Pointer(c)))); err != nil {
		return err
	}
	// Never while the guest runs (a system-call handler reads the
	// registers of a moment).
	if !m.running.Load() && !m.inSyscall {
		m.ctxCache, m.ctxValid = *c, true
	}
	return nil
}

// ReadGPRs reads only the general registers, RIP and RFLAGS into c
// (the cheap read a system call's arguments need); c's other fields keep
// their values.
func (m *Machine) ReadGPRs(c *Context) error {
	if err := m.check(); err != nil {
		return err
	}
	if m.inSyscall && m.sysRegsValid {
		c.GPR = *(*[16]uint64)(unsafe.Pointer(&m.c.sys_regs.gpr))
		c.GPR[arch.RAX], _ = m.Reg(arch.RAX)
		c.RIP, c.RFLAGS = uint64(m.c.sys_regs.rip), uint64(m.c.sys_regs.rflags)
		return nil
	}
	m.sysFlush()
	return ucErr("read registers", C.rs_read_gprs(m.c, (*C.rs_context)(unsafe.Pointer(c))))
}

// sysReg is general register r (RAX..R15, RIP, RFLAGS) as the syscall
// hook read it.
func (m *Machine) sysReg(r arch.Reg) uint64 {
	switch r {
	case arch.RIP:
		return uint64(m.c.sys_regs.rip)
	case arch.RFLAGS:
		return uint64(m.c.sys_regs.rflags)
	}
	return uint64(m.c.sys_regs.gpr[r])
}

// sysFlush ends the registers' shortcut inside a system-call handler
// before a register access that needs the machine itself: a RAX write
// left for the hook is applied now.
func (m *Machine) sysFlush() {
	if !m.inSyscall {
		return
	}
	if m.c.sys_rax_set != 0 {
		m.ctxValid = false
		C.rs_reg_write(m.c, C.UC_X86_REG_RAX, m.c.sys_rax)
		m.c.sys_rax_set = 0
	}
	m.sysRegsValid = false
}

// WriteContext sets all registers from c in one cgo call. Segment
// selectors are loaded only when they differ from the current ones.
func (m *Machine) WriteContext(c *Context) error {
	if err := m.check(); err != nil {
		return err
	}
	m.ctxValid = false
	m.sysFlush()
	return ucErr("write context", C.rs_write_context(m.c, (*C.rs_context)(unsafe.Pointer(c))))
}

// HasAVX reports whether YMM registers are emulated. libunicorn 2.0.1 is
// QEMU 5 TCG, whose default x86-64 CPU has no AVX: always false.
func (m *Machine) HasAVX() bool { return false }

// ReadMSR reads a model-specific register.
func (m *Machine) ReadMSR(id uint32) (uint64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	var v C.uint64_t
	if err := ucErr(fmt.Sprintf("read msr %#x", id), C.rs_read_msr(m.c, C.uint32_t(id), &v)); err != nil {
		return 0, err
	}
	return uint64(v), nil
}

// WriteMSR writes a model-specific register.
func (m *Machine) WriteMSR(id uint32, v uint64) error {
	if err := m.check(); err != nil {
		return err
	}
	m.ctxValid = false
	return ucErr(fmt.Sprintf("write msr %#x", id), C.rs_write_msr(m.c, C.uint32_t(id), C.uint64_t(v)))
}

// LoadSelectors loads segment selectors (cs, ss, ds, es, fs, gs) through
// a global descriptor table that exists only for the load. libunicorn
// 2.0.1 takes cs, ss, ds and es in 64-bit mode without looking at a
// table, but refuses fs and gs (UC_ERR_EXCEPTION) unless GDTR points at
// readable descriptors. gdt (8 bytes a descriptor) is mapped at scratch,
// a free page, for the load and unmapped after it, and GDTR is put back
// as it was: loaded selectors keep their descriptors cached, which is all
// 64-bit code uses, and a later load of a different selector fails as it
// did without a table. The FS and GS bases, which a selector load resets,
// are restored, and the state the machine returns to after a CPU
// exception (see rs_run) is taken again with the selectors in it.
func (m *Machine) LoadSelectors(sel [6]uint16, gdt []byte, scratch uint64) error {
	if err := m.check(); err != nil {
		return err
	}
	if len(gdt) == 0 || len(gdt) > 0x10000 {
		return fmt.Errorf("unicorn: descriptor table of %d bytes", len(gdt))
	}
	m.ctxValid = false
	fsBase, err := m.Reg(arch.FSBase)
	if err != nil {
		return err
	}
	gsBase, err := m.Reg(arch.GSBase)
	if err != nil {
		return err
	}
	size := (uint64(len(gdt)) + 0xfff) &^ 0xfff
	if err := m.Map(scratch, size, arch.PermRead); err != nil {
		return fmt.Errorf("unicorn: map the descriptor table: %w", err)
	}
	defer m.Unmap(scratch, size)
	if _, err := m.WriteMemory(scratch, gdt); err != nil {
		return err
	}
	var oldBase C.uint64_t
	var oldLimit C.uint32_t
	if e := C.rs_get_gdtr(m.c, &oldBase, &oldLimit); e != C.UC_ERR_OK {
		return ucErr("read gdtr", e)
	}
	if e := C.rs_set_gdtr(m.c, C.uint64_t(scratch), C.uint32_t(len(gdt)-1)); e != C.UC_ERR_OK {
		return ucErr("write gdtr", e)
	}
	defer C.rs_set_gdtr(m.c, oldBase, oldLimit) // on every path (again below, before the save)
	for i, r := range [6]arch.Reg{arch.CS, arch.SS, arch.DS, arch.ES, arch.FS, arch.GS} {
		if err := m.SetReg(r, uint64(sel[i])); err != nil {
			return err
		}
	}
	if err := m.SetReg(arch.FSBase, fsBase); err != nil {
		return err
	}
	if err := m.SetReg(arch.GSBase, gsBase); err != nil {
		return err
	}
	// The state the machine returns to after a CPU exception keeps the
	// selectors (WriteContext could not load fs and gs into a state
	// without them: every register then read 0 after a #UD).
	C.rs_set_gdtr(m.c, oldBase, oldLimit)
	return ucErr("save the clean state", C.rs_save_clean(m.c))
}
