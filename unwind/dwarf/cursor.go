package dwarf

import "encoding/binary"

// Memory is target memory as this package sees it. ReadMemory works like
// io.ReaderAt with a 64-bit address: it fills p from addr and returns how
// many bytes it could read. A short count means "readable up to here"; err
// may then explain why, and may be nil.
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// readFull reads len(p) bytes or returns a *ReadError. A Memory reporting
// a count outside [0, len(p)] is clamped.
func readFull(m Memory, what string, addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if m == nil {
		return &ReadError{What: what, Addr: addr, Want: len(p), Err: ErrNoMemory}
	}
	q := p
	if addr+uint64(len(q)) < addr { // wraps the address space
		q = q[:-addr]
	}
	n, err := m.ReadMemory(addr, q)
	if n < 0 {
		n = 0
	}
	if n > len(q) {
		n = len(q)
	}
	if n == len(p) {
		return nil
	}
	return &ReadError{What: what, Addr: addr, Want: len(p), Got: n, Err: err}
}

// readUint reads a little-endian unsigned value of size 1..8 bytes.
func readUint(m Memory, what string, addr uint64, size int) (uint64, error) {
	var b [8]byte
	if size < 1 || size > 8 {
		return 0, &ReadError{What: what, Addr: addr, Want: size, Err: ErrTruncated}
	}
	if err := readFull(m, what, addr, b[:size]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// cursor decodes little-endian fields from a byte slice. The first failure
// sticks: later reads return zero and leave err and off unchanged, so a
// decoder checks err once at the end of a block.
type cursor struct {
	b   []byte
	off int
	err error
}

func (c *cursor) left() int { return len(c.b) - c.off }

func (c *cursor) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *cursor) need(n int) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || n > len(c.b)-c.off {
		c.err = ErrTruncated
		return false
	}
	return true
}

func (c *cursor) u8() uint8 {
	if !c.need(1) {
		return 0
	}
	v := c.b[c.off]
	c.off++
	return v
}

func (c *cursor) u16() uint16 {
	if !c.need(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(c.b[c.off:])
	c.off += 2
	return v
}

func (c *cursor) u32() uint32 {
	if !c.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v
}

func (c *cursor) u64() uint64 {
	if !c.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(c.b[c.off:])
	c.off += 8
	return v
}

// uN reads an unsigned value of n bytes (1, 2, 4 or 8).
func (c *cursor) uN(n int) uint64 {
	switch n {
	case 1:
		return uint64(c.u8())
	case 2:
		return uint64(c.u16())
	case 4:
		return uint64(c.u32())
	case 8:
		return c.u64()
	}
	c.fail(ErrAddressSize)
	return 0
}

// uleb reads an unsigned LEB128 number. Bits past the 64th are dropped
// (as binutils does) but the encoding must end inside the buffer.
func (c *cursor) uleb() uint64 {
	var v uint64
	var shift uint
	for {
		if !c.need(1) {
			return 0
		}
		b := c.b[c.off]
		c.off++
		if shift < 64 {
			v |= uint64(b&0x7f) << shift
		}
		shift += 7
		if b&0x80 == 0 {
			return v
		}
	}
}

// sleb reads a signed LEB128 number.
func (c *cursor) sleb() int64 {
	var v int64
	var shift uint
	for {
		if !c.need(1) {
			return 0
		}
		b := c.b[c.off]
		c.off++
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

// bytes returns the next n bytes (aliasing the buffer).
func (c *cursor) bytes(n uint64) []byte {
	if n > uint64(c.left()) {
		c.fail(ErrTruncated)
		return nil
	}
	if !c.need(int(n)) {
		return nil
	}
	v := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return v
}

// cstring returns a NUL-terminated string without its terminator.
func (c *cursor) cstring() string {
	if c.err != nil {
		return ""
	}
	for i := c.off; i < len(c.b); i++ {
		if c.b[i] == 0 {
			s := string(c.b[c.off:i])
			c.off = i + 1
			return s
		}
	}
	c.fail(ErrTruncated)
	return ""
}
