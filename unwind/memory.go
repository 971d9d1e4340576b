package unwind

import (
	"encoding/binary"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// Memory is guest virtual memory as the unwinder sees it. ReadMemory works
// like io.ReaderAt with a 64-bit address: it fills p from addr and returns
// how many bytes it could read. A short count means "readable up to here";
// err may then explain why, and may be nil.
//
// Code bytes must be the original ones: a debugger that plants int3 bytes
// must hide them, because the version 1 epilog rule reads instructions.
type Memory = bytecur.Memory

// readFull reads len(p) bytes or returns a *ReadError.
func readFull(m Memory, what string, addr uint64, p []byte) error {
	return bytecur.ReadFull(m, what, addr, p)
}

// safeRead reads the readable prefix of p (bytecur.Read).
func safeRead(m Memory, addr uint64, p []byte) (int, error) { return bytecur.Read(m, addr, p) }

// read64 reads a little-endian word through buf (at least 8 bytes), which
// the caller owns so the read does not allocate.
func read64(m Memory, buf []byte, what string, addr uint64) (uint64, error) {
	b := buf[:8]
	if err := readFull(m, what, addr, b); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// cursor decodes little-endian fields from a byte slice with a sticky
// error (package bytecur).
type cursor = bytecur.Cursor
