package unwind

import "encoding/binary"

// Memory is guest virtual memory as the unwinder sees it. ReadMemory works
// like io.ReaderAt with a 64-bit address: it fills p from addr and returns
// how many bytes it could read. A short count means "readable up to here";
// err may then explain why, and may be nil.
//
// Code bytes must be the original ones: a debugger that plants int3 bytes
// must hide them, because the version 1 epilog rule reads instructions.
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// readFull reads len(p) bytes or returns a *ReadError.
func readFull(m Memory, what string, addr uint64, p []byte) error {
	n, err := safeRead(m, addr, p)
	if n >= len(p) {
		return nil
	}
	return &ReadError{What: what, Addr: addr, Want: len(p), Got: n, Err: err}
}

// safeRead calls m.ReadMemory and clamps a count a faulty Memory might
// report outside [0, len(p)].
func safeRead(m Memory, addr uint64, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// An access that wraps the address space reads only up to the top.
	if addr+uint64(len(p)) < addr {
		p = p[:-addr]
	}
	n, err := m.ReadMemory(addr, p)
	if n < 0 {
		n = 0
	}
	if n > len(p) {
		n = len(p)
	}
	return n, err
}

// read64 reads a little-endian word through buf (at least 8 bytes), which
// the caller owns so the read does not allocate.
func read64(m Memory, buf []byte, what string, addr uint64) (uint64, error) {
	b := buf[:8]
	if err := readFull(m, what, addr, b); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// cursor decodes little-endian fields from a byte slice. The first failure
// sticks: later reads return zero and leave err and off unchanged, so a
// decoder checks err once at the end of a block.
type cursor struct {
	b   []byte
	off int
	err error
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

func (c *cursor) skip(n int) {
	if c.need(n) {
		c.off += n
	}
}
