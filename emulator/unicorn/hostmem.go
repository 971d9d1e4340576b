package unicorn

/*
#include <stdlib.h>
#include "machine.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"unsafe"

	"github.com/rspstub/rspstub/internal/arch"
)

// Guest memory lives in host memory the machine allocates itself and
// hands to libunicorn (uc_mem_map_ptr), so Go reads and writes it with a
// copy, no cgo call: a system call served in Go, the unwinder and the
// debugger's reads pay nothing for the crossing. libunicorn splits such
// regions on Unmap and Protect keeping their host pointers (uc.c's
// split_region handles preallocated blocks).
//
// Translated code must follow what is written over it, and libunicorn
// 2.0.1 does not see to that even in uc_mem_write (a debugger's patch of
// code that had run was ignored): a write into memory that has ever been
// executable drops the translation blocks made from it, at once when the
// memory is executable now, else when Protect makes it executable again
// (libunicorn finds code pages by a fetch, which a non-executable page
// refuses). "Ever" is per region and survives Protect. Unmapped memory
// needs nothing: memory mapped again at its address is a new block, and
// translations are looked up by block.

// hostRegion is one mapped range and the host memory behind it.
type hostRegion struct {
	start, end uint64 // [start, end), page-aligned
	host       unsafe.Pointer
	perm       arch.Perm
	execEver   bool
}

// find returns the index of the region holding addr, or -1.
func (m *Machine) find(addr uint64) int {
	rs := m.regions
	i := sort.Search(len(rs), func(i int) bool { return rs[i].end > addr })
	if i < len(rs) && rs[i].start <= addr {
		return i
	}
	return -1
}

// mapHost maps [addr, addr+size) with fresh zeroed host memory.
func (m *Machine) mapHost(addr, size uint64, perm arch.Perm) error {
	host := C.rs_host_map(C.uint64_t(size))
	if host == nil {
		return fmt.Errorf("unicorn: map %#x+%#x: host memory: out of memory", addr, size)
	}
	if e := C.uc_mem_map_ptr(m.c.uc, C.uint64_t(addr), C.size_t(size), ucPerm(perm), host); e != C.UC_ERR_OK {
		C.rs_host_unmap(host, C.uint64_t(size))
		return ucErr(fmt.Sprintf("map %#x+%#x", addr, size), e)
	}
	if e := C.rs_twin_map(m.c, C.uint64_t(addr), C.uint64_t(size), ucPerm(perm), host); e != C.UC_ERR_OK {
		C.uc_mem_unmap(m.c.uc, C.uint64_t(addr), C.size_t(size))
		C.rs_host_unmap(host, C.uint64_t(size))
		return ucErr(fmt.Sprintf("twin map %#x+%#x", addr, size), e)
	}
	C.rs_fast_map(m.c.fast, C.uint64_t(addr), C.uint64_t(size), host)
	r := hostRegion{start: addr, end: addr + size, host: host, perm: perm, execEver: perm&arch.PermExec != 0}
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].start >= addr })
	m.regions = append(m.regions, hostRegion{})
	copy(m.regions[i+1:], m.regions[i:])
	m.regions[i] = r
	return nil
}

// splitAt makes addr a region boundary if a region spans it.
func (m *Machine) splitAt(addr uint64) {
	i := m.find(addr)
	if i < 0 || m.regions[i].start == addr {
		return
	}
	r := m.regions[i]
	lo, hi := r, r
	lo.end = addr
	hi.start = addr
	hi.host = unsafe.Add(r.host, addr-r.start)
	m.regions = append(m.regions, hostRegion{})
	copy(m.regions[i+2:], m.regions[i+1:])
	m.regions[i], m.regions[i+1] = lo, hi
}

// span returns the regions covering [addr, end) after splitting at both
// ends: indexes [i, j).
func (m *Machine) span(addr, end uint64) (int, int) {
	m.splitAt(addr)
	m.splitAt(end)
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].start >= addr })
	j := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].start >= end })
	return i, j
}

// unmapHost forgets [addr, end) (libunicorn has unmapped it) and frees
// its host memory.
func (m *Machine) unmapHost(addr, end uint64) {
	C.rs_fast_unmap(m.c.fast, C.uint64_t(addr), C.uint64_t(end))
	i, j := m.span(addr, end)
	for _, r := range m.regions[i:j] {
		C.rs_host_unmap(r.host, C.uint64_t(r.end-r.start))
	}
	m.regions = append(m.regions[:i], m.regions[j:]...)
}

// View returns the n bytes of guest memory at addr as a slice of the
// machine's own host memory (no copy), or nil when they are not all in one
// mapped region. The slice is valid until the guest runs or the memory
// map changes; a debugger's read of a stopped machine (rsp's `x` replies)
// escapes straight from it.
func (m *Machine) View(addr uint64, n int) []byte {
	if n <= 0 || m.check() != nil {
		return nil
	}
	i := m.find(addr)
	if i < 0 || m.regions[i].end-addr < uint64(n) {
		return nil
	}
	return m.regions[i].bytes(addr, n)
}

// dropCode drops the translated code made from [addr, end) before it is
// unmapped: libunicorn may give memory mapped there later the same
// internal offset, and its old translations would then run again for the
// new bytes (TestWriteOverExecutedCode: code unmapped, mapped again and
// rewritten ran the old code once the reserved MiB was mapped). A region
// that is not executable now is made so for the moment (libunicorn finds
// code pages by a fetch).
func (m *Machine) dropCode(addr, end uint64) {
	for _, r := range m.regions {
		lo, hi := max(r.start, addr), min(r.end, end)
		if lo >= hi || !r.execEver {
			continue
		}
		if r.perm&arch.PermExec != 0 {
			C.rs_remove_cache(m.c, C.uint64_t(lo), C.uint64_t(hi))
			continue
		}
		// Over the whole region: a protection of part of it would split
		// it in libunicorn.
		start, size := C.uint64_t(r.start), C.size_t(r.end-r.start)
		if C.uc_mem_protect(m.c.uc, start, size, ucPerm(r.perm|arch.PermRead|arch.PermExec)) != C.UC_ERR_OK {
			continue
		}
		if m.mapChanged() == nil {
			C.rs_remove_cache(m.c, C.uint64_t(lo), C.uint64_t(hi))
		}
		C.uc_mem_protect(m.c.uc, start, size, ucPerm(r.perm))
		_ = m.mapChanged()
	}
}

// protectHost records perm for [addr, end) (libunicorn has applied it).
func (m *Machine) protectHost(addr, end uint64, perm arch.Perm) {
	i, j := m.span(addr, end)
	stale := false
	for k := i; k < j; k++ {
		r := &m.regions[k]
		if perm&arch.PermExec != 0 {
			stale = stale || (r.execEver && r.perm&arch.PermExec == 0)
			r.execEver = true
		}
		r.perm = perm
	}
	if stale {
		// Code that ran, was made writable and may have been written.
		C.rs_remove_cache(m.c, C.uint64_t(addr), C.uint64_t(end))
	}
}

// freeHost releases all host memory (after uc_close).
func (m *Machine) freeHost() {
	for _, r := range m.regions {
		C.rs_host_unmap(r.host, C.uint64_t(r.end-r.start))
	}
	m.regions = nil
}

// hostBytes is the host memory behind [addr, addr+n) of region r.
func (r *hostRegion) bytes(addr uint64, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(r.host, addr-r.start)), n)
}

// copyMem reads (write false) or writes guest memory from addr: the
// longest mapped prefix of p, region by region.
func (m *Machine) copyMem(addr uint64, p []byte, write bool) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		if a < addr {
			break // wrapped around the address space
		}
		i := m.find(a)
		if i < 0 {
			break
		}
		r := &m.regions[i]
		n := len(p) - done
		if left := r.end - a; uint64(n) > left {
			n = int(left)
		}
		switch {
		case !write:
			copy(p[done:done+n], r.bytes(a, n))
		default:
			copy(r.bytes(a, n), p[done:done+n])
			if r.execEver && r.perm&arch.PermExec != 0 {
				C.rs_remove_cache(m.c, C.uint64_t(a), C.uint64_t(a+uint64(n)))
			}
		}
		done += n
	}
	if done == 0 {
		code := C.UC_ERR_READ_UNMAPPED
		op := "read"
		if write {
			code, op = C.UC_ERR_WRITE_UNMAPPED, "write"
		}
		return 0, &Error{Code: int(code), Op: fmt.Sprintf("%s %#x", op, addr)}
	}
	return done, nil
}

// ucRegions is libunicorn's own list of regions (for tests: the host
// table must agree with it).
func (m *Machine) ucRegions() []Region {
	var regs *C.uc_mem_region
	var n C.uint32_t
	if C.uc_mem_regions(m.c.uc, &regs, &n) != C.UC_ERR_OK || n == 0 {
		return nil
	}
	defer C.uc_free(unsafe.Pointer(regs))
	out := make([]Region, 0, int(n))
	for _, r := range unsafe.Slice(regs, int(n)) {
		if uint64(r.begin) >= C.RS_PT_BASE && uint64(r.end) < C.RS_PT_BASE+C.RS_PT_SIZE {
			continue // the watchpoints' page tables (watch.c)
		}
		out = append(out, Region{Start: uint64(r.begin), Size: uint64(r.end-r.begin) + 1, Perm: archPerm(r.perms)})
	}
	if len(out) == 0 {
		return nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// ucRead reads through libunicorn (for tests).
func (m *Machine) ucRead(addr uint64, p []byte) bool {
	return C.uc_mem_read(m.c.uc, C.uint64_t(addr), unsafe.Pointer(&p[0]), C.size_t(len(p))) == C.UC_ERR_OK
}

// HostBytes is the host memory behind [addr, addr+n) when one region
// holds it all, else nil: a view, not a copy, for callers that compare
// or copy guest memory in bulk (time-travel checkpoints). It is valid
// until the next Map, Unmap, Protect or Close, and writes through it
// bypass the dropping of translated code that WriteMemory does.
func (m *Machine) HostBytes(addr uint64, n int) []byte {
	if m.check() != nil || n <= 0 {
		return nil
	}
	i := m.find(addr)
	if i < 0 || addr+uint64(n) > m.regions[i].end || addr+uint64(n) < addr {
		return nil
	}
	return m.regions[i].bytes(addr, n)
}

// FastStores reports whether guest stores take libunicorn's fast path
// (faststore.c, "Stores" in doc.go): on with libunicorn 2.0.1 unless
// RSPSTUB_SLOW_STORES is set.
func FastStores() bool {
	return C.rs_fast_stores_on() != 0
}

// FastStoreStats counts what the fast-store layer did for this machine.
type FastStoreStats struct {
	Cleared   uint64 // TLB fills of writable pages given the fast path
	CodePages uint64 // pages recorded when they got translated code
	Tracked   int    // pages holding translated code now
	Broken    bool   // a code page could not be recorded: fast path off
}

// FastStoreStats returns the machine's counters (zero when fast stores
// are off).
func (m *Machine) FastStoreStats() FastStoreStats {
	var s C.rs_fast_stats
	if m.check() == nil {
		C.rs_fast_read_stats(m.c.fast, &s)
	}
	return FastStoreStats{Cleared: uint64(s.cleared), CodePages: uint64(s.code_pages), Tracked: int(s.tracked), Broken: s.broken != 0}
}
