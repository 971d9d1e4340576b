package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"

	"github.com/rspstub/rspstub/internal/arch"
)

const pageSize = 0x1000

func pageDown(v uint64) uint64 { return v &^ (pageSize - 1) }
func pageUp(v uint64) uint64   { return (v + pageSize - 1) &^ (pageSize - 1) }

// allocation is one reserved range of the guest address space.
type allocation struct {
	base, size uint64
	name       string      // RegionName for addresses not inside a module
	perms      []arch.Perm // per page, for VirtualQuery/VirtualProtect
	initPerm   arch.Perm
	committed  []bool
	virtual    bool // made by VirtualAlloc (VirtualFree may release it)
}

// addressSpace tracks what the guest has mapped. It never trusts sizes coming
// from the guest or from a PE without checking them first.
type addressSpace struct {
	m      Machine
	allocs []*allocation // sorted by base
}

var errNoSpace = errors.New("no free guest address range")

func (as *addressSpace) find(addr uint64) *allocation {
	i := sort.Search(len(as.allocs), func(i int) bool { return as.allocs[i].base+as.allocs[i].size > addr })
	if i < len(as.allocs) && as.allocs[i].base <= addr {
		return as.allocs[i]
	}
	return nil
}

func (as *addressSpace) isFree(base, size uint64) bool {
	if size == 0 || base+size < base {
		return false
	}
	for _, a := range as.allocs {
		if base < a.base+a.size && a.base < base+size {
			return false
		}
	}
	return true
}

// findFree returns a free range of size bytes at or above hint, aligned to
// align (a power of two), below limit.
func (as *addressSpace) findFree(size, hint, align, limit uint64) (uint64, error) {
	size = pageUp(size)
	if size == 0 || size > 1<<36 {
		return 0, fmt.Errorf("%w: bad size %#x", errNoSpace, size)
	}
	base := (hint + align - 1) &^ (align - 1)
	for iter := 0; iter < 1<<20 && base+size <= limit && base+size > base; iter++ {
		conflict := false
		for _, a := range as.allocs {
			if base < a.base+a.size && a.base < base+size {
				base = (a.base + a.size + align - 1) &^ (align - 1)
				conflict = true
				break
			}
		}
		if !conflict {
			return base, nil
		}
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
	size = pageUp(size)
	if base%pageSize != 0 || !as.isFree(base, size) {
		return nil, fmt.Errorf("map %#x+%#x (%s): range not free", base, size, name)
	}
	if len(runs) == 0 {
		runs = [][2]uint64{{0, size / pageSize}}
	}
	next := uint64(0)
	for i, r := range runs {
		if r[0] != next || r[1] <= r[0] {
			return nil, fmt.Errorf("map %#x+%#x (%s): bad run %d", base, size, name, i)
		}
		next = r[1]
	}
	if next*pageSize != size {
		return nil, fmt.Errorf("map %#x+%#x (%s): runs end at page %d", base, size, name, next)
	}
	for i, r := range runs {
		if err := as.m.Map(base+r[0]*pageSize, (r[1]-r[0])*pageSize, perm); err != nil {
			for _, q := range runs[:i] {
				_ = as.m.Unmap(base+q[0]*pageSize, (q[1]-q[0])*pageSize)
			}
			return nil, fmt.Errorf("map %#x+%#x (%s): %w", base, size, name, err)
		}
	}
	n := size / pageSize
	a := &allocation{base: base, size: size, name: name, perms: make([]arch.Perm, n), committed: make([]bool, n), initPerm: perm}
	for i := range a.perms {
		a.perms[i] = perm
		a.committed[i] = true
	}
	i := sort.Search(len(as.allocs), func(i int) bool { return as.allocs[i].base > base })
	as.allocs = append(as.allocs, nil)
	copy(as.allocs[i+1:], as.allocs[i:])
	as.allocs[i] = a
	return a, nil
}

func (as *addressSpace) unmapAlloc(a *allocation) error {
	if err := as.m.Unmap(a.base, a.size); err != nil {
		return err
	}
	for i, b := range as.allocs {
		if b == a {
			as.allocs = append(as.allocs[:i], as.allocs[i+1:]...)
			break
		}
	}
	return nil
}

// protect changes page permissions inside one allocation.
func (as *addressSpace) protect(addr, size uint64, perm arch.Perm) error {
	start, end := pageDown(addr), pageUp(addr+size)
	a := as.find(start)
	if a == nil || end > a.base+a.size || end <= start {
		return fmt.Errorf("protect %#x+%#x: not inside one allocation", addr, size)
	}
	if err := as.m.Protect(start, end-start, perm); err != nil {
		return err
	}
	for pg := start; pg < end; pg += pageSize {
		a.perms[(pg-a.base)/pageSize] = perm
	}
	return nil
}

// --- guest memory access helpers ---

type memError struct {
	addr uint64
	n    int
	op   string
}

func (e *memError) Error() string {
	return fmt.Sprintf("%s %d bytes at %#x: memory not accessible", e.op, e.n, e.addr)
}

func (p *Process) read(addr uint64, b []byte) error {
	n, err := p.m.ReadMemory(addr, b)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = &memError{addr, len(b), "read"}
	}
	return err
}

func (p *Process) write(addr uint64, b []byte) error {
	n, err := p.m.WriteMemory(addr, b)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = &memError{addr, len(b), "write"}
	}
	return err
}

func (p *Process) readU64(addr uint64) (uint64, error) {
	var b [8]byte
	err := p.read(addr, b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

func (p *Process) readU32(addr uint64) (uint32, error) {
	var b [4]byte
	err := p.read(addr, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (p *Process) readU16(addr uint64) (uint16, error) {
	var b [2]byte
	err := p.read(addr, b[:])
	return binary.LittleEndian.Uint16(b[:]), err
}

func (p *Process) writeU64(addr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return p.write(addr, b[:])
}

func (p *Process) writeU32(addr uint64, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return p.write(addr, b[:])
}

func (p *Process) writeU16(addr uint64, v uint16) error {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	return p.write(addr, b[:])
}

// maxGuestString bounds every string read from the guest.
const maxGuestString = 1 << 20

// readCString reads a NUL-terminated byte string (at most max bytes).
func (p *Process) readCString(addr uint64, max int) (string, error) {
	if max <= 0 || max > maxGuestString {
		max = maxGuestString
	}
	var out []byte
	var buf [256]byte
	for len(out) < max {
		want := len(buf)
		if rem := max - len(out); rem < want {
			want = rem
		}
		// Do not cross a page boundary in one read so a string that ends
		// just before unmapped memory is still read.
		if toPage := int(pageSize - (addr+uint64(len(out)))%pageSize); toPage < want {
			want = toPage
		}
		n, _ := p.m.ReadMemory(addr+uint64(len(out)), buf[:want])
		for i := 0; i < n; i++ {
			if buf[i] == 0 {
				return string(append(out, buf[:i]...)), nil
			}
		}
		out = append(out, buf[:n]...)
		if n < want {
			return string(out), &memError{addr + uint64(len(out)), 1, "read string"}
		}
	}
	return string(out), nil
}

// readWString reads a NUL-terminated UTF-16 string (at most max units).
func (p *Process) readWString(addr uint64, max int) (string, error) {
	if max <= 0 || max > maxGuestString {
		max = maxGuestString
	}
	var units []uint16
	var buf [2]byte
	for len(units) < max {
		if err := p.read(addr+uint64(2*len(units)), buf[:]); err != nil {
			return string(utf16.Decode(units)), err
		}
		u := binary.LittleEndian.Uint16(buf[:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units)), nil
}

// readWStringN reads exactly n UTF-16 units.
func (p *Process) readWStringN(addr uint64, n int) (string, error) {
	if n < 0 || n > maxGuestString {
		return "", fmt.Errorf("string of %d units too long", n)
	}
	b := make([]byte, 2*n)
	if err := p.read(addr, b); err != nil {
		return "", err
	}
	u := make([]uint16, n)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

func utf16Bytes(s string, nul bool) []byte {
	u := utf16.Encode([]rune(s))
	if nul {
		u = append(u, 0)
	}
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}
