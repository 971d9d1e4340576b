package peimage

import (
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// Limits on an import directory.
const (
	MaxImportDLLs      = 4096    // descriptors
	MaxImportFunctions = 1 << 16 // thunks per descriptor
)

// ImageImportDescriptor is IMAGE_IMPORT_DESCRIPTOR (20 bytes).
type ImageImportDescriptor struct {
	OriginalFirstThunk uint32 // RVA of the import lookup table
	TimeDateStamp      uint32
	ForwarderChain     uint32
	Name               uint32 // RVA of the DLL's name
	FirstThunk         uint32 // RVA of the import address table
}

// Import is the functions an image imports from one DLL.
type Import struct {
	Name       string // the DLL ("KERNEL32.dll")
	Descriptor ImageImportDescriptor
	Functions  []ImportFunction
}

// ImportFunction is one entry of an import lookup table.
type ImportFunction struct {
	Name      string // empty for an import by ordinal
	Hint      uint16
	Ordinal   uint32 // for an import by ordinal
	ByOrdinal bool
	// Slot is the RVA of the function's import address table entry
	// (FirstThunk + 8*index), which the loader binds to its address.
	Slot uint32
}

// Imports reads the import directory of a PE32+ image in memory layout:
// descriptors up to the all-zero one, each with its lookup table (the
// address table when there is no lookup table) up to its zero thunk.
func (f *File) Imports(img []byte) ([]Import, error) {
	return f.ReadImports(Bytes(img), 0, uint64(len(img)))
}

// ReadImports is Imports over an image of size bytes mapped at base in
// mem (a guest's memory): each function also gets its import address
// table slot, whose value a guest's loader has bound. On an error it
// returns the DLLs read before the corrupt one with the error.
func (f *File) ReadImports(mem Memory, base, size uint64) ([]Import, error) {
	dd := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT]
	if dd.VirtualAddress == 0 {
		return nil, nil
	}
	var out []Import
	le := binary.LittleEndian
	name := make([]byte, MaxName)
	for i := uint64(0); ; i++ {
		at := uint64(dd.VirtualAddress) + importDescriptorSize*i
		if i >= MaxImportDLLs {
			return out, &FormatError{at, fmt.Sprintf("more than %d import descriptors", MaxImportDLLs)}
		}
		var raw [importDescriptorSize]byte
		if at+importDescriptorSize > size || bytecur.ReadFull(mem, "import descriptor", base+at, raw[:]) != nil {
			return out, &FormatError{at, "import descriptor is past the image"}
		}
		var d ImageImportDescriptor
		binary.Decode(raw[:], le, &d)
		if d == (ImageImportDescriptor{}) {
			return out, nil
		}
		if uint64(d.Name) >= size {
			return out, &FormatError{at + 12, fmt.Sprintf("import descriptor %d: name at rva %#x is past the image", i, d.Name)}
		}
		imp := Import{Name: readCString(mem, base+uint64(d.Name), name[:min(uint64(MaxName), size-uint64(d.Name))]), Descriptor: d}
		lookup := d.OriginalFirstThunk
		if lookup == 0 {
			lookup = d.FirstThunk
		}
		for j := uint64(0); ; j++ {
			th := uint64(lookup) + 8*j
			if j >= MaxImportFunctions {
				return out, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): more than %d functions", i, imp.Name, MaxImportFunctions)}
			}
			var tb [8]byte
			if lookup == 0 || th+8 > size || bytecur.ReadFull(mem, "import lookup table", base+th, tb[:]) != nil {
				return out, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): lookup table at rva %#x is past the image", i, imp.Name, lookup)}
			}
			v := le.Uint64(tb[:])
			if v == 0 {
				break
			}
			slot := d.FirstThunk + uint32(8*j)
			if v&IMAGE_ORDINAL_FLAG64 != 0 {
				imp.Functions = append(imp.Functions, ImportFunction{Ordinal: uint32(v & 0xffff), ByOrdinal: true, Slot: slot})
				continue
			}
			rva := v & 0x7fffffff
			var hint [2]byte
			if rva+2 >= size || bytecur.ReadFull(mem, "import hint", base+rva, hint[:]) != nil {
				return out, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): hint/name at rva %#x is past the image", i, imp.Name, rva)}
			}
			imp.Functions = append(imp.Functions, ImportFunction{
				Hint: le.Uint16(hint[:]),
				Name: readCString(mem, base+rva+2, name[:min(uint64(MaxName), size-rva-2)]),
				Slot: slot,
			})
		}
		out = append(out, imp)
	}
}
