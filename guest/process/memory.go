package process

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// PageSize is the x64 page.
const PageSize = 0x1000

// PageDown rounds down to a page boundary.
func PageDown(v uint64) uint64 { return v &^ (PageSize - 1) }

// PageUp rounds up to a page boundary.
func PageUp(v uint64) uint64 { return (v + PageSize - 1) &^ (PageSize - 1) }

// The user address space of an x64 process: nothing is mapped below
// LowestAddress (the NULL guard), and UserLimit is one past the highest
// user address (MmHighestUserAddress + 1).
const (
	LowestAddress = 0x10000
	UserLimit     = 0x7FFF_FFFF_0000
)

// MaxString bounds every string read from the guest, in bytes or UTF-16
// units.
const MaxString = 1 << 20

// MemoryError is a guest access that did not cover all its bytes: the
// memory is not mapped, or the emulator refused (Err, when it said why).
// A system call given such a pointer fails with STATUS_ACCESS_VIOLATION.
type MemoryError struct {
	Op   string // "read", "write", "read string"
	Addr uint64
	N    int
	Err  error
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("%s %d bytes at %#x: memory not accessible", e.Op, e.N, e.Addr)
}

func (e *MemoryError) Unwrap() error { return e.Err }

// Memory reads and writes guest memory, little-endian, with a
// *MemoryError for an access that is not whole. It is not safe for
// concurrent use (writes share a scratch buffer: a local array would
// escape through the interface and allocate on every write).
type Memory struct {
	m       MemoryAccess
	scratch [8]byte
}

// NewMemory returns the guest memory m serves.
func NewMemory(m MemoryAccess) *Memory { return &Memory{m: m} }

// Read fills b from addr.
func (mem *Memory) Read(addr uint64, b []byte) error {
	n, err := mem.m.ReadMemory(addr, b)
	if n == len(b) && err == nil {
		return nil
	}
	return &MemoryError{"read", addr, len(b), err}
}

// Write stores b at addr.
func (mem *Memory) Write(addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr+uint64(len(b)) < addr {
		return &MemoryError{"write", addr, len(b), nil}
	}
	n, err := mem.m.WriteMemory(addr, b)
	if n == len(b) && err == nil {
		return nil
	}
	return &MemoryError{"write", addr, len(b), err}
}

// ReadU64, ReadU32 and ReadU16 read a little-endian integer; WriteU64,
// WriteU32 and WriteU16 write one.
func (mem *Memory) ReadU64(addr uint64) (uint64, error) {
	var b [8]byte
	err := mem.Read(addr, b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

func (mem *Memory) ReadU32(addr uint64) (uint32, error) {
	var b [4]byte
	err := mem.Read(addr, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (mem *Memory) ReadU16(addr uint64) (uint16, error) {
	var b [2]byte
	err := mem.Read(addr, b[:])
	return binary.LittleEndian.Uint16(b[:]), err
}

func (mem *Memory) WriteU64(addr, v uint64) error {
	binary.LittleEndian.PutUint64(mem.scratch[:8], v)
	return mem.Write(addr, mem.scratch[:8])
}

func (mem *Memory) WriteU32(addr uint64, v uint32) error {
	binary.LittleEndian.PutUint32(mem.scratch[:4], v)
	return mem.Write(addr, mem.scratch[:4])
}

func (mem *Memory) WriteU16(addr uint64, v uint16) error {
	binary.LittleEndian.PutUint16(mem.scratch[:2], v)
	return mem.Write(addr, mem.scratch[:2])
}

// ReadCString reads a NUL-terminated byte string of at most max bytes
// (max <= 0 or above MaxString: MaxString). A string that runs into
// unreadable memory returns what was read and a *MemoryError.
func (mem *Memory) ReadCString(addr uint64, max int) (string, error) {
	if max <= 0 || max > MaxString {
		max = MaxString
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
		if toPage := int(PageSize - (addr+uint64(len(out)))%PageSize); toPage < want {
			want = toPage
		}
		n, _ := mem.m.ReadMemory(addr+uint64(len(out)), buf[:want])
		for i := 0; i < n; i++ {
			if buf[i] == 0 {
				return string(append(out, buf[:i]...)), nil
			}
		}
		out = append(out, buf[:n]...)
		if n < want {
			return string(out), &MemoryError{"read string", addr + uint64(len(out)), 1, nil}
		}
	}
	return string(out), nil
}

// ReadWString reads a NUL-terminated UTF-16 string of at most max units
// (max <= 0 or above MaxString: MaxString).
func (mem *Memory) ReadWString(addr uint64, max int) (string, error) {
	if max <= 0 || max > MaxString {
		max = MaxString
	}
	var units []uint16
	var buf [2]byte
	for len(units) < max {
		if err := mem.Read(addr+uint64(2*len(units)), buf[:]); err != nil {
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

// ReadWStringN reads exactly n UTF-16 units.
func (mem *Memory) ReadWStringN(addr uint64, n int) (string, error) {
	if n < 0 || n > MaxString {
		return "", fmt.Errorf("string of %d units too long", n)
	}
	b := make([]byte, 2*n)
	if err := mem.Read(addr, b); err != nil {
		return "", err
	}
	return DecodeUTF16(b), nil
}

// UTF16Bytes encodes s as UTF-16LE, with a terminating NUL when nul is set.
func UTF16Bytes(s string, nul bool) []byte {
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

// DecodeUTF16 decodes UTF-16LE bytes (an odd last byte is ignored).
func DecodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// DebuggerAllocName names the allocations a debugger makes (LLDB's _M for
// its expression evaluator) in the memory map, in both userlands.
const DebuggerAllocName = "debugger allocation"

// MaxDebuggerAlloc bounds one debugger allocation.
const MaxDebuggerAlloc = 1 << 32
