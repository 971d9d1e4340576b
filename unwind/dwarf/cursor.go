package dwarf

import "github.com/rspstub/rspstub/internal/bytecur"

// Memory is target memory as this package sees it. ReadMemory works like
// io.ReaderAt with a 64-bit address: it fills p from addr and returns how
// many bytes it could read. A short count means "readable up to here"; err
// may then explain why, and may be nil.
type Memory = bytecur.Memory

// readFull reads len(p) bytes or returns a *ReadError. A Memory reporting
// a count outside [0, len(p)] is clamped.
func readFull(m Memory, what string, addr uint64, p []byte) error {
	if m == nil && len(p) > 0 {
		return &ReadError{What: what, Addr: addr, Want: len(p), Err: ErrNoMemory}
	}
	return bytecur.ReadFull(m, what, addr, p)
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
	return le64(b[:]), nil
}

// cursor decodes little-endian fields from a byte slice with a sticky
// error (package bytecur).
type cursor = bytecur.Cursor

// uN reads an unsigned value of n bytes (1, 2, 4 or 8).
func uN(c *cursor, n int) uint64 {
	switch n {
	case 1:
		return uint64(c.U8())
	case 2:
		return uint64(c.U16())
	case 4:
		return uint64(c.U32())
	case 8:
		return c.U64()
	}
	c.Fail(ErrAddressSize)
	return 0
}
