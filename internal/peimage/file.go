// Package peimage is the project's one PE reader: the only package that
// walks PE headers (DOS header, "PE\0\0", file and optional headers,
// section table) and the export and import directories. It is the PE
// twin of internal/elfmem: every length is checked against the bytes
// there, every loop is bounded, no input makes it panic, and the
// structure and constant names follow Go's debug/pe (and so the PE
// specification): FileHeader, OptionalHeader64, SectionHeader32,
// DataDirectory, IMAGE_DIRECTORY_ENTRY_*.
//
// It reads from any Memory (guest memory, a file through ReaderAt, or
// Bytes), so the same walk serves the loaders (a file in), the unwinder
// and the monitor (an image mapped in a guest) and the tools (a file on
// disk). ReadNTHeaders, ReadHeaders and ReadFile decode without judging;
// Parse and ParseMapped add the checks a loader relies on and keep the
// bytes for Layout, Relocate, Exports and Imports.
//
// It reads the two layouts an image has: the file layout (sections at
// their PointerToRawData) and the memory layout (sections at their
// VirtualAddress, as a loader maps them). Layout turns the first into the
// second; ParseMapped reads an image already in memory layout (copied out
// of a guest).
package peimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// File is an image's headers and section table; after Parse or
// ParseMapped, also its bytes. A PE32 optional header (read by
// ReadNTHeaders, refused by Parse) is widened into OptionalHeader64.
type File struct {
	FileHeader
	OptionalHeader64
	Sections []Section
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

// parse reads the headers (through the one header walk, headers.go) and
// checks what a loader relies on.
func parse(data []byte, mapped bool) (*File, error) {
	var f *File
	var err error
	if mapped {
		f, err = ReadHeaders(Bytes(data), 0)
	} else {
		f, err = ReadFile(bytes.NewReader(data), int64(len(data)))
	}
	var re *ReadError
	if err != nil && !errors.Is(err, ErrNotPE) && errors.As(err, &re) {
		return nil, &FormatError{re.Addr, fmt.Sprintf("%s of %d bytes does not fit in %d bytes", re.What, re.Want, len(data))}
	}
	if err != nil {
		return nil, err
	}
	f.data, f.mapped = data, mapped
	fh := f.NTHeaderOffset + 4
	oh := fh + fileHeaderSize
	if f.Magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC {
		return nil, fmt.Errorf("%w: optional header magic %#x", ErrNotPE32Plus, f.Magic)
	}
	optSize := uint32(f.SizeOfOptionalHeader)
	if optSize < 112 {
		return nil, &FormatError{uint64(fh + 16), fmt.Sprintf("optional header size %d does not fit", optSize)}
	}
	if ndirs := min(f.NumberOfRvaAndSizes, 16); 112+8*ndirs > optSize {
		return nil, &FormatError{uint64(oh + 108), fmt.Sprintf("%d data directories do not fit in the optional header", ndirs)}
	}
	if f.SizeOfImage == 0 || f.SizeOfImage > MaxImageSize {
		return nil, &FormatError{uint64(oh + 56), fmt.Sprintf("SizeOfImage %#x", f.SizeOfImage)}
	}
	if f.ImageBase%0x10000 != 0 {
		return nil, &FormatError{uint64(oh + 24), fmt.Sprintf("ImageBase %#x is not 64 KiB aligned", f.ImageBase)}
	}
	st := f.SectionTableOffset()
	for i, s := range f.Sections {
		end := uint64(s.VirtualAddress) + uint64(s.MemSize())
		if end > uint64(f.SizeOfImage) {
			return nil, &FormatError{st + 40*uint64(i), fmt.Sprintf("section %q ends at rva %#x, past SizeOfImage %#x", s.Name, end, f.SizeOfImage)}
		}
		// Linkers round SizeOfRawData up; a short last section is common
		// and harmless: Layout copies what is there.
		if !mapped && s.SizeOfRawData > 0 && uint64(s.PointerToRawData) > uint64(len(data)) {
			return nil, &FormatError{st + 40*uint64(i), fmt.Sprintf("section %q raw data at %#x is past the end", s.Name, s.PointerToRawData)}
		}
	}
	return f, nil
}

// Layout returns the image in memory layout (SizeOfImage bytes): headers,
// then each section's raw data at its VirtualAddress, zero elsewhere.
func (f *File) Layout() ([]byte, error) {
	img := make([]byte, f.SizeOfImage)
	f.LayoutPieces(func(rva uint32, b []byte) { copy(img[rva:], b) })
	return img, nil
}

// LayoutPieces calls put with what Layout copies, in Layout's order (a
// later piece overwrites an earlier one where they overlap): the headers,
// then each section's raw data, each at its RVA and cut at SizeOfImage.
// A loader that writes the pieces into zeroed memory of SizeOfImage bytes
// gets Layout's image without building it first.
func (f *File) LayoutPieces(put func(rva uint32, b []byte)) {
	size := uint64(f.SizeOfImage)
	piece := func(rva, off, n uint64) {
		if rva >= size || off >= uint64(len(f.data)) {
			return
		}
		n = min(n, size-rva, uint64(len(f.data))-off)
		if n > 0 {
			put(uint32(rva), f.data[off:off+n])
		}
	}
	if f.mapped {
		piece(0, 0, uint64(len(f.data)))
		return
	}
	piece(0, 0, uint64(f.SizeOfHeaders))
	for _, s := range f.Sections {
		piece(uint64(s.VirtualAddress), uint64(s.PointerToRawData), min(uint64(s.SizeOfRawData), uint64(s.MemSize())))
	}
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

// RVAToOffset maps an RVA to a file offset (file layout only); ok is false
// for an RVA outside every section's raw data and the headers.
func (f *File) RVAToOffset(rva uint32) (uint32, bool) {
	off, _, ok := f.rawSpan(rva)
	return uint32(off), ok
}

// rawSpan is RVAToOffset with the end of the file bytes the RVA's piece
// (headers or section raw data) has there.
func (f *File) rawSpan(rva uint32) (off, end uint64, ok bool) {
	if f.mapped {
		return uint64(rva), uint64(len(f.data)), uint64(rva) < uint64(len(f.data))
	}
	if rva < f.SizeOfHeaders {
		return uint64(rva), uint64(f.SizeOfHeaders), true
	}
	for _, s := range f.Sections {
		if rva >= s.VirtualAddress && uint64(rva) < uint64(s.VirtualAddress)+uint64(s.SizeOfRawData) {
			off = uint64(rva-s.VirtualAddress) + uint64(s.PointerToRawData)
			return off, uint64(s.PointerToRawData) + uint64(s.SizeOfRawData), true
		}
	}
	return 0, 0, false
}

// RVAs is a Memory over a parsed file whose addresses are RVAs: what
// Layout would put there, read from the file's bytes (the headers and each
// section's raw data; nothing elsewhere, and a read stops at the end of
// the raw data it starts in).
type RVAs struct{ F *File }

// ReadMemory copies what the file holds for [addr, addr+len(p)).
func (m RVAs) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr >= 1<<32 {
		return 0, nil
	}
	off, end, ok := m.F.rawSpan(uint32(addr))
	end = min(end, uint64(len(m.F.data)))
	if !ok || off >= end {
		return 0, nil
	}
	return copy(p, m.F.data[off:end]), nil
}

// PutImageBase writes base into the ImageBase field of an image in memory
// layout, as a loader does for an image it moved; false when the header is
// not inside img.
func (f *File) PutImageBase(img []byte, base uint64) bool {
	at := uint64(f.NTHeaderOffset) + 4 + fileHeaderSize + 24
	if f.Magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC || at+8 > uint64(len(img)) {
		return false
	}
	binary.LittleEndian.PutUint64(img[at:], base)
	return true
}
