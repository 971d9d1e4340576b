package guest

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// allocation is one reserved range of the guest address space.
type allocation struct {
	base, size uint64
	name       string      // RegionName for addresses not inside a module
	perms      []arch.Perm // per page, for VirtualQuery/VirtualProtect
	initPerm   arch.Perm
	committed  []bool
	virtual    bool // made by VirtualAlloc (VirtualFree may release it)
}

// Span is the range the allocation covers (process.Span).
func (a *allocation) Span() (uint64, uint64) { return a.base, a.size }

// addressSpace tracks what the guest has mapped. It never trusts sizes coming
// from the guest or from a PE without checking them first.
type addressSpace struct {
	m      Machine
	allocs process.Allocations[*allocation]
}

var errNoSpace = errors.New("no free guest address range")

func (as *addressSpace) find(addr uint64) *allocation { return as.allocs.Find(addr) }

func (as *addressSpace) isFree(base, size uint64) bool { return as.allocs.IsFree(base, size) }

// findFree returns a free range of size bytes at or above hint, aligned to
// align (a power of two), below limit.
func (as *addressSpace) findFree(size, hint, align, limit uint64) (uint64, error) {
	size = process.PageUp(size)
	if size == 0 || size > 1<<36 {
		return 0, fmt.Errorf("%w: bad size %#x", errNoSpace, size)
	}
	if base, ok := as.allocs.FindFree(size, align, hint, limit); ok {
		return base, nil
	}
	return 0, fmt.Errorf("%w: %#x bytes above %#x", errNoSpace, size, hint)
}

// mapRange maps [base, base+size) and records it.
func (as *addressSpace) mapRange(base, size uint64, perm arch.Perm, name string) (*allocation, error) {
	return as.mapRangeRuns(base, size, perm, name, nil)
}

// mapRangeRuns is mapRange with the range mapped as one machine region
// per run of pages [first, end) (runs cover the whole range in order;
// nil: one region). It is still one allocation.
func (as *addressSpace) mapRangeRuns(base, size uint64, perm arch.Perm, name string, runs [][2]uint64) (*allocation, error) {
	size = process.PageUp(size)
	if base%process.PageSize != 0 || !as.isFree(base, size) {
		return nil, fmt.Errorf("map %#x+%#x (%s): range not free", base, size, name)
	}
	if len(runs) == 0 {
		runs = [][2]uint64{{0, size / process.PageSize}}
	}
	next := uint64(0)
	for i, r := range runs {
		if r[0] != next || r[1] <= r[0] {
			return nil, fmt.Errorf("map %#x+%#x (%s): bad run %d", base, size, name, i)
		}
		next = r[1]
	}
	if next*process.PageSize != size {
		return nil, fmt.Errorf("map %#x+%#x (%s): runs end at page %d", base, size, name, next)
	}
	for i, r := range runs {
		if err := as.m.Map(base+r[0]*process.PageSize, (r[1]-r[0])*process.PageSize, perm); err != nil {
			for _, q := range runs[:i] {
				_ = as.m.Unmap(base+q[0]*process.PageSize, (q[1]-q[0])*process.PageSize)
			}
			return nil, fmt.Errorf("map %#x+%#x (%s): %w", base, size, name, err)
		}
	}
	n := size / process.PageSize
	a := &allocation{base: base, size: size, name: name, perms: make([]arch.Perm, n), committed: make([]bool, n), initPerm: perm}
	for i := range a.perms {
		a.perms[i] = perm
		a.committed[i] = true
	}
	as.allocs.Insert(a)
	return a, nil
}

func (as *addressSpace) unmapAlloc(a *allocation) error {
	if err := as.m.Unmap(a.base, a.size); err != nil {
		return err
	}
	as.allocs.Remove(a)
	return nil
}

// protect changes page permissions inside one allocation.
func (as *addressSpace) protect(addr, size uint64, perm arch.Perm) error {
	start, end := process.PageDown(addr), process.PageUp(addr+size)
	a := as.find(start)
	if a == nil || end > a.base+a.size || end <= start {
		return fmt.Errorf("protect %#x+%#x: not inside one allocation", addr, size)
	}
	if err := as.m.Protect(start, end-start, perm); err != nil {
		return err
	}
	for pg := start; pg < end; pg += process.PageSize {
		a.perms[(pg-a.base)/process.PageSize] = perm
	}
	return nil
}
