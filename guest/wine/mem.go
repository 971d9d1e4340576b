package wine

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// errGuestMemory is a guest address the kernel could not read or write:
// the system call fails with STATUS_ACCESS_VIOLATION, as Windows' probes
// make it.
type errGuestMemory struct {
	addr uint64
	n    int
}

func (e *errGuestMemory) Error() string {
	return fmt.Sprintf("guest memory %#x (%d bytes) is not accessible", e.addr, e.n)
}

func (p *Process) read(addr uint64, b []byte) error {
	n, err := p.m.ReadMemory(addr, b)
	if err != nil || n != len(b) {
		return &errGuestMemory{addr, len(b)}
	}
	return nil
}

func (p *Process) write(addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr+uint64(len(b)) < addr {
		return &errGuestMemory{addr, len(b)}
	}
	n, err := p.m.WriteMemory(addr, b)
	if err != nil || n != len(b) {
		return &errGuestMemory{addr, len(b)}
	}
	return nil
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

func (p *Process) writeU64(addr, v uint64) error {
	b := p.scratch[:8] // a local array would escape through the Machine interface
	binary.LittleEndian.PutUint64(b, v)
	return p.write(addr, b)
}

func (p *Process) writeU32(addr uint64, v uint32) error {
	b := p.scratch[:4]
	binary.LittleEndian.PutUint32(b, v)
	return p.write(addr, b)
}

// utf16Bytes encodes s as UTF-16LE, with a terminating NUL when nul is set.
func utf16Bytes(s string, nul bool) []byte {
	u := utf16.Encode([]rune(s))
	if nul {
		u = append(u, 0)
	}
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// memw writes a structure into a byte buffer; fields are little-endian.
type memw []byte

func (b memw) u8(off int, v uint8)   { b[off] = v }
func (b memw) u16(off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func (b memw) u32(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func (b memw) u64(off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// ustr writes a UNICODE_STRING {Length, MaximumLength, Buffer} at off.
func (b memw) ustr(off int, length, max uint16, buf uint64) {
	b.u16(off, length)
	b.u16(off+2, max)
	b.u64(off+8, buf)
}
