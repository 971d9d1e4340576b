package wine

import (
	"errors"

	"github.com/rspstub/rspstub/guest/process"
)

// Virtual memory system calls.

func (p *Process) isSelf(h uint64) bool { return h == process.CurrentProcessHandle }

// NtAllocateVirtualMemory(process, *base, zero_bits, *size, type, prot)
func ntAllocateVirtualMemory(p *Process, c *call) ntstatus {
	return p.allocateVM(c, c.arg(0), c.arg(1), c.arg(3), c.arg32(4), c.arg32(5))
}

// NtAllocateVirtualMemoryEx(process, *base, *size, type, prot, params, count)
func ntAllocateVirtualMemoryEx(p *Process, c *call) ntstatus {
	return p.allocateVM(c, c.arg(0), c.arg(1), c.arg(2), c.arg32(3), c.arg32(4))
}

func (p *Process) allocateVM(c *call, proc, basePtr, sizePtr uint64, typ, prot uint32) ntstatus {
	if !p.isSelf(proc) {
		return STATUS_INVALID_HANDLE
	}
	base := c.u64(basePtr)
	size := c.u64(sizePtr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("base=%#x size=%#x type=%#x prot=%#x", base, size, typ, prot)
	if size == 0 || size > highestAddress {
		return STATUS_INVALID_PARAMETER
	}
	if typ&(process.MEM_COMMIT|process.MEM_RESERVE|process.MEM_RESET|process.MEM_RESET_UNDO) == 0 || typ&^(process.MEM_COMMIT|process.MEM_RESERVE|process.MEM_TOP_DOWN|process.MEM_WRITE_WATCH|process.MEM_RESET|process.MEM_RESET_UNDO|process.MEM_LARGE_PAGES|process.MEM_PHYSICAL) != 0 {
		return STATUS_INVALID_PARAMETER
	}
	if !validProt(prot) {
		return STATUS_INVALID_PAGE_PROTECTION
	}
	if typ&(process.MEM_RESET|process.MEM_RESET_UNDO) != 0 {
		return STATUS_SUCCESS
	}
	var a *allocation
	if typ&process.MEM_RESERVE != 0 || base == 0 {
		// A new reservation: 64 KiB aligned.
		var start, end uint64
		if base != 0 {
			start = base &^ (allocGranule - 1)
			end = process.PageUp(base + size)
			if !p.vm.isFree(start, end-start) {
				return STATUS_CONFLICTING_ADDRESSES
			}
		} else {
			span := process.PageUp(size)
			var ok bool
			start, ok = p.vm.findFree((span+allocGranule-1)&^(allocGranule-1), allocGranule, 0, typ&process.MEM_TOP_DOWN != 0)
			if !ok {
				return STATUS_NO_MEMORY
			}
			end = start + span
		}
		var err error
		a, err = p.vm.reserve(start, end-start, prot, process.MEM_PRIVATE, "VirtualAlloc")
		if err != nil {
			return STATUS_NO_MEMORY
		}
		if typ&process.MEM_COMMIT != 0 {
			if err := p.vm.commit(a, start, end-start, prot); err != nil {
				p.vm.release(a)
				return c.commitFailed(err)
			}
		}
		base, size = start, end-start
	} else {
		// Commit inside an existing reservation.
		start, end := process.PageDown(base), process.PageUp(base+size)
		a = p.vm.find(start)
		if a == nil || end > a.base+a.size || a.typ != process.MEM_PRIVATE && a.typ != process.MEM_MAPPED {
			return STATUS_CONFLICTING_ADDRESSES
		}
		if err := p.vm.commit(a, start, end-start, prot); err != nil {
			return c.commitFailed(err)
		}
		base, size = start, end-start
	}
	c.put64(basePtr, base)
	c.put64(sizePtr, size)
	c.note("-> %#x+%#x", base, size)
	return STATUS_SUCCESS
}

// NtFreeVirtualMemory(process, *base, *size, type)
func ntFreeVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	basePtr, sizePtr, typ := c.arg(1), c.arg(2), c.arg32(3)
	base, size := c.u64(basePtr), c.u64(sizePtr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("base=%#x size=%#x type=%#x", base, size, typ)
	a := p.vm.find(base)
	if a == nil || a.typ != process.MEM_PRIVATE {
		return STATUS_MEMORY_NOT_ALLOCATED
	}
	switch typ &^ 0x4000000 /* MEM_COALESCE_PLACEHOLDERS etc. ignored */ {
	case process.MEM_RELEASE:
		if size != 0 || base != a.base {
			return STATUS_FREE_VM_NOT_AT_BASE
		}
		if err := p.vm.release(a); err != nil {
			c.fail(err)
		}
		c.put64(basePtr, a.base)
		c.put64(sizePtr, a.size)
		return STATUS_SUCCESS
	case process.MEM_DECOMMIT:
		start := process.PageDown(base)
		end := a.base + a.size
		if size != 0 {
			end = process.PageUp(base + size)
		}
		if end > a.base+a.size {
			return STATUS_UNABLE_TO_FREE_VM
		}
		if err := p.vm.decommit(a, start, end-start); err != nil {
			c.fail(err)
		}
		c.put64(basePtr, start)
		c.put64(sizePtr, end-start)
		return STATUS_SUCCESS
	}
	return STATUS_INVALID_PARAMETER
}

const (
	STATUS_MEMORY_NOT_ALLOCATED ntstatus = 0xC00000A0
	STATUS_FREE_VM_NOT_AT_BASE  ntstatus = 0xC000009F
	STATUS_NOT_COMMITTED        ntstatus = 0xC000002D
)

// NtProtectVirtualMemory(process, *base, *size, new_prot, *old_prot)
func ntProtectVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	basePtr, sizePtr, prot, oldPtr := c.arg(1), c.arg(2), c.arg32(3), c.arg(4)
	base, size := c.u64(basePtr), c.u64(sizePtr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("base=%#x size=%#x prot=%#x", base, size, prot)
	if !validProt(prot) {
		return STATUS_INVALID_PAGE_PROTECTION
	}
	start, end := process.PageDown(base), process.PageUp(base+size)
	if size == 0 {
		end = start + process.PageSize
	}
	a := p.vm.find(start)
	if a == nil || end > a.base+a.size {
		return STATUS_CONFLICTING_ADDRESSES
	}
	old, st, err := p.vm.protect(a, start, end-start, prot)
	if err != nil {
		c.fail(err)
		return STATUS_NO_MEMORY
	}
	if st != STATUS_SUCCESS {
		return st
	}
	c.put64(basePtr, start)
	c.put64(sizePtr, end-start)
	c.put32(oldPtr, old)
	return STATUS_SUCCESS
}

// Memory information classes.
const (
	MemoryBasicInformation          = 0
	MemoryMappedFilenameInformation = 2
	MemoryRegionInformation         = 3
	MemoryWorkingSetExInformation   = 4
	MemoryImageInformation          = 6
	MemoryWineUnixFuncs             = 1000
	MemoryWineUnixWow64Funcs        = 1001
)

// NtQueryVirtualMemory(process, addr, class, buffer, length, *ret_len)
func ntQueryVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	addr, class, buf, length, retPtr := c.arg(1), c.arg32(2), c.arg(3), c.arg(4), c.arg(5)
	c.note("addr=%#x class=%d", addr, class)
	if addr > highestAddress && class != MemoryWineUnixFuncs {
		return STATUS_INVALID_PARAMETER
	}
	switch class {
	case MemoryBasicInformation:
		if length < 0x30 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		bi := p.vm.query(addr)
		b := make(memw, 0x30)
		b.u64(0x0, bi.base)
		b.u64(0x8, bi.allocBase)
		b.u32(0x10, bi.allocProt)
		b.u64(0x18, bi.regionSize)
		b.u32(0x20, bi.state)
		b.u32(0x24, bi.prot)
		b.u32(0x28, bi.typ)
		c.putBytes(buf, b)
		c.put64(retPtr, 0x30)
		return STATUS_SUCCESS
	case MemoryRegionInformation:
		bi := p.vm.query(addr)
		if bi.state == process.MEM_FREE {
			return STATUS_INVALID_ADDRESS
		}
		if length < 0x20 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		b := make(memw, 0x30)
		b.u64(0x0, bi.allocBase)
		b.u32(0x8, bi.allocProt)
		b.u64(0x10, bi.alloc.size)
		b.u64(0x18, bi.alloc.size)
		n := uint64(0x30)
		if length < n {
			n = length
		}
		c.putBytes(buf, b[:n])
		c.put64(retPtr, n)
		return STATUS_SUCCESS
	case MemoryWineUnixFuncs, MemoryWineUnixWow64Funcs:
		// The handle of a module's unix library: ntdll's is served here;
		// for other builtin DLLs (ws2_32, bcrypt...) the handle is the
		// module's base, and their unix calls stop as unimplemented (their
		// DllMain only checks that the handle exists).
		if length != 8 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		a := p.vm.find(addr)
		if a == nil || a.view == nil || a.view.module == nil || a.base != addr {
			return STATUS_DLL_NOT_FOUND
		}
		h := a.base
		if a.base == p.ntdll.base {
			h = unixLibNtdll
		}
		c.put64(buf, h)
		return STATUS_SUCCESS
	case MemoryMappedFilenameInformation:
		a := p.vm.find(addr)
		if a == nil || a.view == nil || a.view.module == nil {
			return STATUS_INVALID_ADDRESS
		}
		name := `\Device\HarddiskVolume1` + a.view.module.Path[2:]
		data := process.UTF16Bytes(name, true)
		need := uint64(16 + len(data))
		c.put64(retPtr, need)
		if length < need {
			return STATUS_BUFFER_OVERFLOW
		}
		b := make(memw, need)
		b.ustr(0, uint16(len(data)-2), uint16(len(data)), buf+16)
		copy(b[16:], data)
		c.putBytes(buf, b)
		return STATUS_SUCCESS
	case MemoryImageInformation:
		a := p.vm.find(addr)
		if a == nil || a.typ != process.MEM_IMAGE {
			return STATUS_INVALID_ADDRESS
		}
		if length < 0x18 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		b := make(memw, 0x18)
		b.u64(0, a.base)
		b.u64(8, a.size)
		c.putBytes(buf, b)
		c.put64(retPtr, 0x18)
		return STATUS_SUCCESS
	case MemoryWorkingSetExInformation:
		// MEMORY_WORKING_SET_EX_INFORMATION {VirtualAddress, Attributes}[]
		n := length / 16
		if n > 4096 {
			n = 4096
		}
		for i := uint64(0); i < n; i++ {
			va := c.u64(buf + 16*i)
			bi := p.vm.query(va)
			var attr uint64
			if bi.state == process.MEM_COMMIT {
				attr = 1 | uint64(bi.prot&0x7ff)<<4 // Valid, Win32Protection
			}
			c.put64(buf+16*i+8, attr)
		}
		c.put64(retPtr, n*16)
		return STATUS_SUCCESS
	}
	return STATUS_INVALID_INFO_CLASS
}

// The unix-library handle ntdll gets for itself.
const unixLibNtdll = 0x6e74646c6c // "ntdll"

// NtReadVirtualMemory(process, addr, buffer, size, *read)
func ntReadVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	addr, buf, size, retPtr := c.arg(1), c.arg(2), c.arg(3), c.arg(4)
	if size > 64<<20 {
		return STATUS_INVALID_PARAMETER
	}
	b := make([]byte, size)
	n, _ := p.m.ReadMemory(addr, b)
	c.putBytes(buf, b[:n])
	c.put64(retPtr, uint64(n))
	if uint64(n) < size {
		return STATUS_PARTIAL_COPY
	}
	return STATUS_SUCCESS
}

// NtWriteVirtualMemory(process, addr, buffer, size, *written)
func ntWriteVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	addr, buf, size, retPtr := c.arg(1), c.arg(2), c.arg(3), c.arg(4)
	if size > 64<<20 {
		return STATUS_INVALID_PARAMETER
	}
	b := c.bytes(buf, int(size))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	if !p.vm.accessible(addr, size, false) {
		c.put64(retPtr, 0)
		return STATUS_PARTIAL_COPY
	}
	n, _ := p.m.WriteMemory(addr, b)
	c.put64(retPtr, uint64(n))
	return STATUS_SUCCESS
}

const STATUS_PARTIAL_COPY ntstatus = 0x8000000D

// NtFlushInstructionCache(process, addr, size): the emulator sees
// writes to code itself.
func ntFlushInstructionCache(p *Process, c *call) ntstatus { return STATUS_SUCCESS }

func ntSucceed(p *Process, c *call) ntstatus { return STATUS_SUCCESS }

// NtLockVirtualMemory / NtUnlockVirtualMemory(process, *base, *size, type)
func ntLockVirtualMemory(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	return STATUS_SUCCESS
}

// NtAreMappedFilesTheSame(addr1, addr2)
func ntAreMappedFilesTheSame(p *Process, c *call) ntstatus {
	a, b := p.vm.find(c.arg(0)), p.vm.find(c.arg(1))
	if a == nil || b == nil || a.view == nil || b.view == nil {
		return STATUS_INVALID_ADDRESS
	}
	if a.view.module != nil && b.view.module != nil && a.view.module.HostPath == b.view.module.HostPath {
		return STATUS_SUCCESS
	}
	return STATUS_NOT_SAME_DEVICE
}

const STATUS_COMMITMENT_LIMIT ntstatus = 0xC000012D

// commitFailed turns a failed commit into a status: the commit limit is
// the guest's problem, anything else the emulator's.
func (c *call) commitFailed(err error) ntstatus {
	if errors.Is(err, errCommitLimit) {
		return STATUS_COMMITMENT_LIMIT
	}
	if _, ok := err.(*vmError); ok {
		c.fail(err)
	}
	return STATUS_NO_MEMORY
}
