package guest

import (
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// heap is the guest's process heap (and every HeapCreate heap, which share
// it): arenas mapped on demand, bump allocation, and exact-size free lists.
// Simple and predictable rather than clever; a debugger user sees blocks in
// regions named "heap".
type heap struct {
	p      *Process
	arenas []*allocation
	cur    uint64 // bump pointer in the last arena
	end    uint64
	sizes  map[uint64]uint64   // live block -> requested size
	free   map[uint64][]uint64 // rounded size -> free blocks
	total  uint64
}

const (
	heapArena   = 1 << 20
	heapMaxSize = 1 << 32 // refuse single requests larger than this
	heapLimit   = 1 << 33 // total bytes the guest may allocate
)

func newHeap(p *Process) *heap {
	return &heap{p: p, sizes: map[uint64]uint64{}, free: map[uint64][]uint64{}}
}

func roundBlock(n uint64) uint64 {
	if n == 0 {
		n = 1
	}
	return (n + 15) &^ 15
}

// alloc returns a 16-byte aligned block, or 0 when the request cannot be
// met. The block is always zero-filled (a reused block is cleared, fresh
// pages are zero), so the zero flag of the callers changes nothing.
func (h *heap) alloc(n uint64, _ bool) (uint64, error) {
	if n > heapMaxSize || h.total+n > heapLimit {
		return 0, nil
	}
	r := roundBlock(n)
	var addr uint64
	var zero bool
	if l := h.free[r]; len(l) > 0 {
		addr = l[len(l)-1]
		h.free[r] = l[:len(l)-1]
		zero = true // reused memory: calloc semantics must hold even for HEAP_ZERO_MEMORY
	} else {
		if h.cur+r > h.end || h.cur == 0 {
			size := uint64(heapArena)
			if r+process.PageSize > size {
				size = process.PageUp(r + process.PageSize)
			}
			base, err := h.p.as.findFree(size, heapHint, 0x10000, process.UserLimit)
			if err != nil {
				return 0, nil
			}
			a, err := h.p.as.mapRange(base, size, arch.PermRW, "heap")
			if err != nil {
				return 0, err
			}
			h.arenas = append(h.arenas, a)
			h.cur, h.end = base+16, base+size
		}
		addr = h.cur
		h.cur += r
		zero = false // fresh pages are zero already
	}
	if zero {
		if err := h.p.mem.Write(addr, make([]byte, r)); err != nil {
			return 0, err
		}
	}
	h.sizes[addr] = n
	h.total += r
	return addr, nil
}

// release frees a block; it reports false for a pointer that is not a live
// block (a double free or a foreign pointer).
func (h *heap) release(addr uint64) bool {
	n, ok := h.sizes[addr]
	if !ok {
		return false
	}
	delete(h.sizes, addr)
	r := roundBlock(n)
	h.free[r] = append(h.free[r], addr)
	h.total -= r
	return true
}

func (h *heap) size(addr uint64) (uint64, bool) {
	n, ok := h.sizes[addr]
	return n, ok
}

func (h *heap) realloc(addr, n uint64) (uint64, error) {
	if addr == 0 {
		return h.alloc(n, false)
	}
	old, ok := h.sizes[addr]
	if !ok {
		return 0, fmt.Errorf("realloc of %#x: not a heap block", addr)
	}
	if roundBlock(n) == roundBlock(old) {
		h.sizes[addr] = n
		return addr, nil
	}
	na, err := h.alloc(n, false)
	if err != nil || na == 0 {
		return 0, err
	}
	c := old
	if n < c {
		c = n
	}
	buf := make([]byte, c)
	if err := h.p.mem.Read(addr, buf); err != nil {
		return 0, err
	}
	if err := h.p.mem.Write(na, buf); err != nil {
		return 0, err
	}
	h.release(addr)
	return na, nil
}

// allocBytes copies b into a new heap block (used for strings the loader
// hands to the guest).
func (h *heap) allocBytes(b []byte) (uint64, error) {
	a, err := h.alloc(uint64(len(b)), false)
	if err != nil {
		return 0, err
	}
	if a == 0 {
		return 0, fmt.Errorf("heap exhausted")
	}
	return a, h.p.mem.Write(a, b)
}
