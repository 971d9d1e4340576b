package peimage

import (
	"encoding/binary"
	"fmt"
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
}

// Imports reads the import directory of a PE32+ image in memory layout:
// descriptors up to the all-zero one, each with its lookup table (the
// address table when there is no lookup table) up to its zero thunk.
func (f *File) Imports(img []byte) ([]Import, error) {
	dd := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT]
	if dd.VirtualAddress == 0 {
		return nil, nil
	}
	var out []Import
	le := binary.LittleEndian
	for i := uint64(0); ; i++ {
		at := uint64(dd.VirtualAddress) + importDescriptorSize*i
		if i >= MaxImportDLLs {
			return nil, &FormatError{at, fmt.Sprintf("more than %d import descriptors", MaxImportDLLs)}
		}
		if at+importDescriptorSize > uint64(len(img)) {
			return nil, &FormatError{at, "import descriptor is past the image"}
		}
		var d ImageImportDescriptor
		binary.Decode(img[at:], le, &d)
		if d == (ImageImportDescriptor{}) {
			return out, nil
		}
		if uint64(d.Name) >= uint64(len(img)) {
			return nil, &FormatError{at + 12, fmt.Sprintf("import descriptor %d: name at rva %#x is past the image", i, d.Name)}
		}
		imp := Import{Name: CString(img, d.Name, MaxName), Descriptor: d}
		lookup := d.OriginalFirstThunk
		if lookup == 0 {
			lookup = d.FirstThunk
		}
		for j := uint64(0); ; j++ {
			th := uint64(lookup) + 8*j
			if j >= MaxImportFunctions {
				return nil, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): more than %d functions", i, imp.Name, MaxImportFunctions)}
			}
			if lookup == 0 || th+8 > uint64(len(img)) {
				return nil, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): lookup table at rva %#x is past the image", i, imp.Name, lookup)}
			}
			v := le.Uint64(img[th:])
			if v == 0 {
				break
			}
			if v&IMAGE_ORDINAL_FLAG64 != 0 {
				imp.Functions = append(imp.Functions, ImportFunction{Ordinal: uint32(v & 0xffff), ByOrdinal: true})
				continue
			}
			rva := v & 0x7fffffff
			if rva+2 >= uint64(len(img)) {
				return nil, &FormatError{th, fmt.Sprintf("import descriptor %d (%s): hint/name at rva %#x is past the image", i, imp.Name, rva)}
			}
			imp.Functions = append(imp.Functions, ImportFunction{
				Hint: le.Uint16(img[rva:]),
				Name: CString(img, uint32(rva+2), MaxName),
			})
		}
		out = append(out, imp)
	}
}
