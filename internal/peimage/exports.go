package peimage

import (
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// MaxExports bounds NumberOfFunctions and NumberOfNames of an export
// directory.
const MaxExports = 1 << 16

// MaxName bounds an exported or imported name, and a forwarder.
const MaxName = 512

// ImageExportDirectory is IMAGE_EXPORT_DIRECTORY (40 bytes).
type ImageExportDirectory struct {
	Characteristics       uint32
	TimeDateStamp         uint32
	MajorVersion          uint16
	MinorVersion          uint16
	Name                  uint32 // RVA of the DLL's name
	Base                  uint32 // the first ordinal
	NumberOfFunctions     uint32
	NumberOfNames         uint32
	AddressOfFunctions    uint32
	AddressOfNames        uint32
	AddressOfNameOrdinals uint32
}

// ReadExportDirectory reads the export directory of the image mapped at
// base (headers in f); ok is false when the image has none.
func (f *File) ReadExportDirectory(mem Memory, base uint64) (d ImageExportDirectory, ok bool, err error) {
	return readExportDirectory(mem, base, f.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT])
}

func readExportDirectory(mem Memory, base uint64, dd DataDirectory) (d ImageExportDirectory, ok bool, err error) {
	if dd.VirtualAddress == 0 {
		return d, false, nil
	}
	var raw [exportDirectorySize]byte
	if err := bytecur.ReadFull(mem, "export directory", base+uint64(dd.VirtualAddress), raw[:]); err != nil {
		return d, false, err
	}
	binary.Decode(raw[:], binary.LittleEndian, &d)
	return d, true, nil
}

// ExportTable is an export directory with its three tables read.
type ExportTable struct {
	Dir         DataDirectory // where the directory is: a function RVA inside it is a forwarder
	Directory   ImageExportDirectory
	OrdinalBase uint32
	Functions   []uint32 // AddressOfFunctions: an RVA per ordinal - OrdinalBase
	Names       []ExportedName
}

// ExportedName is one entry of the name table.
type ExportedName struct {
	Name  string
	Index uint32 // into Functions; may be out of range in a corrupt image
}

// IsForwarder reports whether a function RVA points into the export
// directory, where a forwarder string ("NTDLL.RtlFoo") is.
func (t *ExportTable) IsForwarder(rva uint32) bool {
	return rva >= t.Dir.VirtualAddress && uint64(rva) < uint64(t.Dir.VirtualAddress)+uint64(t.Dir.Size)
}

// ReadExportTable reads the export directory and its tables of the image
// mapped at base; names are read up to MaxName bytes (what is readable
// of one that is cut short). An image without exports gives an empty
// table.
func (f *File) ReadExportTable(mem Memory, base uint64) (*ExportTable, error) {
	return ReadExportTable(mem, base, f.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT])
}

// ReadExportTable is File.ReadExportTable given the export directory's
// entry of the image's data directory.
func ReadExportTable(mem Memory, base uint64, dir DataDirectory) (*ExportTable, error) {
	d, ok, err := readExportDirectory(mem, base, dir)
	t := &ExportTable{Dir: dir}
	if err != nil || !ok {
		return t, err
	}
	t.Directory, t.OrdinalBase = d, d.Base
	nf, nn := d.NumberOfFunctions, d.NumberOfNames
	if nf > MaxExports || nn > MaxExports {
		return nil, &FormatError{uint64(t.Dir.VirtualAddress) + 20, fmt.Sprintf("export directory claims %d functions and %d names", nf, nn)}
	}
	funcs := make([]byte, 4*nf)
	names := make([]byte, 4*nn)
	ords := make([]byte, 2*nn)
	if err := bytecur.ReadFull(mem, "export address table", base+uint64(d.AddressOfFunctions), funcs); err != nil {
		return nil, err
	}
	if err := bytecur.ReadFull(mem, "export name table", base+uint64(d.AddressOfNames), names); err != nil {
		return nil, err
	}
	if err := bytecur.ReadFull(mem, "export ordinal table", base+uint64(d.AddressOfNameOrdinals), ords); err != nil {
		return nil, err
	}
	t.Functions = make([]uint32, nf)
	for i := range t.Functions {
		t.Functions[i] = binary.LittleEndian.Uint32(funcs[4*i:])
	}
	t.Names = make([]ExportedName, nn)
	buf := make([]byte, MaxName)
	for i := range t.Names {
		t.Names[i] = ExportedName{
			Name:  readCString(mem, base+uint64(binary.LittleEndian.Uint32(names[4*i:])), buf),
			Index: uint32(binary.LittleEndian.Uint16(ords[2*i:])),
		}
	}
	return t, nil
}

// readCString reads a NUL-terminated string of at most len(buf) bytes at
// addr in one read; what is readable of it when it is cut short.
func readCString(mem Memory, addr uint64, buf []byte) string {
	n, _ := bytecur.Read(mem, addr, buf)
	s := buf[:n]
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}

// Export is one exported function.
type Export struct {
	Name      string // empty for an export by ordinal only
	Ordinal   uint32
	RVA       uint32
	Forwarder string // "DLL.name" when the export forwards
}

// Exports lists the exported functions of an image in memory layout, one
// per ordinal, each with the last name the name table gives it.
func (f *File) Exports(img []byte) ([]Export, error) {
	return f.exports(Bytes(img))
}

// FileExports is Exports read from the file's own bytes (no Layout).
func (f *File) FileExports() ([]Export, error) {
	return f.exports(RVAs{f})
}

func (f *File) exports(mem Memory) ([]Export, error) {
	t, err := f.ReadExportTable(mem, 0)
	if err != nil {
		return nil, err
	}
	out := make([]Export, len(t.Functions))
	var buf [256]byte
	for i, rva := range t.Functions {
		out[i] = Export{Ordinal: t.OrdinalBase + uint32(i), RVA: rva}
		if t.IsForwarder(rva) {
			n, _ := mem.ReadMemory(uint64(rva), buf[:])
			out[i].Forwarder = CString(buf[:n], 0, n)
		}
	}
	for _, n := range t.Names {
		if int(n.Index) < len(out) {
			out[n.Index].Name = n.Name
		}
	}
	return out, nil
}

// ExportName is the DLL name the export directory of an image in memory
// layout records ("KERNEL32.dll"), or "".
func (f *File) ExportName(img []byte) string {
	d, ok, err := f.ReadExportDirectory(Bytes(img), 0)
	if err != nil || !ok {
		return ""
	}
	return CString(img, d.Name, 256)
}

// CString reads a NUL-terminated string at off, at most max bytes; an
// offset past the end gives "".
func CString(b []byte, off uint32, max int) string {
	if uint64(off) >= uint64(len(b)) {
		return ""
	}
	s := b[off:]
	if len(s) > max {
		s = s[:max]
	}
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}
