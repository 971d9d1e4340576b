package peimage

import (
	"encoding/binary"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// ImageDebugDirectory is IMAGE_DEBUG_DIRECTORY (28 bytes).
type ImageDebugDirectory struct {
	Characteristics  uint32
	TimeDateStamp    uint32
	MajorVersion     uint16
	MinorVersion     uint16
	Type             uint32
	SizeOfData       uint32
	AddressOfRawData uint32 // RVA of the data in memory layout
	PointerToRawData uint32
}

// IMAGE_DEBUG_TYPE_CODEVIEW marks the record that names the PDB (RSDS).
const IMAGE_DEBUG_TYPE_CODEVIEW = 2

// Limits on a debug directory.
const (
	debugDirectorySize = 28
	MaxDebugEntries    = 64
	MaxCodeView        = 4096
)

// ReadCodeView returns the CodeView record (an "RSDS" PDB reference, as
// minidump module lists carry it) of an image of size bytes mapped at
// base, or nil when there is none or it cannot be read.
func (f *File) ReadCodeView(mem Memory, base, size uint64) []byte {
	dd := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_DEBUG]
	if dd.VirtualAddress == 0 || uint64(dd.VirtualAddress)+uint64(dd.Size) > size {
		return nil
	}
	for i := uint64(0); i < min(uint64(dd.Size)/debugDirectorySize, MaxDebugEntries); i++ {
		var raw [debugDirectorySize]byte
		if bytecur.ReadFull(mem, "debug directory", base+uint64(dd.VirtualAddress)+debugDirectorySize*i, raw[:]) != nil {
			return nil
		}
		var e ImageDebugDirectory
		binary.Decode(raw[:], binary.LittleEndian, &e)
		if e.Type != IMAGE_DEBUG_TYPE_CODEVIEW || e.SizeOfData < 4 || e.SizeOfData > MaxCodeView ||
			e.AddressOfRawData == 0 || uint64(e.AddressOfRawData)+uint64(e.SizeOfData) > size {
			continue
		}
		rec := make([]byte, e.SizeOfData)
		if bytecur.ReadFull(mem, "CodeView record", base+uint64(e.AddressOfRawData), rec) != nil {
			return nil
		}
		return rec
	}
	return nil
}
