package guest

import (
	"errors"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// fakeMachine is an in-memory Machine: a page map and a register file. It
// executes nothing; tests drive HandleTrap directly.
type fakeMachine struct {
	pages map[uint64]*fakePage
	regs  [arch.NumRegs]uint64
	traps [][2]uint64
	// regions counts Map calls; splits lists the Protect calls that
	// covered part of a mapped region (Unicorn copies the whole region
	// for those).
	regions int
	splits  [][2]uint64
}

type fakePage struct {
	data   *[process.PageSize]byte // nil until written: reads as zero
	perm   arch.Perm
	region int // the Map call that mapped it
}

var zeroPage [process.PageSize]byte

func newFakeMachine() *fakeMachine { return &fakeMachine{pages: map[uint64]*fakePage{}} }

func (f *fakeMachine) Map(addr, size uint64, perm arch.Perm) error {
	if addr%process.PageSize != 0 || size%process.PageSize != 0 || size == 0 {
		return fmt.Errorf("map %#x+%#x: not page aligned", addr, size)
	}
	for a := addr; a < addr+size; a += process.PageSize {
		if f.pages[a] != nil {
			return fmt.Errorf("map %#x: already mapped", a)
		}
	}
	f.regions++
	for a := addr; a < addr+size; a += process.PageSize {
		f.pages[a] = &fakePage{perm: perm, region: f.regions}
	}
	return nil
}

func (f *fakeMachine) Unmap(addr, size uint64) error {
	for a := addr; a < addr+size; a += process.PageSize {
		if f.pages[a] == nil {
			return errors.New("unmap: not mapped")
		}
		delete(f.pages, a)
	}
	return nil
}

func (f *fakeMachine) Protect(addr, size uint64, perm arch.Perm) error {
	if first, last := f.pages[addr], f.pages[addr+size-process.PageSize]; first != nil && last != nil {
		before, after := f.pages[addr-process.PageSize], f.pages[addr+size]
		if (before != nil && before.region == first.region) || (after != nil && after.region == last.region) {
			f.splits = append(f.splits, [2]uint64{addr, size})
		}
	}
	for a := addr; a < addr+size; a += process.PageSize {
		pg := f.pages[a]
		if pg == nil {
			return fmt.Errorf("protect %#x: not mapped", a)
		}
		pg.perm = perm
	}
	return nil
}

func (f *fakeMachine) ReadMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pg := f.pages[process.PageDown(a)]
		if pg == nil {
			return n, fmt.Errorf("read %#x: unmapped", a)
		}
		src := &zeroPage
		if pg.data != nil {
			src = pg.data
		}
		n += copy(p[n:], src[a%process.PageSize:])
	}
	return n, nil
}

func (f *fakeMachine) WriteMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		pg := f.pages[process.PageDown(a)]
		if pg == nil {
			return n, fmt.Errorf("write %#x: unmapped", a)
		}
		if pg.data == nil {
			pg.data = new([process.PageSize]byte)
		}
		n += copy(pg.data[a%process.PageSize:], p[n:])
	}
	return n, nil
}

func (f *fakeMachine) Reg(r arch.Reg) (uint64, error) {
	if r >= arch.NumRegs {
		return 0, errors.New("bad register")
	}
	return f.regs[r], nil
}

func (f *fakeMachine) SetReg(r arch.Reg, v uint64) error {
	if r >= arch.NumRegs {
		return errors.New("bad register")
	}
	f.regs[r] = v
	return nil
}

func (f *fakeMachine) AddTrapRange(start, end uint64) error {
	f.traps = append(f.traps, [2]uint64{start, end})
	sort.Slice(f.traps, func(i, j int) bool { return f.traps[i][0] < f.traps[j][0] })
	return nil
}

func (f *fakeMachine) inTrap(pc uint64) bool {
	for _, t := range f.traps {
		if pc >= t[0] && pc < t[1] {
			return true
		}
	}
	return false
}

func (f *fakeMachine) perm(addr uint64) (arch.Perm, bool) {
	pg := f.pages[process.PageDown(addr)]
	if pg == nil {
		return 0, false
	}
	return pg.perm, true
}
