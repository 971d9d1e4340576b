package wine

import "encoding/binary"

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
