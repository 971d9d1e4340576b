package guest

import (
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// KERNEL32.dll's memory exports: their handlers, listed by kernel32Exports in
// api_kernel32.go.

// k32_GetProcessHeap implements GetProcessHeap.
func k32_GetProcessHeap(c *call) error { return c.ret(c.p.win32.processHeap) }

// k32_GetProcessHeaps implements GetProcessHeaps.
func k32_GetProcessHeaps(c *call) error {
	if c.arg(0) >= 1 {
		c.w64(c.arg(1), c.p.win32.processHeap)
	}
	return c.ret(1)
}

// k32_HeapCreate implements HeapCreate.
func k32_HeapCreate(c *call) error {
	c.p.win32.nextHeap += 0x10000
	return c.ret(c.p.win32.processHeap + c.p.win32.nextHeap)
}

// k32_HeapReAlloc implements HeapReAlloc.
func k32_HeapReAlloc(c *call) error {
	a, err := c.p.heap.realloc(c.arg(2), c.arg(3))
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_HeapSize implements HeapSize.
func k32_HeapSize(c *call) error {
	n, ok := c.p.heap.size(c.arg(2))
	if !ok {
		return c.ret(^uint64(0))
	}
	return c.ret(n)
}

// k32_LocalAlloc implements LocalAlloc.
func k32_LocalAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(1), c.arg(0)&0x40 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_LocalFree implements LocalFree.
func k32_LocalFree(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(0) }

// k32_GlobalAlloc implements GlobalAlloc.
func k32_GlobalAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(1), c.arg(0)&0x40 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_GlobalFree implements GlobalFree.
func k32_GlobalFree(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(0) }

func heapAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(2), c.arg(1)&0x8 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

func heapFree(c *call) error {
	if c.arg(2) == 0 {
		return c.ret(1)
	}
	if !c.p.heap.release(c.arg(2)) {
		c.p.log.Warn("HeapFree of a pointer that is not a live block", "ptr", fmt.Sprintf("%#x", c.arg(2)))
		return c.fail(errorInvalidParameter)
	}
	return c.ret(1)
}

// pageProtToPerm maps a page protection (PAGE_*) to the emulator's.
func pageProtToPerm(prot uint32) (arch.Perm, bool) {
	switch prot &^ (process.PAGE_GUARD | process.PAGE_NOCACHE | process.PAGE_WRITECOMBINE) {
	case process.PAGE_NOACCESS:
		return arch.PermNone, true
	case process.PAGE_READONLY:
		return arch.PermRead, true
	case process.PAGE_READWRITE, process.PAGE_WRITECOPY:
		return arch.PermRW, true
	case process.PAGE_EXECUTE:
		return arch.PermExec, true
	case process.PAGE_EXECUTE_READ:
		return arch.PermRX, true
	case process.PAGE_EXECUTE_READWRITE, process.PAGE_EXECUTE_WRITECOPY:
		return arch.PermRWX, true
	}
	return 0, false
}

func permToPageProt(p arch.Perm) uint32 {
	switch p {
	case arch.PermNone:
		return process.PAGE_NOACCESS
	case arch.PermRead:
		return process.PAGE_READONLY
	case arch.PermRW, arch.PermWrite:
		return process.PAGE_READWRITE
	case arch.PermExec:
		return process.PAGE_EXECUTE
	case arch.PermRX:
		return process.PAGE_EXECUTE_READ
	default:
		return process.PAGE_EXECUTE_READWRITE
	}
}

func virtualAlloc(c *call) error {
	p := c.p
	addr, size, typ := c.arg(0), c.arg(1), uint32(c.arg(2))
	perm, ok := pageProtToPerm(uint32(c.arg(3)))
	if !ok || size == 0 || size > 1<<36 {
		return c.fail(errorInvalidParameter)
	}
	if addr != 0 {
		if a := p.as.find(addr); a != nil && typ&process.MEM_RESERVE == 0 {
			// Commit inside an existing reservation.
			if process.PageUp(addr+size) > a.base+a.size {
				return c.fail(errorInvalidAddress)
			}
			if err := p.as.protect(addr, size, perm); err != nil {
				return c.fail(errorInvalidAddress)
			}
			for pg := process.PageDown(addr); pg < process.PageUp(addr+size); pg += process.PageSize {
				a.committed[(pg-a.base)/process.PageSize] = true
			}
			return c.ret(process.PageDown(addr))
		}
		addr &^= 0xFFFF
		if !p.as.isFree(addr, process.PageUp(size)) {
			return c.fail(errorInvalidAddress)
		}
	} else {
		var err error
		addr, err = p.as.findFree(size, virtualHint, 0x10000, process.UserLimit)
		if err != nil {
			return c.fail(errorNotEnoughMemory)
		}
	}
	mapPerm := perm
	if typ&process.MEM_COMMIT == 0 {
		mapPerm = arch.PermNone
	}
	a, err := p.as.mapRange(addr, size, mapPerm, "VirtualAlloc")
	if err != nil {
		return c.fail(errorNotEnoughMemory)
	}
	a.virtual = true
	if typ&process.MEM_COMMIT == 0 {
		for i := range a.committed {
			a.committed[i] = false
		}
	}
	a.initPerm = perm
	return c.ret(addr)
}

func virtualFree(c *call) error {
	a := c.p.as.find(c.arg(0))
	if a == nil || !a.virtual {
		return c.fail(errorInvalidAddress)
	}
	if uint32(c.arg(2))&process.MEM_RELEASE != 0 {
		if c.arg(0) != a.base {
			return c.fail(errorInvalidParameter)
		}
		if err := c.p.as.unmapAlloc(a); err != nil {
			return c.fail(errorInvalidAddress)
		}
		return c.ret(1)
	}
	// MEM_DECOMMIT
	if err := c.p.as.protect(c.arg(0), c.arg(1), arch.PermNone); err != nil {
		return c.fail(errorInvalidAddress)
	}
	return c.ret(1)
}

func virtualProtect(c *call) error {
	addr, size := c.arg(0), c.arg(1)
	perm, ok := pageProtToPerm(uint32(c.arg(2)))
	if !ok {
		return c.fail(errorInvalidParameter)
	}
	a := c.p.as.find(addr)
	if a == nil {
		return c.fail(errorInvalidAddress)
	}
	old := a.perms[(process.PageDown(addr)-a.base)/process.PageSize]
	if err := c.p.as.protect(addr, size, perm); err != nil {
		return c.fail(errorInvalidAddress)
	}
	c.w32(c.arg(3), permToPageProt(old))
	return c.ret(1)
}

// virtualQuery fills a MEMORY_BASIC_INFORMATION (48 bytes):
// BaseAddress, AllocationBase, AllocationProtect(+pad), RegionSize, State,
// Protect, Type.
func virtualQuery(c *call) error {
	addr, buf, n := c.arg(0), c.arg(1), c.arg(2)
	if n < 48 {
		return c.fail(errorInsufficientBuf)
	}
	p := c.p
	b := make([]byte, 48)
	le := binary.LittleEndian
	pg := process.PageDown(addr)
	if a := p.as.find(addr); a != nil {
		i := (pg - a.base) / process.PageSize
		j := i
		for j < uint64(len(a.perms)) && a.perms[j] == a.perms[i] && a.committed[j] == a.committed[i] {
			j++
		}
		le.PutUint64(b[0:], pg)
		le.PutUint64(b[8:], a.base)
		le.PutUint32(b[16:], permToPageProt(a.initPerm))
		le.PutUint64(b[24:], (j-i)*process.PageSize)
		typ := uint32(process.MEM_PRIVATE)
		if p.moduleAt(addr) != nil {
			typ = process.MEM_IMAGE
		}
		if a.committed[i] {
			le.PutUint32(b[32:], process.MEM_COMMIT)
			le.PutUint32(b[36:], permToPageProt(a.perms[i]))
		} else {
			le.PutUint32(b[32:], process.MEM_RESERVE)
		}
		le.PutUint32(b[40:], typ)
	} else {
		if addr >= process.UserLimit {
			return c.fail(errorInvalidParameter)
		}
		// A free range up to the next allocation.
		end := p.as.allocs.NextBase(pg, process.UserLimit)
		le.PutUint64(b[0:], pg)
		le.PutUint64(b[24:], end-pg)
		le.PutUint32(b[32:], process.MEM_FREE)
		le.PutUint32(b[36:], process.PAGE_NOACCESS)
	}
	c.wbytes(buf, b)
	return c.ret(48)
}
