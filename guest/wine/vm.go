package wine

import (
	"errors"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// The address space is Windows' model: allocations (reserved ranges,
// 64 KiB aligned) made of pages that are reserved or committed, each
// committed run with its protection. Only committed pages are mapped in
// the emulator, with the permissions their protection gives; so a guest
// touching reserved memory faults, and NtQueryVirtualMemory answers what
// the guest would see on Windows. Each allocation keeps its pages as runs
// of equal state, so a 1 GiB reservation costs one entry, not 262,144.

const (
	allocGranule   = 0x10000
	highestAddress = process.UserLimit - 1 // last user byte (MmHighestUserAddress)
	maxRuns        = 1 << 16               // per allocation
	maxAllocations = 1 << 16
)

// run is a stretch of pages with one state and protection.
type run struct {
	off, size uint64
	state     uint32 // MEM_COMMIT or MEM_RESERVE
	prot      uint32 // PAGE_* (with PAGE_GUARD), meaningful when committed
}

// allocation is one reservation: what VirtualAlloc, a mapped view or an
// image made.
type allocation struct {
	base, size uint64
	allocProt  uint32
	typ        uint32 // MEM_PRIVATE, MEM_MAPPED or MEM_IMAGE
	runs       []run  // sorted, covering [0, size)
	name       string // what the debugger's memory map shows
	view       *view  // the mapped section, for MEM_MAPPED and MEM_IMAGE
}

type addressSpace struct {
	m         Machine
	allocs    process.Allocations[*allocation]
	committed uint64 // bytes committed in all allocations
}

// Span is the range the allocation covers (process.Span).
func (a *allocation) Span() (uint64, uint64) { return a.base, a.size }

// maxCommit bounds what the guest can commit in all (Windows' commit
// limit): beyond it allocations fail with STATUS_COMMITMENT_LIMIT instead
// of exhausting the host.
const maxCommit = 8 << 30

// errCommitLimit is a commit beyond maxCommit.
var errCommitLimit = errors.New("commit limit reached")

// vmError is a failed emulator call: a bug or an exhausted host, never
// the guest's fault.
type vmError struct {
	op  string
	err error
}

func (e *vmError) Error() string { return e.op + ": " + e.err.Error() }
func (e *vmError) Unwrap() error { return e.err }

func perm(prot uint32) arch.Perm {
	if prot&process.PAGE_GUARD != 0 {
		return arch.PermNone
	}
	switch prot & 0xff {
	case process.PAGE_READONLY:
		return arch.PermRead
	case process.PAGE_READWRITE, process.PAGE_WRITECOPY:
		return arch.PermRW
	case process.PAGE_EXECUTE, process.PAGE_EXECUTE_READ:
		return arch.PermRX
	case process.PAGE_EXECUTE_READWRITE, process.PAGE_EXECUTE_WRITECOPY:
		return arch.PermRWX
	}
	return arch.PermNone
}

// validProt reports whether prot is one PAGE_* value with optional
// PAGE_GUARD/PAGE_NOCACHE/PAGE_WRITECOMBINE modifiers.
func validProt(prot uint32) bool {
	switch prot & 0xff {
	case process.PAGE_NOACCESS, process.PAGE_READONLY, process.PAGE_READWRITE, process.PAGE_WRITECOPY, process.PAGE_EXECUTE,
		process.PAGE_EXECUTE_READ, process.PAGE_EXECUTE_READWRITE, process.PAGE_EXECUTE_WRITECOPY:
	default:
		return false
	}
	return prot&^0x7ff == 0
}

// find returns the allocation holding addr.
func (as *addressSpace) find(addr uint64) *allocation { return as.allocs.Find(addr) }

// isFree reports whether [base, base+size) is user address space that
// overlaps no allocation.
func (as *addressSpace) isFree(base, size uint64) bool {
	if base < process.LowestAddress || size == 0 || base+size-1 > highestAddress || base+size < base {
		return false
	}
	return as.allocs.IsFree(base, size)
}

// findFree picks a free range of size bytes aligned to align, searching
// upwards from hint (or downwards from the top with topDown).
func (as *addressSpace) findFree(size, align, hint uint64, topDown bool) (uint64, bool) {
	if size == 0 || size > highestAddress {
		return 0, false
	}
	if hint < process.LowestAddress {
		hint = process.LowestAddress
	}
	if topDown {
		// Gaps from the top down: [lo, hi) between allocations.
		hi := uint64(highestAddress + 1)
		allocs := as.allocs.All()
		for i := len(allocs); i >= 0; i-- {
			lo := uint64(process.LowestAddress)
			if i > 0 {
				lo = allocs[i-1].base + allocs[i-1].size
			}
			if i < len(allocs) {
				hi = allocs[i].base
			}
			if hi >= size {
				if cand := (hi - size) &^ (align - 1); cand >= lo && as.isFree(cand, size) {
					return cand, true
				}
			}
		}
		return 0, false
	}
	return as.allocs.FindFree(size, align, hint, highestAddress+1)
}

// reserve records a new allocation of reserved pages.
func (as *addressSpace) reserve(base, size uint64, prot, typ uint32, name string) (*allocation, error) {
	if as.allocs.Len() >= maxAllocations {
		return nil, fmt.Errorf("more than %d allocations", maxAllocations)
	}
	a := &allocation{base: base, size: size, allocProt: prot, typ: typ, name: name,
		runs: []run{{off: 0, size: size, state: process.MEM_RESERVE}}}
	as.allocs.Insert(a)
	return a, nil
}

// release unmaps every committed page of a and forgets it.
func (as *addressSpace) release(a *allocation) error {
	var firstErr error
	for _, r := range a.runs {
		if r.state == process.MEM_COMMIT {
			if err := as.m.Unmap(a.base+r.off, r.size); err != nil && firstErr == nil {
				firstErr = &vmError{"unmap", err}
			}
			as.committed -= r.size
		}
	}
	as.allocs.Remove(a)
	return firstErr
}

// split makes run boundaries at off and off+size (relative to a.base) and
// returns the index range [i, j) of the runs covering them.
func (a *allocation) split(off, size uint64) (int, int, error) {
	cut := func(at uint64) error {
		if at == 0 || at >= a.size {
			return nil
		}
		i := sort.Search(len(a.runs), func(i int) bool { return a.runs[i].off+a.runs[i].size > at })
		r := a.runs[i]
		if r.off == at {
			return nil
		}
		if len(a.runs) >= maxRuns {
			return fmt.Errorf("allocation at %#x has more than %d runs", a.base, maxRuns)
		}
		left, right := r, r
		left.size = at - r.off
		right.off, right.size = at, r.off+r.size-at
		a.runs = append(a.runs, run{})
		copy(a.runs[i+2:], a.runs[i+1:])
		a.runs[i], a.runs[i+1] = left, right
		return nil
	}
	if err := cut(off); err != nil {
		return 0, 0, err
	}
	if err := cut(off + size); err != nil {
		return 0, 0, err
	}
	i := sort.Search(len(a.runs), func(i int) bool { return a.runs[i].off >= off })
	j := sort.Search(len(a.runs), func(i int) bool { return a.runs[i].off >= off+size })
	return i, j, nil
}

// merge joins neighbouring runs with equal state and protection.
func (a *allocation) merge() {
	out := a.runs[:1]
	for _, r := range a.runs[1:] {
		last := &out[len(out)-1]
		if last.state == r.state && (r.state != process.MEM_COMMIT || last.prot == r.prot) {
			last.size += r.size
			continue
		}
		out = append(out, r)
	}
	a.runs = out
}

// commit commits [addr, addr+size) (page-aligned, inside a) with prot;
// pages already committed get the new protection, as on Windows.
func (as *addressSpace) commit(a *allocation, addr, size uint64, prot uint32) error {
	var fresh uint64
	off := addr - a.base
	for _, r := range a.runs {
		if r.state != process.MEM_COMMIT && r.off < off+size && r.off+r.size > off {
			lo, hi := max(r.off, off), min(r.off+r.size, off+size)
			fresh += hi - lo
		}
	}
	if as.committed+fresh > maxCommit {
		return errCommitLimit
	}
	i, j, err := a.split(addr-a.base, size)
	if err != nil {
		return err
	}
	as.committed += fresh
	for k := i; k < j; k++ {
		r := &a.runs[k]
		if r.state == process.MEM_COMMIT {
			if perm(r.prot) != perm(prot) {
				if err := as.m.Protect(a.base+r.off, r.size, perm(prot)); err != nil {
					return &vmError{"protect", err}
				}
			}
		} else if err := as.m.Map(a.base+r.off, r.size, perm(prot)); err != nil {
			return &vmError{"map", err}
		}
		r.state, r.prot = process.MEM_COMMIT, prot
	}
	a.merge()
	return nil
}

// commitData commits fresh pages [addr, addr+size) with prot and fills
// them with data. The pages are mapped writable for the copy and then
// given their protection as one region: libunicorn's writes into
// read-only memory re-protect the region around every write, which costs
// hundreds of microseconds.
func (as *addressSpace) commitData(a *allocation, addr, size uint64, prot uint32, data []byte) error {
	rw := prot
	if perm(prot)&arch.PermWrite == 0 {
		rw = process.PAGE_READWRITE
	}
	if err := as.commit(a, addr, size, rw); err != nil {
		return err
	}
	if len(data) > 0 {
		if n, err := as.m.WriteMemory(addr, data); err != nil || n != len(data) {
			return &vmError{"write", fmt.Errorf("%d of %d bytes at %#x: %v", n, len(data), addr, err)}
		}
	}
	if rw != prot {
		_, _, err := as.protect(a, addr, size, prot)
		return err
	}
	return nil
}

// decommit returns [addr, addr+size) to the reserved state.
func (as *addressSpace) decommit(a *allocation, addr, size uint64) error {
	i, j, err := a.split(addr-a.base, size)
	if err != nil {
		return err
	}
	for k := i; k < j; k++ {
		r := &a.runs[k]
		if r.state == process.MEM_COMMIT {
			if err := as.m.Unmap(a.base+r.off, r.size); err != nil {
				return &vmError{"unmap", err}
			}
			as.committed -= r.size
		}
		r.state, r.prot = process.MEM_RESERVE, 0
	}
	a.merge()
	return nil
}

// protect changes the protection of committed pages and returns the old
// protection of the first page. Every page must be committed.
func (as *addressSpace) protect(a *allocation, addr, size uint64, prot uint32) (uint32, ntstatus, error) {
	off := addr - a.base
	var old uint32
	first := true
	for _, r := range a.runs {
		if r.off+r.size <= off || r.off >= off+size {
			continue
		}
		if r.state != process.MEM_COMMIT {
			return 0, 0xC000002D, nil // STATUS_NOT_COMMITTED
		}
		if first {
			old, first = r.prot, false
		}
	}
	i, j, err := a.split(off, size)
	if err != nil {
		return 0, 0, err
	}
	for k := i; k < j; k++ {
		r := &a.runs[k]
		if perm(r.prot) != perm(prot) {
			if err := as.m.Protect(a.base+r.off, r.size, perm(prot)); err != nil {
				return 0, 0, &vmError{"protect", err}
			}
		}
		r.prot = prot
	}
	a.merge()
	return old, STATUS_SUCCESS, nil
}

// runAt returns the run holding addr (inside a).
func (a *allocation) runAt(addr uint64) run {
	off := addr - a.base
	i := sort.Search(len(a.runs), func(i int) bool { return a.runs[i].off+a.runs[i].size > off })
	return a.runs[i]
}

// committed reports whether [addr, addr+size) is committed with a
// protection that allows access (write when write is set).
func (as *addressSpace) accessible(addr, size uint64, write bool) bool {
	for size > 0 {
		a := as.find(addr)
		if a == nil {
			return false
		}
		r := a.runAt(addr)
		p := perm(r.prot)
		if r.state != process.MEM_COMMIT || p&arch.PermRead == 0 || (write && p&arch.PermWrite == 0) {
			return false
		}
		end := a.base + r.off + r.size
		if addr+size <= end {
			return true
		}
		size -= end - addr
		addr = end
	}
	return true
}

// basicInfo is MEMORY_BASIC_INFORMATION.
type basicInfo struct {
	base, allocBase  uint64
	allocProt        uint32
	regionSize       uint64
	state, prot, typ uint32
	alloc            *allocation
}

// query answers NtQueryVirtualMemory(MemoryBasicInformation) for addr.
func (as *addressSpace) query(addr uint64) basicInfo {
	page := process.PageDown(addr)
	if a := as.find(page); a != nil {
		off := page - a.base
		i := sort.Search(len(a.runs), func(i int) bool { return a.runs[i].off+a.runs[i].size > off })
		r := a.runs[i]
		bi := basicInfo{base: page, allocBase: a.base, allocProt: a.allocProt,
			regionSize: r.off + r.size - off, state: r.state, typ: a.typ, alloc: a}
		if r.state == process.MEM_COMMIT {
			bi.prot = r.prot
		}
		return bi
	}
	// Free: up to the next allocation.
	end := as.allocs.NextBase(page, highestAddress+1)
	return basicInfo{base: page, regionSize: end - page, state: process.MEM_FREE, prot: process.PAGE_NOACCESS}
}
