// Package bytecur is what the unwind decoders (packages unwind and
// unwind/dwarf) share for reading untrusted bytes: a little-endian cursor
// with a sticky error, and reads of target memory that return the readable
// prefix.
//
// A Cursor never panics and never trusts a length: a read past the end
// fails with ErrTruncated, after which every read returns zero and leaves
// the offset and the error unchanged, so a decoder checks Err once at the
// end of a block. Memory reads follow io.ReaderAt with a 64-bit address: a
// short count means "readable up to here".
package bytecur

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrTruncated: a field runs past the end of the bytes.
var ErrTruncated = errors.New("truncated")

// Cursor decodes little-endian fields from B starting at Off. Err holds
// the first failure.
type Cursor struct {
	B   []byte
	Off int
	Err error
}

// Left is the number of bytes after Off.
func (c *Cursor) Left() int { return len(c.B) - c.Off }

// Fail records err unless an earlier failure is recorded.
func (c *Cursor) Fail(err error) {
	if c.Err == nil {
		c.Err = err
	}
}

// Need reports whether n more bytes can be read, failing with
// ErrTruncated when they cannot.
func (c *Cursor) Need(n int) bool {
	if c.Err != nil {
		return false
	}
	if n < 0 || n > len(c.B)-c.Off {
		c.Err = ErrTruncated
		return false
	}
	return true
}

func (c *Cursor) U8() uint8 {
	if !c.Need(1) {
		return 0
	}
	v := c.B[c.Off]
	c.Off++
	return v
}

func (c *Cursor) U16() uint16 {
	if !c.Need(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(c.B[c.Off:])
	c.Off += 2
	return v
}

func (c *Cursor) U32() uint32 {
	if !c.Need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(c.B[c.Off:])
	c.Off += 4
	return v
}

func (c *Cursor) U64() uint64 {
	if !c.Need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(c.B[c.Off:])
	c.Off += 8
	return v
}

// Skip moves past n bytes.
func (c *Cursor) Skip(n int) {
	if c.Need(n) {
		c.Off += n
	}
}

// ULEB reads an unsigned LEB128 number. Bits past the 64th are dropped
// (as binutils does) but the encoding must end inside the bytes.
func (c *Cursor) ULEB() uint64 {
	var v uint64
	var shift uint
	for {
		if !c.Need(1) {
			return 0
		}
		b := c.B[c.Off]
		c.Off++
		if shift < 64 {
			v |= uint64(b&0x7f) << shift
		}
		shift += 7
		if b&0x80 == 0 {
			return v
		}
	}
}

// SLEB reads a signed LEB128 number.
func (c *Cursor) SLEB() int64 {
	var v int64
	var shift uint
	for {
		if !c.Need(1) {
			return 0
		}
		b := c.B[c.Off]
		c.Off++
		if shift < 64 {
			v |= int64(b&0x7f) << shift
		}
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// Bytes returns the next n bytes, aliasing B (capacity cut, so an append
// cannot overwrite what follows).
func (c *Cursor) Bytes(n uint64) []byte {
	if n > uint64(c.Left()) {
		c.Fail(ErrTruncated)
		return nil
	}
	if !c.Need(int(n)) {
		return nil
	}
	v := c.B[c.Off : c.Off+int(n) : c.Off+int(n)]
	c.Off += int(n)
	return v
}

// CString returns a NUL-terminated string without its terminator.
func (c *Cursor) CString() string {
	if c.Err != nil {
		return ""
	}
	for i := c.Off; i < len(c.B); i++ {
		if c.B[i] == 0 {
			s := string(c.B[c.Off:i])
			c.Off = i + 1
			return s
		}
	}
	c.Fail(ErrTruncated)
	return ""
}

// Memory is target memory. ReadMemory works like io.ReaderAt with a 64-bit
// address: it fills p from addr and returns how many bytes it could read.
// A short count means "readable up to here"; err may then explain why, and
// may be nil.
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// Read calls m.ReadMemory, never past the top of the address space, and
// clamps a count a faulty Memory might report outside [0, len(p)].
func Read(m Memory, addr uint64, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if addr+uint64(len(p)) < addr { // wraps the address space
		p = p[:-addr]
	}
	n, err := m.ReadMemory(addr, p)
	return max(0, min(n, len(p))), err
}

// ReadFull reads len(p) bytes or returns a *ReadError.
func ReadFull(m Memory, what string, addr uint64, p []byte) error {
	n, err := Read(m, addr, p)
	if n >= len(p) {
		return nil
	}
	return &ReadError{What: what, Addr: addr, Want: len(p), Got: n, Err: err}
}

// ReadError reports memory that could not be read: Got bytes of Want were
// readable at Addr.
type ReadError struct {
	What string // "stack", "UNWIND_INFO", "saved rbx", "DW_OP_deref", ...
	Addr uint64
	Want int
	Got  int
	Err  error // the Memory's error, if it gave one
}

func (e *ReadError) Error() string {
	s := fmt.Sprintf("read %s at %#x: %d of %d bytes readable", e.What, e.Addr, e.Got, e.Want)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ReadError) Unwrap() error { return e.Err }
