// Package peimage reads PE32+ images from bytes: headers, sections, data
// directories, base relocations and exports. It is the PE twin of
// internal/elfmem: every length is checked against the bytes there, no
// input makes it panic, and the structure and constant names follow Go's
// debug/pe (and so the PE specification).
//
// It reads the two layouts an image has: the file layout (sections at
// their PointerToRawData) and the memory layout (sections at their
// VirtualAddress, as a loader maps them). Layout turns the first into the
// second; ParseMapped reads an image already in memory layout (copied out
// of a guest).
package peimage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Constants from the PE specification, with debug/pe's names.
const (
	IMAGE_FILE_MACHINE_AMD64 = 0x8664
	IMAGE_FILE_DLL           = 0x2000

	IMAGE_DIRECTORY_ENTRY_EXPORT    = 0
	IMAGE_DIRECTORY_ENTRY_IMPORT    = 1
	IMAGE_DIRECTORY_ENTRY_EXCEPTION = 3
	IMAGE_DIRECTORY_ENTRY_BASERELOC = 5
	IMAGE_DIRECTORY_ENTRY_TLS       = 9
	IMAGE_DIRECTORY_ENTRY_COM       = 14

	IMAGE_SCN_CNT_CODE               = 0x00000020
	IMAGE_SCN_CNT_INITIALIZED_DATA   = 0x00000040
	IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x00000080
	IMAGE_SCN_MEM_SHARED             = 0x10000000
	IMAGE_SCN_MEM_EXECUTE            = 0x20000000
	IMAGE_SCN_MEM_READ               = 0x40000000
	IMAGE_SCN_MEM_WRITE              = 0x80000000

	IMAGE_REL_BASED_ABSOLUTE = 0
	IMAGE_REL_BASED_HIGHLOW  = 3
	IMAGE_REL_BASED_DIR64    = 10

	IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE = 0x0040
	IMAGE_SUBSYSTEM_WINDOWS_GUI           = 2
	IMAGE_SUBSYSTEM_WINDOWS_CUI           = 3
)

// MaxImageSize bounds SizeOfImage; Windows refuses far smaller images
// than this already.
const MaxImageSize = 1 << 30

const (
	maxSections = 96 // the PE specification's limit
	pageSize    = 0x1000
)

var (
	// ErrNotPE means the bytes do not start with a DOS header pointing at
	// a PE signature.
	ErrNotPE = errors.New("not a PE image")
	// ErrNotPE32Plus means a PE image that is not a PE32+ (64-bit) one.
	ErrNotPE32Plus = errors.New("not a PE32+ image")
)

// FormatError is a malformed image: what and where.
type FormatError struct {
	Off uint64 // file or RVA offset of the bad field
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("corrupt PE image at %#x: %s", e.Off, e.Msg) }

// DataDirectory is one entry of the optional header's directory table.
type DataDirectory struct {
	VirtualAddress, Size uint32
}

// Section is one section header.
type Section struct {
	Name                            string
	VirtualSize, VirtualAddress     uint32
	SizeOfRawData, PointerToRawData uint32
	Characteristics                 uint32
}

// File is a parsed image.
type File struct {
	Machine             uint16
	Characteristics     uint16
	TimeDateStamp       uint32
	ImageBase           uint64
	AddressOfEntryPoint uint32
	SectionAlignment    uint32
	FileAlignment       uint32
	SizeOfImage         uint32
	SizeOfHeaders       uint32
	CheckSum            uint32
	Subsystem           uint16
	DllCharacteristics  uint16
	MajorSubsystemVer   uint16
	MinorSubsystemVer   uint16
	MajorOSVer          uint16
	MinorOSVer          uint16
	MajorImageVer       uint16
	MinorImageVer       uint16
	SizeOfStackReserve  uint64
	SizeOfStackCommit   uint64
	SizeOfHeapReserve   uint64
	SizeOfHeapCommit    uint64
	LoaderFlags         uint32
	DataDirectory       [16]DataDirectory
	Sections            []Section
	// NTHeaderOffset is e_lfanew: where "PE\0\0" is.
	NTHeaderOffset uint32

	data   []byte
	mapped bool // data is in memory layout
}

// IsDLL reports the IMAGE_FILE_DLL characteristic.
func (f *File) IsDLL() bool { return f.Characteristics&IMAGE_FILE_DLL != 0 }

// Data returns the bytes the file was parsed from.
func (f *File) Data() []byte { return f.data }

// Parse reads an image in file layout.
func Parse(data []byte) (*File, error) { return parse(data, false) }

// ParseMapped reads an image in memory layout (a copy of a mapped image).
func ParseMapped(data []byte) (*File, error) { return parse(data, true) }

func u16(b []byte, off uint32) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func u32(b []byte, off uint32) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func u64(b []byte, off uint32) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

func parse(data []byte, mapped bool) (*File, error) {
	if len(data) < 0x40 || data[0] != 'M' || data[1] != 'Z' {
		return nil, fmt.Errorf("%w: no MZ signature", ErrNotPE)
	}
	lfanew := u32(data, 0x3c)
	// Signature (4), file header (20), and the optional header's magic.
	if uint64(lfanew)+24+2 > uint64(len(data)) {
		return nil, fmt.Errorf("%w: e_lfanew %#x is past the end (%d bytes)", ErrNotPE, lfanew, len(data))
	}
	if string(data[lfanew:lfanew+4]) != "PE\x00\x00" {
		return nil, fmt.Errorf("%w: no PE signature at %#x", ErrNotPE, lfanew)
	}
	fh := lfanew + 4
	f := &File{
		data: data, mapped: mapped, NTHeaderOffset: lfanew,
		Machine:         u16(data, fh),
		TimeDateStamp:   u32(data, fh+4),
		Characteristics: u16(data, fh+18),
	}
	nsect := uint32(u16(data, fh+2))
	optSize := uint32(u16(data, fh+16))
	oh := fh + 20
	if u16(data, oh) != 0x20b {
		return nil, fmt.Errorf("%w: optional header magic %#x", ErrNotPE32Plus, u16(data, oh))
	}
	if optSize < 112 || uint64(oh)+uint64(optSize) > uint64(len(data)) {
		return nil, &FormatError{uint64(fh + 16), fmt.Sprintf("optional header size %d does not fit", optSize)}
	}
	f.AddressOfEntryPoint = u32(data, oh+16)
	f.ImageBase = u64(data, oh+24)
	f.SectionAlignment = u32(data, oh+32)
	f.FileAlignment = u32(data, oh+36)
	f.MajorOSVer, f.MinorOSVer = u16(data, oh+40), u16(data, oh+42)
	f.MajorImageVer, f.MinorImageVer = u16(data, oh+44), u16(data, oh+46)
	f.MajorSubsystemVer, f.MinorSubsystemVer = u16(data, oh+48), u16(data, oh+50)
	f.SizeOfImage = u32(data, oh+56)
	f.SizeOfHeaders = u32(data, oh+60)
	f.CheckSum = u32(data, oh+64)
	f.Subsystem = u16(data, oh+68)
	f.DllCharacteristics = u16(data, oh+70)
	f.SizeOfStackReserve = u64(data, oh+72)
	f.SizeOfStackCommit = u64(data, oh+80)
	f.SizeOfHeapReserve = u64(data, oh+88)
	f.SizeOfHeapCommit = u64(data, oh+96)
	f.LoaderFlags = u32(data, oh+104)
	ndirs := u32(data, oh+108)
	if ndirs > 16 {
		ndirs = 16
	}
	if 112+8*ndirs > optSize {
		return nil, &FormatError{uint64(oh + 108), fmt.Sprintf("%d data directories do not fit in the optional header", ndirs)}
	}
	for i := uint32(0); i < ndirs; i++ {
		f.DataDirectory[i] = DataDirectory{u32(data, oh+112+8*i), u32(data, oh+116+8*i)}
	}
	if f.SizeOfImage == 0 || f.SizeOfImage > MaxImageSize {
		return nil, &FormatError{uint64(oh + 56), fmt.Sprintf("SizeOfImage %#x", f.SizeOfImage)}
	}
	if f.ImageBase%0x10000 != 0 {
		return nil, &FormatError{uint64(oh + 24), fmt.Sprintf("ImageBase %#x is not 64 KiB aligned", f.ImageBase)}
	}
	if nsect > maxSections {
		return nil, &FormatError{uint64(fh + 2), fmt.Sprintf("%d sections", nsect)}
	}
	st := oh + optSize
	if uint64(st)+40*uint64(nsect) > uint64(len(data)) {
		return nil, &FormatError{uint64(st), fmt.Sprintf("%d section headers do not fit", nsect)}
	}
	for i := uint32(0); i < nsect; i++ {
		h := data[st+40*i : st+40*i+40]
		name := h[:8]
		for j, c := range name {
			if c == 0 {
				name = name[:j]
				break
			}
		}
		s := Section{
			Name:             string(name),
			VirtualSize:      u32(h, 8),
			VirtualAddress:   u32(h, 12),
			SizeOfRawData:    u32(h, 16),
			PointerToRawData: u32(h, 20),
			Characteristics:  u32(h, 36),
		}
		end := uint64(s.VirtualAddress) + uint64(s.MemSize())
		if end > uint64(f.SizeOfImage) {
			return nil, &FormatError{uint64(st + 40*i), fmt.Sprintf("section %q ends at rva %#x, past SizeOfImage %#x", s.Name, end, f.SizeOfImage)}
		}
		if !mapped && s.SizeOfRawData > 0 && uint64(s.PointerToRawData)+uint64(s.SizeOfRawData) > uint64(len(data)) {
			// Linkers round SizeOfRawData up; a short last section is
			// common and harmless: Layout copies what is there.
			if uint64(s.PointerToRawData) > uint64(len(data)) {
				return nil, &FormatError{uint64(st + 40*i), fmt.Sprintf("section %q raw data at %#x is past the end", s.Name, s.PointerToRawData)}
			}
		}
		f.Sections = append(f.Sections, s)
	}
	return f, nil
}

// MemSize is how many bytes the section occupies in memory.
func (s *Section) MemSize() uint32 {
	if s.VirtualSize != 0 {
		return s.VirtualSize
	}
	return s.SizeOfRawData
}

// Layout returns the image in memory layout (SizeOfImage bytes): headers,
// then each section's raw data at its VirtualAddress, zero elsewhere.
func (f *File) Layout() ([]byte, error) {
	img := make([]byte, f.SizeOfImage)
	if f.mapped {
		copy(img, f.data)
		return img, nil
	}
	hdr := uint64(f.SizeOfHeaders)
	if hdr > uint64(len(f.data)) {
		hdr = uint64(len(f.data))
	}
	if hdr > uint64(len(img)) {
		hdr = uint64(len(img))
	}
	copy(img, f.data[:hdr])
	for _, s := range f.Sections {
		n := uint64(s.SizeOfRawData)
		if m := uint64(s.MemSize()); n > m {
			n = m
		}
		off := uint64(s.PointerToRawData)
		if off >= uint64(len(f.data)) {
			continue
		}
		if off+n > uint64(len(f.data)) {
			n = uint64(len(f.data)) - off
		}
		copy(img[s.VirtualAddress:], f.data[off:off+n])
	}
	return img, nil
}

// Relocate applies the base relocations of an image in memory layout for
// a load at newBase instead of ImageBase. An image without relocations can
// only load at its ImageBase: that is ErrNoRelocations.
func (f *File) Relocate(img []byte, newBase uint64) error {
	delta := newBase - f.ImageBase
	if delta == 0 {
		return nil
	}
	d := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_BASERELOC]
	if d.VirtualAddress == 0 || d.Size == 0 {
		return ErrNoRelocations
	}
	end := uint64(d.VirtualAddress) + uint64(d.Size)
	if end > uint64(len(img)) {
		return &FormatError{uint64(d.VirtualAddress), "relocation directory is past the image"}
	}
	for off := uint64(d.VirtualAddress); off+8 <= end; {
		page := uint64(u32(img, uint32(off)))
		size := uint64(u32(img, uint32(off+4)))
		if size < 8 || off+size > end {
			return &FormatError{off, fmt.Sprintf("relocation block of %d bytes", size)}
		}
		for e := off + 8; e+2 <= off+size; e += 2 {
			v := u16(img, uint32(e))
			at := page + uint64(v&0xfff)
			switch v >> 12 {
			case IMAGE_REL_BASED_ABSOLUTE:
			case IMAGE_REL_BASED_DIR64:
				if at+8 > uint64(len(img)) {
					return &FormatError{e, fmt.Sprintf("relocation target rva %#x is past the image", at)}
				}
				binary.LittleEndian.PutUint64(img[at:], u64(img, uint32(at))+delta)
			case IMAGE_REL_BASED_HIGHLOW:
				if at+4 > uint64(len(img)) {
					return &FormatError{e, fmt.Sprintf("relocation target rva %#x is past the image", at)}
				}
				binary.LittleEndian.PutUint32(img[at:], u32(img, uint32(at))+uint32(delta))
			default:
				return &FormatError{e, fmt.Sprintf("relocation type %d", v>>12)}
			}
		}
		off += size
	}
	return nil
}

// ErrNoRelocations: the image has no base relocations and cannot move.
var ErrNoRelocations = errors.New("image has no base relocations")

// Export is one exported symbol.
type Export struct {
	Name      string // empty for an export by ordinal only
	Ordinal   uint32
	RVA       uint32
	Forwarder string // "DLL.name" when the export forwards
}

const maxExports = 1 << 16

// Exports reads the export directory of an image in memory layout.
func (f *File) Exports(img []byte) ([]Export, error) {
	d := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT]
	if d.VirtualAddress == 0 || d.Size == 0 {
		return nil, nil
	}
	if uint64(d.VirtualAddress)+40 > uint64(len(img)) {
		return nil, &FormatError{uint64(d.VirtualAddress), "export directory is past the image"}
	}
	dir := d.VirtualAddress
	base := u32(img, dir+16)
	nfuncs, nnames := u32(img, dir+20), u32(img, dir+24)
	funcs, names, ords := u32(img, dir+28), u32(img, dir+32), u32(img, dir+36)
	if nfuncs > maxExports || nnames > nfuncs {
		return nil, &FormatError{uint64(dir + 20), fmt.Sprintf("%d functions, %d names", nfuncs, nnames)}
	}
	if uint64(funcs)+4*uint64(nfuncs) > uint64(len(img)) ||
		uint64(names)+4*uint64(nnames) > uint64(len(img)) ||
		uint64(ords)+2*uint64(nnames) > uint64(len(img)) {
		return nil, &FormatError{uint64(dir + 28), "export tables are past the image"}
	}
	out := make([]Export, nfuncs)
	for i := uint32(0); i < nfuncs; i++ {
		out[i] = Export{Ordinal: base + i, RVA: u32(img, funcs+4*i)}
		if rva := out[i].RVA; rva >= dir && uint64(rva) < uint64(dir)+uint64(d.Size) {
			out[i].Forwarder = CString(img, rva, 256)
		}
	}
	for i := uint32(0); i < nnames; i++ {
		idx := uint32(u16(img, ords+2*i))
		if idx >= nfuncs {
			continue
		}
		out[idx].Name = CString(img, u32(img, names+4*i), 512)
	}
	return out, nil
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

// RVAToOffset maps an RVA to a file offset (file layout only); ok is false
// for an RVA outside every section's raw data and the headers.
func (f *File) RVAToOffset(rva uint32) (uint32, bool) {
	if f.mapped {
		return rva, uint64(rva) < uint64(len(f.data))
	}
	if rva < f.SizeOfHeaders {
		return rva, true
	}
	for _, s := range f.Sections {
		if rva >= s.VirtualAddress && uint64(rva) < uint64(s.VirtualAddress)+uint64(s.SizeOfRawData) {
			return rva - s.VirtualAddress + s.PointerToRawData, true
		}
	}
	return 0, false
}

// ExportName is the DLL name the export directory of an image in memory
// layout records ("KERNEL32.dll"), or "".
func (f *File) ExportName(img []byte) string {
	d := f.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT]
	if d.VirtualAddress == 0 || uint64(d.VirtualAddress)+40 > uint64(len(img)) {
		return ""
	}
	return CString(img, u32(img, d.VirtualAddress+12), 256)
}
